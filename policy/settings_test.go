package policy_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/policy"
)

// TestParseDefaults: the tags carry the defaults (the spec's, but UP_COOLDOWN and DOWN_STABILIZATION), so a policy naming only what is required gets them.
func TestParseDefaults(t *testing.T) {
	p, err := load(t, "APP", "shop", "PROCESS", "web", "MAX", "8", "TARGET", "250ms").Parse()
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Policy{
		App: "shop", Process: "web", Enabled: true, Min: 1, Max: 8,
		Rule:       policy.Rule{Mode: policy.ModeTarget, Target: 0.25, Tolerance: 0.1, UpBy: 1, DownBy: 1, Seconds: true, Activation: 0},
		UpCooldown: 30 * time.Second, DownCooldown: 5 * time.Minute, UpStabilization: 0, DownStabilization: 5 * time.Minute,
		MaxStepUp: 0, MaxStepDown: 0, FallbackAfter: 3, FallbackQuantity: 0, SizeLimit: 0,
		ProtectBusy: false, ProtectBusyMax: time.Hour, PredictAhead: 2 * time.Minute,
	}
	if p.Schedule != nil {
		t.Errorf("Schedule = %v, want none", p.Schedule)
	}
	p.Schedule = nil
	if !reflect.DeepEqual(*p, want) {
		t.Errorf("Parse() =\n  %+v\nwant\n  %+v", *p, want)
	}
	if p.Name() != "shop/web" {
		t.Errorf("Name() = %q", p.Name())
	}
}

func TestParseValues(t *testing.T) {
	p := mustPolicy(t, "MODE", "Step", "UP_ABOVE", "2s", "DOWN_BELOW", "0.5", "UP_BY", "3", "DOWN_BY", "2",
		"MIN", "0", "MAX", "12", "ACTIVATION", "1.5", "UP_STABILIZATION", "30s", "MAX_STEP_UP", "4", "MAX_STEP_DOWN", "1",
		"FALLBACK_AFTER", "5", "FALLBACK_QUANTITY", "6", "SIZE_LIMIT", "50", "ENABLED", "false",
		"SCHEDULE", "CRON_TZ=Europe/Berlin 0 8 * * MON-FRI for 10h min=4; @daily for 1h max=2")
	if p.Mode != policy.ModeStep || p.UpAbove != 2 || p.DownBelow != 0.5 || p.UpBy != 3 || p.DownBy != 2 || !p.Seconds ||
		p.Min != 0 || p.Max != 12 || p.Activation != 1.5 || p.UpStabilization != 30*time.Second || p.MaxStepUp != 4 ||
		p.MaxStepDown != 1 || p.FallbackAfter != 5 || p.FallbackQuantity != 6 || p.SizeLimit != 50 || p.Enabled {
		t.Errorf("Parse() = %+v", *p)
	}
	if len(p.Schedule) != 2 || p.Schedule[0].Location.String() != "Europe/Berlin" || !p.Schedule[0].SetsMin || p.Schedule[0].Min != 4 ||
		p.Schedule[0].SetsMax || p.Schedule[0].Duration != 10*time.Hour || !p.Schedule[1].SetsMax || p.Schedule[1].Max != 2 || p.Schedule[1].Location != time.UTC {
		t.Errorf("Schedule = %+v", p.Schedule)
	}
}

// problems parses and returns the problems by setting name, checking that each is a *setting.Error.
func problems(t *testing.T, kv ...string) map[string]*setting.Error {
	t.Helper()
	p, err := load(t, kv...).Parse()
	if err == nil {
		t.Fatalf("Parse() = %+v, want problems", p)
	}
	if p != nil {
		t.Errorf("Parse() returned a policy along with problems")
	}
	got := map[string]*setting.Error{}
	for _, e := range setting.Flatten(err) {
		var se *setting.Error
		if !errors.As(e, &se) {
			t.Errorf("problem %v is a %T, not a *setting.Error", e, e)
			continue
		}
		if got[se.Name] != nil {
			se = &setting.Error{Name: se.Name, Value: got[se.Name].Value + " | " + se.Value, Expected: got[se.Name].Expected + " | " + se.Expected}
		}
		got[se.Name] = se
	}
	return got
}

