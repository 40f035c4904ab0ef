package scaler_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/scaler"
)

// clock is the one time both the fake Heroku and the scaler see, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// source is a metrics.Source whose reading the test sets.
type source struct {
	mu    sync.Mutex
	value float64
	err   error
}

var _ metrics.Source = (*source)(nil)

func (s *source) Read(context.Context) (metrics.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return metrics.Reading{Value: s.value, At: time.Now()}, s.err
}

func (s *source) set(v float64, err error) {
	s.mu.Lock()
	s.value, s.err = v, err
	s.mu.Unlock()
}

type world struct {
	clock  *clock
	heroku *fake.Server
	reg    *prometheus.Registry
	s      *scaler.Scaler
	srcs   map[string]*source
}

// settings returns a target-mode policy on the app "shop" holding latency at 1 second.
func settings(process, max string) policy.Settings {
	return policy.Settings{App: "shop", Process: process, Enabled: "true", Min: "1", Max: max, UpCooldown: "1m", DownCooldown: "5m", UpStabilization: "0",
		DownStabilization: "0", MaxStepUp: "0", MaxStepDown: "0", FallbackAfter: "3", RuleSettings: policy.RuleSettings{Mode: "target", Target: "1", Tolerance: "0.1", UpBy: "1", DownBy: "1", Activation: "0"}}
}

func newWorld(t *testing.T, dryRun bool, ps ...policy.Settings) *world {
	t.Helper()
	return newWorldWith(t, func(o *scaler.Options) { o.DryRun = dryRun }, ps...)
}

// newWorldWith is newWorld with the scaler's options changed by opt before it is made.
func newWorldWith(t *testing.T, opt func(*scaler.Options), ps ...policy.Settings) *world {
	t.Helper()
	w := &world{clock: &clock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}, reg: prometheus.NewRegistry(), srcs: map[string]*source{}}
	w.heroku = fake.New(fake.Options{Token: "tok", Now: w.clock.Now})
	w.heroku.AddApp("shop", fake.Process{Type: "web", Quantity: 2}, fake.Process{Type: "worker", Quantity: 2})
	srv := httptest.NewServer(w.heroku)
	t.Cleanup(srv.Close)
	client, err := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Hour) // the formation was last scaled an hour ago
	var pols []scaler.Managed
	for _, st := range ps {
		p, err := st.Parse()
		if err != nil {
			t.Fatal(err)
		}
		src := &source{value: 1}
		w.srcs[st.Process] = src
		pols = append(pols, scaler.Managed{Rules: p, Source: src, SourceKind: "hirefire", Interval: "@every 15s"})
	}
	o := scaler.Options{Heroku: client, Policies: pols, Refresh: time.Nanosecond,
		APIBudget: 4050, Registerer: w.reg, Now: w.clock.Now, PatchTimeout: time.Second}
	opt(&o)
	w.s, err = scaler.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) tick(t *testing.T) { t.Helper(); evaluate(t, w.s) }

// evaluate runs one tick of every policy of s.
func evaluate(t *testing.T, s *scaler.Scaler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.EvaluateAll(ctx)
}

func (w *world) quantity(t *testing.T, typ string) int {
	t.Helper()
	f, ok := w.heroku.Formation("shop", typ)
	if !ok {
		t.Fatalf("no formation %s", typ)
	}
	return f.Quantity
}

func (w *world) patches() int {
	n := 0
	for _, r := range w.heroku.Requests() {
		if r.Method == "PATCH" {
			n++
		}
	}
	return n
}

