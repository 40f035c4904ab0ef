package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/dynosize"
	"github.com/dynopilot/dynopilot/policy"
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
		envFile     = fs.String("env-file", "", "test the policy in this KEY=VALUE file (POLICY_ settings) instead of the recommended one")
		fromEnv     = fs.Bool("environment", false, "test the policy in the process environment's POLICY_ settings instead of the recommended one")
		maxDynos    = fs.Int("max", 0, "the recommended policy's MAX (default: twice what the trace's busiest minute needs, within the size limit)")
		policyN     = fs.Int("policy", 0, "which POLICY_<n>_ to simulate")
		capacity    = fs.Float64("capacity", def.Capacity, "requests per second one dyno completes when fully busy")
		service     = fs.Duration("service-time", 0, "mean service time of one request (default 1/capacity: one request at a time)")
		boot        = fs.Duration("boot", def.Boot, "time from scale-up to serving")
		objective   = fs.Duration("objective", def.Objective, "p95 latency objective; a minute above it is a breach")
		size        = fs.String("size", def.Size, "dyno size, for cost and the size limit")
		reading     = fs.String("reading", "", "what a tested policy's first metric reads: latency (p95), queue-time (p95), queue-size (mean waiting), rate (mean arrivals per second); default: its MEASURE, else latency")
		window      = fs.Duration("window", 30*time.Second, "a tested policy's readings cover this much time, unless its WINDOW says")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	tested := *envFile != "" || *fromEnv
	if !tested {
		for _, name := range []string{"reading", "window", "policy"} {
			if set[name] {
				return usage("--%s is for a policy from --env-file or --environment: the recommended policy reads the request rate and request queue time over 10s", name)
			}
		}
	} else if set["max"] {
		return usage("--max is the recommended policy's: a tested policy has its own POLICY_%d_MAX", *policyN)
	}
	if *envFile != "" && *fromEnv {
		return usage("--env-file and --environment: expected one of them")
	}
	if *maxDynos < 0 || *maxDynos > policy.MaxQuantity {
		return usage("--max %d: expected a whole number from 1 to %d", *maxDynos, policy.MaxQuantity)
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
	var (
		pc       *PolicyConfig
		r        Reading
		also     []Reading
		rec      *Recommended
		policyEr error
	)
	if tested {
		if pc, policyEr = LoadPolicy(env, *policyN); policyEr == nil {
			r, also, policyEr = PolicyReadings(env, *policyN, pc.Policy, *reading, *window, set["window"], *delay)
		}
		if policyEr != nil {
			return usage("policy settings:\n  %s", strings.ReplaceAll(policyEr.Error(), "\n", "\n  "))
		}
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
	if !tested {
		hi := *maxDynos
		if hi == 0 {
			hi = autoMax(tr, m)
		}
		if rec, err = Recommend(m, hi, *delay); err != nil {
			return usage("%v", err)
		}
		pc, r, also = rec.Policy, rec.Reading, rec.Also
	}
	all, err := Contenders(pc, m, r, also...)
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
	rep := NewReport(tr, m, r, results, also...)
	if rec != nil {
		rep.Policy = rec.Env
	}
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
func Contenders(pc *PolicyConfig, m Model, r Reading, also ...Reading) ([]Contender, error) {
	anchors, err := Anchors(pc.Policy, m, r)
	if err != nil {
		return nil, err
	}
	limit := pc.Policy.SizeLimit
	if limit <= 0 {
		limit = dynosize.Limit(m.Size)
	}
	hi := min(pc.Policy.Max, limit)
	out := []Contender{Engine("dynopilot", "dynopilot", pc, r, also...)}
	out = append(out, anchors...)
	oracle := PolicyOracle(pc.Policy)
	oracle.Settings["MAX"] = fmt.Sprint(hi) // as static's: within the size limit
	out = append(out, Static(pc.Policy.Min, hi), oracle)
	return out, nil
}

// autoMax is the recommended policy's MAX when --max is not given: twice the dynos the trace's busiest minute needs
// at the model's capacity (room for queueing and for a busier day than the trace's), within the size limit.
func autoMax(tr *Trace, m Model) int {
	peak := 0.0
	for s := 0; s < len(tr.Rates); s += 60 {
		sum, n := 0.0, 0
		for _, v := range tr.Rates[s:min(s+60, len(tr.Rates))] {
			sum, n = sum+v, n+1
		}
		peak = max(peak, sum/float64(n))
	}
	need := int(math.Ceil(peak / m.Capacity))
	return min(max(2*need, 2), dynosize.Limit(m.Size), policy.MaxQuantity)
}

// PolicyReadings says what policy n's metrics read in the simulator, from its settings in env as the daemon would
// read them: each metric's MEASURE (latency, queue-time, rate, size) and WINDOW (a further metric on the policy's
// SOURCE takes the policy's WINDOW unless it sets its own, as the daemon's loader does), reported delay late. kind
// and window, when given (--reading, --window with windowSet), override the first metric's; window is also the
// default of a metric whose WINDOW is unset.
func PolicyReadings(env []string, n int, p *policy.Policy, kind string, window time.Duration, windowSet bool, delay time.Duration) (Reading, []Reading, error) {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	prefix := fmt.Sprintf("POLICY_%d_", n)
	setting := func(metric, name string) (string, bool) { // metric: "" or "METRIC_2_"
		if v, ok := vars[prefix+metric+name]; ok {
			return strings.TrimSpace(v), true
		}
		v, ok := vars["POLICY_DEFAULT_"+metric+name]
		return strings.TrimSpace(v), ok
	}
	source, _ := setting("", "SOURCE")
	one := func(metric, kind string, window time.Duration, windowSet bool) (Reading, error) {
		r := Reading{Window: window, Delay: delay}
		if kind == "" {
			switch measure, _ := setting(metric, "MEASURE"); measure {
			case "", "latency":
				kind = "latency"
			case "size":
				kind = "queue-size"
			case "queue-time", "rate":
				kind = measure
			default:
				return r, fmt.Errorf("%s%sMEASURE=%s: the simulator models latency, queue-time, rate and size readings", prefix, metric, measure)
			}
		}
		k, err := ParseReadingKind(kind)
		if err != nil {
			return r, err
		}
		r.Kind = k
		w, ok := setting(metric, "WINDOW")
		if !ok && metric != "" {
			if src, own := setting(metric, "SOURCE"); !own || src == source {
				w, ok = setting("", "WINDOW")
			}
		}
		if ok && !windowSet {
			d, err := time.ParseDuration(w)
			if err != nil || d < time.Second {
				return r, fmt.Errorf("%s%sWINDOW=%s: expected a duration of at least 1s", prefix, metric, w)
			}
			r.Window = d
		}
		return r, nil
	}
	r, err := one("", kind, window, windowSet)
	if err != nil {
		return Reading{}, nil, err
	}
	var also []Reading
	for i := range p.Also {
		a, err := one(fmt.Sprintf("METRIC_%d_", i+2), "", window, false)
		if err != nil {
			return Reading{}, nil, err
		}
		also = append(also, a)
	}
	return r, also, nil
}