func names(m map[string]*setting.Error) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestParseReportsEverything: every wrong setting is reported at once, each naming itself.
func TestParseReportsEverything(t *testing.T) {
	got := problems(t,
		"ENABLED", "yes please", "MIN", "-1", "MAX", "lots", "MODE", "target", "TARGET", "fast",
		"TOLERANCE", "1", "UP_BY", "0", "DOWN_BY", "x", "ACTIVATION", "-2", "UP_COOLDOWN", "60",
		"DOWN_COOLDOWN", "-5m", "UP_STABILIZATION", "soon", "DOWN_STABILIZATION", "1y", "MAX_STEP_UP", "-1",
		"MAX_STEP_DOWN", "1.5", "SCHEDULE", "0 8 * * * for 1h min=2; CRON_TZ= 0 8 * * * for 1h min=2",
		"FALLBACK_AFTER", "0", "FALLBACK_QUANTITY", "0", "SIZE_LIMIT", "none", "UP_ABOVE", "NaN", "PER_DYNO", "1e999")
	want := []string{"ACTIVATION", "APP", "DOWN_BY", "DOWN_COOLDOWN", "DOWN_STABILIZATION", "ENABLED", "FALLBACK_AFTER",
		"FALLBACK_QUANTITY", "MAX", "MAX_STEP_DOWN", "MAX_STEP_UP", "MIN", "PER_DYNO", "PROCESS", "SCHEDULE", "SIZE_LIMIT",
		"TARGET", "TOLERANCE", "UP_ABOVE", "UP_BY", "UP_COOLDOWN", "UP_STABILIZATION"}
	if g := names(got); !slices.Equal(g, want) {
		t.Errorf("problems with\n  %v\nwant\n  %v", g, want)
	}
	if e := got["UP_COOLDOWN"]; e != nil && (e.Value != "60" || !strings.Contains(e.Expected, "duration")) {
		t.Errorf("UP_COOLDOWN problem = %v", e)
	}
	if e := got["SCHEDULE"]; e != nil && e.Value != "CRON_TZ= 0 8 * * * for 1h min=2" {
		t.Errorf("SCHEDULE problem names %q, want only the bad window", e.Value)
	}
}

func TestParseProblems(t *testing.T) {
	req := []string{"APP", "a", "PROCESS", "web"}
	for _, tc := range []struct {
		name     string
		kv       []string
		setting  string
		expected string // a part of what the problem says is expected
	}{
		{"MAX required", []string{"TARGET", "1"}, "MAX", "required"},
		{"MAX at least 1", []string{"TARGET", "1", "MAX", "0"}, "MAX", "from 1"},
		{"MIN above MAX", []string{"TARGET", "1", "MAX", "3", "MIN", "4"}, "MIN", "at most MAX (3)"},
		{"MAX too big", []string{"TARGET", "1", "MAX", "100001"}, "MAX", "to 100000"},
		{"unknown MODE lists the valid ones", []string{"MAX", "3", "MODE", "proportional"}, "MODE", "target, step, ratio"},
		{"TARGET required in target mode", []string{"MAX", "3"}, "TARGET", "required"},
		{"TARGET > 0", []string{"MAX", "3", "TARGET", "0"}, "TARGET", "> 0"},
		{"TARGET negative duration", []string{"MAX", "3", "TARGET", "-5ms"}, "TARGET", "> 0"},
		{"TARGET NaN", []string{"MAX", "3", "TARGET", "NaN"}, "TARGET", "finite"},
		{"TOLERANCE below 0", []string{"MAX", "3", "TARGET", "1", "TOLERANCE", "-0.1"}, "TOLERANCE", "from 0"},
		{"UP_ABOVE required in step mode", []string{"MAX", "3", "MODE", "step", "DOWN_BELOW", "1"}, "UP_ABOVE", "required"},
		{"DOWN_BELOW required in step mode", []string{"MAX", "3", "MODE", "step", "UP_ABOVE", "1"}, "DOWN_BELOW", "required"},
		{"DOWN_BELOW below UP_ABOVE", []string{"MAX", "3", "MODE", "step", "UP_ABOVE", "5", "DOWN_BELOW", "5"}, "DOWN_BELOW", "less than UP_ABOVE"},
		{"PER_DYNO required in ratio mode", []string{"MAX", "3", "MODE", "ratio"}, "PER_DYNO", "required"},
		{"PER_DYNO > 0", []string{"MAX", "3", "MODE", "ratio", "PER_DYNO", "0"}, "PER_DYNO", "> 0"},
		{"SAFETY not negative", []string{"MAX", "3", "MODE", "ratio", "PER_DYNO", "1", "SAFETY", "-1"}, "SAFETY", "from 0 to 10"},
		{"SAFETY not huge", []string{"MAX", "3", "MODE", "ratio", "PER_DYNO", "1", "SAFETY", "11"}, "SAFETY", "from 0 to 10"},
		{"SAFETY a number", []string{"MAX", "3", "MODE", "ratio", "PER_DYNO", "1", "SAFETY", "NaN"}, "SAFETY", "square-root headroom"},
		{"FALLBACK_QUANTITY at most MAX", []string{"MAX", "3", "TARGET", "1", "FALLBACK_QUANTITY", "4"}, "FALLBACK_QUANTITY", "at most MAX (3)"},
		{"FALLBACK_QUANTITY only raises", []string{"MAX", "3", "TARGET", "1", "FALLBACK_QUANTITY", "0"}, "FALLBACK_QUANTITY", "from 1"},
		{"SIZE_LIMIT at least 1", []string{"MAX", "3", "TARGET", "1", "SIZE_LIMIT", "0"}, "SIZE_LIMIT", "from 1"},
		{"ACTIVATION not negative", []string{"MAX", "3", "TARGET", "1", "ACTIVATION", "-1"}, "ACTIVATION", ">= 0"},
		{"APP blank", []string{"APP", "  ", "MAX", "3", "TARGET", "1"}, "APP", "app"},
		// Issue 11: APP and PROCESS name the policy in every metric's labels; invalid UTF-8 panicked there.
		{"APP not UTF-8", []string{"APP", "sh\xffop", "MAX", "3", "TARGET", "1"}, "APP", "lowercase letters, digits and dashes"},
		{"APP upper case", []string{"APP", "Shop", "MAX", "3", "TARGET", "1"}, "APP", "or its id (a UUID)"},
		{"APP with a slash", []string{"APP", "shop/web", "MAX", "3", "TARGET", "1"}, "APP", "app's name"},
		{"APP with a space", []string{"APP", "my shop", "MAX", "3", "TARGET", "1"}, "APP", "app's name"},
		{"PROCESS with a space", []string{"PROCESS", "web worker", "MAX", "3", "TARGET", "1"}, "PROCESS", "1 to 128 ASCII letters"},
		{"PROCESS with a slash", []string{"PROCESS", "web/1", "MAX", "3", "TARGET", "1"}, "PROCESS", "1 to 128 ASCII letters"},
		{"PROCESS not ASCII", []string{"PROCESS", "wörker", "MAX", "3", "TARGET", "1"}, "PROCESS", "1 to 128 ASCII letters"},
		{"PROCESS not UTF-8", []string{"PROCESS", "w\xffb", "MAX", "3", "TARGET", "1"}, "PROCESS", "1 to 128 ASCII letters"},
		{"PROCESS too long", []string{"PROCESS", strings.Repeat("w", 129), "MAX", "3", "TARGET", "1"}, "PROCESS", "1 to 128"},
		{"PROCESS blank", []string{"PROCESS", " ", "MAX", "3", "TARGET", "1"}, "PROCESS", "such as web or worker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, append(append([]string(nil), req...), tc.kv...)...)
			e := got[tc.setting]
			if e == nil {
				t.Fatalf("no problem named %s among %v", tc.setting, names(got))
			}
			if !strings.Contains(e.Expected, tc.expected) {
				t.Errorf("%s: %v; want the expectation to say %q", tc.setting, e, tc.expected)
			}
			if len(got) != 1 {
				t.Errorf("problems with %v, want only %s", names(got), tc.setting)
			}
		})
	}
}

