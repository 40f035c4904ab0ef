package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/internal/dynosize"
	"github.com/dynopilot/dynopilot/sim"
)

// The goal bench (issue 16): does dynopilot's recommended policy hold its own against the anchors on every kind of
// traffic, at every app size? A case is a trace under an app model, scaled to a size; per case:
//
//   - B* is the fewest breach minutes of any anchor (hpa, judoscale, hirefire, heroku; static and oracle are
//     references, not anchors);
//   - criterion 1: no anchor dominates dynopilot (as few or fewer breach minutes and dyno-hours, one of them fewer);
//   - criterion 2: dynopilot's breach minutes are at most max(B*+2, 1.25 B*): as good as the best anchor, allowing
//     the noise of a couple of minutes or a quarter;
//   - ratio: dynopilot's dyno-hours over the oracle's.
//
// Across cases, criterion 3: the median ratio is at most 1.4.
//
// Sizes. Each trace is scaled so that its peak 1-minute mean rate needs N dynos at the model's capacity (peak / C =
// N), N being 20, 40 or 60 in turn by trace and model: trace i (the shared traces by file name, then the shapes)
// under model j (A, B, C) gets N = 20 × (1 + (i+j) mod 3), so every trace is seen at the three sizes and every model
// at all of them. Bounds for every contender: MIN 1, MAX 2N (room above the peak for the queue and for overshoot)
// but at most the dyno size's limit (100 for Standard-1X), which the engine and the oracle would apply anyway.
func goalSize(trace, model int) int { return 20 * (1 + (trace+model)%3) }

// goalModel is one of the apps every trace runs under.
type goalModel struct {
	Name string
	sim.Model
}

// goalModels are three apps from slow to fast: A has small dynos that take 90 s to boot, so a controller must act
// early; C has big ones that boot in 20 s; B is the simulator's default app. Their objectives differ too, so that no
// threshold tuned for one fits the others by chance.
func goalModels() []goalModel {
	size := sim.DefaultModel().Size
	return []goalModel{
		{"A", sim.Model{Capacity: 5, Boot: 90 * time.Second, Objective: time.Second, Size: size}},
		{"B", sim.Model{Capacity: 10, Boot: 45 * time.Second, Objective: 500 * time.Millisecond, Size: size}},
		{"C", sim.Model{Capacity: 25, Boot: 20 * time.Second, Objective: 750 * time.Millisecond, Size: size}},
	}
}

// dynopilotFunc builds the contender under test for a model and its MAX. The bench takes it as a parameter so an
// experiment can put any policy in dynopilot's seat without touching the bench.
type dynopilotFunc func(m sim.Model, maxDynos int) (sim.Contender, error)

// recommended is dynopilot's recommended policy for the model (sim.Recommend) with readings delay late, the
// default contender.
func recommended(delay time.Duration) dynopilotFunc {
	return func(m sim.Model, maxDynos int) (sim.Contender, error) {
		r, err := sim.Recommend(m, maxDynos, delay)
		if err != nil {
			return sim.Contender{}, fmt.Errorf("recommend: %w", err)
		}
		return r.Contender(), nil
	}
}

// fromEnv is the policy of an -env-file (dp), read as its flags say, in place of the recommended one; MIN and MAX are
// the case's, like every contender's.
func fromEnv(dp benchPolicy) dynopilotFunc {
	return func(m sim.Model, maxDynos int) (sim.Contender, error) {
		pc, r, also, err := dp.load(withBounds(dp.env, maxDynos))
		if err != nil {
			return sim.Contender{}, fmt.Errorf("env-file policy: %w", err)
		}
		return sim.Engine("dynopilot", "dynopilot", pc, r, also...), nil
	}
}

// withBounds is env with POLICY_0_MIN=1 and POLICY_0_MAX=maxDynos in place of its own.
func withBounds(env []string, maxDynos int) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "POLICY_0_MIN=") || strings.HasPrefix(kv, "POLICY_0_MAX=")
	})
	return append(out, "POLICY_0_MIN=1", fmt.Sprintf("POLICY_0_MAX=%d", maxDynos))
}

// goalCase is one trace under one model, scaled.
type goalCase struct {
	label string // trace/model, what -goal-only matches
	trace string
	model goalModel
	tr    *sim.Trace // scaled
	need  int        // the scaled peak 1-minute rate over the capacity
	max   int
	cs    []sim.Contender // dynopilot, the four anchors, static, oracle
}

