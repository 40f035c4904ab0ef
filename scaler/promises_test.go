package scaler_test

// Tests of the promises the README makes about a Heroku app's real life: a person's scaling between two formation
// reads, a restart, a source that hangs, Heroku refusing a PATCH, and the rule that cooldowns count from the later
// of updated_at and the daemon's own last PATCH.

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/scaler"
)

// ratio is a ratio-mode policy (one dyno per unit of reading) on shop's process, with no up cooldown and no
// stabilization, so that only what a test sets holds it.
func ratio(process string) policy.Settings {
	st := settings(process, "20")
	st.Mode, st.PerDyno, st.Target = "ratio", "1", ""
	st.UpCooldown = "0"
	return st
}

func TestAPersonsScaleBetweenFormationReadsIsNotOverwritten(t *testing.T) {
	// The formation is re-read only every hour: between two reads the cache says 2 while a person has made it 8.
	w := newWorldWith(t, func(o *scaler.Options) { o.Refresh = time.Hour }, ratio("worker"))
	w.srcs["worker"].set(2, nil) // wants 2: hold
	w.tick(t)
	if w.patches() != 0 {
		t.Fatalf("%d PATCHes for a reading that wants the current quantity", w.patches())
	}
	if _, err := w.heroku.Scale("shop", "worker", 8); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Second)
	w.srcs["worker"].set(3, nil) // a little more load: 3 wanted, which from the cached 2 is a scale-up
	w.heroku.ClearRequests()
	w.tick(t)
	if got := w.quantity(t, "worker"); got != 8 {
		t.Fatalf("worker = %d two seconds after a person scaled it to 8, want 8 (DOWN_COOLDOWN=5m)", got)
	}
	if w.patches() != 0 {
		t.Errorf("%d PATCHes decided from a stale formation", w.patches())
	}
	if st := w.status(t, "shop/worker"); st.Current != 8 || st.Reason != string(policy.ReasonDownCooldown) {
		t.Errorf("status current %d reason %q, want 8 and down_cooldown", st.Current, st.Reason)
	}
	var reads int
	for _, r := range w.heroku.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/formation") {
			reads++
		}
	}
	if reads != 1 {
		t.Errorf("%d formation reads before the PATCH that was not sent, want the one fresh read", reads)
	}

	// Once the person's change is 5 minutes old, the daemon may act on it, from 8.
	w.clock.Advance(5 * time.Minute)
	w.tick(t)
	if got := w.quantity(t, "worker"); got != 3 {
		t.Errorf("worker = %d after the down cooldown, want 3", got)
	}
}

func TestANewInstanceDoesNotUndoAnotherInstancesScale(t *testing.T) {
	// Two overlapping processes (a restart, a deploy): a sees 2 and wants 5, b read 2 earlier and wants 4.
	a := newWorldWith(t, func(o *scaler.Options) { o.Refresh = time.Hour }, ratio("worker"))
	srv := newServer(t, a.heroku)
	b := secondScaler(t, a, srv, ratio("worker"))
	b.src.set(2, nil)
	b.tick(t) // b caches worker=2
	a.srcs["worker"].set(5, nil)
	a.tick(t) // a scales 2 -> 5
	if got := a.quantity(t, "worker"); got != 5 {
		t.Fatalf("worker = %d, want a's 5", got)
	}
	a.clock.Advance(time.Second)
	b.src.set(4, nil)
	b.tick(t)
	if got := a.quantity(t, "worker"); got != 5 {
		t.Errorf("worker = %d: the other instance undid a scale-up a second old from its stale formation", got)
	}
}

