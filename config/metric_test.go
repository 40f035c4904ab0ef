package config_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
)

// webPolicy is a web policy on its log drain's request rate (ratio mode), as the README's example writes it.
var webPolicy = []string{
	"HEROKU_API_KEY=k", "DYNOPILOT_DRAIN_TOKEN=t",
	"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_MAX=20", "POLICY_0_SOURCE=logdrain", "POLICY_0_MEASURE=rate",
	"POLICY_0_WINDOW=2m", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=25", "POLICY_0_SAFETY=1",
}

func TestAFurtherMetricReadsThePolicysSourceAnotherWay(t *testing.T) {
	cfg, problems := load(t, append(slices.Clone(webPolicy),
		"POLICY_0_METRIC_2_MEASURE=queue-time", "POLICY_0_METRIC_2_MODE=step", "POLICY_0_METRIC_2_UP_ABOVE=50ms",
		"POLICY_0_METRIC_2_DOWN_BELOW=5ms", "POLICY_0_METRIC_2_UP_BY=2")...)
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	p := cfg.Policies[0]
	if len(p.Also) != 1 || len(p.Rules.Also) != 1 {
		t.Fatalf("%d further sources and %d further rules, want 1 and 1", len(p.Also), len(p.Rules.Also))
	}
	src, rule := p.Also[0], p.Rules.Also[0]
	if src.Kind != metrics.KindLogDrain || src.Measure != metrics.MeasureQueueTime || src.Window != 2*time.Minute ||
		src.Quantile != metrics.DefaultQuantile || src.App != "shop" || src.Process != "web" {
		t.Errorf("metric 2 reads %+v: want the policy's log drain (its WINDOW too) for queue-time at the default quantile", src)
	}
	if rule.Mode != policy.ModeStep || rule.UpAbove != 0.05 || rule.DownBelow != 0.005 || rule.UpBy != 2 || rule.DownBy != 1 {
		t.Errorf("metric 2's rule %+v", rule)
	}
	if p.Rules.Mode != policy.ModeRatio || p.Rules.PerDyno != 25 || p.Source.Measure != metrics.MeasureRate {
		t.Errorf("metric 1 changed: %+v, %+v", p.Rules.Rule, p.Source)
	}
	if got := p.Sources(); len(got) != 2 || got[0].Measure != metrics.MeasureRate || got[1].Measure != metrics.MeasureQueueTime {
		t.Errorf("Sources() = %+v", got)
	}
	if got := p.MetricPrefix(1); got != "POLICY_0_METRIC_2_" {
		t.Errorf("MetricPrefix(1) = %q", got)
	}
}

