package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/config"
)

// good is one valid policy; each test overrides what it tests (a later entry wins in Load).
var good = []string{
	"HEROKU_API_KEY=k", "POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=hirefire",
	"POLICY_0_SOURCE_URL=http://shop.example/hirefire/t/info", "POLICY_0_MAX=4", "POLICY_0_TARGET=1",
}

func with(extra ...string) []string { return append(append([]string(nil), good...), extra...) }

// TestRefusesConfigurationThatCannotWork: issue 11, item 9. Each was accepted (or panicked later): each must be one
// problem naming the variable, the value and what is expected.
func TestRefusesConfigurationThatCannotWork(t *testing.T) {
	if _, problems := load(t, good...); len(problems) > 0 {
		t.Fatalf("the base configuration has problems: %v", problems)
	}
	for _, c := range []struct {
		name, set, variable, shown, expected string
	}{
		{"APP not UTF-8", "POLICY_0_APP=sh\xffop", "POLICY_0_APP", `"sh\xffop"`, "app's name"},
		{"APP with a space", "POLICY_0_APP=my shop", "POLICY_0_APP", `"my shop"`, "or its id (a UUID)"},
		{"PROCESS with a space", "POLICY_0_PROCESS=web worker", "POLICY_0_PROCESS", `"web worker"`, "1 to 128 ASCII letters"},
		{"PROCESS with a slash", "POLICY_0_PROCESS=web/1", "POLICY_0_PROCESS", `"web/1"`, "1 to 128 ASCII letters"},
		{"PROCESS not UTF-8", "POLICY_0_PROCESS=w\xffb", "POLICY_0_PROCESS", `"w\xffb"`, "1 to 128 ASCII letters"},
		{"INTERVAL that never fires", "POLICY_0_INTERVAL=0 0 31 2 *", "POLICY_0_INTERVAL", `"0 0 31 2 *"`, "a cron spec that fires"},
		{"INTERVAL @every 0s", "POLICY_0_INTERVAL=@every 0s", "POLICY_0_INTERVAL", `"@every 0s"`, "at least 1s"},
		{"INTERVAL @every -5s", "POLICY_0_INTERVAL=@every -5s", "POLICY_0_INTERVAL", `"@every -5s"`, "at least 1s"},
		{"INTERVAL @every 500ms", "POLICY_0_INTERVAL=@every 500ms", "POLICY_0_INTERVAL", `"@every 500ms"`, "at least 1s"},
		{"INTERVAL @every -5s in a zone", "POLICY_0_INTERVAL=CRON_TZ=Europe/Berlin @every -5s", "POLICY_0_INTERVAL", `"CRON_TZ=Europe/Berlin @every -5s"`, "at least 1s"},
		{"INTERVAL 0", "POLICY_0_INTERVAL=0", "POLICY_0_INTERVAL", `"0"`, "at least 1s"},
		{"FORMATION_REFRESH 0", "DYNOPILOT_FORMATION_REFRESH=0", "DYNOPILOT_FORMATION_REFRESH", `"0"`, "at least 5s"},
		{"FORMATION_REFRESH 0s", "DYNOPILOT_FORMATION_REFRESH=0s", "DYNOPILOT_FORMATION_REFRESH", `"0s"`, "at least 5s"},
		{"TIMEOUT 0", "POLICY_0_TIMEOUT=0s", "POLICY_0_TIMEOUT", `"0s"`, "positive duration"},
		{"TIMEOUT past INTERVAL", "POLICY_0_INTERVAL=1s\x00POLICY_0_TIMEOUT=50s", "POLICY_0_TIMEOUT", `"50s"`, "at most the policy's interval, 1s"},
		{"TIMEOUT past a cron INTERVAL", "POLICY_0_INTERVAL=*/1 * * * *\x00POLICY_0_TIMEOUT=2m", "POLICY_0_TIMEOUT", `"2m"`, "at most the policy's interval, 1m0s"},
		{"TIMEOUT past @every", "POLICY_0_INTERVAL=@every 5s\x00POLICY_0_TIMEOUT=6s", "POLICY_0_TIMEOUT", `"6s"`, `INTERVAL is "@every 5s"`},
		{"TIMEOUT from POLICY_DEFAULT_", "POLICY_0_INTERVAL=2s\x00POLICY_DEFAULT_TIMEOUT=10s", "POLICY_0_TIMEOUT", `"10s"`, "comes from POLICY_DEFAULT_TIMEOUT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, problems := load(t, with(strings.Split(c.set, "\x00")...)...)
			if len(problems) != 1 {
				t.Fatalf("want one problem, got %d: %q", len(problems), problems)
			}
			p := problems[0]
			if !strings.HasPrefix(p, c.variable+"="+c.shown+": expected ") || !strings.Contains(p, c.expected) {
				t.Errorf("problem %q; want %s=%s: expected …%s…", p, c.variable, c.shown, c.expected)
			}
		})
	}
}

