// Package logdrain receives Heroku log drains and turns an app's router, runtime-metrics and app lines into the
// readings a `logdrain` policy scales on: the latency of its web dynos, their HireFire-format queue time, the request
// rate, and the load of any process type's dynos. It also records each app's request rate per minute for a week, as
// a trace that `dynopilot simulate --trace` replays.
//
// # Receiving
//
// Store.ServeHTTP takes Logplex's POSTs at /drain/<app>: basic auth whose password is Options.Token (any user name,
// compared in constant time), only for the apps in Options.Apps, a body of at most Options.MaxBody bytes
// (DefaultMaxBody). It answers:
//
//   - 204 No Content once the batch is counted (Logplex takes any 2xx as delivered), and 204 at once for a batch
//     whose Logplex-Frame-Id was already received: Logplex sends the same id again when it retries;
//   - 401 without basic auth or with the wrong password, 404 for an app not in Options.Apps, 405 for a method other
//     than POST: these count for nothing;
//   - 413 Content Too Large for a body over MaxBody: Logplex drops a batch on a 4xx other than 429 and retries a 5xx,
//     and the same batch would be as large again, so a 4xx that ends it is right; its Logplex-Msg-Count messages are
//     counted as lost;
//   - 429 with Retry-After while a batch with the same Logplex-Frame-Id is being received on another connection (a
//     retry racing its original), so that Logplex sends it again and it counts once, whichever succeeds;
//   - 503 when the body could not be read in full (a connection cut short): nothing was counted, and Logplex retries.
//
// The body is parsed a chunk of 256 lines at a time with no lock held, each chunk then applied under the app's own
// lock in tens of microseconds, so a POST never waits for more than one reading and a reading (at most about 40 µs for
// a p95 over 15 minutes) never waits for parsing. The Content-Type is not checked (Logplex sends
// application/logplex-1). The parser reads octet-counted frames (RFC 6587) of RFC 5424 messages without structured
// data, as Logplex sends them, and never gives up on a body: a frame that is no syslog message, or a stretch of
// garbage between frames, is counted as one invalid line and reading goes on with the next frame. Lines are counted
// in dynopilot_drain_lines_total{app,kind}, kind being:
//
//   - router: Heroku's router lines ("heroku router"). A request is a router line whose first pair is at=info or
//     at=error (or that has both method= and status=, for a router that orders its fields otherwise); the
//     continuation of a line Logplex split at 10,000 bytes starts inside a value and is counted as a router line,
//     but not as a request, and gives no latency. Unknown keys and an empty connect= or service= are fine.
//   - runtime: what Heroku itself sends about the app: runtime metrics ("sample#load_avg_1m=…", after
//     `heroku labs:enable log-runtime-metrics`), dyno state changes, R errors, releases.
//   - app: the app's own output, where "[hirefire:router] queue=12ms" gives a queue time (HireFire's convention).
//   - lost: messages that never reached these aggregates: the N of Logplex's "Error L10 (output buffer overflow): N
//     messages dropped" (and of L12 and L13), and the messages of a batch refused for its size. They are logged as
//     warnings (notices at most once a minute per app, with the count since), and Stats.LastLost tells when the
//     last came.
//   - invalid: garbage.
//
// # Aggregating
//
// A line is placed in time by its syslog timestamp (when it was logged), not by when it arrived: a timestamp in the
// future (another clock ahead of ours) counts as now, one without a timestamp ("-") as its arrival. Per process type
// of each app, the Store keeps the last 6 minutes in buckets of 5 seconds (BucketWidth): per bucket the number of
// requests, a DDSketch of the router's service= times and one of the HireFire queue times (DataDog's sketches-go,
// relative accuracy 1%); and per dyno its last 64 sample#load_avg_1m values. Lines older than 6 minutes (MaxWindow
// and a minute for lines that arrive late) are dropped from these; the per-minute traffic record keeps its own 7 days.
//
// # Reading
//
// Read(app, process, measure, quantile, window) covers the whole buckets before the one now falls in: window is
// rounded up to a multiple of 5 s and ends at the start of the current bucket, which is the reading's time. A reading
// is thus 0 to 5 s old, and never counts a bucket that is still filling. Measures, for the dynos of the process type:
//
//   - latency: the quantile of service= over the window, in seconds. A DDSketch with relative accuracy α = 1%
//     answers, for the n service times x₀ ≤ … ≤ xₙ₋₁ in the window, a value v with |v − xₖ| ≤ 0.01·xₖ where
//     k = ⌊quantile·(n−1)⌋, whatever n, for values between 1 ms and 10 minutes; a time under 1 ms counts as 0 and
//     one over 10 minutes as 10 minutes (the router reports whole milliseconds and gives up at 30 s).
//   - queue-time: the same of the HireFire queue times the process's dynos log.
//   - rate: requests per second: requests in the window over its length. A router line with no dyno (H14 "No web
//     dynos running", H10) counts for web, the only process type the router sends requests to, so that a web
//     process scaled to zero still sees its traffic.
//   - load: for each dyno its latest load_avg_1m sample in the window, then the mean over the dynos. Runtime metrics
//     come about every 20 s per dyno: a WINDOW under 30 s will often have none.
//
// A missing reading is an error wrapping metrics.ErrNoData that says why, and never a made-up value:
//
//   - the drain delivered no line of any kind (by arrival) for two windows, or none since the Store began: every
//     measure, rate included (silence is not zero traffic);
//   - rate also needs the drain to have delivered over the whole window: after its first line, or after a silence of
//     two windows or more, rate is missing until a whole window has passed since (a restart of dynopilot included);
//   - a window without a request (latency), a queue-time line (queue-time) or a load sample (load) of the process.
//
// A rate of 0 while the drain delivers other lines (runtime metrics, the app's output) is a real 0.
//
// # Memory
//
// Per app, whatever the traffic: about 175 KiB from the start (a week of per-minute traffic, 40 KiB, and the last
// 2,048 Logplex-Frame-Ids with their index, about 130 KiB); per process type seen, 6 KiB of buckets, two sketches per
// bucket that has values (at most 665 bins of 8 bytes, in pages of 32 bins allocated where values fall: 1 to 3 KiB
// for a real spread of latencies, 5.5 KiB at most) and 1 KiB per dyno sending runtime metrics. A web process at 20
// requests/s on 10 dynos, with queue times and runtime metrics, took 0.5 MiB in a test, the same after an hour as
// after 20 minutes. At most 16 process types and 256 dynos per process type are tracked per app (Heroku allows 100
// dynos, 255 on Fir); lines of others are counted but not aggregated, with a warning, and a reading for them says so.
// The worst case, 16 process types all logging latencies and queue times spread over the whole range in every
// bucket, is about 40 MiB per app.
package logdrain

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/metrics"
)

