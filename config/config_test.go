package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/internal/setting"
)

func load(t *testing.T, env ...string) (*config.Config, []string) {
	t.Helper()
	cfg, err := config.Load(env)
	var msgs []string
	for _, e := range setting.Flatten(err) {
		msgs = append(msgs, e.Error())
	}
	return cfg, msgs
}

func TestLoadValidConfiguration(t *testing.T) {
	cfg, problems := load(t,
		"HEROKU_API_KEY=secret", "PORT=5000", "REDIS_URL=redis://127.0.0.1:6379/0",
		"POLICY_DEFAULT_MAX=8", "POLICY_DEFAULT_INTERVAL=30s",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=hirefire", "POLICY_0_SOURCE_URL=http://shop.example/hirefire/x/info",
		"POLICY_0_TARGET=250ms", "POLICY_0_MAX=12",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_SOURCE=sidekiq", "POLICY_1_TARGET=10s", "POLICY_1_INTERVAL=*/1 * * * *",
	)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(cfg.Policies) != 2 {
		t.Fatalf("%d policies", len(cfg.Policies))
	}
	web, worker := cfg.Policies[0], cfg.Policies[1]
	if web.Rules.Max != 12 || worker.Rules.Max != 8 {
		t.Errorf("MAX: web %d (own 12), worker %d (POLICY_DEFAULT_MAX 8)", web.Rules.Max, worker.Rules.Max)
	}
	if web.Interval != "@every 30s" {
		t.Errorf("web interval %q, want the default's 30s", web.Interval)
	}
	if worker.Interval != "*/1 * * * *" {
		t.Errorf("worker interval %q", worker.Interval)
	}
	if web.Rules.Target != 0.25 {
		t.Errorf("TARGET=250ms gave %v, want 0.25 seconds", web.Rules.Target)
	}
	if worker.Source.URL != "redis://127.0.0.1:6379/0" {
		t.Errorf("sidekiq without SOURCE_URL should use REDIS_URL, got %q", worker.Source.URL)
	}
	if cfg.Global.ListenAddr() != ":5000" || cfg.Global.APIRate != 4500 || cfg.Global.APIReserve != 450 || cfg.Global.FormationRefresh != time.Minute {
		t.Errorf("global defaults: %+v", cfg.Global)
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, problems := load(t,
		"HEROKU_API_KEY=hunter2-token",
		"DYNOPILOT_DRY_RUN=maybe", "DYNOPILOT_API_RATE=lots", "LOG_LEVEL=loud",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=hirefire", "POLICY_0_SOURCE_URL=http://x/info",
		"POLICY_0_MAX=4", "POLICY_0_MIN=abc", "POLICY_0_TARGTE=1",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_SOURCE=postgress", "POLICY_1_MAX=3", "POLICY_1_TARGET=1",
		"POLICY_1_SOURCE_URL=postgres://app:s3cret-pw@db.example/app",
		"POLICY_3_APP=shop", "POLICY_3_PROCESS=clock", "POLICY_3_SOURCE=hirefire", "POLICY_3_MAX=1", "POLICY_3_TARGET=1",
		"POLICY_X_APP=oops",
	)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{
		"DYNOPILOT_DRY_RUN", "DYNOPILOT_API_RATE", "LOG_LEVEL",
		"POLICY_0_MIN", "did you mean POLICY_0_TARGET?", "POLICY_1_SOURCE", "no POLICY_2_… before POLICY_3_…", "POLICY_X_APP",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
	for _, secret := range []string{"hunter2-token", "s3cret-pw"} {
		if strings.Contains(joined, secret) {
			t.Errorf("secret %q in problems:\n%s", secret, joined)
		}
	}
	if len(problems) < 8 {
		t.Errorf("only %d problems reported:\n%s", len(problems), joined)
	}
}

func TestEveryProblemNamesItsVariable(t *testing.T) {
	cfg, err := config.Load([]string{"POLICY_0_APP=shop", "POLICY_0_MAX=zero", "DYNOPILOT_FORMATION_REFRESH=soon"})
	if cfg == nil || err == nil {
		t.Fatal("expected problems")
	}
	for _, e := range setting.Flatten(err) {
		var se *setting.Error
		if !errors.As(e, &se) {
			t.Errorf("problem %q is not a *setting.Error", e)
			continue
		}
		if !strings.HasPrefix(se.Name, "POLICY_") && !strings.HasPrefix(se.Name, "DYNOPILOT_") && !strings.HasPrefix(se.Name, "HEROKU_") {
			t.Errorf("problem names %q, not a variable", se.Name)
		}
	}
}

func TestDuplicatePolicies(t *testing.T) {
	// Issue 11: WORKER beside worker passed, then both steered one formation entry, PATCHing 5 <-> 3 every second.
	// The daemon finds formation entries ignoring case, so the comparison does too (an app id, a UUID, too).
	for _, c := range [][4]string{
		{"shop", "worker", "shop", "WORKER"},
		{"shop", "web", "shop", "web"},
		{"01234567-89ab-cdef-0123-456789abcdef", "web", "01234567-89AB-CDEF-0123-456789ABCDEF", "Web"},
	} {
		_, problems := load(t,
			"POLICY_0_APP="+c[0], "POLICY_0_PROCESS="+c[1], "POLICY_0_SOURCE=hirefire", "POLICY_0_SOURCE_URL=http://x/i", "POLICY_0_MAX=2", "POLICY_0_TARGET=1",
			"POLICY_1_APP="+c[2], "POLICY_1_PROCESS="+c[3], "POLICY_1_SOURCE=hirefire", "POLICY_1_SOURCE_URL=http://x/i", "POLICY_1_MAX=2", "POLICY_1_TARGET=1",
		)
		if len(problems) != 1 || !strings.Contains(problems[0], "POLICY_1_PROCESS=\""+c[3]+"\"") || !strings.Contains(problems[0], "POLICY_0_") ||
			!strings.Contains(problems[0], "ignoring case") {
			t.Errorf("%v: want one problem naming both policies, the value and the rule, got %v", c, problems)
		}
	}
}

func TestNoPolicies(t *testing.T) {
	_, problems := load(t, "HEROKU_API_KEY=x")
	if len(problems) != 1 || !strings.Contains(problems[0], "POLICY_0_APP") {
		t.Errorf("got %v", problems)
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]string{"15s": "@every 15s", "@every 10s": "@every 10s", "*/1 * * * *": "*/1 * * * *", "2m": "@every 2m0s"} {
		got, _, err := config.ParseInterval(in)
		if err != nil || got != want {
			t.Errorf("ParseInterval(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "100ms", "every minute", "* * *"} {
		if _, _, err := config.ParseInterval(bad); err == nil {
			t.Errorf("ParseInterval(%q) accepted", bad)
		}
	}
}

func TestSettingNamesCoverThePolicyTable(t *testing.T) {
	names := strings.Join(config.SettingNames(), " ")
	for _, s := range []string{"APP", "PROCESS", "ENABLED", "MIN", "MAX", "SOURCE", "SOURCE_URL", "QUERY", "PRESET", "QUEUES", "MEASURE",
		"NAME", "EMPTY", "MODE", "TARGET", "TOLERANCE", "UP_ABOVE", "DOWN_BELOW", "UP_BY", "DOWN_BY", "PER_DYNO", "SAFETY", "ACTIVATION",
		"INTERVAL", "TIMEOUT", "UP_COOLDOWN", "DOWN_COOLDOWN", "UP_STABILIZATION", "DOWN_STABILIZATION", "MAX_STEP_UP",
		"MAX_STEP_DOWN", "SCHEDULE", "FALLBACK_AFTER", "FALLBACK_QUANTITY"} {
		if !strings.Contains(" "+names+" ", " "+s+" ") {
			t.Errorf("setting %s missing from %s", s, names)
		}
	}
}

func TestExampleConfigurationLoads(t *testing.T) {
	b, err := os.ReadFile("../config.example.env")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		env = append(env, line)
	}
	cfg, problems := load(t, env...)
	if len(problems) > 0 {
		t.Fatalf("config.example.env has problems:\n%s", strings.Join(problems, "\n"))
	}
	if len(cfg.Policies) != 2 {
		t.Errorf("%d policies in the example, want 2", len(cfg.Policies))
	}
	for _, name := range config.SettingNames() { // every setting is shown, at least commented out
		if !strings.Contains(string(b), "_"+name+"=") {
			t.Errorf("config.example.env does not show %s", name)
		}
	}
	for _, name := range config.MetricSettingNames() { // and every setting of a further metric
		if !strings.Contains(string(b), "_METRIC_2_"+name+"=") {
			t.Errorf("config.example.env does not show METRIC_2_%s", name)
		}
	}
	for _, name := range config.GlobalNames() { // and every global variable
		if !strings.Contains(string(b), "\n"+name+"=") {
			t.Errorf("config.example.env does not show %s", name)
		}
	}
}

func TestAppJSONListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../app.json")
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Env map[string]struct {
			Description string `json:"description"`
		} `json:"env"`
	}
	if err := json.Unmarshal(b, &app); err != nil {
		t.Fatal(err)
	}
	want := config.GlobalNames()
	for _, s := range config.SettingNames() {
		want = append(want, "POLICY_0_"+s)
	}
	for _, s := range config.MetricSettingNames() {
		want = append(want, "POLICY_0_METRIC_2_"+s)
	}
	for _, name := range want {
		if name == "PORT" || name == "HEROKU_APP_DEFAULT_DOMAIN_NAME" { // Heroku sets them
			continue
		}
		if e, ok := app.Env[name]; !ok || e.Description == "" {
			t.Errorf("app.json has no described %s", name)
		}
	}
}
