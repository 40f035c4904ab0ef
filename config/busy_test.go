package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/config"
)

// busyPolicy is one worker policy reading source (its settings without the POLICY_0_ prefix), with extra variables.
func busyPolicy(source []string, extra ...string) []string {
	env := []string{"HEROKU_API_KEY=k", "POLICY_0_APP=shop", "POLICY_0_PROCESS=worker", "POLICY_0_MAX=4", "POLICY_0_TARGET=10s"}
	for _, s := range source {
		env = append(env, "POLICY_0_"+s)
	}
	return append(env, extra...)
}

// Sources as a policy sets them, without PROTECT_BUSY.
var (
	sidekiqSource  = []string{"SOURCE=sidekiq", "SOURCE_URL=redis://127.0.0.1:6379/0"}
	rqSource       = []string{"SOURCE=rq", "SOURCE_URL=redis://127.0.0.1:6379/0"}
	riverSource    = []string{"SOURCE=postgres", "SOURCE_URL=postgres://db.example/app", "PRESET=river"}
	hirefireSource = []string{"SOURCE=hirefire", "SOURCE_URL=https://shop.example/hirefire/t/info"}
	celerySource   = []string{"SOURCE=celery", "SOURCE_URL=redis://127.0.0.1:6379/0"}
	querySource    = []string{"SOURCE=postgres", "SOURCE_URL=postgres://db.example/app", "QUERY=SELECT 1"}
	queSource      = []string{"SOURCE=postgres", "SOURCE_URL=postgres://db.example/app", "PRESET=que"}
)

// busyLoad loads env, which must be valid, and returns its one policy, checking that the source is asked for the
// running jobs exactly when the policy protects busy dynos.
func busyLoad(t *testing.T, env []string) config.PolicyConfig {
	t.Helper()
	cfg, problems := load(t, env...)
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	if len(cfg.Policies) != 1 {
		t.Fatalf("%d policies", len(cfg.Policies))
	}
	p := cfg.Policies[0]
	if p.Source.Running != p.Rules.ProtectBusy {
		t.Errorf("Source.Running = %v but ProtectBusy = %v: the source must read running jobs exactly when the policy protects busy dynos",
			p.Source.Running, p.Rules.ProtectBusy)
	}
	return p
}

func TestProtectBusyDefaultsPerSource(t *testing.T) {
	for _, c := range []struct {
		name   string
		source []string
		want   bool
	}{
		{"sidekiq", sidekiqSource, true},
		{"rq", rqSource, true},
		{"postgres river", riverSource, true},
		{"hirefire", hirefireSource, false},
		{"celery", celerySource, false},
		{"postgres QUERY", querySource, false},
		{"postgres que", queSource, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := busyLoad(t, busyPolicy(c.source))
			if p.Rules.ProtectBusy != c.want {
				t.Errorf("PROTECT_BUSY unset: ProtectBusy = %v, want %v", p.Rules.ProtectBusy, c.want)
			}
			if p.Rules.ProtectBusyMax != time.Hour {
				t.Errorf("PROTECT_BUSY_MAX unset: %v, want 1h", p.Rules.ProtectBusyMax)
			}
			// Set but empty is unset.
			if p := busyLoad(t, busyPolicy(c.source, "POLICY_0_PROTECT_BUSY=")); p.Rules.ProtectBusy != c.want {
				t.Errorf("PROTECT_BUSY empty: ProtectBusy = %v, want the default %v", p.Rules.ProtectBusy, c.want)
			}
		})
	}
}

func TestProtectBusyAsSet(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     []string
		want    bool
		wantMax time.Duration
	}{
		{"false honoured for sidekiq", busyPolicy(sidekiqSource, "POLICY_0_PROTECT_BUSY=false"), false, time.Hour},
		{"false from POLICY_DEFAULT_", busyPolicy(sidekiqSource, "POLICY_DEFAULT_PROTECT_BUSY=false"), false, time.Hour},
		{"the policy's own over POLICY_DEFAULT_", busyPolicy(sidekiqSource, "POLICY_DEFAULT_PROTECT_BUSY=false", "POLICY_0_PROTECT_BUSY=true"), true, time.Hour},
		{"true for sidekiq", busyPolicy(sidekiqSource, "POLICY_0_PROTECT_BUSY=true", "POLICY_0_PROTECT_BUSY_MAX=30m"), true, 30 * time.Minute},
		{"false for celery", busyPolicy(celerySource, "POLICY_0_PROTECT_BUSY=false"), false, time.Hour},
		{"0 for hirefire", busyPolicy(hirefireSource, "POLICY_0_PROTECT_BUSY=0"), false, time.Hour},
		{"PROTECT_BUSY_MAX=0: never overridden", busyPolicy(rqSource, "POLICY_0_PROTECT_BUSY_MAX=0"), true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := busyLoad(t, c.env)
			if p.Rules.ProtectBusy != c.want || p.Rules.ProtectBusyMax != c.wantMax {
				t.Errorf("ProtectBusy = %v, ProtectBusyMax = %v; want %v, %v", p.Rules.ProtectBusy, p.Rules.ProtectBusyMax, c.want, c.wantMax)
			}
		})
	}
}

func TestProtectBusyRefused(t *testing.T) {
	for _, c := range []struct {
		name     string
		env      []string
		variable string
		shown    string
		why      string // what the expectation must explain
	}{
		{"true with celery", busyPolicy(celerySource, "POLICY_0_PROTECT_BUSY=true"), "POLICY_0_PROTECT_BUSY", `"true"`, "SOURCE=celery cannot see which jobs are running"},
		{"1 with a postgres QUERY", busyPolicy(querySource, "POLICY_0_PROTECT_BUSY=1"), "POLICY_0_PROTECT_BUSY", `"1"`, "a QUERY reads one number"},
		{"True with PRESET=que", busyPolicy(queSource, "POLICY_0_PROTECT_BUSY=True"), "POLICY_0_PROTECT_BUSY", `"True"`, "PRESET=que records a running job only as a lock"},
		{"true with hirefire", busyPolicy(hirefireSource, "POLICY_0_PROTECT_BUSY=true"), "POLICY_0_PROTECT_BUSY", `"true"`, "SOURCE=hirefire cannot see which jobs are running"},
		{"not a boolean", busyPolicy(sidekiqSource, "POLICY_0_PROTECT_BUSY=maybe"), "POLICY_0_PROTECT_BUSY", `"maybe"`, "true or false"},
		{"negative PROTECT_BUSY_MAX", busyPolicy(sidekiqSource, "POLICY_0_PROTECT_BUSY_MAX=-1m"), "POLICY_0_PROTECT_BUSY_MAX", `"-1m"`, "a duration >= 0"},
		{"PROTECT_BUSY_MAX not a duration", busyPolicy(sidekiqSource, "POLICY_0_PROTECT_BUSY_MAX=forever"), "POLICY_0_PROTECT_BUSY_MAX", `"forever"`, "a duration >= 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, problems := load(t, c.env...)
			if len(problems) != 1 {
				t.Fatalf("want one problem, got %d: %q", len(problems), problems)
			}
			p := problems[0]
			if !strings.HasPrefix(p, c.variable+"="+c.shown+": expected ") || !strings.Contains(p, c.why) {
				t.Errorf("problem %q; want %s=%s: expected …%s…", p, c.variable, c.shown, c.why)
			}
			if cfg != nil && len(cfg.Policies) != 0 {
				t.Errorf("the refused policy was loaded: %+v", cfg.Policies)
			}
		})
	}
}
