package config_test

import (
	"strings"
	"testing"
)

// TestProblemsNeverShowSecrets: issue 11, item 7. A malformed URL-valued setting was printed as written, password
// and all, by `check` and `run`. Every problem names the variable, and shows neither the secret nor the userinfo.
func TestProblemsNeverShowSecrets(t *testing.T) {
	for _, c := range []struct {
		name     string
		set      []string
		variable string
		secrets  []string // none of these may appear
	}{
		{"PUSHGATEWAY_URL with a bad port", []string{"PUSHGATEWAY_URL=http://pushuser:Pu5h-pw@push.example:99:99/x"}, "PUSHGATEWAY_URL", []string{"Pu5h-pw", "pushuser"}},
		{"PUSHGATEWAY_URL without a host", []string{"PUSHGATEWAY_URL=http://pushuser:Pu5h-pw@"}, "PUSHGATEWAY_URL", []string{"Pu5h-pw", "pushuser"}},
		{"PROMETHEUS_URL with a slash in the password", []string{"PROMETHEUS_URL=http://promuser:Pr0m/pw@prom.example:1:2"}, "PROMETHEUS_URL", []string{"Pr0m/pw", "Pr0m", "promuser"}},
		{"PROMETHEUS_URL of another scheme", []string{"PROMETHEUS_URL=ftp://promuser:Pr0m-pw@prom.example"}, "PROMETHEUS_URL", []string{"Pr0m-pw", "promuser"}},
		{"HEROKU_API_URL malformed", []string{"HEROKU_API_URL=http://apiuser:Ap1-pw@host:bad"}, "HEROKU_API_URL", []string{"Ap1-pw", "apiuser"}},
		{"HEROKU_API_URL with credentials", []string{"HEROKU_API_URL=https://apiuser:Ap1-pw@api.example.com"}, "HEROKU_API_URL", []string{"Ap1-pw", "apiuser"}},
		{"a misspelt name holding a URL", []string{"POLICY_0_SOURCE_URK=redis://redisuser:Red1s-pw@redis.example:6379"}, "POLICY_0_SOURCE_URK", []string{"Red1s-pw", "redisuser"}},
		{"a misspelt name holding a URL url.Parse cannot read", []string{"POLICY_0_SOURCE_URK=redis://redisuser:Red1s/pw#x@redis.example"}, "POLICY_0_SOURCE_URK", []string{"Red1s/pw", "Red1s", "redisuser"}},
		{"a name of no form holding a URL", []string{"POLICY_X_SOURCE_URL=redis://redisuser:Red1s-pw@redis.example"}, "POLICY_X_SOURCE_URL", []string{"Red1s-pw", "redisuser"}},
		{"a misspelt secret", []string{"POLICY_0_API_TOKEN=T0ken-value"}, "POLICY_0_API_TOKEN", []string{"T0ken-value"}},
		{"a Postgres key=value DSN as SOURCE_URL", []string{"POLICY_0_SOURCE=postgres", "POLICY_0_PRESET=que", "POLICY_0_SOURCE_URL=host=db.example user=app password=Pg-pw sslmode=require"},
			"POLICY_0_SOURCE_URL", []string{"Pg-pw"}},
		{"a quoted password in a DSN", []string{"POLICY_0_SOURCE=postgres", "POLICY_0_PRESET=que", "POLICY_0_SOURCE_URL=", "DATABASE_URL=host=db password='Pg pw\\'s' user=app"},
			"POLICY_0_SOURCE_URL", []string{"Pg pw", `pw\'s`}},
		{"a URL in a number", []string{"DYNOPILOT_API_RATE=http://rateuser:R4te-pw@x"}, "DYNOPILOT_API_RATE", []string{"R4te-pw", "rateuser"}},
		{"a URL in a policy gap", []string{"POLICY_2_SOURCE_URL=redis://gapuser:G4p-pw@x"}, "POLICY_2_SOURCE_URL", []string{"G4p-pw", "gapuser"}},
		{"a hirefire token in the user name", []string{"POLICY_0_SOURCE_URL=ftp://H1reToken@app.example/hirefire"}, "POLICY_0_SOURCE_URL", []string{"H1reToken"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, problems := load(t, with(c.set...)...)
			joined := strings.Join(problems, "\n")
			if !strings.Contains(joined, c.variable) {
				t.Errorf("no problem names %s:\n%s", c.variable, joined)
			}
			for _, s := range c.secrets {
				if strings.Contains(joined, s) {
					t.Errorf("problems show %q:\n%s", s, joined)
				}
			}
		})
	}
}

// TestGlobalStringHidesSecrets: the one line describing the global configuration.
func TestGlobalStringHidesSecrets(t *testing.T) {
	cfg, _ := load(t, with("HEROKU_API_URL=https://u:Ap1-pw@api.example.com")...)
	if s := cfg.Global.String(); strings.Contains(s, "Ap1-pw") || strings.Contains(s, "k ") || !strings.Contains(s, "key=set") {
		t.Errorf("String() = %q", s)
	}
}
