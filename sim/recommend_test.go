package sim_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/sim"
)

// The recommended policy's values follow from the model, none from a trace: PER_DYNO is the capacity, queue time's
// thresholds are half and a tenth of the latency the objective leaves to queueing, the prediction looks a boot time
// and 30 s ahead.
func TestRecommendFollowsFromTheModel(t *testing.T) {
	for _, c := range []struct {
		m                 sim.Model
		perDyno, up, down string
		ahead             string
	}{
		// 500ms - ln(20) × 100ms = 200.4ms of headroom.
		{sim.Model{Capacity: 10, Boot: 45 * time.Second, Objective: 500 * time.Millisecond}, "10", "100ms", "20ms", "1m15s"},
		// 1s - ln(20) × 200ms = 400.9ms.
		{sim.Model{Capacity: 5, Boot: 90 * time.Second, Objective: time.Second}, "5", "200ms", "40ms", "2m0s"},
		// 5 at once, 500ms each: 3s - ln(20) × 500ms = 1.502s.
		{sim.Model{Capacity: 10, ServiceTime: 500 * time.Millisecond, Boot: 20 * time.Second, Objective: 3 * time.Second}, "10", "751ms", "150ms", "50s"},
	} {
		c.m.Size = sim.DefaultModel().Size
		rec, err := sim.Recommend(c.m, 40, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"POLICY_0_MAX=40", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=" + c.perDyno, "POLICY_0_SAFETY=1",
			"POLICY_0_METRIC_2_MODE=step", "POLICY_0_METRIC_2_UP_ABOVE=" + c.up, "POLICY_0_METRIC_2_DOWN_BELOW=" + c.down,
			"POLICY_0_PREDICT=true", "POLICY_0_PREDICT_AHEAD=" + c.ahead} {
			if !slices.Contains(rec.Env, want) {
				t.Errorf("%+v: lines %q lack %s", c.m, rec.Env, want)
			}
		}
		p := rec.Policy.Policy
		if p.Mode != policy.ModeRatio || len(p.Also) != 1 || p.Also[0].Mode != policy.ModeStep || !p.Predict {
			t.Errorf("the lines read as %+v, want ratio mode with one step-mode metric and PREDICT", p)
		}
		if rec.Reading.Kind != sim.ReadingRate || len(rec.Also) != 1 || rec.Also[0].Kind != sim.ReadingQueueTime {
			t.Errorf("readings %+v and %+v, want the rate and queue time", rec.Reading, rec.Also)
		}
	}
	if _, err := sim.Recommend(sim.Model{Capacity: 10, Objective: 100 * time.Millisecond}, 10, 0); err == nil {
		t.Error("a model whose objective is under the service time's p95 was accepted")
	}
}

