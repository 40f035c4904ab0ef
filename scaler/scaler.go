// Package scaler is the daemon: it evaluates every enabled policy on its schedule (robfig/cron), reads its source,
// asks package policy for a decision, applies at most one PATCH per app per tick through the one shared Heroku
// client, and publishes every decision as Prometheus metrics and on HTTP.
//
// Policies of the same app and interval are evaluated together as one group, so that their changes go out in one
// batch PATCH. Cooldowns count from the later of the formation's updated_at (whoever scaled it) and the daemon's
// own last successful PATCH, so a restart or a person's manual scaling is respected. A PATCH that fails leaves no
// trace in that count: the engine never believes a change that may not have happened.
package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/internal/dynosize"
	"github.com/dynopilot/dynopilot/logdrain"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/predict"
)

// Heroku is what the scaler needs of the Platform API; *herokuapi.Client provides it.
type Heroku interface {
	ListFormation(ctx context.Context, app string) ([]herokuapi.Formation, error)
	UpdateFormation(ctx context.Context, app, typ string, quantity int) (herokuapi.Formation, error)
	BatchUpdateFormation(ctx context.Context, app string, updates []herokuapi.FormationUpdate) ([]herokuapi.Formation, error)
}

var _ Heroku = (*herokuapi.Client)(nil)

// Managed is a policy the scaler manages: its rules (the engine's policy.Policy), its sources opened, and its
// schedule. cmd/dynopilot builds one per config.PolicyConfig (run, demo and check alike, through one function).
type Managed struct {
	Rules      *policy.Policy
	Source     metrics.Source // already wrapped with the source instruments and timeout
	SourceKind string         // e.g. "sidekiq", for labels
	Measure    string         // what Source reads (latency, size, queue-time, rate, …), for /api/policies and the status page
	Interval   string         // a robfig/cron spec, e.g. "@every 15s"
	// Timeout is the policy's limit on one reading (TIMEOUT). A tick waits for its readings this long and a second
	// more (so that the source's own timeout error, which names it, arrives first), and no longer: a reading that
	// has not answered by then is a failed reading. 0: Options.TickTimeout.
	Timeout time.Duration
	// Also are the policy's further metrics (METRIC_2_, …), one for each of Rules.Also, in the same order.
	Also []Metric
}

// Metric is one further metric of a policy: the fields of the same names in Managed, for its own source.
type Metric struct {
	Source     metrics.Source
	SourceKind string
	Measure    string
	Timeout    time.Duration
}

// metric returns the policy's metric i: 0 its own (Source, …), i its Also[i-1].
func (m *Managed) metric(i int) Metric {
	if i == 0 {
		return Metric{Source: m.Source, SourceKind: m.SourceKind, Measure: m.Measure, Timeout: m.Timeout}
	}
	return m.Also[i-1]
}

// metrics returns how many metrics the policy reads.
func (m *Managed) metrics() int { return 1 + len(m.Also) }

// Options configures a Scaler.
type Options struct {
	Heroku   Heroku
	Policies []Managed
	DryRun   bool
	// Preview takes and publishes every decision as the daemon would and applies none, each keeping its own reason
	// (a dry run's change says dry_run): what `dynopilot check` shows as the decision that would be taken now.
	Preview bool
	// Refresh is the configured formation refresh; it is stretched to fit APIBudget.
	Refresh time.Duration
	// APIBudget is the tokens per hour dynopilot may spend (DYNOPILOT_API_RATE less DYNOPILOT_API_RESERVE).
	APIBudget float64
	// PatchTimeout bounds one PATCH, which is allowed to finish after shutdown begins; default 5s.
	PatchTimeout time.Duration
	// TickTimeout bounds one evaluation's formation reads, and its readings when a policy has no Timeout; default
	// 30s.
	TickTimeout time.Duration
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	Version     string
	Now         func() time.Time // default time.Now
	// Drains reports what each log drain has delivered, for /api/policies and the status page; nil without a log
	// drain receiver.
	Drains func() []logdrain.Stats
	// Leader decides whether this instance may act, when several run; nil: it always leads.
	Leader Leader
	// State keeps the policies' state across restarts and failovers; nil: in memory only.
	State Store
	// Events takes every decision and scale event after the daemon's own record (metrics, status, log): the status
	// history and the notifiers subscribe there (an *event.Bus). Its Publish must never block. nil: none.
	Events event.Sink
	// Concurrency is how many groups EvaluateAll evaluates at once; 0: 16.
	Concurrency int
	// History is what the status page draws each policy's chart and last scale events from; it is fed through
	// Events. nil: the page shows the current state only.
	History *History
}