// Limits and defaults.
const (
	DefaultMaxBody   = 4 << 20           // bytes: Logplex batches are about 100 KB
	BucketWidth      = 5 * time.Second   // the resolution of readings
	MaxWindow        = metrics.MaxWindow // the longest window Read serves: WINDOW's limit
	RelativeAccuracy = 0.01              // of the latency and queue-time quantiles

	keptBuckets      = int64(MaxWindow/BucketWidth) + 12 // 6 minutes: MaxWindow and a minute of late lines
	trafficMinutes   = 7*24*60 + 1                       // a week of complete minutes and the current one
	maxProcesses     = 16                                // process types tracked per app
	maxDynos         = 256                               // dynos tracked per process type
	maxSamples       = 64                                // load samples kept per dyno (6 minutes at one per 20 s is 18)
	frameIDs         = 2048                              // Logplex-Frame-Ids remembered per app
	maxGaps          = 128                               // silences of more than 10 s remembered per app (6 minutes hold at most 36)
	minSketchValue   = 1e-3                              // seconds: smaller latencies count as 0
	maxSketchValue   = 600                               // seconds: larger latencies count as this
	statsSpan        = 5 * time.Minute                   // Stats.LinesPerMinute is over this
	receiptBuckets   = int64(statsSpan/BucketWidth) + 1
	bucketNanos      = int64(BucketWidth)
	measureLatency   = "latency"
	measureQueueTime = "queue-time"
	measureRate      = "rate"
	measureLoad      = "load"
)

