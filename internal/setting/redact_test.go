package setting_test

import (
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/internal/setting"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
		secrets        []string // none may appear in the result
	}{
		{"", "redis://:p4ssw0rd@host:6379/0", "redis://xxxxx@host:6379/0", []string{"p4ssw0rd"}},
		{"", "rediss://default:p4ssw0rd@host:6379", "rediss://xxxxx@host:6379", []string{"p4ssw0rd", "default"}},
		{"", "postgres://user:p4ssw0rd@host:5432/db?sslmode=require", "postgres://xxxxx@host:5432/db?sslmode=require", []string{"p4ssw0rd", "user"}},
		{"", "postgres://postgres@127.0.0.1:5432/test", "postgres://xxxxx@127.0.0.1:5432/test", nil},
		{"", "postgres://host/db?sslmode=disable&password=p4ssw0rd", "postgres://host/db?sslmode=disable&password=xxxxx", []string{"p4ssw0rd"}},
		{"", "amqp://guest:guest@localhost:5672/", "amqp://xxxxx@localhost:5672/", []string{"guest"}},
		{"", "https://app.example.com/hirefire/0123abcd/info", "https://app.example.com/hirefire/xxxxx/info", []string{"0123abcd"}},
		{"", "https://:0123abcd@app.example.com/hirefire", "https://xxxxx@app.example.com/hirefire", []string{"0123abcd"}},
		{"", "https://0123abcd@app.example.com/hirefire", "https://xxxxx@app.example.com/hirefire", []string{"0123abcd"}},
		{"", "http://prometheus:9090/api/prom?token=0123abcd", "http://prometheus:9090/api/prom?token=xxxxx", []string{"0123abcd"}},
		{"", "http://h/x#0123abcd", "http://h/x#xxxxx", []string{"0123abcd"}},
		// Passwords with characters that confuse url.Parse: hidden whole, even if more is hidden with them.
		{"", "redis://:p@ss/w#rd?x@host:6379/0", "redis://xxxxx@host:6379/0", []string{"ss/w#rd", "p@ss"}},
		{"", "redis://us/er:pw@host", "redis://xxxxx@host", []string{"pw", "us/er"}},
		{"", "http://u:pw@h:99:99/x", "http://xxxxx@h:99:99/x", []string{"u:pw"}},
		// Without a scheme.
		{"", "user:p4ssw0rd@host", "xxxxx@host", []string{"p4ssw0rd", "user"}},
		{"", "@every 10s", "@every 10s", nil},
		{"", "@hourly", "@hourly", nil},
		// PostgreSQL key=value connection strings.
		{"", "host=db user=app password=p4ssw0rd sslmode=require", "host=db user=app password=xxxxx sslmode=require", []string{"p4ssw0rd"}},
		{"", "password='p4ss w0rd' host=db", "password=xxxxx host=db", []string{"p4ss", "w0rd"}},
		{"", `host=db password = 'it\'s secret`, "host=db password = xxxxx", []string{"secret", "it"}},
		{"", "host=db sslpassword=k3y", "host=db sslpassword=xxxxx", []string{"k3y"}},
		// A variable whose name says it is secret: hidden whole.
		{"HEROKU_API_KEY", "HRKU-0123", "(hidden)", []string{"HRKU-0123"}},
		{"POLICY_0_API_TOKEN", "0123", "(hidden)", []string{"0123"}},
		{"DYNOPILOT_WEBHOOK_SECRET", "whsec_0123", "(hidden)", []string{"0123"}},
		{"DB_PASSWORD", "0123", "(hidden)", []string{"0123"}},
		// Nothing secret: as is.
		{"POLICY_0_APP", "shop", "shop", nil},
		{"POLICY_0_QUERY", `sum(rate(x{job="api"}[5m]))`, `sum(rate(x{job="api"}[5m]))`, nil},
		{"POLICY_0_SCHEDULE", "CRON_TZ=Europe/Berlin 0 8 * * MON-FRI for 10h min=4", "CRON_TZ=Europe/Berlin 0 8 * * MON-FRI for 10h min=4", nil},
		{"HEROKU_API_KEY", "", "", nil},
	} {
		got := setting.Redact(c.name, c.in)
		if got != c.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", c.name, c.in, got, c.want)
		}
		for _, s := range c.secrets {
			if strings.Contains(got, s) {
				t.Errorf("Redact(%q, %q) = %q shows %q", c.name, c.in, got, s)
			}
		}
	}
}

