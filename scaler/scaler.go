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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/dynosize"
	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
)

// Heroku is what the scaler needs of the Platform API; *herokuapi.Client provides it.
type Heroku interface {
	ListFormation(ctx context.Context, app string) ([]herokuapi.Formation, error)
	UpdateFormation(ctx context.Context, app, typ string, quantity int) (herokuapi.Formation, error)
	BatchUpdateFormation(ctx context.Context, app string, updates []herokuapi.FormationUpdate) ([]herokuapi.Formation, error)
}

var _ Heroku = (*herokuapi.Client)(nil)

// Policy is one configured policy with its source opened.
type Policy struct {
	Policy     *policy.Policy
	Source     metrics.Source // already wrapped with the source instruments and timeout
	SourceKind string         // e.g. "sidekiq", for labels
	Interval   string         // a robfig/cron spec, e.g. "@every 15s"
}

// Options configures a Scaler.
type Options struct {
	Heroku   Heroku
	Policies []Policy
	DryRun   bool
	// Refresh is the configured formation refresh; it is stretched to fit APIBudget.
	Refresh time.Duration
	// APIBudget is the tokens per hour dynopilot may spend (DYNOPILOT_API_RATE less DYNOPILOT_API_RESERVE).
	APIBudget float64
	// PatchTimeout bounds one PATCH, which is allowed to finish after shutdown begins; default 5s.
	PatchTimeout time.Duration
	// TickTimeout bounds one evaluation's readings and formation read; default 30s.
	TickTimeout time.Duration
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	Version     string
	Now         func() time.Time // default time.Now
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
}

// group is the policies of one app evaluated on one schedule.
type group struct {
	app      string
	interval string
	entries  []*entry
}

// entry is one policy and what the daemon remembers of it between ticks.
type entry struct {
	Policy
	name string

	mu        sync.Mutex
	state     policy.State
	lastPatch time.Time // the daemon's own last successful PATCH of this process type
	status    Status
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
	in, err := newInstruments(o.Registerer, o.Version)
	if err != nil {
		return nil, fmt.Errorf("registering decision metrics: %w", err)
	}
	s := &Scaler{opts: o, log: o.Logger, now: o.Now, in: in}
	apps := map[string]bool{}
	byKey := map[string]*group{}
	for _, p := range o.Policies {
		if p.Policy == nil || p.Source == nil {
			return nil, fmt.Errorf("scaler: policy without engine settings or source")
		}
		e := &entry{Policy: p, name: p.Policy.Name()}
		e.status = Status{Policy: e.name, App: p.Policy.App, Process: p.Policy.Process, Source: p.SourceKind,
			Mode: string(p.Policy.Mode), Enabled: p.Policy.Enabled, Interval: p.Interval, DryRun: o.DryRun}
		s.all = append(s.all, e)
		in.info.WithLabelValues(e.name, p.Policy.App, p.Policy.Process, p.SourceKind, string(p.Policy.Mode)).Set(1)
		if !p.Policy.Enabled {
			e.status.Reason = string(policy.ReasonDisabled)
			e.status.Action = string(policy.ActionHold)
			in.decisions.WithLabelValues(e.name, string(policy.ActionHold), string(policy.ReasonDisabled)).Add(0)
			continue
		}
		apps[strings.ToLower(p.Policy.App)] = true
		key := strings.ToLower(p.Policy.App) + "\x00" + p.Interval
		g, ok := byKey[key]
		if !ok {
			g = &group{app: p.Policy.App, interval: p.Interval}
			byKey[key] = g
			s.groups = append(s.groups, g)
		}
		g.entries = append(g.entries, e)
		if every := intervalSeconds(p.Interval, o.Now()); every > 0 {
			in.interval.WithLabelValues(e.name).Set(every)
		}
		for _, r := range []string{"ok", "error", "dry_run"} { // so rate() sees the first event
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

// Run evaluates every group once at once, then on its schedule, until ctx is done. Shutdown stops scheduling,
// abandons readings in progress, lets a PATCH in flight finish (bounded by PatchTimeout) and returns.
func (s *Scaler) Run(ctx context.Context) error {
	logger := cronLogger{s.log}
	c := cron.New(cron.WithLogger(logger))
	var running sync.WaitGroup // every tick, including the first ones started outside cron
	jobs := make([]cron.Job, len(s.groups))
	for i, g := range s.groups {
		jobs[i] = cron.NewChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)).Then(cron.FuncJob(func() {
			running.Add(1)
			defer running.Done()
			tctx, cancel := context.WithTimeout(ctx, s.opts.TickTimeout)
			defer cancel()
			s.tick(tctx, g)
		}))
		if _, err := c.AddJob(g.interval, jobs[i]); err != nil {
			return fmt.Errorf("scheduling %s every %q: %w", g.app, g.interval, err)
		}
	}
	c.Start()
	for i, j := range jobs { // the first evaluation now, not one interval from now, unless cron's is as close
		if sched, err := cron.ParseStandard(s.groups[i].interval); err == nil && sched.Next(s.now()).Sub(s.now()) > time.Second {
			go j.Run()
		}
	}
	s.log.Info("dynopilot running", "policies", len(s.all), "groups", len(s.groups), "dry_run", s.opts.DryRun, "formation_refresh", s.refresh)
	<-ctx.Done()
	c.Stop()
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.PatchTimeout + 2*time.Second):
		s.log.Warn("an evaluation did not finish in time; exiting anyway")
	}
	return nil
}

