package sim_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

// Reactive sees only the past: two traces that agree before a second give the same serving dynos up to that second
// plus the boot time (what serves at x was started by x-boot, knowing the seconds before it), however different
// what follows is.
func TestReactiveSeesOnlyThePast(t *testing.T) {
	a := loadTestTrace(t, "nasa_jul1995_day2_1min.csv", 50)
	b := &sim.Trace{Name: "b", Step: a.Step, Scale: a.Scale, Rates: slices.Clone(a.Rates)}
	const cut = 6 * 3600
	for s := cut; s < cut+600; s++ {
		b.Rates[s] *= 100 // enough that its first second changes the count
	}
	m := sim.DefaultModel()
	serving := func(tr *sim.Trace) []int {
		res, err := sim.Run(context.Background(), tr, m, []sim.Contender{sim.Reactive(10*time.Second, 2*time.Minute, 0.2, 1, 100)}, sim.Options{PerSecond: true})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Series.ServingPerSecond
	}
	sa, sb := serving(a), serving(b)
	boot := int(m.Boot.Seconds())
	if !slices.Equal(sa[:cut+boot+1], sb[:cut+boot+1]) {
		t.Fatal("serving dynos before the change (plus boot) differ: Reactive looked ahead")
	}
	if slices.Equal(sa, sb) {
		t.Fatal("a hundredfold load changed nothing: Reactive did not react")
	}
}

// On a steady load Reactive holds what the load needs, the oracle's count: the same dyno-hours and no breach; and
// more headroom never buys fewer dyno-hours or more breach minutes.
func TestReactiveOnSteadyLoadIsTheOracleAndHeadroomIsMonotone(t *testing.T) {
	steady := &sim.Trace{Name: "steady", Step: 1, Scale: 1, Rates: slices.Repeat([]float64{57}, 3*3600)}
	m := sim.DefaultModel()
	res, err := sim.Run(context.Background(), steady, m, []sim.Contender{sim.Oracle(1, 100), sim.Reactive(time.Minute, 0, 0, 1, 100)}, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[1].DynoHours != res[0].DynoHours || res[1].BreachMinutes != 0 {
		t.Errorf("steady load: reactive %.2f dyno-hours, %d breach minutes; oracle %.2f", res[1].DynoHours, res[1].BreachMinutes, res[0].DynoHours)
	}

	day := loadTestTrace(t, "nasa_jul1995_day2_1min.csv", 50)
	var cs []sim.Contender
	for _, h := range []float64{0, 0.1, 0.3, 0.6} {
		cs = append(cs, sim.Reactive(time.Minute, time.Minute, h, 1, 100))
	}
	res, err = sim.Run(context.Background(), day, m, cs, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(res); i++ {
		if res[i].DynoHours < res[i-1].DynoHours || res[i].BreachMinutes > res[i-1].BreachMinutes {
			t.Errorf("%s: %.1f dyno-hours, %d breach minutes; after %s: %.1f, %d", res[i].Name, res[i].DynoHours, res[i].BreachMinutes,
				res[i-1].Name, res[i-1].DynoHours, res[i-1].BreachMinutes)
		}
	}
	if res[0].BreachMinutes == 0 {
		t.Error("no headroom on a noisy day, yet no breach: the test shows nothing")
	}
}

func TestReactiveRejectsBadParameters(t *testing.T) {
	_, err := sim.Run(context.Background(), loadTestTrace(t, "azure_llm2023_conv_1s.csv", 1), sim.DefaultModel(),
		[]sim.Contender{sim.Reactive(0, -time.Second, -1, 1, 10)}, sim.Options{})
	if err == nil {
		t.Fatal("window 0, lookback -1s and headroom -1 accepted")
	}
}
