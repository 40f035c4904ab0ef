package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/dynosize"
)

// ContenderNames returns the contenders `dynopilot simulate` can run, in the order they are reported.
func ContenderNames() []string {
	return []string{"dynopilot", "hpa", "judoscale", "hirefire", "heroku", "static", "oracle"}
}

// Command is `dynopilot simulate`: it replays a trace through the model with the policy read from env (or from
// --env-file) and every comparison contender, prints the table (or JSON with --json) and writes the chart with
// --chart. Exit code 0 on success, 2 for a wrong flag, setting or trace, 1 when something failed to be read or
// written or when ctx was done before the run finished (SIGTERM or Ctrl-C: `dynopilot simulate` stops within a
// second, says so, and writes no report or chart).
func Command(ctx context.Context, args []string, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := DefaultModel()
	var (
		tracePath   = fs.String("trace", "", "trace CSV (t_seconds,rate_per_second); required")
		scale       = fs.Float64("scale", 1, "multiply the trace's rates by this")
		envFile     = fs.String("env-file", "", "read POLICY_ settings from this KEY=VALUE file instead of the environment")
		policyN     = fs.Int("policy", 0, "which POLICY_<n>_ to simulate")
		capacity    = fs.Float64("capacity", def.Capacity, "requests per second one dyno completes when fully busy")
		service     = fs.Duration("service-time", 0, "mean service time of one request (default 1/capacity: one request at a time)")
		boot        = fs.Duration("boot", def.Boot, "time from scale-up to serving")
		objective   = fs.Duration("objective", def.Objective, "p95 latency objective; a minute above it is a breach")
		size        = fs.String("size", def.Size, "dyno size, for cost and the size limit")
		reading     = fs.String("reading", "latency", "what the policy reads: latency (p95), queue-time (p95), queue-size (mean waiting), rate (mean arrivals per second)")
		window      = fs.Duration("window", 30*time.Second, "the reading covers this much time")
		delay       = fs.Duration("delay", 15*time.Second, "the reading is this late")
		initial     = fs.Int("initial", 0, "dynos at the start, serving (default: what the first boot period needs)")
		start       = fs.String("start", DefaultStart().Format(time.RFC3339), "wall time of the trace's first second (schedules, cron intervals)")
		contenders  = fs.String("contenders", strings.Join(ContenderNames(), ","), "comma-separated contenders to run")
		jsonOut     = fs.Bool("json", false, "print JSON instead of the table")
		chart       = fs.String("chart", "", "write a chart of dynopilot beside the best anchor to this .svg file")
		description = "Replays a traffic trace through a model of the app's dynos, driving the real policy engine and the anchors' policies on a virtual clock."
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: dynopilot simulate --trace FILE [flags]\n\n%s\n\n", description)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "simulate: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q: expected only flags", fs.Arg(0))
	}
	if *tracePath == "" {
		return usage("--trace is required: a CSV file with header %s", TraceHeader)
	}
	if !(*scale > 0) {
		return usage("--scale %v: expected a number above 0", *scale)
	}
	kind, err := ParseReadingKind(*reading)
	if err != nil {
		return usage("--%v", err)
	}
	if *window < time.Second || *delay < 0 {
		return usage("--window %v and --delay %v: expected a window of at least 1s and a delay of 0 or more", *window, *delay)
	}
	startAt, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return usage("--start %q: expected an RFC 3339 time such as 2026-01-05T00:00:00Z", *start)
	}
	names := strings.Split(*contenders, ",")
	for _, n := range names {
		if !slices.Contains(ContenderNames(), n) {
			return usage("--contenders: %q: expected some of %s", n, strings.Join(ContenderNames(), ","))
		}
	}
	if *chart != "" {
		if !strings.EqualFold(filepath.Ext(*chart), ".svg") {
			return usage("--chart %q: %s", *chart, ChartFormatHelp)
		}
	}
	m := Model{Capacity: *capacity, ServiceTime: *service, Boot: *boot, Objective: *objective, Size: *size}
	if err := m.Validate(); err != nil {
		return usage("model: %v", err)
	}
	if *envFile != "" {
		f, err := os.Open(*envFile)
		if err != nil {
			fmt.Fprintf(stderr, "simulate: %v\n", err)
			return 1
		}
		env, err = ReadEnvFile(f, *envFile)
		f.Close()
		if err != nil {
			return usage("%v", err)
		}
	}
	pc, err := LoadPolicy(env, *policyN)
	if err != nil {
		return usage("policy settings:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	tr, err := LoadTraceContext(ctx, *tracePath)
	if err != nil {
		var pe *os.PathError
		var stop *StoppedError
		if errors.As(err, &stop) {
			fmt.Fprintf(stderr, "simulate: %v; no report written\n", err)
			return 1
		}
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "simulate: %v\n", err)
			return 1
		}
		return usage("%v", err)
	}
	if *scale != 1 {
		tr = tr.Scaled(*scale)
	}
	r := Reading{Kind: kind, Window: *window, Delay: *delay}
	all, err := Contenders(pc, m, r)
	if err != nil {
		return usage("%v", err)
	}
	var run []Contender
	for _, c := range all {
		if slices.Contains(names, c.Name) {
			run = append(run, c)
		}
	}
	opt := Options{Start: startAt, Initial: *initial, Series: *chart != ""}
	results, err := Run(ctx, tr, m, run, opt)
	if err != nil {
		var stop *StoppedError
		if errors.As(err, &stop) {
			fmt.Fprintf(stderr, "simulate: %v; no report written\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "simulate: %v\n", err)
		return 1
	}
	rep := NewReport(tr, m, r, results)
	if *jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "simulate: write report: %v\n", err)
		return 1
	}
	if *chart != "" {
		if err := WriteChartFile(*chart, rep); err != nil {
			fmt.Fprintf(stderr, "simulate: %v\n", err)
			return 1
		}
	}
	return 0
}

// Contenders builds every contender for a policy: dynopilot (the policy itself), the anchors, static and oracle, the
// last two within the policy's MIN and MAX and the dyno size's limit (SIZE_LIMIT when set); the oracle within the
// policy's SCHEDULE windows too, second by second (PolicyOracle), while static, one count for the whole run, keeps
// to MIN and MAX.
func Contenders(pc *PolicyConfig, m Model, r Reading) ([]Contender, error) {
	anchors, err := Anchors(pc.Policy, m, r)
	if err != nil {
		return nil, err
	}
	limit := pc.Policy.SizeLimit
	if limit <= 0 {
		limit = dynosize.Limit(m.Size)
	}
	hi := min(pc.Policy.Max, limit)
	out := []Contender{Engine("dynopilot", "dynopilot", pc, r)}
	out = append(out, anchors...)
	oracle := PolicyOracle(pc.Policy)
	oracle.Settings["MAX"] = fmt.Sprint(hi) // as static's: within the size limit
	out = append(out, Static(pc.Policy.Min, hi), oracle)
	return out, nil
}