// Scaler runs the policies. Create with New, start with Run.
type Scaler struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	in      *instruments
	cache   *formationCache
	refresh time.Duration
	groups  []*group
	all     []*entry

	mu             sync.Mutex
	herokuAnswered bool
	term           uint64 // counts changes of leadership: the policies' durable state is read again in a new term
}

// group is the policies of one app evaluated on one schedule.
type group struct {
	app         string
	interval    string
	schedule    cron.Schedule // interval, at the app's own phase when it is an @every (see schedule)
	entries     []*entry
	readTimeout time.Duration // how long a tick waits for its readings
}

// entry is one policy and what the daemon remembers of it between ticks.
type entry struct {
	Managed
	name    string
	targets []float64 // what each metric's readings are compared with (see targets)

	mu        sync.Mutex
	state     policy.State
	started   bool      // state has been through policy.State.Start with the first formation seen
	lastPatch time.Time // the daemon's own last successful PATCH of this process type
	refused   refusal   // Heroku's last refusal of a PATCH for this process type, while it is being waited out
	deploying bool      // Heroku refused the last PATCH because the app is being deployed
	status    Status

	// profile is the load profile of a policy that predicts (PREDICT; see predict.go), nil for one that does not;
	// profileDirty says it changed since it was last saved.
	profile      *predict.Profile
	profileDirty bool

	loaded        bool   // the durable state was read (or found absent) in term loadedTerm
	loadedTerm    uint64 // the leadership term in which it was read
	savedDeciding []byte // what decides, as last saved, to save only what changed
}