func TestAFurtherMetricOnAnotherSourceStartsFromItsDefaults(t *testing.T) {
	cfg, problems := load(t,
		"HEROKU_API_KEY=k", "REDIS_URL=redis://127.0.0.1:6379/0", "POLICY_DEFAULT_TARGET=30s", "POLICY_DEFAULT_TIMEOUT=3s",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=worker", "POLICY_0_MAX=8", "POLICY_0_SOURCE=sidekiq", "POLICY_0_QUEUES=default",
		"POLICY_0_TOLERANCE=0.3", "POLICY_0_INTERVAL=5s",
		// a HireFire endpoint: QUEUES, TIMEOUT and the rule's TOLERANCE and TARGET are not the policy's
		"POLICY_0_METRIC_2_SOURCE=hirefire", "POLICY_0_METRIC_2_SOURCE_URL=https://shop.example/hirefire/t/info",
		"POLICY_0_METRIC_2_TARGET=50",
		// the policy's SOURCE written again: its settings (QUEUES, TIMEOUT), another measure
		"POLICY_0_METRIC_3_SOURCE=Sidekiq", "POLICY_0_METRIC_3_MEASURE=size", "POLICY_0_METRIC_3_MODE=ratio", "POLICY_0_METRIC_3_PER_DYNO=100",
	)
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	p := cfg.Policies[0]
	if len(p.Also) != 2 {
		t.Fatalf("%d further metrics, want 2", len(p.Also))
	}
	hf, size := p.Also[0], p.Also[1]
	if hf.Kind != metrics.KindHireFire || hf.Queues != nil || hf.Name != "worker" || hf.Timeout != 5*time.Second {
		t.Errorf("metric 2 %+v: want hirefire with its own defaults (NAME the process, TIMEOUT the default held to the 5s interval)", hf)
	}
	if size.Kind != metrics.KindSidekiq || !slices.Equal(size.Queues, []string{"default"}) || size.Measure != metrics.MeasureSize ||
		size.Timeout != 3*time.Second || size.URL != "redis://127.0.0.1:6379/0" {
		t.Errorf("metric 3 %+v: want the policy's sidekiq, queues and TIMEOUT, measuring size", size)
	}
	if r := p.Rules.Also[0]; r.Mode != policy.ModeTarget || r.Target != 50 || r.Tolerance != 0.1 {
		t.Errorf("metric 2's rule %+v: want its own TARGET and the default TOLERANCE, not the policy's", r)
	}
	if !p.Rules.ProtectBusy || !p.Source.Running || hf.Running || size.Running {
		t.Errorf("PROTECT_BUSY: policy %v, running read by metric 1 %v, 2 %v, 3 %v; want it on metric 1's source only",
			p.Rules.ProtectBusy, p.Source.Running, hf.Running, size.Running)
	}
}

func TestAFurtherMetricKeepsAQuantileOnlyForAQuantile(t *testing.T) {
	cfg, problems := load(t, "HEROKU_API_KEY=k", "DYNOPILOT_DRAIN_TOKEN=t",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_MAX=20", "POLICY_0_SOURCE=logdrain", "POLICY_0_QUANTILE=0.99",
		"POLICY_0_TARGET=300ms",
		"POLICY_0_METRIC_2_MEASURE=rate", "POLICY_0_METRIC_2_MODE=ratio", "POLICY_0_METRIC_2_PER_DYNO=20",
		"POLICY_0_METRIC_3_MEASURE=queue-time", "POLICY_0_METRIC_3_TARGET=20ms")
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	if q := cfg.Policies[0].Also[1].Quantile; q != 0.99 {
		t.Errorf("queue-time's quantile %v, want the policy's 0.99", q)
	}
}

func TestPolicyDefaultMetricSettings(t *testing.T) {
	cfg, problems := load(t, append(slices.Clone(webPolicy),
		"POLICY_DEFAULT_METRIC_2_MEASURE=queue-time", "POLICY_DEFAULT_METRIC_2_MODE=step", "POLICY_DEFAULT_METRIC_2_UP_ABOVE=50ms",
		"POLICY_DEFAULT_METRIC_2_DOWN_BELOW=5ms",
		"POLICY_0_METRIC_2_UP_ABOVE=80ms",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_SOURCE=logdrain", "POLICY_1_MEASURE=load", "POLICY_1_TARGET=2", "POLICY_1_MAX=4",
	)...)
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	web, worker := cfg.Policies[0], cfg.Policies[1]
	if len(web.Also) != 1 || web.Also[0].Measure != metrics.MeasureQueueTime || web.Rules.Also[0].UpAbove != 0.08 || web.Rules.Also[0].DownBelow != 0.005 {
		t.Errorf("web's metric 2: %+v %+v; want queue-time from POLICY_DEFAULT_METRIC_2_, UP_ABOVE its own", web.Also, web.Rules.Also)
	}
	if len(worker.Also) != 0 || len(worker.Rules.Also) != 0 {
		t.Errorf("worker has %d further metrics: POLICY_DEFAULT_METRIC_2_ must only fill in the metrics a policy has", len(worker.Also))
	}

	_, problems = load(t, append(slices.Clone(webPolicy), "POLICY_DEFAULT_METRIC_3_TARGET=1")...)
	if len(problems) != 1 || !strings.Contains(problems[0], "POLICY_DEFAULT_METRIC_3_TARGET=\"1\": expected a policy with a METRIC_3_ of its own") {
		t.Errorf("a POLICY_DEFAULT_METRIC_3_ no policy uses: %q", problems)
	}
}

