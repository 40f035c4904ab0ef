package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/internal/dynosize"
	"github.com/dynopilot/dynopilot/policy"
)

// ReadingKind is what a contender's controller is shown each evaluation.
type ReadingKind string

// The readings a controller can be shown; latencies are in seconds.
const (
	ReadingNone      ReadingKind = ""           // schedules (static, oracle) read nothing
	ReadingLatency   ReadingKind = "latency"    // p95 request latency (service plus queueing) over the window
	ReadingQueueTime ReadingKind = "queue-time" // p95 queueing delay over the window: request queue time, or a worker's queue latency
	ReadingQueueSize ReadingKind = "queue-size" // mean number of requests or jobs waiting over the window
	ReadingRate      ReadingKind = "rate"       // mean arrival rate over the window, requests per second (ratio mode's natural input)
)

// ParseReadingKind accepts the names above (and "queue-latency" for queue-time).
func ParseReadingKind(s string) (ReadingKind, error) {
	switch s {
	case "latency", "queue-time", "queue-size", "rate":
		return ReadingKind(s), nil
	case "queue-latency":
		return ReadingQueueTime, nil
	}
	return "", fmt.Errorf("reading %q: expected latency, queue-time (or queue-latency), queue-size or rate", s)
}

// Reading is how a contender's metric is produced: what, over which window, reported how late. A reading taken at
// time t covers the seconds [t-Delay-Window, t-Delay).
type Reading struct {
	Kind   ReadingKind
	Window time.Duration
	Delay  time.Duration
}

// Evaluation is one decision a contender took, for observers (tests, debugging).
type Evaluation struct {
	Second  int     // seconds from the start of the trace
	Current int     // formation quantity before the decision
	Value   float64 // the reading shown
	OK      bool    // whether there was a reading
	Desired int     // the quantity applied
}

// controller chooses the formation quantity; the runner calls decide at the seconds it asks for.
type controller interface {
	// first is the second of the first evaluation; next the one after t (a value <= t means never again).
	first() int
	next(t int) int
	// decide gets the readings of every metric, the contender's Reading first and then its Also, in order.
	decide(t, current int, readings []policy.Reading) int
}

// Contender is one way of choosing the dyno count, run over the same trace and model as the others.
type Contender struct {
	Name     string
	Kind     string            // "dynopilot", "anchor", "static" or "oracle"
	Settings map[string]string // what it ran with, for the report
	Reading  Reading
	// Also are the readings of a policy's further metrics (METRIC_2_, …), in order.
	Also []Reading
	// Initial, when above 0, is the quantity at the start (all serving); otherwise the runner's common start.
	Initial int
	// Observe, when set, sees every evaluation in order.
	Observe func(Evaluation)
	// ObserveDecision, when set on an Engine contender, sees every policy.Decide call: its input and decision.
	ObserveDecision func(policy.Input, policy.Decision)
	build           func(rc *runContext, c *Contender) (controller, error)
}

// runContext is what contenders are built from: the trace and the model, shared read-only.
type runContext struct {
	ctx     context.Context
	opt     Options
	rates   []float64
	params  queueParams
	grid    *grid
	model   Model
	start   time.Time
	minimum int // dynos the start needs, for the common initial quantity
}

// Options are the parts of a run that are not the model or the contenders.
type Options struct {
	Start   time.Time // wall time of the trace's first second (schedules, cron intervals); zero: DefaultStart
	Initial int       // quantity every contender starts with, serving; 0: what the first boot period needs (oracle)
	Series  bool      // keep per-minute series for charts
	// PerSecond keeps the serving dynos of every second in the series too (to replay a schedule elsewhere).
	PerSecond bool
}

// DefaultStart is the virtual wall time of a trace's first second when Options.Start is zero: a Monday at
// midnight UTC, so that weekday schedules line up with the trace's days.
func DefaultStart() time.Time { return time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) }

