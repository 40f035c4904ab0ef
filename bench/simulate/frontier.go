package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

// frontier asks, trace by trace at the README's scales, whether the tuning goal can be reached by reacting at all.
// It runs the usual contenders beside sim.Reactive (exact model, every past second known at once, no reporting
// delay) over a grid of windows, lookbacks and headrooms, and prints what the best reacting point reaches against each bar
// of the goal: fewer breach minutes than every anchor, no more dyno-hours than any anchor, within 25% of the
// oracle's dyno-hours.
func frontier(ctx context.Context, dir string, base []string, r sim.Reading, rate sim.Contender) error {
	m := sim.DefaultModel()
	cs, pc, err := withRate(base, r, rate)
	if err != nil {
		return err
	}
	first := len(cs)
	for _, w := range []time.Duration{time.Second, 10 * time.Second, time.Minute} {
		for _, l := range []time.Duration{0, time.Minute, 2 * time.Minute, 5 * time.Minute} {
			for _, h := range []float64{0, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2} {
				cs = append(cs, sim.Reactive(w, l, h, pc.Policy.Min, pc.Policy.Max))
			}
		}
	}
	fmt.Println("| trace (scale) | oracle dyno-h | anchors: fewest breach min | anchors: fewest dyno-h | reactive: fewest breach min within +25% | reactive: fewest dyno-h with fewer breach min than every anchor | reactive: meets the whole goal | dynopilot: breach min / dyno-h |")
	fmt.Println("|---|--:|--:|--:|--:|--:|:-:|--:|")
	return eachReadmeTrace(ctx, dir, m, cs, func(f string, tr *sim.Trace, res []sim.Result) {
		var oracle sim.Result
		var dynopilot []sim.Result
		fewestBreaches, fewestHours := math.MaxInt, math.Inf(1)
		for _, x := range res[:first] {
			switch x.Kind {
			case "oracle":
				oracle = x
			case "dynopilot":
				dynopilot = append(dynopilot, x)
			case "anchor":
				fewestBreaches = min(fewestBreaches, x.BreachMinutes)
				fewestHours = min(fewestHours, x.DynoHours)
			}
		}
		beats := func(b int) bool { return b < fewestBreaches || (fewestBreaches == 0 && b == 0) }
		bestWithin, cheapestBeating, whole := math.MaxInt, math.Inf(1), "no"
		var bestWithinName, cheapestName string
		for _, x := range res[first:] {
			within := x.DynoHours <= 1.25*oracle.DynoHours
			if within && x.BreachMinutes < bestWithin {
				bestWithin, bestWithinName = x.BreachMinutes, x.Name
			}
			if beats(x.BreachMinutes) && x.DynoHours < cheapestBeating {
				cheapestBeating, cheapestName = x.DynoHours, x.Name
			}
			if within && beats(x.BreachMinutes) && x.DynoHours <= fewestHours {
				whole = "yes: " + x.Name
			}
		}
		vs := func(h float64) string {
			if math.IsInf(h, 1) {
				return "none in the grid"
			}
			return fmt.Sprintf("%.1f (%+.0f%%)", h, 100*(h/oracle.DynoHours-1))
		}
		within := "none in the grid"
		if bestWithinName != "" {
			within = fmt.Sprintf("%d (%s)", bestWithin, bestWithinName)
		}
		if cheapestName != "" {
			cheapestName = " (" + cheapestName + ")"
		}
		var ours []string
		for _, d := range dynopilot {
			ours = append(ours, fmt.Sprintf("%s: %d / %s", d.Name, d.BreachMinutes, vs(d.DynoHours)))
		}
		fmt.Printf("| %s (×%g) | %.1f | %d | %s | %s | %s%s | %s | %s |\n", f, tr.Scale, oracle.DynoHours, fewestBreaches,
			vs(fewestHours), within, vs(cheapestBeating), cheapestName, whole, strings.Join(ours, "<br>"))
	})
}