// Measures lists what Read reads.
func Measures() []string {
	return []string{measureLatency, measureQueueTime, measureRate, measureLoad}
}

// Options configures a Store.
type Options struct {
	Token      string                // required, non-empty: the basic-auth password drains send
	Apps       []string              // the apps accepted at /drain/<app> (case-insensitive); others get 404
	Registerer prometheus.Registerer // for dynopilot_drain_lines_total; nil: not registered
	Logger     *slog.Logger          // nil: discard
	Now        func() time.Time      // nil: time.Now
	MaxBody    int64                 // 0: DefaultMaxBody (Logplex batches are about 100 KB)
}

// Store receives the drains of Options.Apps and answers readings from what they delivered. It is safe for
// concurrent use. Create it with New.
type Store struct {
	tokenHash [sha256.Size]byte
	apps      map[string]*appState // by lower-case name
	names     []string             // the apps as configured, sorted
	log       *slog.Logger
	now       func() time.Time
	maxBody   int64
	started   time.Time
	seed      maphash.Seed
	mapping   mapping.IndexMapping
	buffers   sync.Pool // *batch
}

// New validates o and returns a Store, registering dynopilot_drain_lines_total with o.Registerer, with a series at 0
// for every app and kind.
func New(o Options) (*Store, error) {
	var problems []string
	if o.Token == "" {
		problems = append(problems, "a token is required: the basic-auth password every drain sends (DYNOPILOT_DRAIN_TOKEN)")
	}
	if len(o.Apps) == 0 {
		problems = append(problems, "no app: expected the apps whose drains are received")
	}
	if o.MaxBody < 0 {
		problems = append(problems, fmt.Sprintf("MaxBody %d: expected 0 (the default, %d bytes) or more", o.MaxBody, DefaultMaxBody))
	}
	s := &Store{
		apps:    make(map[string]*appState, len(o.Apps)),
		log:     o.Logger,
		now:     o.Now,
		maxBody: o.MaxBody,
		seed:    maphash.MakeSeed(),
	}
	for _, app := range o.Apps {
		switch {
		case app == "" || strings.TrimSpace(app) != app || strings.ContainsAny(app, "/?#%"):
			problems = append(problems, fmt.Sprintf("app %q: expected a Heroku app name or id", app))
		case s.apps[strings.ToLower(app)] == nil:
			s.apps[strings.ToLower(app)] = &appState{name: app}
			s.names = append(s.names, app)
		}
	}
	if len(problems) > 0 {
		return nil, errors.New("logdrain: " + strings.Join(problems, "; "))
	}
	slices.Sort(s.names)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBody
	}
	s.tokenHash = sha256.Sum256([]byte(o.Token))
	m, err := mapping.NewLogarithmicMapping(RelativeAccuracy)
	if err != nil {
		return nil, fmt.Errorf("logdrain: %w", err)
	}
	s.mapping = m
	s.started = s.now()
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dynopilot_drain_lines_total",
		Help: "Lines received from Heroku log drains, by app and kind (router, runtime, app; lost: messages Logplex reported dropping or a batch refused for its size; invalid: garbage).",
	}, []string{"app", "kind"})
	for _, a := range s.apps {
		for k := range numKinds {
			a.counters[k] = lines.WithLabelValues(a.name, k.String())
		}
		a.procs = make(map[string]*process)
		a.frames.ids = make(map[uint64]frameState, frameIDs)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(lines); err != nil {
			return nil, fmt.Errorf("logdrain: register dynopilot_drain_lines_total: %w", err)
		}
	}
	return s, nil
}