func TestCooldownCountsFromTheLaterOfUpdatedAtAndTheDaemonsOwnPatch(t *testing.T) {
	// Heroku's clock runs an hour behind ours: every updated_at it reports, even of our own PATCH, is an hour old.
	// The up cooldown must still count from our PATCH. (The other half of the rule, a person's updated_at later
	// than our PATCH, is TestCooldownsAndAPersonsScaleAreRespected.)
	behind := func(fs []herokuapi.Formation) []herokuapi.Formation {
		for i := range fs {
			fs[i].UpdatedAt = fs[i].UpdatedAt.Add(-time.Hour)
		}
		return fs
	}
	w := newWorldWith(t, func(o *scaler.Options) {
		real := o.Heroku
		o.Heroku = heroku{Heroku: real,
			ListFormationFn: func(ctx context.Context, app string) ([]herokuapi.Formation, error) {
				fs, err := real.ListFormation(ctx, app)
				return behind(fs), err
			},
			UpdateFormationFn: func(ctx context.Context, app, typ string, q int) (herokuapi.Formation, error) {
				f, err := real.UpdateFormation(ctx, app, typ, q)
				return behind([]herokuapi.Formation{f})[0], err
			},
		}
	}, settings("web", "20")) // target mode, UP_COOLDOWN=1m
	w.srcs["web"].set(2, nil)
	w.tick(t) // 2 -> 4
	if got := w.quantity(t, "web"); got != 4 {
		t.Fatalf("web = %d, want 4", got)
	}
	w.clock.Advance(30 * time.Second)
	w.srcs["web"].set(2, nil) // wants 8, but our own PATCH was 30 s ago
	w.tick(t)
	if got := w.quantity(t, "web"); got != 4 {
		t.Fatalf("web = %d 30 s after our own PATCH with UP_COOLDOWN=1m, want 4", got)
	}
	if st := w.status(t, "shop/web"); st.Reason != string(policy.ReasonUpCooldown) {
		t.Errorf("reason %q, want up_cooldown", st.Reason)
	}
	w.clock.Advance(31 * time.Second)
	w.tick(t)
	if got := w.quantity(t, "web"); got != 8 {
		t.Errorf("web = %d after the up cooldown, want 8", got)
	}
}

func TestARestartWaitsAFullDownStabilizationWindow(t *testing.T) {
	st := ratio("worker")
	st.DownCooldown, st.DownStabilization = "0", "30s"
	w := newWorld(t, false, st)
	if _, err := w.heroku.Scale("shop", "worker", 8); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Hour)
	// This scaler has just started: the process before it saw load for 8 until 5 s ago; now 1 is wanted.
	w.srcs["worker"].set(1, nil)
	w.tick(t)
	for _, after := range []time.Duration{10 * time.Second, 10 * time.Second, 9 * time.Second} {
		if got := w.quantity(t, "worker"); got != 8 {
			t.Fatalf("worker = %d within DOWN_STABILIZATION=30s of a start, want 8", got)
		}
		if s := w.status(t, "shop/worker"); s.Reason != string(policy.ReasonStabilizing) {
			t.Errorf("reason %q, want stabilizing", s.Reason)
		}
		w.clock.Advance(after)
		w.tick(t)
	}
	w.clock.Advance(2 * time.Second) // 31 s after the start
	w.tick(t)
	if got := w.quantity(t, "worker"); got != 1 {
		t.Errorf("worker = %d a full window after the start, want 1", got)
	}
}

func TestARestartDoesNotDelayAScaleUp(t *testing.T) {
	st := ratio("worker")
	st.DownStabilization, st.UpStabilization = "5m", "1m" // an up window: Start must leave it empty
	w := newWorld(t, false, st)
	w.srcs["worker"].set(6, nil)
	w.tick(t)
	if got := w.quantity(t, "worker"); got != 6 {
		t.Errorf("worker = %d on the first tick after a start, want 6 at once", got)
	}
}

// hung is a source that does not answer, whatever its context says, until the test ends.
type hung struct {
	calls   atomic.Int32
	release chan struct{}
}

func (h *hung) Read(ctx context.Context) (metrics.Reading, error) {
	h.calls.Add(1)
	<-h.release
	return metrics.Reading{}, ctx.Err()
}