// GoalRow is one case's numbers, as the table and the JSON show them.
type GoalRow struct {
	Trace        string       `json:"trace"`
	Model        string       `json:"model"`
	Scale        float64      `json:"scale"`
	Need         int          `json:"peak_dynos_needed"`
	Max          int          `json:"max"`
	Results      []sim.Result `json:"contenders"` // dynopilot, hpa, judoscale, hirefire, heroku, static, oracle
	BStar        int          `json:"b_star"`
	Bound        float64      `json:"bound"`
	Ratio        float64      `json:"ratio"`
	NotDominated bool         `json:"criterion_1"`
	DominatedBy  []string     `json:"dominated_by,omitempty"`
	WithinBound  bool         `json:"criterion_2"`
	RunSeconds   float64      `json:"run_seconds"`  // its contenders' run times, added (at most GOMAXPROCS run at once)
	WallSeconds  float64      `json:"wall_seconds"` // from its first contender's start to its last one's end
}

// GoalSummary is the verdict across cases.
type GoalSummary struct {
	Cases       int     `json:"cases"`
	Criterion1  int     `json:"criterion_1_passed"`
	Criterion2  int     `json:"criterion_2_passed"`
	MedianRatio float64 `json:"median_ratio"`
	Criterion3  bool    `json:"criterion_3"`
	Seconds     float64 `json:"seconds"`
}

// goalOptions are the goal bench's flags.
type goalOptions struct {
	dir   string        // the shared traces
	only  string        // run the cases whose label contains it
	json  string        // file for the per-case numbers, when set
	delay time.Duration // the reading delay, every contender's
}

// goal runs the goal bench and writes its table to w and its progress to progress.
func goal(ctx context.Context, w, progress io.Writer, o goalOptions, dynopilot dynopilotFunc) error {
	start := time.Now()
	cases, err := goalCases(ctx, o, dynopilot)
	if err != nil {
		return err
	}
	if len(cases) == 0 {
		return fmt.Errorf("goal: no case matches -goal-only %q", o.only)
	}
	rows, err := runGoal(ctx, progress, cases)
	if err != nil {
		return err
	}
	sum := summarize(rows, time.Since(start))
	writeGoal(w, rows, sum)
	if o.json != "" {
		data, err := json.MarshalIndent(struct {
			Cases   []GoalRow   `json:"cases"`
			Summary GoalSummary `json:"summary"`
		}{rows, sum}, "", "  ")
		if err != nil {
			return fmt.Errorf("goal json: %w", err)
		}
		if err := os.WriteFile(o.json, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("goal json: %w", err)
		}
	}
	return nil
}