// TestTimeoutFitsTheInterval: what is allowed, and the default TIMEOUT (10s) shortened to a shorter interval.
func TestTimeoutFitsTheInterval(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want time.Duration
	}{
		{nil, 10 * time.Second}, // INTERVAL 10s, TIMEOUT 10s
		{[]string{"POLICY_0_INTERVAL=1s"}, time.Second},
		{[]string{"POLICY_0_INTERVAL=@every 3s"}, 3 * time.Second},
		{[]string{"POLICY_0_INTERVAL=1s", "POLICY_0_TIMEOUT=1s"}, time.Second},
		{[]string{"POLICY_0_INTERVAL=1s", "POLICY_0_TIMEOUT=300ms"}, 300 * time.Millisecond},
		{[]string{"POLICY_0_INTERVAL=*/1 * * * *", "POLICY_0_TIMEOUT=1m"}, time.Minute},
		{[]string{"POLICY_0_INTERVAL=0 9 * * MON-FRI", "POLICY_0_TIMEOUT=1h"}, time.Hour},
	} {
		cfg, problems := load(t, with(c.env...)...)
		if len(problems) > 0 {
			t.Errorf("%q: %v", c.env, problems)
			continue
		}
		if got := cfg.Policies[0].Source.Timeout; got != c.want {
			t.Errorf("%q: TIMEOUT %v, want %v", c.env, got, c.want)
		}
	}
}

func TestParseIntervalRefusesWhatNeverRuns(t *testing.T) {
	for _, bad := range []string{"@every 0s", "@every -5s", "@every 999ms", "@every soon", "0 0 31 2 *", "0 0 30 2 *", "TZ=UTC @every 0s", "-1s"} {
		if spec, _, err := config.ParseInterval(bad); err == nil {
			t.Errorf("ParseInterval(%q) = %q, accepted", bad, spec)
		}
	}
	for in, every := range map[string]time.Duration{"@every 1s": time.Second, "@every 1m30s": 90 * time.Second, "CRON_TZ=UTC @every 5s": 5 * time.Second, "0 0 29 2 *": 0, "@yearly": 0} {
		if _, got, err := config.ParseInterval(in); err != nil || got != every {
			t.Errorf("ParseInterval(%q) = %v, %v; want %v", in, got, err, every)
		}
	}
}

// TestNoPanicOnAnyBytes: whatever bytes APP and PROCESS hold, Load reports, never panics, and what it accepts is
// ASCII (so that it can be a metric's label value).
func TestNoPanicOnAnyBytes(t *testing.T) {
	for _, v := range []string{"\xff", "\x00", "web\n", "é", "a\u200bb", strings.Repeat("a", 300), "a b", "a/b", "{a}", `a"b`, "a=b"} {
		cfg, problems := load(t, with("POLICY_0_APP="+v, "POLICY_0_PROCESS="+v)...)
		if len(problems) == 0 {
			for _, p := range cfg.Policies {
				for _, r := range p.Rules.Name() {
					if r > 0x7e || r < 0x20 {
						t.Errorf("accepted %q as a policy name", p.Rules.Name())
					}
				}
			}
		}
	}
}

// TestDuplicateBesideOtherProblems: every problem at once, the duplicate included, even when the policies have others.
func TestDuplicateBesideOtherProblems(t *testing.T) {
	_, problems := load(t, with("POLICY_0_PROCESS=worker", "POLICY_0_MAX=many",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=WORKER", "POLICY_1_SOURCE=hirefire", "POLICY_1_SOURCE_URL=http://x/i", "POLICY_1_MAX=2", "POLICY_1_TARGET=soon")...)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{"POLICY_0_MAX=", "POLICY_1_TARGET=", `POLICY_1_PROCESS="WORKER": expected a process type not already scaled by POLICY_0_ (shop/worker)`} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
}