// Result is what happened to one contender.
type Result struct {
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Settings      map[string]string `json:"settings,omitempty"`
	Reading       string            `json:"reading,omitempty"`
	BreachMinutes int               `json:"breach_minutes"`
	Minutes       int               `json:"minutes"`
	Requests      float64           `json:"requests"`
	// H12 is how many requests the router gave up on after RouterTimeout (an expected count, as the model's
	// requests are); they count in P95 and P99 at the timeout, when the client got its 503.
	H12         float64 `json:"h12_errors"`
	P95         float64 `json:"p95_seconds"`
	P99         float64 `json:"p99_seconds"`
	DynoHours   float64 `json:"dyno_hours"`
	Cost        float64 `json:"cost_dollars"`
	ScaleEvents int     `json:"scale_events"`
	Ups         int     `json:"scale_ups"`
	Downs       int     `json:"scale_downs"`
	PeakDynos   int     `json:"peak_dynos"`
	MeanDynos   float64 `json:"mean_dynos"`
	Series      *Series `json:"-"`
}

// Series is a contender's run minute by minute, for charts.
type Series struct {
	Rate    []float32 // mean arrival rate
	Serving []float32 // serving dynos at the minute's end
	Booting []float32 // booting dynos at the minute's end
	P95     []float32 // p95 latency of the minute's requests, seconds (H12 errors at the router's timeout)
	H12     []float32 // requests of the minute the router gave up on (H12 errors)
	Breach  []bool    // more than 5% of the minute's requests above the objective
	// ServingPerSecond is the serving dynos of every second, with Options.PerSecond.
	ServingPerSecond []int
}

