// Command simulate measures and tunes the backtest simulator (package sim).
//
//	go run ./bench/simulate                  time a 7-day one-second trace through dynopilot and every contender
//	go run ./bench/simulate -crosscheck      the model against the request-by-request simulation (README numbers)
//	go run ./bench/simulate -tables          the comparison table for every shared trace (README numbers)
//	go run ./bench/simulate -frontier        what reacting can reach at all on each trace, against the goal
//	go run ./bench/simulate -tune -set ...   search policy settings against the anchors and the oracle
//	go run ./bench/simulate -goal            the goal bench (issue 16): every trace and synthetic shape under three apps
//	go run ./bench/simulate run --trace ...  the same as `dynopilot simulate`
//
// The speed goal: a 7-day trace at one-second resolution with one policy and all presets in under 5 s.
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var (
		doTune     = flag.Bool("tune", false, "search settings (-set KEY=a|b ...) over -trace FILE:SCALE ...")
		doCheck    = flag.Bool("crosscheck", false, "print the model's agreement with the request-by-request simulation")
		doTables   = flag.Bool("tables", false, "print the comparison table (markdown) for every trace in -traces at its README scale")
		doFrontier = flag.Bool("frontier", false, "print what a controller that reacts with an exact model reaches on every trace, against the goal")
		doGoal     = flag.Bool("goal", false, "run the goal bench: every trace in -traces and every synthetic shape under three app models, against the anchors and the oracle")
		goalJSON   = flag.String("goal-json", "", "-goal: also write the per-case numbers as JSON to this file")
		goalOnly   = flag.String("goal-only", "", "-goal: run only the cases whose trace/model label contains this (e.g. nasa, flash, /A)")
		traceDir   = flag.String("traces", "/work/shared/traces", "directory of the shared traces")
		envFile    = flag.String("env-file", "sim/testdata/recommended.env", "POLICY_0_ settings for dynopilot (-goal: only when given, in place of the recommended policy, with the case's MIN and MAX)")
		rateFile   = flag.String("rate-env-file", "sim/testdata/recommended-rate.env", "-tables, -frontier: POLICY_0_ settings for dynopilot-rate, read with -rate-window")
		rateWindow = flag.Duration("rate-window", 10*time.Second, "-tables, -frontier: the window of dynopilot-rate's reading, the request rate")
		runs       = flag.Int("n", 3, "benchmark runs")
		window     = flag.Duration("window", 10*time.Second, "reading window (the recommended policy reads 10 s windows)")
		delay      = flag.Duration("delay", 15*time.Second, "reading delay")
		reading    = flag.String("reading", "queue-time", "reading kind (the recommended policy reads request queue time)")
		sets       multi
		traceFlags multi
	)
	flag.Var(&sets, "set", "KEY=v1|v2|... (repeatable)")
	flag.Var(&traceFlags, "trace", "FILE:SCALE (repeatable)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if flag.NArg() > 0 && flag.Arg(0) == "run" {
		os.Exit(sim.Command(ctx, flag.Args()[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	kind, err := sim.ParseReadingKind(*reading)
	if err != nil {
		fail(err)
	}
	r := sim.Reading{Kind: kind, Window: *window, Delay: *delay}
	base, err := readEnv(*envFile)
	if err != nil {
		fail(err)
	}
	switch {
	case *doGoal:
		// The recommended policy for each model, unless -env-file names one to try in its place.
		dynopilot := recommended(*delay)
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "env-file" {
				dynopilot = fromEnv(base, r)
			}
		})
		o := goalOptions{dir: *traceDir, only: *goalOnly, json: *goalJSON, delay: *delay}
		if err := goal(ctx, os.Stdout, os.Stderr, o, dynopilot); err != nil {
			fail(err)
		}
	case *doTune:
		ts, err := parseTraces(traceFlags)
		if err != nil {
			fail(err)
		}
		if err := tune(ctx, os.Stdout, base, sets, ts, sim.DefaultModel(), r); err != nil {
			fail(err)
		}
	case *doCheck:
		if err := crossCheck(ctx, *traceDir); err != nil {
			fail(err)
		}
	case *doTables:
		rate, err := rateContender(*rateFile, sim.Reading{Kind: sim.ReadingRate, Window: *rateWindow, Delay: *delay})
		if err != nil {
			fail(err)
		}
		if err := tables(ctx, *traceDir, base, r, rate); err != nil {
			fail(err)
		}
	case *doFrontier:
		rate, err := rateContender(*rateFile, sim.Reading{Kind: sim.ReadingRate, Window: *rateWindow, Delay: *delay})
		if err != nil {
			fail(err)
		}
		if err := frontier(ctx, *traceDir, base, r, rate); err != nil {
			fail(err)
		}
	default:
		if err := benchmark(ctx, *traceDir, base, r, *runs); err != nil {
			fail(err)
		}
	}
}

// readmeScales returns the scales the README's tables use: each trace scaled so the app needs several dynos at its
// busy times and tens at its peaks (10 requests per second per dyno).
func readmeScales() map[string]float64 {
	return map[string]float64{
		"nasa_jul1995_1min.csv":            50,
		"worldcup98_0624_0630_1min.csv":    0.1,
		"alibaba_ms2021_6d9c26b9_1min.csv": 0.5,
		"azure_llm2023_code_1s.csv":        5,
		"azure_llm2023_conv_1s.csv":        5,
	}
}

// weekAtOneSecond is the WorldCup98 week (60 s steps) at one-second resolution: each second's count drawn from a
// Poisson distribution at its minute's rate (seeded), scaled to need tens of dynos at the peaks.
func weekAtOneSecond(dir string) (*sim.Trace, error) {
	tr, err := sim.LoadTrace(filepath.Join(dir, "worldcup98_0624_0630_1min.csv"))
	if err != nil {
		return nil, err
	}
	tr = tr.Scaled(0.1)
	rng := rand.New(rand.NewPCG(1998, 6))
	out := &sim.Trace{Name: "worldcup98 week, 1 s Poisson", Step: 1, Scale: tr.Scale, Rates: make([]float64, len(tr.Rates))}
	for i, mean := range tr.Rates {
		out.Rates[i] = poisson(rng, mean)
	}
	return out, nil
}

func poisson(rng *rand.Rand, mean float64) float64 {
	if mean < 30 { // Knuth's method
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

func benchmark(ctx context.Context, dir string, base []string, r sim.Reading, runs int) error {
	tr, err := weekAtOneSecond(dir)
	if err != nil {
		return err
	}
	pc, err := sim.LoadPolicy(base, 0)
	if err != nil {
		return err
	}
	m := sim.DefaultModel()
	cs, err := sim.Contenders(pc, m, r)
	if err != nil {
		return err
	}
	var times []time.Duration
	var res []sim.Result
	for range runs {
		start := time.Now()
		res, err = sim.Run(ctx, tr, m, cs, sim.Options{})
		if err != nil {
			return err
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	fmt.Printf("%s: %d seconds x %d contenders (%s), %d runs: best %v, median %v (goal: under 5s)\n", tr.Name, tr.Seconds(),
		len(cs), names(res), runs, times[0].Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond))
	return sim.NewReport(tr, m, r, res).WriteTable(os.Stdout)
}

func names(res []sim.Result) string {
	var n []string
	for _, r := range res {
		n = append(n, r.Name)
	}
	return strings.Join(n, ", ")
}

func crossCheck(ctx context.Context, dir string) error {
	var traces []*sim.Trace
	for _, name := range []string{"nasa_jul1995_1min.csv", "azure_llm2023_conv_1s.csv", "azure_llm2023_code_1s.csv"} {
		tr, err := sim.LoadTrace(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if tr.Seconds() > 86400 { // one day is plenty (and a day of NASA is 3 million requests)
			tr.Rates = tr.Rates[86400 : 2*86400]
		}
		traces = append(traces, tr.Scaled(readmeScales()[name]))
	}
	sc, err := sim.StandardScenarios(ctx, traces)
	if err != nil {
		return err
	}
	rs, err := sim.CrossCheck(ctx, sc, 1)
	if err != nil {
		return err
	}
	return sim.WriteCrossCheck(os.Stdout, rs)
}

// rateContender is dynopilot run with the rate policy (recommended-rate.env), to sit beside the queue-time one.
func rateContender(path string, r sim.Reading) (sim.Contender, error) {
	env, err := readEnv(path)
	if err != nil {
		return sim.Contender{}, err
	}
	pc, err := sim.LoadPolicy(env, 0)
	if err != nil {
		return sim.Contender{}, err
	}
	return sim.Engine("dynopilot-rate", "dynopilot", pc, r), nil
}

// withRate is the contenders for the queue-time policy (base) with the rate policy's run second, and the
// queue-time policy itself.
func withRate(base []string, r sim.Reading, rate sim.Contender) ([]sim.Contender, *sim.PolicyConfig, error) {
	pc, err := sim.LoadPolicy(base, 0)
	if err != nil {
		return nil, nil, err
	}
	cs, err := sim.Contenders(pc, sim.DefaultModel(), r)
	if err != nil {
		return nil, nil, err
	}
	return slices.Insert(cs, 1, rate), pc, nil
}

// eachReadmeTrace runs the contenders over every shared trace at its README scale, in name order, and hands each
// trace's results to do.
func eachReadmeTrace(ctx context.Context, dir string, m sim.Model, cs []sim.Contender, do func(file string, tr *sim.Trace, res []sim.Result)) error {
	files := slices.Sorted(maps.Keys(readmeScales()))
	for _, f := range files {
		tr, err := sim.LoadTrace(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		tr = tr.Scaled(readmeScales()[f])
		res, err := sim.Run(ctx, tr, m, cs, sim.Options{})
		if err != nil {
			return err
		}
		do(f, tr, res)
	}
	return nil
}

func tables(ctx context.Context, dir string, base []string, r sim.Reading, rate sim.Contender) error {
	m := sim.DefaultModel()
	cs, _, err := withRate(base, r, rate)
	if err != nil {
		return err
	}
	return eachReadmeTrace(ctx, dir, m, cs, func(f string, tr *sim.Trace, res []sim.Result) {
		rep := sim.NewReport(tr, m, r, res)
		oracle := rep.Result("oracle")
		fmt.Printf("\n**%s** at scale %g (%s, peak %.0f req/s)\n\n", f, tr.Scale, time.Duration(tr.Seconds())*time.Second, tr.Peak())
		fmt.Println("| contender | breach minutes | H12 errors | p95 | p99 | dyno-hours | vs oracle | cost | scale events |")
		fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, x := range res {
			name := x.Name
			if name == rep.BestAnchor {
				name += " (best anchor)"
			}
			h12 := "0"
			if x.H12 >= 0.5 {
				h12 = fmt.Sprintf("%.0f (%.2g%%)", x.H12, 100*x.H12/x.Requests)
			}
			fmt.Printf("| %s | %d | %s | %s | %s | %.1f | %+.0f%% | $%.2f | %d |\n", name, x.BreachMinutes, h12, secs(x.P95), secs(x.P99),
				x.DynoHours, 100*(x.DynoHours/oracle.DynoHours-1), x.Cost, x.ScaleEvents)
		}
		for _, d := range res {
			if d.Kind == "dynopilot" {
				fmt.Printf("\n%s\n", goals(d, res, oracle))
			}
		}
	})
}

// goals states the goals for dynopilot against this trace's results: against each anchor, fewer breach
// minutes (none when the anchor has none) at no more dyno-hours; and dyno-hours within 25% of the oracle's.
func goals(d sim.Result, res []sim.Result, oracle *sim.Result) string {
	var parts []string
	for _, a := range res {
		if a.Kind != "anchor" {
			continue
		}
		fewer := d.BreachMinutes < a.BreachMinutes || (a.BreachMinutes == 0 && d.BreachMinutes == 0)
		cheaper := d.DynoHours <= a.DynoHours
		verdict := "met"
		switch {
		case !fewer && !cheaper:
			verdict = "missed (breaches and dyno-hours)"
		case !fewer:
			verdict = "missed (breaches)"
		case !cheaper:
			verdict = fmt.Sprintf("missed (dyno-hours %+.0f%%)", 100*(d.DynoHours/a.DynoHours-1))
		}
		parts = append(parts, fmt.Sprintf("vs %s %s", a.Name, verdict))
	}
	within := "met"
	if d.DynoHours > 1.25*oracle.DynoHours {
		within = "missed"
	}
	return fmt.Sprintf("Goals for %s: %s; within 25%% of the oracle's dyno-hours %s (%+.0f%%).",
		d.Name, strings.Join(parts, ", "), within, 100*(d.DynoHours/oracle.DynoHours-1))
}

func secs(s float64) string {
	d := time.Duration(s * 1e9)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "simulate:", err)
	os.Exit(1)
}
