package sim

import (
	"math"
	"math/rand/v2"
)

// Synthetic traffic shapes, for the goal bench (bench/simulate -goal) and for tests: the kinds of traffic issue 16
// names, each a trace the shared real ones do not cover well enough on their own. Every shape is drawn from a fixed
// seed, so a run is repeatable and a change in a result is a change in the policy, never in the traffic.
//
// Rates are at a nominal size chosen for the noise they carry, not for any app: the goal bench scales every trace to
// the dynos it wants to study, which keeps the relative noise. Where a shape draws Poisson counts, its nominal level is
// what sets that noise (a count of n has a relative spread of 1/√n).

const (
	shapeDay = 86400 // seconds
	// shapeSeed seeds every shape; each draws from its own PCG stream (its index in Shapes), so changing one shape
	// leaves the others as they were.
	shapeSeed = 16 // the number
)

// Shapes returns every synthetic shape, freshly generated: callers may scale or change them.
func Shapes() []*Trace {
	gens := []func(*rand.Rand) *Trace{flashCrowds, diurnalNoise, onOffBursts, clumpedArrivals, slowRamps, isolatedSpikes}
	out := make([]*Trace, len(gens))
	for i, gen := range gens {
		out[i] = gen(rand.New(rand.NewPCG(shapeSeed, uint64(i))))
	}
	return out
}

// flashCrowds is a steady 100/s (a news site between stories) hit by eight flash crowds a day: each surges to 5-15×
// the base within 1-3 minutes (a link on a busy front page), holds for 10-60 minutes and drains back over 5 as
// interest fades. One crowd per 3-hour slot, so they never overlap and the median stays at the base. Per-second
// Poisson counts: at 100/s that is the ±10% a real one-second trace shows.
func flashCrowds(rng *rand.Rand) *Trace {
	const base, slot, decay = 100.0, 3 * 3600, 300
	mean := make([]float64, shapeDay)
	for i := range mean {
		mean[i] = base
	}
	for s := 0; s < shapeDay; s += slot {
		surge := 5 + 10*rng.Float64()
		ramp := 60 + rng.IntN(121)
		hold := 600 + rng.IntN(3001)
		start := s + 600 + rng.IntN(slot-600-ramp-hold-decay-600) // 10 minutes clear of the slot's edges
		for t := start; t < start+ramp+hold+decay; t++ {
			var f float64 // the crowd's share of its full size at t
			switch u := t - start; {
			case u < ramp:
				f = float64(u+1) / float64(ramp)
			case u < ramp+hold:
				f = 1
			default:
				f = 1 - float64(u-ramp-hold+1)/decay
			}
			mean[t] = base * (1 + (surge-1)*f)
		}
	}
	return poissonPerSecond("synthetic: flash crowds", rng, mean)
}

// diurnalNoise is a week of a business app, starting on a Monday as the simulator's clock does: a daily cycle from
// a trough at 04:00 to a peak 4× higher at 16:00 (a raised cosine), weekends at 60% of weekdays, each day ±10% on
// its own, with Poisson noise per minute. The nominal trough of 0.5/s (30 requests a minute) gives the noise NASA's
// trace has, about ±18% at night and ±9% at the peak. A week, so the pattern recurs and the weekend shows.
func diurnalNoise(rng *rand.Rand) *Trace {
	const days, trough = 7, 0.5
	mean := make([]float64, days*1440)
	for d := range days {
		level := trough * (0.9 + 0.2*rng.Float64())
		if d%7 >= 5 {
			level *= 0.6
		}
		for m := range 1440 {
			h := float64(m) / 60
			mean[d*1440+m] = level * (1 + 1.5*(1-math.Cos(2*math.Pi*(h-4)/24)))
		}
	}
	return poissonPerMinute("synthetic: diurnal with noise", rng, mean)
}

// onOffBursts is a square wave with irregular durations, like a queue consumer or a cron-driven client: on for 3-20
// minutes at 100/s ±30% (each burst its own level), then near zero (1/s, 1% of on) for 2-30 minutes. The boundaries
// fall on any second. A controller that keeps dynos through the gaps pays for them; one that drops them all starts
// every burst cold.
func onOffBursts(rng *rand.Rand) *Trace {
	const on, off = 100.0, 1.0
	mean := make([]float64, 0, shapeDay)
	for len(mean) < shapeDay {
		level := on * (0.7 + 0.6*rng.Float64())
		for range 180 + rng.IntN(1021) {
			mean = append(mean, level)
		}
		for range 120 + rng.IntN(1681) {
			mean = append(mean, off)
		}
	}
	return poissonPerSecond("synthetic: on/off bursts", rng, mean[:shapeDay])
}