// app returns the state of a configured app, by any case of its name, or nil.
func (s *Store) app(name string) *appState { return s.apps[strings.ToLower(name)] }

// appState is everything the Store keeps of one app.
type appState struct {
	name     string // as configured
	counters [numKinds]prometheus.Counter

	mu       sync.Mutex
	lines    [numKinds]int64
	first    int64 // arrival of the first line, Unix ns; 0: none yet
	last     int64 // arrival of the last line
	lastLost int64 // arrival of the last loss notice
	gaps     [maxGaps]gap
	gapCount int
	received [receiptBuckets]counted // lines received per bucket of arrival, for Stats
	procs    map[string]*process
	overflow bool // a process type or dyno was not tracked for the caps: warned once
	traffic  traffic
	frames   frames
	// Logplex's loss notices not logged yet, and when they last were.
	lostUnlogged, noticesUnlogged, lostLogged int64
}

// gap is a time without any line from the drain: from the arrival of one line to that of the next.
type gap struct{ from, to int64 }

type counted struct {
	bucket int64
	n      int64
}

// process is what is kept of one process type of an app.
type process struct {
	slots [keptBuckets]slot
	dynos map[string]*dyno
}

// slot is one bucket of BucketWidth.
type slot struct {
	bucket   int64 // Unix time / BucketWidth; a slot whose bucket is not the one looked for is stale
	requests int64
	latency  *ddsketch.DDSketch // nil until a value comes
	queue    *ddsketch.DDSketch
}

// dyno holds the load samples of one dyno, oldest first.
type dyno struct {
	samples []sample
}

type sample struct {
	t    int64
	load float64
}

// bucketOf is the bucket a time in Unix nanoseconds falls in.
func bucketOf(t int64) int64 {
	if t < 0 {
		return (t+1)/bucketNanos - 1
	}
	return t / bucketNanos
}

// newSketch returns an empty sketch: DDSketch, logarithmic mapping of RelativeAccuracy, paginated store.
func (s *Store) newSketch() *ddsketch.DDSketch {
	return ddsketch.NewDDSketch(s.mapping, store.NewBufferedPaginatedStore(), store.NewDenseStore())
}

// sketchValue clamps a time in seconds to what the sketches keep with their stated accuracy.
func sketchValue(v float64) float64 {
	switch {
	case v < minSketchValue:
		return 0
	case v > maxSketchValue:
		return maxSketchValue
	}
	return v
}

// slot returns the slot of bucket b, emptied if it held an older bucket; nil if it holds a newer one (b is too old).
func (p *process) slot(b int64) *slot {
	sl := &p.slots[floorMod(b, keptBuckets)]
	switch {
	case sl.bucket == b:
	case sl.bucket > b:
		return nil
	default:
		sl.bucket, sl.requests = b, 0
		if sl.latency != nil {
			sl.latency.Clear()
		}
		if sl.queue != nil {
			sl.queue.Clear()
		}
	}
	return sl
}

// apply records the lines of one batch, received at now. Called with a.mu held.
func (s *Store) apply(a *appState, lines []line, now int64) {
	nowBucket := bucketOf(now)
	oldest := nowBucket - keptBuckets + 1
	nowMinute := now / int64(time.Minute)
	a.traffic.advance(nowMinute)
	var lastProc []byte
	var p *process
	for i := range lines {
		l := &lines[i]
		if l.kind == kindInvalid {
			continue
		}
		t := l.t
		if t == 0 || t > now {
			t = now
		}
		a.traffic.seen(floorDiv(t, int64(time.Minute)), nowMinute)
		if l.kind == kindRouter && l.request {
			a.traffic.add(floorDiv(t, int64(time.Minute)), nowMinute)
			if l.process == nil {
				l.process = webProcess // H14, H10…: the router sends requests to web dynos only
			}
		}
		if l.process == nil || (l.has == 0 && !l.request) {
			continue
		}
		b := bucketOf(t)
		if b < oldest {
			continue
		}
		if p == nil || string(lastProc) != string(l.process) {
			p = s.process(a, l.process)
			lastProc = l.process
		}
		if p == nil {
			continue
		}
		if l.has&hasLoad != 0 {
			s.addLoad(a, p, l.dyno, t, l.load, now)
			continue
		}
		sl := p.slot(b)
		if sl == nil {
			continue
		}
		if l.request {
			sl.requests++
		}
		if l.has&hasService != 0 {
			if sl.latency == nil {
				sl.latency = s.newSketch()
			}
			_ = sl.latency.Add(sketchValue(l.service))
		}
		if l.has&hasQueue != 0 {
			if sl.queue == nil {
				sl.queue = s.newSketch()
			}
			_ = sl.queue.Add(sketchValue(l.queue))
		}
	}
}