// New validates the options and prepares the policies; it does no I/O.
func New(o Options) (*Scaler, error) {
	if o.Heroku == nil {
		return nil, errors.New("scaler: no Heroku client")
	}
	if o.Registerer == nil {
		return nil, errors.New("scaler: no Prometheus registerer")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PatchTimeout <= 0 {
		o.PatchTimeout = 5 * time.Second
	}
	if o.TickTimeout <= 0 {
		o.TickTimeout = 30 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Minute
	}
	s := &Scaler{opts: o, log: o.Logger, now: o.Now}
	in, err := newInstruments(o.Registerer, o.Version, s.leading)
	if err != nil {
		return nil, fmt.Errorf("registering decision metrics: %w", err)
	}
	s.in = in
	apps := map[string]bool{}
	byKey := map[string]*group{}
	// Only the results this run can give are shown at 0 before the first event: a dry run never PATCHes, and a run
	// that is not dry never counts a dry_run. Every series costs the daemon half a kilobyte of heap, and at 4,000
	// policies the two that could never move were 8,000 series.
	results := []string{"ok", "error"}
	if o.DryRun {
		results = []string{"dry_run"}
	}
	for _, p := range o.Policies {
		if p.Rules == nil || p.Source == nil || slices.ContainsFunc(p.Also, func(m Metric) bool { return m.Source == nil }) {
			return nil, fmt.Errorf("scaler: policy without engine settings or source")
		}
		if len(p.Also) != len(p.Rules.Also) {
			return nil, fmt.Errorf("scaler: policy %s has %d further rules and %d further sources", p.Rules.Name(), len(p.Rules.Also), len(p.Also))
		}
		e := &entry{Managed: p, name: p.Rules.Name(), targets: targets(p.Rules)}
		e.status = Status{Policy: e.name, App: p.Rules.App, Process: p.Rules.Process, Source: p.SourceKind,
			Mode: string(p.Rules.Mode), Enabled: p.Rules.Enabled, Interval: p.Interval, DryRun: o.DryRun,
			Target: e.targets[0], Metrics: e.metricStatuses()}
		if p.Rules.Predict {
			e.profile = newProfile()
			e.status.Predict = &PredictStatus{On: e.profile.Enabled(), Status: e.profile.Status()}
			in.predicted.WithLabelValues(e.name).Set(0)
		}
		s.all = append(s.all, e)
		in.info.WithLabelValues(e.name, p.Rules.App, p.Rules.Process, p.SourceKind, string(p.Rules.Mode)).Set(1)
		if !p.Rules.Enabled {
			e.status.Reason = string(policy.ReasonDisabled)
			e.status.Action = string(policy.ActionHold)
			in.decisions.WithLabelValues(e.name, string(policy.ActionHold), string(policy.ReasonDisabled)).Add(0)
			continue
		}
		apps[strings.ToLower(p.Rules.App)] = true
		key := strings.ToLower(p.Rules.App) + "\x00" + p.Interval
		g, ok := byKey[key]
		if !ok {
			sched, err := schedule(p.Interval, p.Rules.App)
			if err != nil {
				return nil, err
			}
			g = &group{app: p.Rules.App, interval: p.Interval, schedule: sched}
			byKey[key] = g
			s.groups = append(s.groups, g)
		}
		g.entries = append(g.entries, e)
		for i := range p.metrics() {
			g.readTimeout = max(g.readTimeout, readTimeout(p.metric(i).Timeout, o.TickTimeout))
		}
		if every := intervalSeconds(p.Interval, o.Now()); every > 0 {
			in.interval.WithLabelValues(e.name).Set(every)
		}
		for _, r := range results { // so rate() sees the first event
			in.events.WithLabelValues(e.name, "up", r).Add(0)
			in.events.WithLabelValues(e.name, "down", r).Add(0)
		}
	}
	s.refresh = RefreshInterval(o.Refresh, len(apps), o.APIBudget)
	if s.refresh > o.Refresh {
		s.log.Info("formation refresh stretched to fit the API budget", "configured", o.Refresh, "interval", s.refresh, "apps", len(apps), "budget_per_hour", o.APIBudget)
	}
	in.refresh.Set(s.refresh.Seconds())
	if o.DryRun {
		in.dryRun.Set(1)
	}
	s.cache = newFormationCache(o.Heroku, s.refresh, o.Now)
	return s, nil
}

// RefreshInterval returns the formation refresh in force.
func (s *Scaler) RefreshInterval() time.Duration { return s.refresh }

// Run evaluates every group once at start (the first round: within the first phase of its interval, at most
// firstRoundSpread, and at most firstRoundConcurrency at a time), then on its schedule, until ctx is done: groups on
// an "@every" interval each at their app's phase of it (see schedule), so that the reads of a thousand policies are
// spread over their interval rather than all sent at one instant. Shutdown stops scheduling, abandons readings in
// progress, lets a PATCH in flight finish (bounded by PatchTimeout) and returns.
func (s *Scaler) Run(ctx context.Context) error {
	logger := cronLogger{s.log}
	c := cron.New(cron.WithLogger(logger))
	var running inflight                            // every tick, including the first round's
	evaluated := make([]atomic.Bool, len(s.groups)) // by cron or by the first round
	jobs := make([]func(), len(s.groups))
	for i, g := range s.groups {
		job := cron.NewChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)).Then(cron.FuncJob(func() {
			if !running.enter() {
				return
			}
			defer running.done()
			evaluated[i].Store(true)
			s.tick(ctx, g)
		}))
		c.Schedule(g.schedule, job)
		jobs[i] = job.Run
	}
	c.Start()
	// The first evaluation at start, not up to one interval later, unless cron's comes as soon. Cron runs on the
	// wall clock, whatever Options.Now says.
	now := time.Now()
	var first []firstRun
	for i, g := range s.groups {
		delay := firstDelay(g.app, g.schedule, now)
		if g.schedule.Next(now).Sub(now) > delay+time.Second {
			first = append(first, firstRun{run: jobs[i], at: now.Add(delay), done: evaluated[i].Load})
		}
	}
	firstDone := make(chan struct{})
	go func() { defer close(firstDone); firstRound(ctx, first, firstRoundConcurrency) }()
	s.log.Info("dynopilot running", "policies", len(s.all), "groups", len(s.groups), "dry_run", s.opts.DryRun, "formation_refresh", s.refresh)
	<-ctx.Done()
	c.Stop()
	<-firstDone
	select {
	case <-running.stop():
	case <-time.After(s.opts.PatchTimeout + 2*time.Second):
		s.log.Warn("an evaluation did not finish in time; exiting anyway")
	}
	return nil
}