// clumpedArrivals is a batch client, as in Azure's LLM code trace: requests come in clumps of 10-30 at once (the
// client's batch), never one by one. Jobs of 10-40 minutes, 30-120 minutes apart, send a clump in 70% of their
// seconds; between jobs a clump comes in 10% of seconds. So some 75% of seconds are empty, and the busiest minutes
// are the jobs', whose clumps are one to two times their mean rate: a formation of twice the peak's needs can serve
// any clump in time, one sized for the minute's mean cannot, which is what sets the contenders apart.
func clumpedArrivals(rng *rand.Rand) *Trace {
	rates := make([]float64, 0, shapeDay)
	clumps := func(seconds int, p float64) {
		for range seconds {
			r := 0.0
			if rng.Float64() < p {
				r = float64(10 + rng.IntN(21))
			}
			rates = append(rates, r)
		}
	}
	for len(rates) < shapeDay {
		clumps(60*(30+rng.IntN(91)), 0.1)
		clumps(60*(10+rng.IntN(31)), 0.7)
	}
	return &Trace{Name: "synthetic: clumped arrivals", Step: 1, Scale: 1, Rates: rates[:shapeDay]}
}

// slowRamps is two days of load that changes only slowly: from a quiet 10/s (1-4 hours), rising linearly over 2-6
// hours to 5-10× that, holding for up to 2 hours, falling back over 2-6 hours, and again. Nothing changes within
// minutes, so it is where a controller's cost in the steady state shows, not its speed; per-minute Poisson noise
// (±4% at the base) keeps a reading from being perfectly smooth.
func slowRamps(rng *rand.Rand) *Trace {
	const days, base = 2, 10.0
	hours := func(lo, hi float64) int { return int((lo + (hi-lo)*rng.Float64()) * 60) } // in minutes
	mean := make([]float64, 0, days*1440)
	for len(mean) < days*1440 {
		quiet, up, hold, down := hours(1, 4), hours(2, 6), hours(0, 2), hours(2, 6)
		top := base * (5 + 5*rng.Float64())
		for range quiet {
			mean = append(mean, base)
		}
		for m := range up {
			mean = append(mean, base+(top-base)*float64(m+1)/float64(up))
		}
		for range hold {
			mean = append(mean, top)
		}
		for m := range down {
			mean = append(mean, top-(top-base)*float64(m+1)/float64(down))
		}
	}
	return poissonPerMinute("synthetic: slow ramps", rng, mean[:days*1440])
}

// isolatedSpikes is a steady 100/s with sixteen spikes a day at random times, each 3-10× the base for 1-3 minutes and
// starting at once (a retry storm, a mobile push): too short for a dyno that boots after it starts to help, so the
// question is how much a controller overreacts to them. Per-second Poisson counts, as flashCrowds.
func isolatedSpikes(rng *rand.Rand) *Trace {
	const base, spikes = 100.0, 16
	mean := make([]float64, shapeDay)
	for i := range mean {
		mean[i] = base
	}
	for range spikes {
		start, length, height := rng.IntN(shapeDay-180), 60+rng.IntN(121), 3+7*rng.Float64()
		for t := start; t < start+length; t++ {
			mean[t] = base * height
		}
	}
	return poissonPerSecond("synthetic: isolated spikes", rng, mean)
}

// poissonPerSecond draws every second's count from a Poisson distribution at its mean.
func poissonPerSecond(name string, rng *rand.Rand, mean []float64) *Trace {
	rates := make([]float64, len(mean))
	for t, m := range mean {
		rates[t] = poissonDraw(rng, m)
	}
	return &Trace{Name: name, Step: 1, Scale: 1, Rates: rates}
}

// poissonPerMinute draws every minute's count from a Poisson distribution at its mean rate (per second) and holds the
// minute's rate for its 60 seconds, as LoadTrace expands a 60 s trace.
func poissonPerMinute(name string, rng *rand.Rand, mean []float64) *Trace {
	rates := make([]float64, 0, 60*len(mean))
	for _, m := range mean {
		r := poissonDraw(rng, 60*m) / 60
		for range 60 {
			rates = append(rates, r)
		}
	}
	return &Trace{Name: name, Step: 60, Scale: 1, Rates: rates}
}

// poissonDraw is a Poisson count of the given mean: Knuth's method below 30, the normal approximation (rounded, not
// below 0) above, where it is within a percent of the exact spread.
func poissonDraw(rng *rand.Rand, mean float64) float64 {
	if mean < 30 {
		l, k, p := math.Exp(-mean), 0.0, 1.0
		for {
			p *= rng.Float64()
			if p <= l {
				return k
			}
			k++
		}
	}
	return max(0, math.Round(mean+math.Sqrt(mean)*rng.NormFloat64()))
}