// goalCases is every shared trace in o.dir (by file name) and every synthetic shape, under every model, scaled and
// with their contenders; only the cases -goal-only selects, and only their traces are read.
func goalCases(ctx context.Context, o goalOptions, dynopilot dynopilotFunc) ([]goalCase, error) {
	files, err := filepath.Glob(filepath.Join(o.dir, "*.csv"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("goal: no traces (*.csv) in %s: %v", o.dir, err)
	}
	type source struct {
		name string
		load func() (*sim.Trace, error)
	}
	var sources []source
	for _, f := range files { // sorted by Glob
		sources = append(sources, source{strings.TrimSuffix(filepath.Base(f), ".csv"),
			func() (*sim.Trace, error) { return sim.LoadTraceContext(ctx, f) }})
	}
	for _, tr := range sim.Shapes() {
		sources = append(sources, source{tr.Name, func() (*sim.Trace, error) { return tr, nil }})
	}
	r := sim.Reading{Delay: o.delay} // the anchors keep their own kinds and windows
	var out []goalCase
	for i, src := range sources {
		var tr *sim.Trace
		for j, m := range goalModels() {
			c := goalCase{label: src.name + "/" + m.Name, trace: src.name, model: m, need: goalSize(i, j)}
			if !strings.Contains(c.label, o.only) {
				continue
			}
			if tr == nil {
				if tr, err = src.load(); err != nil {
					return nil, fmt.Errorf("goal: trace %s: %w", src.name, err)
				}
			}
			c.tr = tr.Scaled(float64(c.need) * m.Capacity / peakMinute(tr))
			c.max = min(2*c.need, dynosize.Limit(m.Size))
			if c.cs, err = goalContenders(m, c.max, r, dynopilot); err != nil {
				return nil, fmt.Errorf("goal: %s: %w", c.label, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// goalContenders is dynopilot's contender, the four anchors, static and the oracle, all within [1, maxDynos].
func goalContenders(m goalModel, maxDynos int, r sim.Reading, dynopilot dynopilotFunc) ([]sim.Contender, error) {
	// The bounds the anchors and the oracle share; the rest of this policy is never run.
	base, err := sim.LoadPolicy(withBounds([]string{"POLICY_0_MODE=target", "POLICY_0_TARGET=1"}, maxDynos), 0)
	if err != nil {
		return nil, fmt.Errorf("bounds: %w", err)
	}
	d, err := dynopilot(m.Model, maxDynos)
	if err != nil {
		return nil, err
	}
	anchors, err := sim.Anchors(base.Policy, m.Model, r)
	if err != nil {
		return nil, fmt.Errorf("anchors: %w", err)
	}
	out := append([]sim.Contender{d}, anchors...)
	return append(out, sim.Static(1, maxDynos), sim.PolicyOracle(base.Policy)), nil
}

// peakMinute is the highest mean rate of any whole minute of the trace (the last one, if shorter, over its seconds).
func peakMinute(tr *sim.Trace) float64 {
	peak := 0.0
	for s := 0; s < len(tr.Rates); s += 60 {
		part := tr.Rates[s:min(len(tr.Rates), s+60)]
		sum := 0.0
		for _, r := range part {
			sum += r
		}
		peak = max(peak, sum/float64(len(part)))
	}
	return peak
}

// runGoal runs every case's contenders, each contender of each case a job on its own, GOMAXPROCS jobs at a time,
// longest traces first: one sim.Run per contender keeps every core busy to the end, where a run of a case's
// contenders together waits for its slowest one (the oracle's verification rounds). The results are those of
// running them together: contenders share nothing but the read-only trace.
func runGoal(parent context.Context, progress io.Writer, cases []goalCase) ([]GoalRow, error) {
	ctx, cancel := context.WithCancelCause(parent) // the first failure stops the rest
	defer cancel(nil)
	type job struct{ c, k int }
	var jobs []job
	results := make([][]sim.Result, len(cases))
	for i, c := range cases {
		results[i] = make([]sim.Result, len(c.cs))
		for k := range c.cs {
			jobs = append(jobs, job{i, k})
		}
	}
	slices.SortStableFunc(jobs, func(a, b job) int { return cmp.Compare(cases[b.c].tr.Seconds(), cases[a.c].tr.Seconds()) })
	var (
		mu          sync.Mutex
		left        = make([]int, len(cases))
		first, last = make([]time.Time, len(cases)), make([]time.Time, len(cases))
		runs        = make([]time.Duration, len(cases))
		done        int
		queue       = make(chan job)
		wg          sync.WaitGroup
	)
	for i, c := range cases {
		left[i] = len(c.cs)
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range queue {
				c := &cases[j.c]
				began := time.Now()
				mu.Lock()
				if first[j.c].IsZero() {
					first[j.c] = began
				}
				mu.Unlock()
				res, err := sim.Run(ctx, c.tr, c.model.Model, c.cs[j.k:j.k+1], sim.Options{})
				if err != nil {
					cancel(fmt.Errorf("goal: %s, %s: %w", c.label, c.cs[j.k].Name, err))
					continue
				}
				mu.Lock()
				results[j.c][j.k] = res[0]
				runs[j.c] += time.Since(began)
				if left[j.c]--; left[j.c] == 0 {
					last[j.c] = time.Now()
					done++
					fmt.Fprintf(progress, "goal: %d/%d %s (%d dynos, %.3g d): %.1fs wall, %.1fs summed over its contenders\n", done, len(cases), c.label,
						c.need, float64(c.tr.Seconds())/86400, last[j.c].Sub(first[j.c]).Seconds(), runs[j.c].Seconds())
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("goal: stopped after %d of %d cases: %w", done, len(cases), err)
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	rows := make([]GoalRow, len(cases))
	for i, c := range cases {
		rows[i] = judge(c, results[i])
		rows[i].RunSeconds, rows[i].WallSeconds = runs[i].Seconds(), last[i].Sub(first[i]).Seconds()
	}
	return rows, nil
}

// judge applies criteria 1 and 2 to one case's results (dynopilot's first, the oracle's last).
func judge(c goalCase, res []sim.Result) GoalRow {
	row := GoalRow{Trace: c.trace, Model: c.model.Name, Scale: c.tr.Scale, Need: c.need, Max: c.max, Results: res,
		BStar: math.MaxInt}
	d, oracle := res[0], res[len(res)-1]
	for _, a := range res[1:] {
		if a.Kind != "anchor" {
			continue
		}
		row.BStar = min(row.BStar, a.BreachMinutes)
		if a.BreachMinutes <= d.BreachMinutes && a.DynoHours <= d.DynoHours &&
			(a.BreachMinutes < d.BreachMinutes || a.DynoHours < d.DynoHours) {
			row.DominatedBy = append(row.DominatedBy, a.Name)
		}
	}
	row.Bound = max(float64(row.BStar+2), 1.25*float64(row.BStar))
	row.NotDominated = len(row.DominatedBy) == 0
	row.WithinBound = float64(d.BreachMinutes) <= row.Bound
	row.Ratio = d.DynoHours / oracle.DynoHours
	return row
}

func summarize(rows []GoalRow, took time.Duration) GoalSummary {
	s := GoalSummary{Cases: len(rows), Seconds: took.Seconds()}
	var ratios []float64
	for _, r := range rows {
		if r.NotDominated {
			s.Criterion1++
		}
		if r.WithinBound {
			s.Criterion2++
		}
		ratios = append(ratios, r.Ratio)
	}
	slices.Sort(ratios)
	n := len(ratios)
	s.MedianRatio = (ratios[(n-1)/2] + ratios[n/2]) / 2
	s.Criterion3 = s.MedianRatio <= 1.4
	return s
}

// writeGoal prints the table (markdown) and the summary.
func writeGoal(w io.Writer, rows []GoalRow, s GoalSummary) {
	fmt.Fprintln(w, "Models:")
	for _, m := range goalModels() {
		fmt.Fprintf(w, "- %s: %g req/s per dyno, boot %v, p95 objective %v, %s\n", m.Name, m.Capacity, m.Boot, m.Objective, m.Size)
	}
	fmt.Fprintln(w, "\nEach trace is scaled so that its peak 1-minute mean rate is N dynos' capacity (peak dynos, 20, 40 or 60 in turn);"+
		" every contender runs within MIN 1 and MAX min(2N, 100). Cells are breach minutes / dyno-hours (static and the oracle"+
		" breach only where MAX holds them back). B*: the fewest breach minutes of an anchor; bound: max(B*+2, 1.25 B*);"+
		" ratio: dynopilot's dyno-hours / the oracle's. 1: no anchor dominates dynopilot (else: who does); 2: dynopilot's breach minutes <= bound.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| trace | model | scale | peak dynos | dynopilot | hpa | judoscale | hirefire | heroku | static | oracle | B* | bound | ratio | 1 | 2 |")
	fmt.Fprintln(w, "|---|:-:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|")
	mark := func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	}
	for _, r := range rows {
		cells := make([]string, 0, len(r.Results))
		for _, x := range r.Results {
			cells = append(cells, fmt.Sprintf("%d / %.1f", x.BreachMinutes, x.DynoHours))
		}
		one := mark(r.NotDominated)
		if !r.NotDominated {
			one += " " + strings.Join(r.DominatedBy, ", ")
		}
		fmt.Fprintf(w, "| %s | %s | %.3g | %d | %s | %d | %.4g | %.2f | %s | %s |\n", r.Trace, r.Model, r.Scale, r.Need,
			strings.Join(cells, " | "), r.BStar, r.Bound, r.Ratio, one, mark(r.WithinBound))
	}
	fmt.Fprintf(w, "\nCriterion 1 (no anchor dominates): %d of %d cases. Criterion 2 (breach minutes within the bound): %d of %d cases.\n",
		s.Criterion1, s.Cases, s.Criterion2, s.Cases)
	fmt.Fprintf(w, "Criterion 3 (median ratio <= 1.4): median %.3f, %s. Runtime %s.\n", s.MedianRatio, map[bool]string{true: "met", false: "missed"}[s.Criterion3],
		time.Duration(s.Seconds*float64(time.Second)).Round(100*time.Millisecond))
}