var webProcess = []byte("web")

// process returns the state of a process type, created on first sight up to maxProcesses; nil past the cap.
func (s *Store) process(a *appState, name []byte) *process {
	if p := a.procs[string(name)]; p != nil {
		return p
	}
	if len(a.procs) >= maxProcesses {
		s.overflowed(a, "process type", name)
		return nil
	}
	p := &process{dynos: make(map[string]*dyno)}
	for i := range p.slots {
		p.slots[i].bucket = math.MinInt64
	}
	a.procs[string(name)] = p
	return p
}

func (s *Store) overflowed(a *appState, what string, name []byte) {
	if !a.overflow {
		a.overflow = true
		s.log.Warn("drain: too many to track; their lines are counted but give no readings",
			"app", a.name, "what", what, "name", string(name), "process_types_max", maxProcesses, "dynos_per_process_max", maxDynos)
	}
}

// addLoad records a load sample of a dyno, keeping its samples in time order, at most maxSamples, none older than
// the buckets kept.
func (s *Store) addLoad(a *appState, p *process, name []byte, t int64, load float64, now int64) {
	d := p.dynos[string(name)]
	if d == nil {
		p.pruneDynos(now)
		if len(p.dynos) >= maxDynos {
			s.overflowed(a, "dyno", name)
			return
		}
		d = &dyno{samples: make([]sample, 0, 8)}
		p.dynos[string(name)] = d
	}
	i := len(d.samples)
	for i > 0 && d.samples[i-1].t > t {
		i--
	}
	d.samples = slices.Insert(d.samples, i, sample{t: t, load: load})
	if len(d.samples) > maxSamples {
		d.samples = slices.Delete(d.samples, 0, len(d.samples)-maxSamples)
	}
}