// EvaluateAll evaluates every group once, now, Options.Concurrency groups at a time (groups are apps: they share
// nothing), and returns when all are done: what a tick of every schedule would do. `check` and tests use it to
// drive the scaler without waiting for cron.
func (s *Scaler) EvaluateAll(ctx context.Context) {
	limit := s.opts.Concurrency
	if limit <= 0 {
		limit = 16
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for _, g := range s.groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.tick(ctx, g)
		})
	}
	wg.Wait()
}

// tick evaluates one group: readings (concurrently), decisions, then at most one PATCH for the app. ctx ends at
// shutdown; the tick sets its own deadlines for readings and formation reads, so that a reading that does not
// answer in time is a failed reading (counted toward the fallback), never a tick that silently decides nothing.
func (s *Scaler) tick(ctx context.Context, g *group) {
	start := s.now()
	defer func() { s.in.evaluation.Observe(s.now().Sub(start).Seconds()) }()
	if ctx.Err() != nil {
		return
	}
	if !s.leading() { // a standby reads nothing and decides nothing: the leader does, and its state is read on takeover
		for _, e := range g.entries {
			e.mu.Lock()
			e.loaded = false
			e.mu.Unlock()
		}
		return
	}
	if !s.load(ctx, g) {
		return
	}
	readingsDone := make(chan [][]reading, 1)
	go func() { readingsDone <- s.read(ctx, g) }()
	fctx, cancel := context.WithTimeout(ctx, s.opts.TickTimeout)
	formation, ferr := s.cache.get(fctx, g.app)
	cancel()
	readings := <-readingsDone
	if ctx.Err() != nil { // shutting down: a reading cut short is not a failed reading
		return
	}
	s.observe(g, readings, s.now())
	if ferr == nil {
		s.mu.Lock()
		s.herokuAnswered = true
		s.mu.Unlock()
	}
	now := s.now()
	var evs []*evaluation
	for i, e := range g.entries {
		f, known := formation[formationKey(e)]
		if ferr != nil || !known {
			s.formationUnknown(e, ferr, readings[i], now)
			continue
		}
		evs = append(evs, s.evaluate(e, f, readings[i], now))
	}
	if !s.opts.DryRun {
		rctx, cancel := context.WithTimeout(ctx, s.opts.TickTimeout)
		evs = s.recheck(rctx, g.app, evs, now)
		cancel()
	}
	for _, ev := range evs {
		s.publish(ev)
	}
	s.apply(ctx, g.app, evs, now)
	s.save(ctx, g)
}

// read takes every reading of the group (each metric of each policy) concurrently and waits for them at most the
// group's read timeout: a source that ignores its context cannot hold the tick, and what has not answered by then
// is a failed reading. readings[i][j] is the reading of entry i's metric j (0: its own).
func (s *Scaler) read(ctx context.Context, g *group) [][]reading {
	rctx, cancel := context.WithTimeout(ctx, g.readTimeout)
	defer cancel()
	type answer struct {
		i, j int
		r    reading
	}
	readings := make([][]reading, len(g.entries))
	n := 0
	for i, e := range g.entries {
		readings[i] = make([]reading, e.metrics())
		n += e.metrics()
	}
	answers := make(chan answer, n) // buffered: a late source finishes without anyone waiting
	for i, e := range g.entries {
		for j := range e.metrics() {
			src := e.metric(j).Source
			go func() {
				r, err := src.Read(rctx)
				answers <- answer{i, j, reading{r, err}}
			}()
		}
	}
	got := make([][]bool, len(g.entries))
	for i := range got {
		got[i] = make([]bool, len(readings[i]))
	}
	take := func(a answer) { readings[a.i][a.j], got[a.i][a.j] = a.r, true }
collect:
	for range n {
		select {
		case a := <-answers:
			take(a)
		case <-rctx.Done():
			for { // what answered at the deadline still counts
				select {
				case a := <-answers:
					take(a)
				default:
					break collect
				}
			}
		}
	}
	for i, e := range g.entries {
		for j := range got[i] {
			if !got[i][j] {
				readings[i][j].err = fmt.Errorf("%s source: no answer within %s: %w", e.metric(j).SourceKind, g.readTimeout, context.DeadlineExceeded)
			}
		}
	}
	return readings
}