// EvaluateAll evaluates every group once, now, one after another: what a tick of every schedule would do. Tests
// and tools use it to drive the scaler without waiting for cron.
func (s *Scaler) EvaluateAll(ctx context.Context) {
	for _, g := range s.groups {
		s.tick(ctx, g)
	}
}

// tick evaluates one group: readings (concurrently), decisions, then at most one PATCH for the app.
func (s *Scaler) tick(ctx context.Context, g *group) {
	start := s.now()
	defer func() { s.in.evaluation.Observe(s.now().Sub(start).Seconds()) }()
	if ctx.Err() != nil {
		return
	}
	readings := make([]reading, len(g.entries))
	var wg sync.WaitGroup
	for i, e := range g.entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.Source.Read(ctx)
			readings[i] = reading{r, err}
		}()
	}
	formation, ferr := s.cache.get(ctx, g.app)
	wg.Wait()
	if ctx.Err() != nil { // shutting down: a reading cut short is not a failed reading
		return
	}
	if ferr == nil {
		s.mu.Lock()
		s.herokuAnswered = true
		s.mu.Unlock()
	}
	now := s.now()
	var updates []herokuapi.FormationUpdate
	var changing []*entry
	var decisions []policy.Decision
	for i, e := range g.entries {
		f, known := formation[strings.ToLower(e.Policy.Policy.Process)]
		if ferr != nil || !known {
			s.formationUnknown(e, ferr, readings[i], now)
			continue
		}
		d := s.decide(e, f, readings[i], now)
		if d.Desired != d.Current {
			updates = append(updates, herokuapi.FormationUpdate{Type: f.Type, Quantity: d.Desired})
			changing = append(changing, e)
			decisions = append(decisions, d)
		}
	}
	if len(updates) == 0 {
		return
	}
	if s.opts.DryRun {
		for i, e := range changing {
			s.scaleEvent(e, decisions[i], "dry_run", nil)
		}
		return
	}
	// A PATCH already decided is allowed to finish during shutdown: it is absolute, and abandoning it half-way
	// would leave us not knowing what happened.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.PatchTimeout)
	defer cancel()
	err := s.cache.patch(pctx, g.app, updates)
	result := "ok"
	if err != nil {
		result = "error"
	}
	for i, e := range changing {
		if err == nil {
			e.mu.Lock()
			e.lastPatch = s.now()
			e.mu.Unlock()
		}
		s.scaleEvent(e, decisions[i], result, err)
	}
}

type reading struct {
	metrics.Reading
	err error
}

// decide runs the engine for one policy and publishes the decision.
func (s *Scaler) decide(e *entry, f herokuapi.Formation, r reading, now time.Time) policy.Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	last := f.UpdatedAt
	if e.lastPatch.After(last) {
		last = e.lastPatch
	}
	in := policy.Input{Now: now, Current: f.Quantity, Size: f.SizeName(), LastScale: last, Value: r.Value, ReadingOK: r.err == nil}
	d := policy.Decide(e.Policy.Policy, &e.state, in)
	s.publish(e, d, f, r, last)
	return d
}