// pruneDynos forgets the dynos without a sample in the buckets kept (one-off dynos, dynos scaled away).
func (p *process) pruneDynos(now int64) {
	cutoff := (bucketOf(now) - keptBuckets + 1) * bucketNanos
	for name, d := range p.dynos {
		if len(d.samples) == 0 || d.samples[len(d.samples)-1].t < cutoff {
			delete(p.dynos, name)
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// received records the arrival at now of n lines that are not garbage: it keeps the drain alive.
func (a *appState) receive(n int64, now int64) {
	if n == 0 {
		return
	}
	if a.first == 0 {
		a.first = now
	} else if now-a.last >= 2*bucketNanos {
		a.gaps[a.gapCount%maxGaps] = gap{from: a.last, to: now}
		a.gapCount++
	}
	a.last = max(a.last, now)
	b := bucketOf(now)
	r := &a.received[floorMod(b, receiptBuckets)]
	if r.bucket != b {
		r.bucket, r.n = b, 0
	}
	r.n += n
}

// Read returns the reading of measure ("latency", "queue-time", "rate", "load") for the process type's dynos of
// app over window ending now: latencies and queue times in SECONDS, rate in requests/second, load as the mean
// load_avg_1m; at is the end of the window. A missing reading returns an error that wraps metrics.ErrNoData and says
// why. See the package documentation for how the window is placed and what is missing.
func (s *Store) Read(app, process, measure string, quantile float64, window time.Duration) (value float64, at time.Time, err error) {
	a := s.app(app)
	if a == nil {
		return 0, time.Time{}, fmt.Errorf("logdrain: app %q: no drain is received for it (drains are received for %s)", app, strings.Join(s.names, ", "))
	}
	if !slices.Contains(Measures(), measure) {
		return 0, time.Time{}, fmt.Errorf("logdrain: measure %q: expected one of %s", measure, strings.Join(Measures(), ", "))
	}
	if window < BucketWidth || window > MaxWindow {
		return 0, time.Time{}, fmt.Errorf("logdrain: window %s: expected %s to %s", window, BucketWidth, MaxWindow)
	}
	if (measure == measureLatency || measure == measureQueueTime) && !(quantile > 0 && quantile < 1) {
		return 0, time.Time{}, fmt.Errorf("logdrain: quantile %v: expected a number between 0 and 1", quantile)
	}
	now := s.now()
	nowNanos := now.UnixNano()
	current := bucketOf(nowNanos)
	n := int64((window + BucketWidth - 1) / BucketWidth)
	from, to := current-n, current-1 // inclusive
	start, end := from*bucketNanos, current*bucketNanos
	at = time.Unix(0, end).In(now.Location())
	span := fmt.Sprintf("the %s ending %s", time.Duration(n*bucketNanos), at.UTC().Format(time.TimeOnly))

	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.last == 0:
		return 0, at, noData("no line has come from the drain of %s since dynopilot started at %s: is it added (`heroku drains:add https://user:TOKEN@HOST/drain/%s -a %s`)?",
			a.name, s.started.UTC().Format(time.RFC3339), a.name, a.name)
	case nowNanos-a.last >= 2*int64(window):
		return 0, at, noData("the drain of %s has delivered nothing since %s (%s, two WINDOWs of %s or more): silence is not zero traffic",
			a.name, time.Unix(0, a.last).UTC().Format(time.RFC3339), time.Duration(nowNanos-a.last).Round(time.Second), window)
	}
	p := a.procs[process]
	if p == nil && len(a.procs) >= maxProcesses {
		return 0, at, noData("process type %s of %s is not tracked: the drain brought lines of more than %d process types, and only the first %d are",
			process, a.name, maxProcesses, maxProcesses)
	}
	switch measure {
	case measureRate:
		// A rate counts what was delivered: over time the drain has not yet covered (nothing received since before
		// the window's end) it would read a gap in delivery as a drop in traffic, and scale down on it. A drain
		// delivers in batches, a second or a few apart, so just after a bucket's edge the last batch usually came
		// before it: then the window ends one bucket earlier, at the last edge the drain has covered (the reading
		// is up to a bucket older, never a guess), and only a drain more than a bucket behind has no rate.
		if a.last < end && a.last >= end-bucketNanos {
			from, to, start, end = from-1, to-1, start-bucketNanos, end-bucketNanos
			at = time.Unix(0, end).In(now.Location())
		}
		if a.last < end {
			return 0, at, noData("the drain of %s has delivered nothing since %s, before the end of the window at %s: a rate over time the drain has not covered would read a gap in delivery as no traffic",
				a.name, time.Unix(0, a.last).UTC().Format(time.RFC3339), at.UTC().Format(time.TimeOnly))
		}
		if a.first > start {
			return 0, at, noData("the drain of %s delivers since %s only, less than the window of %s: rate needs a whole window",
				a.name, time.Unix(0, a.first).UTC().Format(time.RFC3339), window)
		}
		for i := range min(a.gapCount, maxGaps) {
			g := a.gaps[i]
			if g.to > start && g.to-g.from >= 2*int64(window) {
				return 0, at, noData("the drain of %s resumed at %s after %s of silence: rate needs a whole window of delivery since",
					a.name, time.Unix(0, g.to).UTC().Format(time.RFC3339), time.Duration(g.to-g.from).Round(time.Second))
			}
		}
		var requests int64
		if p != nil {
			for b := from; b <= to; b++ {
				if sl := &p.slots[floorMod(b, keptBuckets)]; sl.bucket == b {
					requests += sl.requests
				}
			}
		}
		return float64(requests) / (float64(n*bucketNanos) / 1e9), at, nil
	case measureLatency, measureQueueTime:
		merged := s.newSketch()
		if p != nil {
			for b := from; b <= to; b++ {
				sl := &p.slots[floorMod(b, keptBuckets)]
				if sl.bucket != b {
					continue
				}
				if sk := sl.latency; measure == measureQueueTime {
					sk = sl.queue
					if sk != nil {
						_ = merged.MergeWith(sk)
					}
				} else if sk != nil {
					_ = merged.MergeWith(sk)
				}
			}
		}
		if merged.IsEmpty() {
			if measure == measureLatency {
				return 0, at, noData("no request to %s dynos of %s in %s", process, a.name, span)
			}
			return 0, at, noData("no queue time from %s dynos of %s in %s: does the app log \"[hirefire:router] queue=Nms\" per request?", process, a.name, span)
		}
		v, err := merged.GetValueAtQuantile(quantile)
		if err != nil {
			return 0, at, fmt.Errorf("logdrain: %s of %s/%s: %w", measure, a.name, process, err)
		}
		return v, at, nil
	default: // load
		var sum float64
		var dynos int
		if p != nil {
			for _, d := range p.dynos {
				for i := len(d.samples) - 1; i >= 0; i-- {
					if t := d.samples[i].t; t >= start && t < end {
						sum += d.samples[i].load
						dynos++
						break
					} else if t < start {
						break
					}
				}
			}
		}
		if dynos == 0 {
			return 0, at, noData("no runtime metrics for %s dynos of %s in %s: did you run `heroku labs:enable log-runtime-metrics -a %s` and restart the app?",
				process, a.name, span, a.name)
		}
		return sum / float64(dynos), at, nil
	}
}

// noData is a missing reading: it wraps metrics.ErrNoData.
func noData(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{metrics.ErrNoData}, args...)...)
}