// readTimeout is how long a tick waits for a policy's reading.
func readTimeout(timeout, tick time.Duration) time.Duration {
	if timeout <= 0 {
		return tick
	}
	return timeout + time.Second
}

func formationKey(e *entry) string { return strings.ToLower(e.Rules.Process) }

// evaluation is one policy's decision in one tick, with what it was decided from, until it is published.
type evaluation struct {
	e    *entry
	f    herokuapi.Formation
	rs   []reading // each metric's reading, the policy's own first
	last time.Time // the last scale event the decision counted cooldowns from
	d    policy.Decision

	predictionOn bool   // PREDICT: whether predictions were on (predict.Profile.Enabled)
	prediction   string // PREDICT: the profile's sentence for a person (predict.Profile.Status)

	// What the entry was before this decision, so that a decision taken from a formation found to be stale can be
	// taken again as if it never was.
	savedState   policy.State
	savedStarted bool
}

func (ev *evaluation) changes() bool { return ev.d.Desired != ev.d.Current }

// evaluate runs the engine for one policy on its metrics' readings rs, its own first. Nothing is published yet: the
// decision may be taken again (recheck).
func (s *Scaler) evaluate(e *entry, f herokuapi.Formation, rs []reading, now time.Time) *evaluation {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := &evaluation{e: e, f: f, rs: rs, savedState: e.state, savedStarted: e.started}
	r := rs[0]
	if !e.started {
		e.state.Start(e.Rules, now, f.Quantity)
		e.started = true
	}
	// The later of the formation's updated_at (whoever scaled it: a person, another instance) and our own last
	// PATCH (which counts even when Heroku's clock is behind ours).
	ev.last = f.UpdatedAt
	if e.lastPatch.After(ev.last) {
		ev.last = e.lastPatch
	}
	in := policy.Input{Now: now, Current: f.Quantity, Size: f.SizeName(), LastScale: ev.last, Value: r.Value, ReadingOK: r.err == nil}
	if len(rs) > 1 {
		in.Also = make([]policy.Reading, len(rs)-1)
		for i, r := range rs[1:] {
			in.Also[i] = policy.Reading{Value: r.Value, OK: r.err == nil}
		}
	}
	if e.Rules.ProtectBusy { // the running jobs come with the policy's own source's reading
		in.Running, in.RunningOK = RunningJobs(e.Rules.Process, r.Reading, r.err)
	}
	in.Predicted, ev.predictionOn, ev.prediction = e.predicted(now)
	ev.d = policy.Decide(e.Rules, &e.state, in)
	return ev
}

// RunningJobs turns what a reading (and its error) says of running jobs into what the engine needs for the policy's
// process type: a job on a dyno of another process type is left out (stopping this one's dynos does not stop it),
// a job whose dyno the source cannot name is kept with dyno 0. ok is false when the running jobs could not be read.
// `check` decides with it too, so that it shows what the daemon would do.
func RunningJobs(process string, r metrics.Reading, err error) (jobs []policy.RunningJob, ok bool) {
	if err != nil || r.RunningErr != nil {
		return nil, false
	}
	for _, j := range r.Running {
		typ, n, named := metrics.DynoName(j.Worker)
		switch {
		case !named:
			n = 0
		case !strings.EqualFold(typ, process):
			continue
		}
		jobs = append(jobs, policy.RunningJob{Dyno: n, Started: j.Started, What: j.What()})
	}
	return jobs, true
}