func TestMetricProblemsAreReportedAtOnceWithTheirVariables(t *testing.T) {
	_, problems := load(t, append(slices.Clone(webPolicy),
		"POLICY_0_METRIC_2_MODE=stepp", "POLICY_0_METRIC_2_TARGTE=1", "POLICY_0_METRIC_2_MIN=3", "POLICY_0_METRIC_2_QUANTILE=2",
		"POLICY_0_METRIC_3_SOURCE=hirefire", "POLICY_0_METRIC_3_SOURCE_URL=ftp://user:Metr1cSecret@x/info", "POLICY_0_METRIC_3_TARGET=fast",
		"POLICY_0_METRIC_1_TARGET=1", "POLICY_0_METRIC_0_TARGET=1", "POLICY_0_METRIC_9_TARGET=1", "POLICY_0_METRIC_X_TARGET=1",
		"POLICY_0_METRIC_02_TARGET=1",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_SOURCE=logdrain", "POLICY_1_TARGET=2", "POLICY_1_MAX=4",
		"POLICY_1_METRIC_2_TARGET=1", "POLICY_1_METRIC_4_TARGET=1", "POLICY_1_METRIC_4_MODE=nope",
	)...)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{
		`POLICY_0_METRIC_2_MODE="stepp": expected one of`,
		`POLICY_0_METRIC_2_TARGTE="1": expected a known setting: did you mean POLICY_0_METRIC_2_TARGET?`,
		`POLICY_0_METRIC_2_MIN="3": expected a setting of a further metric`, "MIN is the policy's, POLICY_0_MIN",
		`POLICY_0_METRIC_2_QUANTILE="2"`,
		`POLICY_0_METRIC_3_SOURCE_URL=`, `POLICY_0_METRIC_3_TARGET="fast"`,
		`POLICY_0_METRIC_1_TARGET="1": expected a further metric, numbered 2 to 8: metric 1 is the policy's own, set with POLICY_0_TARGET`,
		`POLICY_0_METRIC_0_TARGET="1": expected a further metric, numbered 2 to 8`,
		`POLICY_0_METRIC_9_TARGET="1": expected at most 8 metrics per policy`,
		`POLICY_0_METRIC_X_TARGET="1": expected a name of the form POLICY_0_METRIC_<m>_<SETTING>`,
		`POLICY_0_METRIC_02_TARGET="1": expected a name of the form`,
		`POLICY_1_METRIC_4_MODE="nope": expected further metrics numbered METRIC_2_, METRIC_3_, … without gaps, but there is no POLICY_1_METRIC_3_… before POLICY_1_METRIC_4_…`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "Metr1cSecret") {
		t.Errorf("a further metric's SOURCE_URL password shows:\n%s", joined)
	}
	if len(problems) != 13 {
		t.Errorf("%d problems, want 13:\n%s", len(problems), joined)
	}
}