func (s *Scaler) publish(e *entry, d policy.Decision, f herokuapi.Formation, r reading, last time.Time) {
	n := e.name
	s.in.decisions.WithLabelValues(n, string(d.Action), string(d.Reason)).Inc()
	s.in.quantity.WithLabelValues(n).Set(float64(d.Current))
	s.in.desired.WithLabelValues(n).Set(float64(d.Desired))
	s.in.min.WithLabelValues(n).Set(float64(d.Min))
	s.in.max.WithLabelValues(n).Set(float64(d.Max))
	s.in.target.WithLabelValues(n).Set(d.Target)
	if r.err == nil {
		s.in.reading.WithLabelValues(n).Set(r.Value)
	}
	if !last.IsZero() {
		s.in.lastScale.WithLabelValues(n).Set(float64(last.UnixNano()) / 1e9)
	}
	info, _ := dynosize.Lookup(f.SizeName())
	s.in.cost.WithLabelValues(n).Set(costPerHour(d.Current, info.Hour))
	s.in.price.WithLabelValues(n).Set(info.Hour)
	s.in.lastEval.WithLabelValues(n).Set(float64(d.Now.UnixNano()) / 1e9)
	s.in.cooldownLeft.WithLabelValues(n).Set(d.CooldownLeft.Seconds())

	st := &e.status
	st.Current, st.Desired, st.Min, st.Max, st.Target = d.Current, d.Desired, d.Min, d.Max, d.Target
	st.Size = f.SizeName()
	st.Action, st.Reason, st.Explanation = string(d.Action), string(d.Reason), d.Explain()
	st.DecidedAt = d.Now
	st.CooldownLeftSeconds = d.CooldownLeft.Seconds()
	st.LastScale = last
	st.Failures = d.Failures
	st.Evaluated = true
	st.CostPerHour = costPerHour(d.Current, info.Hour)
	if r.err == nil {
		v := r.Value
		st.Reading, st.ReadingAt, st.ReadingError = &v, r.At, ""
	} else {
		st.ReadingError = r.err.Error()
	}
	attrs := []any{"policy", n, "action", d.Action, "reason", d.Reason, "current", d.Current, "desired", d.Desired,
		"reading", r.Value, "target", d.Target, "explanation", st.Explanation}
	if r.err != nil {
		attrs = append(attrs, "reading_error", r.err)
	}
	if d.Action == policy.ActionHold {
		s.log.Debug("hold", attrs...)
	}
}

// formationUnknown records a tick whose formation could not be read: nothing can be decided, so hold.
func (s *Scaler) formationUnknown(e *entry, ferr error, r reading, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := ferr
	if err == nil {
		err = fmt.Errorf("app %s has no process type %q in its formation", e.Policy.Policy.App, e.Policy.Policy.Process)
	}
	s.in.decisions.WithLabelValues(e.name, string(policy.ActionHold), string(policy.ReasonReadingFailed)).Inc()
	e.status.Action, e.status.Reason = string(policy.ActionHold), string(policy.ReasonReadingFailed)
	e.status.Explanation = "formation unknown, holding: " + err.Error()
	e.status.DecidedAt = now
	e.status.Evaluated = true
	s.in.lastEval.WithLabelValues(e.name).Set(float64(now.UnixNano()) / 1e9)
	if r.err == nil {
		v := r.Value
		e.status.Reading, e.status.ReadingAt = &v, r.At
		s.in.reading.WithLabelValues(e.name).Set(r.Value)
	}
	s.log.Warn("cannot read formation; holding", "policy", e.name, "err", err)
}

// scaleEvent logs and counts one attempted change.
func (s *Scaler) scaleEvent(e *entry, d policy.Decision, result string, err error) {
	dir := "up"
	if d.Desired < d.Current {
		dir = "down"
	}
	s.in.events.WithLabelValues(e.name, dir, result).Inc()
	attrs := []any{"policy", e.name, "from", d.Current, "to", d.Desired, "reason", d.Reason, "reading", d.Value,
		"target", d.Target, "result", result, "explanation", d.Explain()}
	switch result {
	case "ok":
		s.in.lastScale.WithLabelValues(e.name).Set(float64(s.now().UnixNano()) / 1e9)
		s.in.quantity.WithLabelValues(e.name).Set(float64(d.Desired))
		e.mu.Lock()
		e.status.Current = d.Desired
		e.status.LastScale = s.now()
		e.mu.Unlock()
		s.log.Info("scaled", attrs...)
	case "dry_run":
		s.log.Info("would scale (dry run)", attrs...)
	default:
		s.log.Error("scaling failed", append(attrs, "err", err)...)
		e.mu.Lock()
		e.status.LastError = err.Error()
		e.mu.Unlock()
	}
}

// Ready reports whether Heroku has answered and every enabled policy has been evaluated at least once.
func (s *Scaler) Ready() bool {
	s.mu.Lock()
	answered := s.herokuAnswered
	s.mu.Unlock()
	if !answered {
		return false
	}
	for _, e := range s.all {
		e.mu.Lock()
		ok := !e.Policy.Policy.Enabled || e.status.Evaluated
		e.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
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
