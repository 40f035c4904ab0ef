package sim_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/sim"
)

func loadTestTrace(t testing.TB, name string, scale float64) *sim.Trace {
	t.Helper()
	tr, err := sim.LoadTrace("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Scaled(scale)
}

func policyFrom(t testing.TB, env ...string) *sim.PolicyConfig {
	t.Helper()
	pc, err := sim.LoadPolicy(env, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// The simulated daemon takes exactly the decisions the real engine takes for the same readings: every recorded
// input, replayed through policy.Decide with a fresh State, gives the same decision; the runner applied every
// Desired, and each input's Current and LastScale are what the previous decisions left.
func TestSimulatedDaemonTakesTheEnginesDecisions(t *testing.T) {
	tr := loadTestTrace(t, "nasa_jul1995_day2_1min.csv", 50)
	pc := policyFrom(t, "POLICY_0_MAX=40", "POLICY_0_TARGET=400ms", "POLICY_0_INTERVAL=20s",
		"POLICY_0_DOWN_STABILIZATION=3m", "POLICY_0_MAX_STEP_UP=3",
		"POLICY_0_SCHEDULE=0 12 * * * for 1h min=8") // a schedule window on the virtual clock
	c := sim.Engine("dynopilot", "dynopilot", pc, sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second})
	var ins []policy.Input
	var decs []policy.Decision
	var evals []sim.Evaluation
	c.ObserveDecision = func(in policy.Input, d policy.Decision) { ins, decs = append(ins, in), append(decs, d) }
	c.Observe = func(e sim.Evaluation) { evals = append(evals, e) }
	res, err := sim.Run(context.Background(), tr, sim.DefaultModel(), []sim.Contender{c}, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 86400 / 20; len(decs) != want || len(evals) != want {
		t.Fatalf("%d decisions, %d evaluations: want %d (t=0 and every 20 s of the day)", len(decs), len(evals), want)
	}
	var st policy.State
	var lastScale time.Time
	current := evals[0].Current
	events, reasons := 0, map[policy.Reason]int{}
	for i, in := range ins {
		if in.Now != sim.DefaultStart().Add(time.Duration(evals[i].Second)*time.Second) || evals[i].Second != 20*i {
			t.Fatalf("decision %d at %v (second %d): want second %d of the virtual clock", i, in.Now, evals[i].Second, 20*i)
		}
		if in.Current != current || !in.LastScale.Equal(lastScale) {
			t.Fatalf("decision %d: input current %d last scale %v, want %d and %v", i, in.Current, in.LastScale, current, lastScale)
		}
		if in.Value != evals[i].Value || in.ReadingOK != evals[i].OK {
			t.Fatalf("decision %d: engine saw %v/%v, runner read %v/%v", i, in.Value, in.ReadingOK, evals[i].Value, evals[i].OK)
		}
		replayed := policy.Decide(pc.Policy, &st, in)
		if !reflect.DeepEqual(replayed, decs[i]) {
			t.Fatalf("decision %d differs on replay:\nsimulated %+v\nreplayed  %+v", i, decs[i], replayed)
		}
		if evals[i].Desired != decs[i].Desired {
			t.Fatalf("decision %d: engine wanted %d, runner applied %d", i, decs[i].Desired, evals[i].Desired)
		}
		if decs[i].Desired != current {
			events++
			lastScale = in.Now
		}
		current = decs[i].Desired
		reasons[decs[i].Reason]++
	}
	if events != res[0].ScaleEvents || events == 0 {
		t.Errorf("%d changes in the decisions, %d scale events reported", events, res[0].ScaleEvents)
	}
	// The run exercised the rules the engine owns, not just one path.
	for _, r := range []policy.Reason{policy.ReasonAboveTarget, policy.ReasonWithinTolerance, policy.ReasonStabilizing, policy.ReasonSchedule} {
		if reasons[r] == 0 {
			t.Errorf("no decision with reason %s in %v", r, reasons)
		}
	}
}

// Same inputs, same outputs: every contender, twice, in parallel.
func TestRunIsDeterministic(t *testing.T) {
	tr := loadTestTrace(t, "azure_llm2023_conv_1s.csv", 5)
	pc := policyFrom(t, "POLICY_0_MAX=30", "POLICY_0_TARGET=400ms")
	m := sim.DefaultModel()
	r := sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second}
	run := func() []sim.Result {
		cs, err := sim.Contenders(pc, m, r)
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Run(context.Background(), tr, m, cs, sim.Options{Series: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(), run()
	if len(a) != 7 {
		t.Fatalf("%d results, want 7", len(a))
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs of the same inputs differ")
	}
}

// The oracle never breaches, and no contender that never breaches uses fewer dyno-hours.
func TestOracleIsBreachFreeAndALowerBound(t *testing.T) {
	for _, c := range []struct {
		name  string
		scale float64
	}{{"nasa_jul1995_day2_1min.csv", 50}, {"azure_llm2023_conv_1s.csv", 5}} {
		tr := loadTestTrace(t, c.name, c.scale)
		pc := policyFrom(t, "POLICY_0_MAX=60", "POLICY_0_TARGET=380ms")
		m := sim.DefaultModel()
		cs, err := sim.Contenders(pc, m, sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Run(context.Background(), tr, m, cs, sim.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rep := sim.NewReport(tr, m, sim.Reading{}, res)
		oracle, static := rep.Result("oracle"), rep.Result("static")
		if oracle.BreachMinutes != 0 || static.BreachMinutes != 0 {
			t.Errorf("%s: oracle %d and static %d breach minutes, want 0", c.name, oracle.BreachMinutes, static.BreachMinutes)
		}
		for _, r := range res {
			if r.BreachMinutes == 0 && r.DynoHours < oracle.DynoHours {
				t.Errorf("%s: %s has no breach with %.1f dyno-hours, below the oracle's %.1f", c.name, r.Name, r.DynoHours, oracle.DynoHours)
			}
		}
		if static.ScaleEvents != 0 || static.Ups != 0 || oracle.DynoHours > static.DynoHours {
			t.Errorf("%s: static scaled %d times; oracle %.1f dyno-hours vs static %.1f", c.name, static.ScaleEvents, oracle.DynoHours, static.DynoHours)
		}
	}
}

// The simulated daemon starts its policy's state as the daemon does (policy.State.Start): a process that has just
// started scales down no sooner than DOWN_STABILIZATION after it, whatever its first readings say.
func TestASimulatedStartWaitsAFullDownStabilization(t *testing.T) {
	pc := policyFrom(t, "POLICY_0_MAX=20", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=10", "POLICY_0_DOWN_COOLDOWN=0",
		"POLICY_0_DOWN_STABILIZATION=5m", "POLICY_0_INTERVAL=10s")
	tr := &sim.Trace{Name: "quiet", Step: 1, Scale: 1, Rates: make([]float64, 900)}
	for i := range tr.Rates {
		tr.Rates[i] = 15 // 2 dynos' worth, on a formation of 10
	}
	c := sim.Engine("dynopilot", "dynopilot", pc, sim.Reading{Kind: sim.ReadingRate, Window: 10 * time.Second})
	firstDown := -1
	c.Observe = func(e sim.Evaluation) {
		if e.Desired < e.Current && firstDown < 0 {
			firstDown = e.Second
		}
	}
	if _, err := sim.Run(context.Background(), tr, sim.DefaultModel(), []sim.Contender{c}, sim.Options{Initial: 10}); err != nil {
		t.Fatal(err)
	}
	switch {
	case firstDown < 0:
		t.Error("never scaled down from 10 to the 2 the load needs")
	case firstDown < 300:
		t.Errorf("first scale-down at %ds, want none before DOWN_STABILIZATION (300s) after the start", firstDown)
	}
}
