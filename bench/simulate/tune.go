package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dynopilot/dynopilot/sim"
)

// traceAt is a trace file at a scale.
type traceAt struct {
	path  string
	scale float64
	tr    *sim.Trace
}

func parseTraces(specs []string) ([]traceAt, error) {
	var out []traceAt
	for _, s := range specs {
		path, sc, ok := strings.Cut(s, ":")
		scale := 1.0
		if ok {
			if _, err := fmt.Sscan(sc, &scale); err != nil {
				return nil, fmt.Errorf("trace %q: scale %q is not a number", s, sc)
			}
		}
		tr, err := sim.LoadTrace(path)
		if err != nil {
			return nil, err
		}
		out = append(out, traceAt{path: path, scale: scale, tr: tr.Scaled(scale)})
	}
	return out, nil
}

// grid expands KEY=a|b|c settings into every combination.
func grid(sets []string) [][]string {
	combos := [][]string{nil}
	for _, s := range sets {
		k, vs, _ := strings.Cut(s, "=")
		var next [][]string
		for _, c := range combos {
			for _, v := range strings.Split(vs, "|") {
				next = append(next, append(append([]string(nil), c...), k+"="+v))
			}
		}
		combos = next
	}
	return combos
}

type tuneRow struct {
	settings []string
	breach   []int
	hours    []float64
	score    float64
}

// tune runs dynopilot's policy (dp) with every combination of the settings over every trace and ranks them against
// the anchors and the oracle: first by breach minutes beyond the best anchor's, then by dyno-hours over the
// oracle's. A combination's settings are POLICY_0_ settings in place of the policy's own; its readings follow from
// them (a WINDOW in it is the first metric's window even when -window was given).
func tune(ctx context.Context, w io.Writer, dp benchPolicy, sets []string, traces []traceAt, m sim.Model) error {
	type ref struct {
		anchorBreach   int
		anchorHours    float64 // of the anchor with the fewest breaches
		minAnchorHours float64
		oracleHours    float64
	}
	refs := make([]ref, len(traces))
	pc, r, also, err := dp.load(dp.env)
	if err != nil {
		return err
	}
	all, err := sim.Contenders(pc, m, r, also...)
	if err != nil {
		return err
	}
	for i, t := range traces {
		res, err := sim.Run(ctx, t.tr, m, all[1:], sim.Options{})
		if err != nil {
			return err
		}
		rf := ref{anchorBreach: math.MaxInt, minAnchorHours: math.Inf(1)}
		for _, x := range res {
			switch x.Kind {
			case "anchor":
				if x.BreachMinutes < rf.anchorBreach || (x.BreachMinutes == rf.anchorBreach && x.DynoHours < rf.anchorHours) {
					rf.anchorBreach, rf.anchorHours = x.BreachMinutes, x.DynoHours
				}
				rf.minAnchorHours = min(rf.minAnchorHours, x.DynoHours)
			case "oracle":
				rf.oracleHours = x.DynoHours
			}
			fmt.Fprintf(w, "%s x%g %-10s breach %5d  dyno-h %9.1f\n", t.path, t.scale, x.Name, x.BreachMinutes, x.DynoHours)
		}
		refs[i] = rf
	}
	var rows []tuneRow
	for _, combo := range grid(sets) {
		q := dp
		if slices.ContainsFunc(combo, func(kv string) bool { return strings.HasPrefix(kv, "WINDOW=") }) {
			q.windowSet = false
		}
		pc, rr, also, err := q.load(append(slices.Clone(dp.env), prefixed(combo)...))
		if err != nil {
			fmt.Fprintf(w, "skip %v: %v\n", combo, err)
			continue
		}
		row := tuneRow{settings: combo}
		for i, t := range traces {
			res, err := sim.Run(ctx, t.tr, m, []sim.Contender{sim.Engine("dynopilot", "dynopilot", pc, rr, also...)}, sim.Options{})
			if err != nil {
				return err
			}
			b, h := res[0].BreachMinutes, res[0].DynoHours
			row.breach = append(row.breach, b)
			row.hours = append(row.hours, h)
			// The goal per trace: fewer breach minutes than the best anchor (no more when it has none), at no more
			// dyno-hours than it. Missing it costs 10 points per breach minute and per 1% of dyno-hours over; then
			// every 1% of dyno-hours above the oracle's costs a point.
			allowed := max(0, refs[i].anchorBreach-1)
			row.score += 10*float64(max(0, b-allowed)) + 1000*max(0, h/refs[i].anchorHours-1) + 100*(h/refs[i].oracleHours-1)
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].score < rows[b].score })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "score\tsettings")
	for i := range traces {
		fmt.Fprintf(tw, "\tbreach %d (anchor %d)\thours/oracle (best anchor %.2f)", i, refs[i].anchorBreach, refs[i].anchorHours/refs[i].oracleHours)
	}
	fmt.Fprintln(tw)
	for _, row := range rows[:min(len(rows), 40)] {
		fmt.Fprintf(tw, "%.1f\t%s", row.score, strings.Join(row.settings, " "))
		for i := range traces {
			fmt.Fprintf(tw, "\t%d\t%.3f", row.breach[i], row.hours[i]/refs[i].oracleHours)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func prefixed(kvs []string) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = "POLICY_0_" + kv
	}
	return out
}

func readEnv(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sim.ReadEnvFile(f, path)
}
