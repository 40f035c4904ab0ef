// Command simulate measures and tunes the backtest simulator (package sim).
//
//	go run ./bench/simulate                  time a 7-day one-second trace through dynopilot and every contender
//	go run ./bench/simulate -crosscheck      the model against the request-by-request simulation (README numbers)
//	go run ./bench/simulate -tune -set ...   search policy settings against the anchors and the oracle
//	go run ./bench/simulate -goal            the goal bench (issue 16, README numbers): every trace and shape under three apps
//	go run ./bench/simulate run --trace ...  the same as `dynopilot simulate`
//
// dynopilot is the recommended policy (sim.Recommend, reading the request rate and request queue time: for the
// simulator's default app with MAX 100 in the timing run and -tune, for each case's app and MAX in -goal), unless
// -env-file names a policy to run in its place. Such a policy's first metric reads what its MEASURE and WINDOW say,
// or -reading and -window when given; its further metrics read what their own MEASURE and WINDOW say.
//
// The speed goal: a 7-day trace at one-second resolution with one policy and all presets in under 5 s.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
		doGoal     = flag.Bool("goal", false, "run the goal bench: every trace in -traces and every synthetic shape under three app models, against the anchors and the oracle")
		goalJSON   = flag.String("goal-json", "", "-goal: also write the per-case numbers as JSON to this file")
		goalOnly   = flag.String("goal-only", "", "-goal: run only the cases whose trace/model label contains this (e.g. nasa, flash, /A)")
		traceDir   = flag.String("traces", "/work/shared/traces", "directory of the shared traces")
		envFile    = flag.String("env-file", "", "POLICY_0_ settings to run as dynopilot in place of the recommended policy (-goal: with the case's MIN and MAX)")
		runs       = flag.Int("n", 3, "benchmark runs")
		window     = flag.Duration("window", 10*time.Second, "-env-file: the first metric's reading window when given (default: its WINDOW, else this)")
		delay      = flag.Duration("delay", 15*time.Second, "reading delay")
		reading    = flag.String("reading", "", "-env-file: what the first metric reads: latency, queue-time, queue-size or rate (default: its MEASURE, else latency)")
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
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	dp, err := dynopilotPolicy(set["env-file"], *envFile, *reading, *window, set["window"], *delay)
	if err != nil {
		fail(err)
	}
	switch {
	case *doGoal:
		// The recommended policy for each model, unless -env-file names one to try in its place.
		dynopilot := recommended(*delay)
		if !dp.recommended {
			dynopilot = fromEnv(dp)
		}
		o := goalOptions{dir: *traceDir, only: *goalOnly, json: *goalJSON, delay: *delay}
		if err := goal(ctx, os.Stdout, os.Stderr, o, dynopilot); err != nil {
			fail(err)
		}
	case *doTune:
		ts, err := parseTraces(traceFlags)
		if err != nil {
			fail(err)
		}
		if err := tune(ctx, os.Stdout, dp, sets, ts, sim.DefaultModel()); err != nil {
			fail(err)
		}
	case *doCheck:
		if err := crossCheck(ctx, *traceDir); err != nil {
			fail(err)
		}
	default:
		if err := benchmark(ctx, *traceDir, dp, *runs); err != nil {
			fail(err)
		}
	}
}

// benchPolicy is the policy the bench runs as dynopilot, as POLICY_0_ settings, and how its readings are made: the
// first metric reads kind ("" for what its MEASURE says) over window when windowSet (else over its WINDOW, else
// window), the further metrics what their MEASURE and WINDOW say, every reading delay late (sim.PolicyReadings, as
// `dynopilot simulate --env-file` reads a policy).
type benchPolicy struct {
	env         []string
	recommended bool // env is sim.Recommend's lines for the default model
	kind        string
	window      time.Duration
	windowSet   bool
	delay       time.Duration
}

// dynopilotPolicy is the recommended policy for the simulator's default app (MAX 100, readings delay late), or
// when given (an explicit -env-file) the policy in envFile read as -reading and -window say.
func dynopilotPolicy(given bool, envFile, kind string, window time.Duration, windowSet bool, delay time.Duration) (benchPolicy, error) {
	if !given {
		if kind != "" || windowSet {
			return benchPolicy{}, errors.New("-reading and -window are for an -env-file policy: the recommended one reads the request rate and request queue time over 10s")
		}
		rec, err := sim.Recommend(sim.DefaultModel(), 100, delay)
		if err != nil {
			return benchPolicy{}, err
		}
		return benchPolicy{env: rec.Env, recommended: true, window: window, delay: delay}, nil
	}
	if envFile == "" {
		return benchPolicy{}, errors.New("-env-file: expected a file of POLICY_0_ settings")
	}
	if kind != "" {
		if _, err := sim.ParseReadingKind(kind); err != nil {
			return benchPolicy{}, fmt.Errorf("-reading: %w", err)
		}
	}
	env, err := readEnv(envFile)
	if err != nil {
		return benchPolicy{}, err
	}
	return benchPolicy{env: env, kind: kind, window: window, windowSet: windowSet, delay: delay}, nil
}

// load reads env (the policy's settings, or them changed) as policy 0 and says what its metrics read.
func (b benchPolicy) load(env []string) (*sim.PolicyConfig, sim.Reading, []sim.Reading, error) {
	pc, err := sim.LoadPolicy(env, 0)
	if err != nil {
		return nil, sim.Reading{}, nil, err
	}
	r, also, err := sim.PolicyReadings(env, 0, pc.Policy, b.kind, b.window, b.windowSet, b.delay)
	if err != nil {
		return nil, sim.Reading{}, nil, err
	}
	return pc, r, also, nil
}

// weekAtOneSecond is the WorldCup98 week (60 s steps) at one-second resolution: each second's count drawn from a
// Poisson distribution at its minute's rate (seeded), scaled to need tens of dynos at the peaks.
func weekAtOneSecond(dir string) (*sim.Trace, error) {
	tr, err := sim.LoadTrace(filepath.Join(dir, "worldcup98_0624_0630_1min.csv"))
	if err != nil {
		return nil, err
	}
	tr = tr.Scaled(0.1)
	out := tr.Counted(rand.New(rand.NewPCG(1998, 6)))
	out.Name = "worldcup98 week, 1 s Poisson"
	return out, nil
}

func benchmark(ctx context.Context, dir string, dp benchPolicy, runs int) error {
	tr, err := weekAtOneSecond(dir)
	if err != nil {
		return err
	}
	pc, r, also, err := dp.load(dp.env)
	if err != nil {
		return err
	}
	m := sim.DefaultModel()
	cs, err := sim.Contenders(pc, m, r, also...)
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
	rep := sim.NewReport(tr, m, r, res, also...)
	if dp.recommended {
		rep.Policy = dp.env
	}
	return rep.WriteTable(os.Stdout)
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
	// Each trace scaled so the app (10 requests per second per dyno) needs several dynos at its busy times and tens
	// at its peaks.
	for _, t := range []struct {
		name  string
		scale float64
	}{{"nasa_jul1995_1min.csv", 50}, {"azure_llm2023_conv_1s.csv", 5}, {"azure_llm2023_code_1s.csv", 5}} {
		tr, err := sim.LoadTrace(filepath.Join(dir, t.name))
		if err != nil {
			return err
		}
		if tr.Seconds() > 86400 { // one day is plenty (and a day of NASA is 3 million requests)
			tr.Rates = tr.Rates[86400 : 2*86400]
		}
		traces = append(traces, tr.Scaled(t.scale))
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

func fail(err error) {
	fmt.Fprintln(os.Stderr, "simulate:", err)
	os.Exit(1)
}