// undo forgets what evaluate remembered.
func (ev *evaluation) undo() {
	ev.e.mu.Lock()
	ev.e.state, ev.e.started = ev.savedState, ev.savedStarted
	ev.e.mu.Unlock()
}

// recheck makes sure no scale action is decided from a stale formation: when a decision would PATCH, the app's
// formation is read afresh, and every policy whose process type changed since the cached read (quantity, size or
// updated_at: a person scaled it, or another instance did) is decided again from the fresh one. The read costs
// one API token per scale event. When it fails, the policies that would have changed hold.
func (s *Scaler) recheck(ctx context.Context, app string, evs []*evaluation, now time.Time) []*evaluation {
	if !slices.ContainsFunc(evs, func(ev *evaluation) bool { return ev.changes() && !ev.e.refusedAt(now) }) {
		return evs
	}
	fresh, err := s.cache.fresh(ctx, app)
	out := evs[:0]
	for _, ev := range evs {
		f, known := fresh[formationKey(ev.e)]
		switch {
		case err != nil && !ev.changes():
			out = append(out, ev) // a hold needs no fresh formation
		case err != nil || !known:
			ev.undo()
			s.formationUnknown(ev.e, err, ev.rs, now)
		case f.Quantity != ev.f.Quantity || !f.UpdatedAt.Equal(ev.f.UpdatedAt) || f.SizeName() != ev.f.SizeName():
			s.log.Info("the formation changed since it was read; deciding again", "policy", ev.e.name,
				"quantity_was", ev.f.Quantity, "quantity", f.Quantity, "updated_at", f.UpdatedAt)
			ev.undo()
			out = append(out, s.evaluate(ev.e, f, ev.rs, now))
		default:
			out = append(out, ev)
		}
	}
	return out
}

type reading struct {
	metrics.Reading
	err error
}

// publish emits one decision: the daemon's own record (metrics, status, log) and every consumer of the event path.
func (s *Scaler) publish(ev *evaluation) {
	out := s.decisionEvent(ev)
	d := ev.d
	if d.BusyHeld || d.BusyOverridden {
		out.HeldFor = d.BusyFor
	}
	if d.BusyOverridden {
		out.Warning = "a scale-down waited PROTECT_BUSY_MAX for busy dynos: scaling down anyway"
	}
	if s.opts.DryRun && d.Desired != d.Current { // the reason it would have scaled stays in the sentence
		out.Reason = string(policy.ReasonDryRun)
		out.Explanation += " (DYNOPILOT_DRY_RUN: not applied)"
	}
	s.emit(ev.e, out)
}

// decisionEvent is the Decision event of an evaluation, with what the daemon's record shows of it.
func (s *Scaler) decisionEvent(ev *evaluation) event.Event {
	info, _ := dynosize.Lookup(ev.f.SizeName())
	out := s.policyEvent(ev.e, event.Decision, ev.d)
	out.Size, out.PricePerHour = ev.f.SizeName(), info.Hour
	out.CooldownLeft, out.LastScale = ev.d.CooldownLeft, ev.last
	if m := ev.d.Metric; m >= 0 && m < len(ev.rs) {
		out.ReadingAt = ev.rs[m].At
	}
	s.readingFacts(ev.e, &out, ev.rs)
	out.Predicted, out.PredictionOn, out.Prediction = ev.d.Predicted, ev.predictionOn, ev.prediction
	return out
}

// readingFacts sets what a decision event says of the policy's readings rs: every metric's (Metrics), the first
// failed one's error, and why the running jobs could not be read.
func (s *Scaler) readingFacts(e *entry, out *event.Event, rs []reading) {
	out.Metrics = make([]event.MetricReading, len(rs))
	for i, r := range rs {
		m := event.MetricReading{Value: r.Value, OK: r.err == nil, At: r.At, Target: e.targets[i]}
		if r.err != nil {
			m.Error = r.err.Error() // sources' errors are scrubbed of their secrets already
			if out.Error == "" {
				out.Error = metricName(i) + m.Error
			}
		}
		out.Metrics[i] = m
	}
	if rs[0].RunningErr != nil {
		out.RunningError = rs[0].RunningErr.Error()
	}
}