// Run simulates every contender over the trace. Contenders run in parallel; results are in the contenders' order
// and do not depend on the parallelism. When ctx is done the run stops within a few milliseconds (every loop over
// the trace looks at ctx every checkEvery seconds of it) and returns a *StoppedError.
func Run(ctx context.Context, tr *Trace, m Model, contenders []Contender, opt Options) ([]Result, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if len(tr.Rates) == 0 {
		return nil, errors.New("trace is empty")
	}
	if ctx.Err() != nil {
		return nil, stopped(ctx)
	}
	rc := newRunContext(tr, m, opt)
	rc.ctx, rc.opt = ctx, opt
	results := make([]Result, len(contenders))
	errs := make([]error, len(contenders))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range contenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = simulate(ctx, rc, &contenders[i], opt)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil { // every contender that saw it says so: one error says it once
		return nil, stopped(ctx)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return results, nil
}

// checkEvery is how many seconds of the trace a loop over it goes through between two looks at its context: a few
// milliseconds of work at most, so a stop is prompt, and a look per thousands of seconds costs nothing.
const checkEvery = 4096

// StoppedError is Run's error when its context was done before the run finished. It unwraps to the context's error
// (context.Canceled, context.DeadlineExceeded) and to its cause (a signal, with signal.NotifyContext).
type StoppedError struct {
	Err, Cause error
}

func (e *StoppedError) Error() string { return "stopped before the run finished: " + e.Cause.Error() }

func (e *StoppedError) Unwrap() []error { return []error{e.Err, e.Cause} }

func stopped(ctx context.Context) error {
	return &StoppedError{Err: ctx.Err(), Cause: context.Cause(ctx)}
}

func newRunContext(tr *Trace, m Model, opt Options) *runContext {
	p := m.params()
	rc := &runContext{rates: tr.Rates, params: p, grid: newGrid(p.objective, p.mu), model: m, start: opt.Start}
	if rc.start.IsZero() {
		rc.start = DefaultStart()
	}
	rc.minimum = opt.Initial
	if rc.minimum <= 0 {
		peak := 0.0
		for t := 0; t < len(tr.Rates) && t <= p.boot; t++ {
			peak = max(peak, tr.Rates[t])
		}
		rc.minimum = max(1, newNeedTable(p).dynos(peak))
	}
	return rc
}

// fleet is a contender's formation: the quantity Heroku runs, of which some are still booting. New dynos serve boot
// seconds after the scale-up; a scale-down stops dynos at once, the newest (highest-numbered) first, so booting
// dynos go before serving ones.
type fleet struct {
	quantity int
	serving  int
	ready    []int // seconds at which booting dynos start serving, oldest first
	head     int
	boot     int
}

func (f *fleet) booting() int { return len(f.ready) - f.head }

// drain implements projection: the dynos serving now, joined by each booting one at its ready second (ready is in
// order), serve b requests from second s on. One step per booting dyno at most.
func (f *fleet) drain(b float64, s int, capacity float64) float64 {
	n, i := f.serving, f.head
	for i < len(f.ready) && f.ready[i] <= s {
		n, i = n+1, i+1
	}
	tau := 0.0
	for {
		if i == len(f.ready) { // n serve for ever
			if n == 0 {
				return neverServed
			}
			return tau + b/(float64(n)*capacity)
		}
		next := f.ready[i] // n serve in [s, next)
		if n > 0 {
			k := float64(n) * capacity
			if k*float64(next-s) >= b {
				return tau + b/k
			}
			b -= k * float64(next-s)
		}
		tau += float64(next - s)
		s = next
		for i < len(f.ready) && f.ready[i] <= s {
			n, i = n+1, i+1
		}
	}
}

func (f *fleet) tick(t int) {
	for f.head < len(f.ready) && f.ready[f.head] <= t {
		f.head++
		f.serving++
	}
	if f.head == len(f.ready) {
		f.ready, f.head = f.ready[:0], 0
	}
}

func (f *fleet) apply(target, t int) {
	switch {
	case target > f.quantity:
		for range target - f.quantity {
			if f.boot == 0 {
				f.serving++
			} else {
				f.ready = append(f.ready, t+f.boot)
			}
		}
	case target < f.quantity:
		remove := f.quantity - target
		for remove > 0 && f.booting() > 0 {
			f.ready = f.ready[:len(f.ready)-1]
			remove--
		}
		f.serving -= remove
	}
	f.quantity = target
}

// readings keeps the last seconds a contender's metric can cover.
type readings struct {
	kind          ReadingKind
	window, delay int
	hists         []secondHist // latency or queue-time kinds
	waiting       []float64    // queue-size kind: mean waiting per second; rate kind: arrivals per second
	scratch       hist
}

func newReadings(r Reading) *readings {
	w := max(1, int(math.Round(r.Window.Seconds())))
	d := max(0, int(math.Round(r.Delay.Seconds())))
	rs := &readings{kind: r.Kind, window: w, delay: d}
	switch r.Kind {
	case ReadingLatency, ReadingQueueTime:
		rs.hists = make([]secondHist, w+d)
	case ReadingQueueSize, ReadingRate:
		rs.waiting = make([]float64, w+d)
	}
	return rs
}

// record keeps what second t showed, for the readings to come.
func (rs *readings) record(t int, lambda float64, sec *cacheEntry) {
	switch rs.kind {
	case ReadingLatency:
		rs.hists[t%len(rs.hists)].copyFrom(&sec.lat)
	case ReadingQueueTime:
		rs.hists[t%len(rs.hists)].copyFrom(&sec.wait)
	case ReadingQueueSize:
		rs.waiting[t%len(rs.waiting)] = sec.d.lq
	case ReadingRate:
		rs.waiting[t%len(rs.waiting)] = lambda
	}
}

// value is the reading taken at the start of second t, or ok=false when no second of the window has happened yet.
func (rs *readings) value(g *grid, t int) (float64, bool) {
	from, to := max(0, t-rs.delay-rs.window), t-rs.delay // [from, to)
	if to <= from {
		return 0, false
	}
	switch rs.kind {
	case ReadingLatency, ReadingQueueTime:
		rs.scratch.reset()
		for s := from; s < to; s++ {
			rs.scratch.add(&rs.hists[s%len(rs.hists)])
		}
		if rs.kind == ReadingLatency { // the router's latencies: an H12 shows as the timeout
			return g.latencyQuantile(&rs.scratch, 0.95), true
		}
		return g.quantile(&rs.scratch, 0.95), true // queue time as the app measures it: it serves H12s too
	case ReadingQueueSize, ReadingRate:
		sum := 0.0
		for s := from; s < to; s++ {
			sum += rs.waiting[s%len(rs.waiting)]
		}
		return sum / float64(to-from), true
	}
	return 0, false
}

func simulate(ctx context.Context, rc *runContext, c *Contender, opt Options) (Result, error) {
	ctl, err := c.build(rc, c)
	if err != nil {
		return Result{}, fmt.Errorf("contender %s: %w", c.Name, err)
	}
	res := Result{Name: c.Name, Kind: c.Kind, Settings: c.Settings, Reading: string(c.Reading.Kind)}
	if s, ok := ctl.(*schedule); ok && s.res != nil {
		done := *s.res // already run while it was built
		done.Name, done.Kind, done.Settings, done.Reading = res.Name, res.Kind, res.Settings, res.Reading
		return done, nil
	}
	p := rc.params
	g := rc.grid
	T := len(rc.rates)
	initial := rc.minimum
	if c.Initial > 0 {
		initial = c.Initial
	}
	if s, ok := ctl.(interface{ initial() int }); ok {
		initial = s.initial() // a schedule starts where it says
	}
	f := fleet{quantity: initial, serving: initial, boot: p.boot}
	rs := []*readings{newReadings(c.Reading)}
	needWait := c.Reading.Kind == ReadingQueueTime
	for _, r := range c.Also {
		rs = append(rs, newReadings(r))
		needWait = needWait || r.Kind == ReadingQueueTime
	}
	shown := make([]policy.Reading, len(rs))
	a := newApp(p, g, needWait)
	a.q.ahead = &f
	if s, ok := ctl.(*schedule); ok && p.boot == 0 {
		a.q.ahead = s // a schedule without boot delays is its own future
	}
	minutes := (T + 59) / 60
	if opt.Series || opt.PerSecond {
		res.Series = &Series{Rate: make([]float32, 0, minutes), Serving: make([]float32, 0, minutes),
			Booting: make([]float32, 0, minutes), P95: make([]float32, 0, minutes), H12: make([]float32, 0, minutes),
			Breach: make([]bool, 0, minutes)}
	}
	var (
		minute, all    hist
		minuteArrivals float64
		dynoSeconds    float64
		nextEval       = ctl.first()
		breachMinutes  int
	)
	res.PeakDynos = f.quantity
	for t := range T {
		if t%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
		}
		f.tick(t)
		if t == nextEval {
			for i, r := range rs {
				shown[i].Value, shown[i].OK = r.value(g, t)
			}
			desired := max(0, ctl.decide(t, f.quantity, shown))
			if c.Observe != nil {
				c.Observe(Evaluation{Second: t, Current: f.quantity, Value: shown[0].Value, OK: shown[0].OK, Desired: desired})
			}
			if desired != f.quantity {
				res.ScaleEvents++
				if desired > f.quantity {
					res.Ups++
				} else {
					res.Downs++
				}
				f.apply(desired, t)
				res.PeakDynos = max(res.PeakDynos, f.quantity)
			}
			if n := ctl.next(t); n > t {
				nextEval = n
			} else {
				nextEval = -1
			}
		}
		lambda := rc.rates[t]
		sec := a.second(t, lambda, f.serving)
		minute.add(&sec.lat)
		minuteArrivals += lambda
		for _, r := range rs {
			r.record(t, lambda, sec)
		}
		dynoSeconds += float64(f.quantity)
		if opt.PerSecond {
			res.Series.ServingPerSecond = append(res.Series.ServingPerSecond, f.serving)
		}
		if (t+1)%60 == 0 || t == T-1 {
			breach := minute.shareAbove(objEdge) > 0.05
			if breach {
				breachMinutes++
			}
			if res.Series != nil {
				secs := float32(t%60 + 1)
				res.Series.Rate = append(res.Series.Rate, float32(minuteArrivals)/secs)
				res.Series.Serving = append(res.Series.Serving, float32(f.serving))
				res.Series.Booting = append(res.Series.Booting, float32(f.booting()))
				res.Series.P95 = append(res.Series.P95, float32(g.latencyQuantile(&minute, 0.95)))
				res.Series.H12 = append(res.Series.H12, float32(minute.timeout))
				res.Series.Breach = append(res.Series.Breach, breach)
			}
			all.merge(&minute)
			minute.reset()
			minuteArrivals = 0
		}
	}
	res.BreachMinutes = breachMinutes
	res.Minutes = minutes
	res.Requests, res.H12 = all.total, all.timeout
	res.P95 = g.latencyQuantile(&all, 0.95)
	res.P99 = g.latencyQuantile(&all, 0.99)
	res.DynoHours = dynoSeconds / 3600
	res.MeanDynos = dynoSeconds / float64(T)
	if info, ok := dynosize.Lookup(rc.model.Size); ok {
		res.Cost = res.DynoHours * info.Hour
	}
	return res, nil
}