func TestAFurtherMetricsTimeoutFitsTheInterval(t *testing.T) {
	base := append(slices.Clone(webPolicy), "POLICY_0_INTERVAL=5s", "POLICY_0_METRIC_2_MEASURE=queue-time", "POLICY_0_METRIC_2_TARGET=20ms")
	cfg, problems := load(t, base...)
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	if got := cfg.Policies[0].Also[0].Timeout; got != 5*time.Second {
		t.Errorf("metric 2's default TIMEOUT is %v with a 5s interval, want 5s", got)
	}

	_, problems = load(t, append(slices.Clone(base), "POLICY_0_METRIC_2_TIMEOUT=8s")...)
	if len(problems) != 1 || !strings.Contains(problems[0], `POLICY_0_METRIC_2_TIMEOUT="8s": expected a duration of at most the policy's interval, 5s (POLICY_0_INTERVAL is "@every 5s")`) {
		t.Errorf("metric 2's TIMEOUT past the interval: %q", problems)
	}
	_, problems = load(t, append(slices.Clone(base), "POLICY_DEFAULT_METRIC_2_TIMEOUT=8s")...)
	if len(problems) != 1 || !strings.Contains(problems[0], "(the value comes from POLICY_DEFAULT_METRIC_2_TIMEOUT)") {
		t.Errorf("metric 2's TIMEOUT from POLICY_DEFAULT_METRIC_2_: %q", problems)
	}
	// The policy's own TIMEOUT, which metric 2 takes, is one problem: the policy's.
	_, problems = load(t, append(slices.Clone(base), "POLICY_0_TIMEOUT=8s")...)
	if len(problems) != 1 || !strings.Contains(problems[0], `POLICY_0_TIMEOUT="8s"`) {
		t.Errorf("the policy's TIMEOUT past the interval: %q", problems)
	}
}

func TestAnInheritedValueIsOneProblemOrSaysWhereItCameFrom(t *testing.T) {
	// The policy's bad WINDOW is the policy's problem, not again metric 2's.
	_, problems := load(t, append(slices.Clone(webPolicy), "POLICY_0_WINDOW=1h", "POLICY_0_METRIC_2_MEASURE=queue-time", "POLICY_0_METRIC_2_TARGET=20ms")...)
	if len(problems) != 1 || !strings.Contains(problems[0], `POLICY_0_WINDOW="1h"`) {
		t.Errorf("a bad WINDOW both read: %q", problems)
	}
	// The policy's QUERY, good for it, beside metric 2's own PRESET: metric 2's problem, saying where QUERY came from.
	_, problems = load(t, "HEROKU_API_KEY=k", "DATABASE_URL=postgres://u:p@db.example/app",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=worker", "POLICY_0_MAX=4", "POLICY_0_SOURCE=postgres", "POLICY_0_QUERY=SELECT 1", "POLICY_0_TARGET=10",
		"POLICY_0_METRIC_2_PRESET=good_job", "POLICY_0_METRIC_2_TARGET=10s")
	if len(problems) != 1 || !strings.Contains(problems[0], `POLICY_0_METRIC_2_QUERY="SELECT 1"`) || !strings.Contains(problems[0], "the value is the policy's POLICY_0_QUERY") {
		t.Errorf("an inherited QUERY beside the metric's PRESET: %q", problems)
	}
	// No SOURCE for the policy: one problem, not one more per metric that reads it.
	_, problems = load(t, "HEROKU_API_KEY=k", "POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_MAX=4", "POLICY_0_TARGET=1",
		"POLICY_0_METRIC_2_TARGET=1")
	if len(problems) != 1 || !strings.Contains(problems[0], "POLICY_0_SOURCE") {
		t.Errorf("no SOURCE: %q", problems)
	}
}

func TestAFurtherMetricOnALogDrain(t *testing.T) {
	env := []string{"HEROKU_API_KEY=k",
		"POLICY_0_APP=cart", "POLICY_0_PROCESS=web", "POLICY_0_MAX=4", "POLICY_0_SOURCE=hirefire", "POLICY_0_SOURCE_URL=https://cart.example/hirefire/t/info",
		"POLICY_0_TARGET=1", "POLICY_0_METRIC_2_SOURCE=logdrain", "POLICY_0_METRIC_2_MEASURE=queue-time", "POLICY_0_METRIC_2_TARGET=20ms"}
	_, problems := load(t, env...)
	if len(problems) != 1 || !strings.Contains(problems[0], `POLICY_0_METRIC_2_SOURCE="logdrain": expected DYNOPILOT_DRAIN_TOKEN to be set`) {
		t.Errorf("a log drain metric without the drain token: %q", problems)
	}
	cfg, problems := load(t, append(env, "DYNOPILOT_DRAIN_TOKEN=t")...)
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	if apps := cfg.DrainApps(); !slices.Equal(apps, []string{"cart"}) {
		t.Errorf("DrainApps() = %q: the app a further metric reads through its drain must be in it", apps)
	}
}

