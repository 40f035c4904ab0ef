package metrics_test

import (
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/metrics"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want, secret string }{
		{"redis://:p4ssw0rd@host:6379/0", "redis://:xxxxx@host:6379/0", "p4ssw0rd"},
		{"rediss://default:p4ssw0rd@host:6379", "rediss://default:xxxxx@host:6379", "p4ssw0rd"},
		{"postgres://user:p4ssw0rd@host:5432/db?sslmode=require", "postgres://user:xxxxx@host:5432/db?sslmode=require", "p4ssw0rd"},
		{"postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/test", ""},
		{"postgres://host/db?sslmode=disable&password=p4ssw0rd", "postgres://host/db?sslmode=disable&password=xxxxx", "p4ssw0rd"},
		{"amqp://guest:guest@localhost:5672/", "amqp://guest:xxxxx@localhost:5672/", ""},
		{"https://app.example.com/hirefire/0123abcd/info", "https://app.example.com/hirefire/xxxxx/info", "0123abcd"},
		{"https://:0123abcd@app.example.com/hirefire", "https://:xxxxx@app.example.com/hirefire", "0123abcd"},
		{"http://prometheus:9090/api/prom?token=0123abcd", "http://prometheus:9090/api/prom?token=xxxxx", "0123abcd"},
		// Passwords with characters that confuse url.Parse: hidden whole, even if more is hidden with them.
		{"redis://:p@ss/w#rd?x@host:6379/0", "redis://:xxxxx@host:6379/0", "ss/w#rd"},
		{"redis://us/er:pw@host", "redis://xxxxx@host", "pw"},
		{"user:p4ssw0rd@host", "user:xxxxx@host", "p4ssw0rd"},
		{"", "", ""},
	} {
		got := metrics.Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
		if c.secret != "" && strings.Contains(got, c.secret) {
			t.Errorf("Redact(%q) = %q shows %q", c.in, got, c.secret)
		}
	}
}