// TestParseModeSettingsElsewhere: a threshold of another mode is checked for syntax only (POLICY_DEFAULT_ may set
// it for every policy).
func TestParseModeSettingsElsewhere(t *testing.T) {
	if _, err := load(t, "APP", "a", "PROCESS", "web", "MAX", "3", "MODE", "ratio", "PER_DYNO", "10", "TARGET", "0", "UP_ABOVE", "1", "DOWN_BELOW", "5").Parse(); err != nil {
		t.Errorf("unused thresholds: %v", err)
	}
	got := problems(t, "APP", "a", "PROCESS", "web", "MAX", "3", "MODE", "ratio", "PER_DYNO", "10", "TARGET", "soon")
	if names(got)[0] != "TARGET" || len(got) != 1 {
		t.Errorf("problems %v, want TARGET", names(got))
	}
}

// TestParseAppsAndProcessTypes: what Heroku accepts passes (names, ids, Procfile types).
func TestParseAppsAndProcessTypes(t *testing.T) {
	for _, c := range [][2]string{
		{"shop", "web"}, {"shop-prod-2", "worker"}, {"a", "clock_1"}, {"01234567-89ab-cdef-0123-456789abcdef", "Worker-Urgent"},
		{"01234567-89AB-CDEF-0123-456789ABCDEF", strings.Repeat("w", 128)}, {" shop ", " web "},
	} {
		p, err := load(t, "APP", c[0], "PROCESS", c[1], "MAX", "3", "TARGET", "1").Parse()
		if err != nil {
			t.Errorf("APP=%q PROCESS=%q: %v", c[0], c[1], err)
			continue
		}
		if p.App != strings.TrimSpace(c[0]) || p.Process != strings.TrimSpace(c[1]) {
			t.Errorf("APP=%q PROCESS=%q gave %q %q", c[0], c[1], p.App, p.Process)
		}
	}
}