func TestLoadDecisionReadsTheFurtherMetricsRules(t *testing.T) {
	pol, _, err := config.LoadDecision(append(slices.Clone(webPolicy), "POLICY_0_METRIC_2_MEASURE=queue-time", "POLICY_0_METRIC_2_MODE=step",
		"POLICY_0_METRIC_2_UP_ABOVE=50ms", "POLICY_0_METRIC_2_DOWN_BELOW=5ms"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Also) != 1 || pol.Also[0].Mode != policy.ModeStep {
		t.Errorf("LoadDecision: further rules %+v", pol.Also)
	}
	_, _, err = config.LoadDecision(append(slices.Clone(webPolicy), "POLICY_0_METRIC_2_UP_ABOVE=x"), 0)
	if err == nil || !strings.Contains(err.Error(), "POLICY_0_METRIC_2_UP_ABOVE") {
		t.Errorf("LoadDecision with a bad further rule: %v", err)
	}
}

func TestMetricSettingNames(t *testing.T) {
	names := config.MetricSettingNames()
	for _, want := range []string{"SOURCE", "SOURCE_URL", "QUERY", "PRESET", "QUEUES", "MEASURE", "QUANTILE", "WINDOW", "NAME", "EMPTY",
		"TIMEOUT", "MODE", "TARGET", "TOLERANCE", "UP_ABOVE", "DOWN_BELOW", "UP_BY", "DOWN_BY", "PER_DYNO", "SAFETY", "ACTIVATION"} {
		if !slices.Contains(names, want) {
			t.Errorf("MetricSettingNames() lacks %s: %q", want, names)
		}
	}
	for _, policyOnly := range []string{"APP", "MIN", "INTERVAL", "PREDICT", "PROTECT_BUSY"} {
		if slices.Contains(names, policyOnly) {
			t.Errorf("MetricSettingNames() has the policy's %s", policyOnly)
		}
	}
}

// TestTheExampleOfATwoMetricPolicyLoads: config.example.env's commented-out policy 4, on two metrics, loads as
// written (its settings with a value).
func TestTheExampleOfATwoMetricPolicyLoads(t *testing.T) {
	b, err := os.ReadFile("../config.example.env")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HEROKU_API_KEY=k", "DYNOPILOT_DRAIN_TOKEN=t"}
	for _, line := range strings.Split(string(b), "\n") {
		if kv, ok := strings.CutPrefix(line, "# POLICY_4_"); ok && !strings.HasSuffix(kv, "=") {
			env = append(env, "POLICY_0_"+kv)
		}
	}
	cfg, problems := load(t, env...)
	if len(problems) > 0 {
		t.Fatalf("policy 4 of config.example.env: %q", problems)
	}
	if p := cfg.Policies[0]; len(p.Also) != 1 || p.Also[0].Measure != metrics.MeasureQueueTime || p.Rules.Also[0].Mode != policy.ModeStep {
		t.Errorf("policy 4 of config.example.env reads %+v %+v", p.Also, p.Rules.Also)
	}
}

func TestAnEmptyVariableMakesNoMetric(t *testing.T) {
	cfg, problems := load(t, append(slices.Clone(webPolicy), "POLICY_0_METRIC_2_SOURCE=", "POLICY_0_METRIC_2_MODE= ", "POLICY_0_METRIC_3_TARGET=")...)
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	if n := len(cfg.Policies[0].Also); n != 0 {
		t.Errorf("%d further metrics from empty variables", n)
	}
}
