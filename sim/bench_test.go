package sim_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

// weekTrace is a 7-day trace at one-second resolution: a daily cycle between 100 and 500 requests per second with
// an evening flash crowd, drawn as Poisson counts per second (seeded), so every second differs as in a real
// one-second trace.
func weekTrace() *sim.Trace {
	rng := rand.New(rand.NewPCG(7, 7))
	rates := make([]float64, 7*86400)
	for t := range rates {
		day := float64(t%86400) / 86400
		mean := 300 - 200*math.Cos(2*math.Pi*day)
		if h := day * 24; h > 20 && h < 21.5 {
			mean *= 2.5
		}
		rates[t] = poisson(rng, mean)
	}
	return &sim.Trace{Name: "synthetic week", Step: 1, Scale: 1, Rates: rates}
}

func poisson(rng *rand.Rand, mean float64) float64 {
	// Normal approximation with continuity correction; the means here are large.
	return max(0, math.Round(mean+math.Sqrt(mean)*rng.NormFloat64()))
}

// BenchmarkWeekAllContenders simulates a 7-day one-second trace with dynopilot and every comparison contender (the
// four anchors, static and oracle): the speed goal is under 5 s per run on the project machine.
func BenchmarkWeekAllContenders(b *testing.B) {
	tr := weekTrace()
	pc, err := sim.LoadPolicy([]string{"POLICY_0_MAX=100", "POLICY_0_TARGET=400ms"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	m := sim.DefaultModel()
	cs, err := sim.Contenders(pc, m, sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sim.Run(context.Background(), tr, m, cs, sim.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tr.Rates)*len(cs))/b.Elapsed().Seconds()*float64(b.N)/1e6, "Mcontender-s/s")
}

// BenchmarkSecond is the per-second cost of one contender (a fixed count) on the same trace.
func BenchmarkWeekOneFixed(b *testing.B) {
	tr := weekTrace()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sim.Run(context.Background(), tr, sim.DefaultModel(), []sim.Contender{sim.Fixed("fixed", []int{60})}, sim.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// overloadFormation is a fixed formation far too small for weekTrace: 20 dynos carry 200 requests per second, the
// trace's mean is 300 and its evening peak 1,250, so a backlog builds for two thirds of every day and never clears.
const overloadFormation = 20

// BenchmarkWeekSustainedOverload is a 7-day one-second trace through a formation far too small for it: every
// second after the first hours has a backlog to wait behind, hours then days long. The goal is the same as for any
// trace: under 5 s per run.
func BenchmarkWeekSustainedOverload(b *testing.B) {
	tr := weekTrace()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sim.Run(context.Background(), tr, sim.DefaultModel(), []sim.Contender{sim.Fixed("fixed", []int{overloadFormation})}, sim.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWeekOverloadAllContenders is the same week with every contender held to MAX=20 dynos, far too few: every
// contender, the oracle's verification rounds included, runs through the sustained overload.
func BenchmarkWeekOverloadAllContenders(b *testing.B) {
	tr := weekTrace()
	pc, err := sim.LoadPolicy([]string{"POLICY_0_MAX=" + strconv.Itoa(overloadFormation), "POLICY_0_TARGET=400ms"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	m := sim.DefaultModel()
	cs, err := sim.Contenders(pc, m, sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := sim.Run(context.Background(), tr, m, cs, sim.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