func TestAHungSourceIsAFailedReadingThatCountsTowardTheFallback(t *testing.T) {
	// TIMEOUT (here 300 ms) is longer than the limit on the tick's formation reads (50 ms): the reading must still
	// be waited for, then count as failed; after FALLBACK_AFTER=2 of them the fallback raises the quantity.
	st := settings("web", "10")
	st.FallbackAfter, st.FallbackQuantity = "2", "5"
	p, err := st.Parse()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, false)
	srv := newServer(t, w.heroku)
	client, _ := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	var logs servicetest.Buffer
	src := &hung{release: make(chan struct{})}
	t.Cleanup(func() { close(src.release) })
	w.reg = prometheus.NewRegistry()
	s, err := scaler.New(scaler.Options{Heroku: client, Registerer: w.reg, Now: w.clock.Now, TickTimeout: 50 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		Policies: []scaler.Managed{{Rules: p, Source: src, SourceKind: "hirefire", Interval: "@every 15s", Timeout: 300 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	s.EvaluateAll(context.Background())
	if !s.Ready() {
		t.Errorf("not ready after a tick whose reading failed: the policy was evaluated")
	}
	got := s.Statuses()[0]
	if got.Reason != string(policy.ReasonReadingFailed) || got.Failures != 1 || !strings.Contains(got.ReadingError, "no answer") {
		t.Errorf("after one hung reading: reason %q failures %d error %q", got.Reason, got.Failures, got.ReadingError)
	}
	if !strings.Contains(logs.String(), "reading failed") {
		t.Errorf("a hung source is not logged:\n%s", logs.String())
	}
	w.clock.Advance(15 * time.Second)
	s.EvaluateAll(context.Background())
	if q := w.quantity(t, "web"); q != 5 {
		t.Errorf("web = %d after two hung readings with FALLBACK_AFTER=2, want FALLBACK_QUANTITY 5", q)
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("source read %d times, want 2", n)
	}
}

func TestARefusedBatchIsSplitAndTheRefusalBacksOff(t *testing.T) {
	web := settings("web", "20")
	web.SizeLimit = "20" // the user says support raised the limit; Heroku says otherwise
	worker := settings("worker", "20")
	var logs servicetest.Buffer
	w := newWorldWith(t, func(o *scaler.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }, web, worker)
	w.heroku.AddApp("shop", fake.Process{Type: "web", Quantity: 2, Size: "Performance-M"}) // 10 per process type
	w.clock.Advance(time.Hour)
	w.srcs["web"].set(6, nil)    // 2 -> 12: past Performance-M's 10
	w.srcs["worker"].set(2, nil) // 2 -> 4
	w.heroku.ClearRequests()
	w.tick(t)
	if got := w.quantity(t, "worker"); got != 4 {
		t.Fatalf("worker = %d: one process type's refusal blocked the other", got)
	}
	if got := w.quantity(t, "web"); got != 2 {
		t.Fatalf("web = %d", got)
	}
	refusals := func() int {
		n := 0
		for _, r := range w.heroku.Requests() {
			if r.Method == "PATCH" && r.Status == 422 {
				n++
			}
		}
		return n
	}
	w.srcs["worker"].set(1, nil) // on target from now on: only web wants a change
	if n := refusals(); n != 2 { // the batch, then web by itself
		t.Errorf("%d refused PATCHes, want 2 (the batch, then web alone)", n)
	}
	if st := w.status(t, "shop/web"); st.RetryAt.IsZero() || st.LastError == "" {
		t.Errorf("web's status does not show the refusal: %+v", st)
	}
	for range 3 { // the next ticks within the backoff send nothing for web
		w.clock.Advance(15 * time.Second)
		w.tick(t)
	}
	if n := refusals(); n != 2 {
		t.Errorf("%d refused PATCHes 45 s after the refusal, want still 2 (backing off)", n)
	}
	w.clock.Advance(20 * time.Second) // past the first minute's backoff: one more try, refused again
	w.tick(t)
	if n := refusals(); n != 3 {
		t.Errorf("%d refused PATCHes after the backoff, want 3", n)
	}
	if n := strings.Count(logs.String(), "Heroku refused the change"); n != 1 {
		t.Errorf("the refusal is logged at error %d times, want once:\n%s", n, logs.String())
	}
	if got := counter(t, w.reg, "dynopilot_scale_events_total", map[string]string{"policy": "shop/web", "direction": "up", "result": "error"}); got != 2 {
		t.Errorf("web's error events %v, want 2", got)
	}
}

func TestAForbiddenPatchIsNotRetriedEveryTick(t *testing.T) {
	var calls atomic.Int32
	w := newWorldWith(t, func(o *scaler.Options) {
		o.Heroku = heroku{Heroku: o.Heroku, UpdateFormationFn: func(context.Context, string, string, int) (herokuapi.Formation, error) {
			calls.Add(1)
			return herokuapi.Formation{}, &herokuapi.Error{Method: "PATCH", Path: "/apps/shop/formation/web", Status: 403, ID: "suspended", Message: "This account is suspended."}
		}}
	}, settings("web", "10"))
	w.srcs["web"].set(2, nil)
	for range 4 {
		w.tick(t)
		w.clock.Advance(10 * time.Second)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("a 403 was sent %d times in 40 s, want once and then a backoff", n)
	}
}

func newServer(t *testing.T, h *fake.Server) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// instance is a second scaler on the same fake Heroku and clock as a world: another dynopilot process.
type instance struct {
	s   *scaler.Scaler
	src *source
}

func secondScaler(t *testing.T, w *world, srv *httptest.Server, st policy.Settings) *instance {
	t.Helper()
	client, err := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Parse()
	if err != nil {
		t.Fatal(err)
	}
	i := &instance{src: &source{}}
	i.s, err = scaler.New(scaler.Options{Heroku: client, Refresh: time.Hour, APIBudget: 4050, Registerer: prometheus.NewRegistry(), Now: w.clock.Now,
		Policies: []scaler.Managed{{Rules: p, Source: i.src, SourceKind: "hirefire", Interval: "@every 15s"}}})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func (i *instance) tick(t *testing.T) { t.Helper(); evaluate(t, i.s) }

func TestADeployHoldsChangesWithoutAnErrorStorm(t *testing.T) {
	var logs servicetest.Buffer
	w := newWorldWith(t, func(o *scaler.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }, settings("web", "10"), settings("worker", "10"))
	if err := w.heroku.Deploy("shop", true); err != nil {
		t.Fatal(err)
	}
	w.srcs["web"].set(2, nil)    // 2 -> 4
	w.srcs["worker"].set(2, nil) // 2 -> 4: one batch
	w.heroku.ClearRequests()
	for range 3 {
		w.tick(t)
		w.clock.Advance(10 * time.Second)
	}
	var patches int
	for _, r := range w.heroku.Requests() {
		if r.Method == "PATCH" {
			patches++
		}
	}
	if patches != 3 {
		t.Errorf("%d PATCHes in 3 ticks of a deploy, want 3: one a tick, not split, not backed off", patches)
	}
	if st := w.status(t, "shop/web"); st.Reason != string(policy.ReasonDeploying) || st.Current != 2 {
		t.Errorf("status during a deploy: reason %q current %d", st.Reason, st.Current)
	}
	if n := counter(t, w.reg, "dynopilot_scale_events_total", map[string]string{"policy": "shop/web", "result": "error"}); n != 0 {
		t.Errorf("%v error events during a deploy, want none", n)
	}
	if n := counter(t, w.reg, "dynopilot_decisions_total", map[string]string{"policy": "shop/web", "reason": "deploying"}); n != 3 {
		t.Errorf("%v deploying decisions, want 3", n)
	}
	if n := strings.Count(logs.String(), "app is being deployed"); n != 2 { // once per policy, not per tick
		t.Errorf("the deploy is logged %d times, want once per policy:\n%s", n, logs.String())
	}
	if err := w.heroku.Deploy("shop", false); err != nil {
		t.Fatal(err)
	}
	w.tick(t) // the next tick after the deploy: the change goes through
	if w.quantity(t, "web") != 4 || w.quantity(t, "worker") != 4 {
		t.Errorf("web %d worker %d after the deploy, want 4 and 4", w.quantity(t, "web"), w.quantity(t, "worker"))
	}
}