// metricName names metric i (0: the policy's own) before what is said of it: "" for the policy's own, so that a
// policy on one metric reads as before, "metric 2: " for a further one.
func metricName(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("metric %d: ", i+1)
}

// policyEvent is an event of type typ about policy e with decision d's facts. Its reading is the one the decision is
// about (d.Metric's), and it has one only when every metric's reading was usable: a failing metric is a failing
// source, whichever one it is.
func (s *Scaler) policyEvent(e *entry, typ event.Type, d policy.Decision) event.Event {
	p := e.Rules
	return event.Event{Type: typ, Time: d.Now, Policy: e.name, App: p.App, Process: p.Process,
		From: d.Current, To: d.Desired, Wanted: d.Recommendation, Min: d.Min, Max: d.Max,
		Action: string(d.Action), Reason: string(d.Reason), Reading: d.Value, HasReading: d.ReadingOK && d.Failed == 0, Target: d.Target,
		Failures: d.Failures, FallbackAfter: p.FallbackAfter, Explanation: d.Explain(), DryRun: s.opts.DryRun}
}

// emit sends one event down the one event path: the daemon's own record first (record.go: metrics, the status,
// the log, all in memory and never blocking), then the consumers of Options.Events (history, notifiers), whose
// Publish never blocks either.
func (s *Scaler) emit(e *entry, ev event.Event) {
	s.record(e, ev)
	if s.opts.Events != nil {
		s.opts.Events.Publish(context.Background(), ev)
	}
}

// formationUnknown records a tick whose formation could not be read: nothing can be decided, so hold.
func (s *Scaler) formationUnknown(e *entry, ferr error, rs []reading, now time.Time) {
	err := ferr
	if err == nil {
		err = fmt.Errorf("app %s has no process type %q in its formation", e.Rules.App, e.Rules.Process)
	}
	p := e.Rules
	e.mu.Lock()
	current := e.status.Current
	e.mu.Unlock()
	ev := event.Event{Type: event.Decision, Time: now, Policy: e.name, App: p.App, Process: p.Process,
		From: current, To: current, Action: string(policy.ActionHold), Reason: string(policy.ReasonReadingFailed),
		Reading: rs[0].Value, HasReading: !slices.ContainsFunc(rs, func(r reading) bool { return r.err != nil }), ReadingAt: rs[0].At,
		FallbackAfter: p.FallbackAfter, Explanation: "formation unknown, holding: " + err.Error(), NoFormation: true, DryRun: s.opts.DryRun}
	s.readingFacts(e, &ev, rs)
	ev.Error = err.Error()
	s.emit(e, ev)
}

// Ready reports whether Heroku has answered and every enabled policy has been evaluated at least once; a standby,
// which evaluates nothing while another instance leads, is ready as soon as it runs.
func (s *Scaler) Ready() bool {
	if !s.leading() {
		return true
	}
	s.mu.Lock()
	answered := s.herokuAnswered
	s.mu.Unlock()
	if !answered {
		return false
	}
	for _, e := range s.all {
		e.mu.Lock()
		ok := !e.Rules.Enabled || e.status.Evaluated
		e.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// DrainStats returns what each log drain has delivered, sorted by app; none without a log drain receiver.
func (s *Scaler) DrainStats() []logdrain.Stats {
	if s.opts.Drains == nil {
		return []logdrain.Stats{}
	}
	return s.opts.Drains()
}

// Statuses returns every policy's status, sorted by name.
func (s *Scaler) Statuses() []Status {
	out := make([]Status, 0, len(s.all))
	for _, e := range s.all {
		e.mu.Lock()
		out = append(out, e.status)
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy < out[j].Policy })
	return out
}

// intervalSeconds is the gap between two runs of a cron spec after now.
func intervalSeconds(spec string, now time.Time) float64 {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return 0
	}
	first := sched.Next(now)
	return sched.Next(first).Sub(first).Seconds()
}

// cronLogger sends robfig/cron's log lines to slog.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