// Stats is what the status page, /api/policies and `check` show per drain.
type Stats struct {
	App            string           `json:"app"`
	LastLine       time.Time        `json:"last_line,omitzero"` // receipt time of the last line of any kind
	LinesPerMinute float64          `json:"lines_per_minute"`   // over the last 5 minutes
	Lines          map[string]int64 `json:"lines"`              // by kind, as in dynopilot_drain_lines_total
	LastLost       time.Time        `json:"last_lost,omitzero"` // receipt time of the last Logplex loss notice (L10) or refused batch
}

// Stats returns one Stats per app in Options.Apps, sorted by app. LinesPerMinute counts the lines that keep a drain
// alive (all but invalid ones and lost messages) received over the last 5 minutes, or since the Store began if that
// is less.
func (s *Store) Stats() []Stats {
	now := s.now()
	nowNanos := now.UnixNano()
	span := min(statsSpan, now.Sub(s.started))
	out := make([]Stats, 0, len(s.names))
	for _, name := range s.names {
		a := s.app(name)
		a.mu.Lock()
		st := Stats{App: a.name, Lines: make(map[string]int64, numKinds)}
		for k := range numKinds {
			st.Lines[k.String()] = a.lines[k]
		}
		if a.last != 0 {
			st.LastLine = time.Unix(0, a.last).In(now.Location())
		}
		if a.lastLost != 0 {
			st.LastLost = time.Unix(0, a.lastLost).In(now.Location())
		}
		var recent int64
		current := bucketOf(nowNanos)
		for b := current - receiptBuckets + 1; b <= current; b++ {
			if r := a.received[floorMod(b, receiptBuckets)]; r.bucket == b && b*bucketNanos >= nowNanos-int64(statsSpan) {
				recent += r.n
			}
		}
		a.mu.Unlock()
		if span > 0 {
			st.LinesPerMinute = float64(recent) / span.Minutes()
		}
		out = append(out, st)
	}
	return out
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