func TestSecretsAndScrub(t *testing.T) {
	for _, c := range []struct {
		name, value, text string
		hidden            []string
	}{
		{"", "postgres://app:Pa%2Fss@db/app", "auth failed with Pa/ss and Pa%2Fss", []string{"Pa/ss", "Pa%2Fss"}},
		{"", "https://app.example.com/hirefire/T0ken/info", "GET /hirefire/T0ken/info: 404", []string{"T0ken"}},
		{"", "host=db password='a b'", "connect with password 'a b' failed", []string{"a b"}},
		{"POLICY_0_SECRET", "S3cret", "bad value S3cret", []string{"S3cret"}},
		// A URL quoted by a library has its userinfo hidden even when it is not the configured value.
		{"", "", `parse "http://someone:Pw@h:99:99/x": invalid port`, []string{"someone", "Pw"}},
		{"", "", "cannot parse `postgres://u:xxxxx@h:bad/db`: invalid port", []string{"u:"}},
	} {
		got := setting.Scrub(c.text, setting.Secrets(c.name, c.value))
		for _, h := range c.hidden {
			if strings.Contains(got, h) {
				t.Errorf("Scrub(%q) with the secrets of %s=%q = %q shows %q", c.text, c.name, c.value, got, h)
			}
		}
	}
}

// TestErrorRedactsWhateverTheCallerPassed: issue 11, item 7. setting.Error shows its value redacted and scrubs the
// value's secrets from what it says is expected, so that no caller can forget to.
func TestErrorRedactsWhateverTheCallerPassed(t *testing.T) {
	for _, c := range []struct {
		err    *setting.Error
		want   string
		hidden []string
	}{
		{setting.Errorf("PUSHGATEWAY_URL", "http://admin:Pu5h@h:99:99/x", "an http:// or https:// URL"),
			`PUSHGATEWAY_URL="http://xxxxx@h:99:99/x": expected an http:// or https:// URL`, []string{"Pu5h", "admin"}},
		{setting.Errorf("SOURCE_URL", "postgres://app:Pg-pw@db:bad/x", "a valid postgres URL: cannot parse `postgres://app:Pg-pw@db:bad/x`"),
			"SOURCE_URL=\"postgres://xxxxx@db:bad/x\": expected a valid postgres URL: cannot parse `postgres://xxxxx@db:bad/x`", []string{"Pg-pw", "app:"}},
		{setting.Errorf("SOURCE_URL", "host=db password=Pg-pw", "a URL"), `SOURCE_URL="host=db password=xxxxx": expected a URL`, []string{"Pg-pw"}},
		{setting.Errorf("POLICY_0_TOKEN", "T0k", "a known setting"), `POLICY_0_TOKEN="(hidden)": expected a known setting`, []string{"T0k"}},
		{setting.Errorf("MIN", "abc", "a whole number"), `MIN="abc": expected a whole number`, nil},
		{setting.Errorf("POLICY_0_APP", "sh\xffop", "a name"), `POLICY_0_APP="sh\xffop": expected a name`, nil},
		// A variable's name may be anything but '=': a strange one is quoted, and redacted too.
		{setting.Errorf("POLICY_0_SOURCE_URL redis://u:Pw@h", "x", "a known setting"), `"POLICY_0_SOURCE_URL redis://xxxxx@h"="x": expected a known setting`, []string{"Pw"}},
	} {
		got := c.err.Error()
		if got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
		for _, h := range c.hidden {
			if strings.Contains(got, h) {
				t.Errorf("Error() = %q shows %q", got, h)
			}
		}
	}
	// Prefixed keeps the redaction: the name it gives decides.
	err := setting.Prefixed("POLICY_0_", setting.Errorf("SOURCE_URL", "redis://u:Pw@h", "a URL"))
	if strings.Contains(err.Error(), "Pw") {
		t.Errorf("Prefixed: %v", err)
	}
}