func (w *world) status(t *testing.T, policy string) scaler.Status {
	t.Helper()
	for _, s := range w.s.Statuses() {
		if s.Policy == policy {
			return s
		}
	}
	t.Fatalf("no status for %s", policy)
	return scaler.Status{}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func TestScalesUpPastTargetAndRespectsMax(t *testing.T) {
	w := newWorld(t, false, settings("web", "5"))
	w.srcs["web"].set(2, nil) // twice the target: 2 -> 4
	w.tick(t)
	if got := w.quantity(t, "web"); got != 4 {
		t.Fatalf("web = %d, want 4", got)
	}
	if got := counter(t, w.reg, "dynopilot_scale_events_total", map[string]string{"policy": "shop/web", "direction": "up", "result": "ok"}); got != 1 {
		t.Errorf("scale events ok = %v, want 1", got)
	}
	w.clock.Advance(2 * time.Minute) // past the up cooldown
	w.srcs["web"].set(10, nil)       // 4 -> 40, but MAX=5
	w.tick(t)
	if got := w.quantity(t, "web"); got != 5 {
		t.Fatalf("web = %d, want MAX 5", got)
	}
	if st := w.status(t, "shop/web"); st.Reason != string(policy.ReasonAtMax) || st.Current != 5 {
		t.Errorf("status %+v", st)
	}
}

func TestCooldownsAndAPersonsScaleAreRespected(t *testing.T) {
	w := newWorld(t, false, settings("web", "10"))
	w.srcs["web"].set(2, nil)
	w.tick(t) // 2 -> 4
	w.clock.Advance(30 * time.Second)
	w.tick(t) // inside UP_COOLDOWN=1m
	if got := w.quantity(t, "web"); got != 4 {
		t.Fatalf("web = %d inside the up cooldown, want 4", got)
	}
	if st := w.status(t, "shop/web"); st.Reason != string(policy.ReasonUpCooldown) {
		t.Errorf("reason %q, want up_cooldown", st.Reason)
	}

	// Quiet traffic, and a person scales to 6 by hand 4 minutes later: the down cooldown counts from their change.
	w.clock.Advance(4 * time.Minute)
	if _, err := w.heroku.Scale("shop", "web", 6); err != nil {
		t.Fatal(err)
	}
	w.srcs["web"].set(0.1, nil)
	w.clock.Advance(2 * time.Minute) // 6.5 minutes after our own scale, 2 after theirs
	w.tick(t)
	if got := w.quantity(t, "web"); got != 6 {
		t.Fatalf("web = %d two minutes after a person scaled to 6, want 6 (DOWN_COOLDOWN=5m)", got)
	}
	if st := w.status(t, "shop/web"); st.Reason != string(policy.ReasonDownCooldown) {
		t.Errorf("reason %q, want down_cooldown", st.Reason)
	}
	w.clock.Advance(4 * time.Minute)
	w.tick(t)
	if got := w.quantity(t, "web"); got >= 6 {
		t.Fatalf("web = %d after the down cooldown, want fewer than 6", got)
	}
}

func TestFailedReadingNeverScalesDown(t *testing.T) {
	st := settings("web", "10")
	st.FallbackQuantity = "5"
	w := newWorld(t, false, st)
	w.srcs["web"].set(0, errors.New("source down"))
	for i := 0; i < 2; i++ {
		w.tick(t)
		w.clock.Advance(time.Minute)
	}
	if got := w.quantity(t, "web"); got != 2 || w.patches() != 0 {
		t.Fatalf("web = %d after failed readings with %d PATCHes, want 2 and none", got, w.patches())
	}
	if s := w.status(t, "shop/web"); s.Reason != string(policy.ReasonReadingFailed) || s.ReadingError == "" {
		t.Errorf("status %+v", s)
	}
	if got := counter(t, w.reg, "dynopilot_decisions_total", map[string]string{"policy": "shop/web", "reason": "reading_failed"}); got != 2 {
		t.Errorf("reading_failed decisions %v, want 2", got)
	}
	w.tick(t) // the third failure in a row: FALLBACK_QUANTITY
	if got := w.quantity(t, "web"); got != 5 {
		t.Fatalf("web = %d after FALLBACK_AFTER failures, want FALLBACK_QUANTITY 5", got)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	w := newWorld(t, true, settings("web", "10"))
	w.srcs["web"].set(3, nil)
	w.tick(t)
	if got := w.quantity(t, "web"); got != 2 || w.patches() != 0 {
		t.Fatalf("dry run: web = %d with %d PATCHes", got, w.patches())
	}
	if got := counter(t, w.reg, "dynopilot_scale_events_total", map[string]string{"policy": "shop/web", "direction": "up", "result": "dry_run"}); got != 1 {
		t.Errorf("dry-run events %v, want 1", got)
	}
	if got := counter(t, w.reg, "dynopilot_dry_run", nil); got != 1 {
		t.Errorf("dynopilot_dry_run %v", got)
	}
	if s := w.status(t, "shop/web"); s.Desired != 6 || !s.DryRun || s.Reason != "dry_run" || !strings.Contains(s.Explanation, "target") || !strings.Contains(s.Explanation, "not applied") {
		t.Errorf("status %+v, want desired 6, reason dry_run, and the reason it would have scaled in the explanation", s)
	}
}

// A preview (what `dynopilot check` runs) decides and publishes as the daemon would, applies nothing, counts no scale
// event, and keeps the engine's reason: check shows the decision that would be taken now, not "dry_run".
func TestPreviewKeepsTheReasonAndChangesNothing(t *testing.T) {
	w := newWorldWith(t, func(o *scaler.Options) { o.Preview = true }, settings("web", "10"))
	w.srcs["web"].set(3, nil)
	w.tick(t)
	if got := w.quantity(t, "web"); got != 2 || w.patches() != 0 {
		t.Fatalf("preview: web = %d with %d PATCHes", got, w.patches())
	}
	if s := w.status(t, "shop/web"); s.Desired != 6 || s.Reason != string(policy.ReasonAboveTarget) || strings.Contains(s.Explanation, "not applied") {
		t.Errorf("status %+v, want desired 6 for reason above_target, as the engine gave it", s)
	}
	for _, result := range []string{"ok", "error", "dry_run"} {
		if got := counter(t, w.reg, "dynopilot_scale_events_total", map[string]string{"policy": "shop/web", "direction": "up", "result": result}); got != 0 {
			t.Errorf("scale events {result=%s} = %v in a preview, want none", result, got)
		}
	}
}

// heroku wraps a real client; a non-nil function field replaces that call.
type heroku struct {
	scaler.Heroku
	ListFormationFn        func(ctx context.Context, app string) ([]herokuapi.Formation, error)
	UpdateFormationFn      func(ctx context.Context, app, typ string, quantity int) (herokuapi.Formation, error)
	BatchUpdateFormationFn func(ctx context.Context, app string, updates []herokuapi.FormationUpdate) ([]herokuapi.Formation, error)
}

var _ scaler.Heroku = heroku{}

func (h heroku) ListFormation(ctx context.Context, app string) ([]herokuapi.Formation, error) {
	if h.ListFormationFn != nil {
		return h.ListFormationFn(ctx, app)
	}
	return h.Heroku.ListFormation(ctx, app)
}

func (h heroku) BatchUpdateFormation(ctx context.Context, app string, updates []herokuapi.FormationUpdate) ([]herokuapi.Formation, error) {
	if h.BatchUpdateFormationFn != nil {
		return h.BatchUpdateFormationFn(ctx, app, updates)
	}
	return h.Heroku.BatchUpdateFormation(ctx, app, updates)
}

func (h heroku) UpdateFormation(ctx context.Context, app, typ string, quantity int) (herokuapi.Formation, error) {
	if h.UpdateFormationFn != nil {
		return h.UpdateFormationFn(ctx, app, typ, quantity)
	}
	return h.Heroku.UpdateFormation(ctx, app, typ, quantity)
}

func TestFailedPatchIsNotBelievedAndIsRetried(t *testing.T) {
	w := newWorld(t, false)
	srv := httptest.NewServer(w.heroku)
	defer srv.Close()
	client, _ := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	failing := true
	api := heroku{Heroku: client, UpdateFormationFn: func(ctx context.Context, app, typ string, q int) (herokuapi.Formation, error) {
		if failing {
			return herokuapi.Formation{}, &herokuapi.Error{Method: "PATCH", Path: "/apps/shop/formation/web", Status: 503, ID: "service_unavailable", Message: "try later"}
		}
		return client.UpdateFormation(ctx, app, typ, q)
	}}
	p, _ := settings("web", "10").Parse()
	src := &source{value: 2}
	w.reg = prometheus.NewRegistry()
	s, err := scaler.New(scaler.Options{Heroku: api, Policies: []scaler.Managed{{Rules: p, Source: src, SourceKind: "hirefire", Interval: "@every 15s"}},
		Refresh: time.Nanosecond, APIBudget: 4050, Registerer: w.reg, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.EvaluateAll(context.Background())
	if got := w.quantity(t, "web"); got != 2 {
		t.Fatalf("web = %d", got)
	}
	if got := counter(t, w.reg, "dynopilot_scale_events_total", map[string]string{"policy": "shop/web", "direction": "up", "result": "error"}); got != 1 {
		t.Errorf("error events %v, want 1", got)
	}
	var st scaler.Status
	for _, x := range s.Statuses() {
		st = x
	}
	if st.LastError == "" || st.Current != 2 {
		t.Errorf("status after a failed PATCH: %+v", st)
	}
	failing = false
	w.clock.Advance(15 * time.Second) // well inside UP_COOLDOWN, which must not have started
	s.EvaluateAll(context.Background())
	if got := w.quantity(t, "web"); got != 4 {
		t.Fatalf("web = %d: after a failed PATCH the next tick must try again, not wait for a cooldown", got)
	}
}

func TestOnePatchPerAppPerTick(t *testing.T) {
	w := newWorld(t, false, settings("web", "10"), settings("worker", "10"))
	w.srcs["web"].set(2, nil)
	w.srcs["worker"].set(3, nil)
	w.heroku.ClearRequests()
	w.tick(t)
	if w.quantity(t, "web") != 4 || w.quantity(t, "worker") != 6 {
		t.Fatalf("web %d worker %d, want 4 and 6", w.quantity(t, "web"), w.quantity(t, "worker"))
	}
	var patches []string
	for _, r := range w.heroku.Requests() {
		if r.Method == "PATCH" {
			patches = append(patches, r.Path)
		}
	}
	if len(patches) != 1 || patches[0] != "/apps/shop/formation" {
		t.Errorf("PATCHes %v, want one batch update", patches)
	}
}

func TestFormationIsReadOncePerRefresh(t *testing.T) {
	w := newWorld(t, false, settings("web", "10"))
	// newWorld refreshes on every tick; build one with a one-minute refresh instead.
	f := fake.New(fake.Options{Token: "tok", Now: w.clock.Now})
	f.AddApp("shop", fake.Process{Type: "web", Quantity: 2})
	srv := httptest.NewServer(f)
	defer srv.Close()
	client, _ := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	p, _ := settings("web", "10").Parse()
	s, err := scaler.New(scaler.Options{Heroku: client, Policies: []scaler.Managed{{Rules: p, Source: &source{value: 1}, SourceKind: "hirefire", Interval: "@every 15s"}},
		Refresh: time.Minute, APIBudget: 4050, Registerer: prometheus.NewRegistry(), Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// 5 ticks over 60s: the first reads the formation, and the app's refresh instant (its own phase of the minute,
	// see formationCache) comes once in the minute after it.
	for i := 0; i < 4; i++ {
		s.EvaluateAll(context.Background())
		w.clock.Advance(15 * time.Second)
	}
	s.EvaluateAll(context.Background())
	if got := len(f.Requests()); got != 2 {
		t.Errorf("%d formation reads in 5 ticks over 60s with a 1m refresh, want 2", got)
	}
}

func TestRefreshIntervalFitsTheBudget(t *testing.T) {
	if got := scaler.RefreshInterval(time.Minute, 3, 4050); got != time.Minute {
		t.Errorf("3 apps: %v, want the configured minute", got)
	}
	// 100 apps read every minute would take 6000 tokens an hour; half of 4050 allows one read per app every 178s.
	got := scaler.RefreshInterval(time.Minute, 100, 4050)
	if got < 177*time.Second || got > 179*time.Second {
		t.Errorf("100 apps: %v, want about 178s", got)
	}
	if per := 100 * 3600 / got.Seconds(); per > 4050/2+1 {
		t.Errorf("%v a read per app costs %.0f tokens an hour, over half the budget", got, per)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	w := newWorld(t, false, settings("web", "10"))
	h := w.s.Handler(w.reg)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any evaluation: %d, want 503", code)
	}
	w.srcs["web"].set(2, nil)
	w.tick(t)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after an evaluation: %d, want 200", code)
	}
	code, body := get("/api/policies")
	var api struct {
		Policies []scaler.Status `json:"policies"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &api) != nil || len(api.Policies) != 1 {
		t.Fatalf("/api/policies %d %s", code, body)
	}
	if p := api.Policies[0]; p.Policy != "shop/web" || p.Desired != 4 || p.Reading == nil || *p.Reading != 2 || p.Reason != "above_target" || p.Max != 10 {
		t.Errorf("/api/policies policy %+v", p)
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, "shop/web") || !strings.Contains(body, "above_target") {
		t.Errorf("status page %d: %.200s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `dynopilot_desired_quantity{policy="shop/web"} 4`) {
		t.Errorf("/metrics %d lacks the desired quantity", code)
	}
	problems, err := testutil.GatherAndLint(w.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