// Without --env-file, `dynopilot simulate` runs the recommended policy and prints its lines; the same lines given back
// with --env-file give exactly the same run: what is printed is what was simulated.
func TestSimulatePrintsTheRecommendedPolicyItRan(t *testing.T) {
	args := []string{"--trace", "testdata/azure_llm2023_conv_1s.csv", "--scale", "20", "--capacity", "5", "--boot", "1m",
		"--objective", "900ms", "--contenders", "dynopilot,judoscale"}
	code, out, errs := runCommand(t, nil, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "POLICY_0_") {
			lines = append(lines, l)
		}
	}
	for _, want := range []string{"POLICY_0_PER_DYNO=5", "POLICY_0_METRIC_2_MEASURE=queue-time", "POLICY_0_PREDICT_AHEAD=1m30s"} {
		if !slices.Contains(lines, want) {
			t.Errorf("printed lines %q lack %s (from --capacity 5, --boot 1m)", lines, want)
		}
	}
	if !strings.Contains(out, "reading rate over 10s, 15s late and queue-time over 10s") {
		t.Errorf("the table's header does not name both readings:\n%s", out)
	}

	env := filepath.Join(t.TempDir(), "recommended.env")
	if err := os.WriteFile(env, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) sim.Result {
		code, out, errs := runCommand(t, nil, append(append(slices.Clone(args), "--json"), extra...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var rep sim.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return *rep.Result("dynopilot")
	}
	printed, fromFile := run(), run("--env-file", env)
	if printed.BreachMinutes != fromFile.BreachMinutes || printed.DynoHours != fromFile.DynoHours || printed.ScaleEvents != fromFile.ScaleEvents {
		t.Errorf("recommended: %d breach min, %.3f dyno-hours, %d events; its printed lines: %d, %.3f, %d; want the same run",
			printed.BreachMinutes, printed.DynoHours, printed.ScaleEvents, fromFile.BreachMinutes, fromFile.DynoHours, fromFile.ScaleEvents)
	}
	if printed.ScaleEvents == 0 {
		t.Error("the recommended policy never scaled: the comparison proves nothing")
	}
	for _, bad := range [][]string{{"--reading", "rate"}, {"--window", "1m"}} {
		if code, _, errs := runCommand(t, nil, append(slices.Clone(args), bad...)...); code != 2 || !strings.Contains(errs, "--env-file") {
			t.Errorf("%v without --env-file: exit %d, %q; want 2 and a pointer to --env-file", bad, code, errs)
		}
	}
}

// daily is a trace of days of one-second rates: a night at 50/s and a working day (9:00 to 17:00) at 400/s, the
// ramp taking a minute; on day ramp2 (if >= 0) the ramp comes at 15:00 instead.
func daily(days, ramp2 int) *sim.Trace {
	tr := &sim.Trace{Name: "daily", Step: 1, Scale: 1}
	for d := range days {
		start := 9 * 3600
		if d == ramp2 {
			start = 15 * 3600
		}
		for s := range 86400 {
			rate := 50.0
			if s >= start && s < 17*3600 {
				rate = 50 + 350*min(1, float64(s-start)/60)
			}
			tr.Rates = append(tr.Rates, rate)
		}
	}
	return tr
}

// The simulated daemon learns the daily profile from its own readings and raises the floor before the ramp (reason
// predicted) once three days have shown it, never sooner; it never sees the trace ahead: a run whose trace changes
// at some second decides exactly as the run on the unchanged trace until then, and a ramp that comes at a new time
// is not predicted. (That it never lowers a decision is the engine's: policy's property test.)
func TestThePredictionSeesOnlyThePast(t *testing.T) {
	m := sim.Model{Capacity: 10, Boot: 45 * time.Second, Objective: 500 * time.Millisecond, Size: sim.DefaultModel().Size}
	type eval struct {
		t       int
		desired int
		reason  policy.Reason
	}
	// PREDICT_AHEAD 79 s: the evaluation at 8:58:40 looks at yesterday's 8:58:40 to 8:59:59, the one at 8:58:50
	// reaches 9:00, when yesterday's ramp came. A prediction that looked one second further (or one second later)
	// than it may would raise the floor at 8:58:40.
	const ahead = 79 * time.Second
	run := func(tr *sim.Trace) []eval {
		rec, err := sim.Recommend(m, 100, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		p := *rec.Policy.Policy
		p.PredictAhead = ahead
		pc := *rec.Policy
		pc.Policy = &p
		c := sim.Engine("dynopilot", "dynopilot", &pc, rec.Reading, rec.Also...)
		var out []eval
		start := sim.DefaultStart()
		c.ObserveDecision = func(in policy.Input, d policy.Decision) {
			out = append(out, eval{int(in.Now.Sub(start).Seconds()), d.Desired, d.Reason})
		}
		if _, err := sim.Run(context.Background(), tr, m, []sim.Contender{c}, sim.Options{}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	const day = 86400
	base := run(daily(5, -1))
	predictedAt := func(evals []eval, from, to int) []int {
		var at []int
		for _, e := range evals {
			if e.t >= from && e.t < to && e.reason == policy.ReasonPredicted {
				at = append(at, e.t)
			}
		}
		return at
	}
	for d := range 3 {
		if at := predictedAt(base, d*day, (d+1)*day); len(at) > 0 {
			t.Errorf("day %d: predicted at %v with fewer than 3 days of history", d+1, at)
		}
	}
	at := predictedAt(base, 3*day+8*3600, 3*day+9*3600)
	if len(at) == 0 {
		t.Fatal("day 4: nothing predicted before the 9:00 ramp seen on three days")
	}
	if first, want := time.Duration(at[0]-3*day)*time.Second, 8*time.Hour+58*time.Minute+50*time.Second; first != want {
		t.Errorf("day 4: the floor was first raised at %s, want %s: the first evaluation whose %s ahead reaches the ramp's 9:00", first, want, ahead)
	}

	// The trace changes at the start of day 5 (its ramp is at 15:00 instead): nothing before changes.
	const changeAt = 4 * day
	changed := run(daily(5, 4))
	for i := range base {
		if base[i].t >= changeAt {
			break
		}
		if i >= len(changed) || changed[i] != base[i] {
			t.Fatalf("decision at %ds differs before the trace changed at %ds: %+v against %+v", base[i].t, changeAt, changed[i], base[i])
		}
	}
	// On day 5 the profile expects the ramp at 9:00 and it does not come: the floor may rise for it (that is the
	// prediction's cost), but the ramp at 15:00, never seen at that hour, is not predicted ahead of it.
	if at := predictedAt(changed, 4*day+14*3600, 4*day+15*3600); len(at) > 0 {
		t.Errorf("day 5: a ramp never seen at 15:00 was predicted at %v: the prediction saw the trace ahead", at)
	}

	raised := 0
	for _, e := range base {
		if e.reason == policy.ReasonPredicted {
			raised++
		}
	}
	if raised == 0 {
		t.Error("the prediction never raised the floor")
	}
}

// testdata/recommended.env, the recommended policy published for the default app, is exactly what Recommend gives
// for it: its KEY=VALUE lines are Recommend's Env, in order, so the file cannot drift from the code.
func TestRecommendedEnvFileIsRecommend(t *testing.T) {
	f, err := os.Open("testdata/recommended.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := sim.ReadEnvFile(f, "recommended.env")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := sim.Recommend(sim.DefaultModel(), 100, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lines, rec.Env) {
		t.Errorf("testdata/recommended.env has\n  %s\nRecommend(DefaultModel(), 100, 15s) gives\n  %s", strings.Join(lines, "\n  "), strings.Join(rec.Env, "\n  "))
	}
}
