package herokuapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

const token = "HRKU-secret-token-0123456789"

type harness struct {
	fake   *fake.Server
	srv    *httptest.Server
	client *herokuapi.Client
	reg    *prometheus.Registry
	logs   *bytes.Buffer
	mu     sync.Mutex
	hdrs   []http.Header
}

func newHarness(t *testing.T, lc herokuapi.LimiterConfig) *harness {
	t.Helper()
	h := &harness{fake: fake.New(fake.Options{Token: token}), reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	h.fake.AddApp("shop", fake.Process{Type: "web", Quantity: 2, Size: "Standard-1X"},
		fake.Process{Type: "worker", Quantity: 1, Size: "Performance-M"})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hdrs = append(h.hdrs, r.Header.Clone())
		h.mu.Unlock()
		h.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	h.client = h.newClient(t, h.srv.URL, lc)
	return h
}

func (h *harness) newClient(t *testing.T, url string, lc herokuapi.LimiterConfig) *herokuapi.Client {
	t.Helper()
	if lc.Capacity == 0 {
		lc = herokuapi.LimiterConfig{Capacity: 4500, PerHour: 4500}
	}
	l, err := herokuapi.NewLimiter(lc)
	if err != nil {
		t.Fatal(err)
	}
	reg := h.reg
	if h.client != nil { // a second client in one test gets its own registry
		reg = prometheus.NewRegistry()
	}
	c, err := herokuapi.New(herokuapi.Config{
		BaseURL: url, Token: token, Version: "1.2.3", Limiter: l, Registerer: reg,
		Logger:     slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestFormationCalls(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	ctx := ctxFor(t, 10*time.Second)

	fs, err := h.client.ListFormation(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Type != "web" || fs[0].Quantity != 2 || fs[0].SizeName() != "Standard-1X" || fs[0].App.Name != "shop" || fs[0].UpdatedAt.IsZero() {
		t.Fatalf("list: %+v", fs)
	}
	if fs[1].SizeName() != "Performance-M" {
		t.Errorf("worker size %q", fs[1].SizeName())
	}

	f, err := h.client.UpdateFormation(ctx, "shop", "web", 5)
	if err != nil {
		t.Fatal(err)
	}
	if f.Quantity != 5 {
		t.Errorf("update answered quantity %d", f.Quantity)
	}
	if got, _ := h.fake.Formation("shop", "web"); got.Quantity != 5 {
		t.Errorf("fake holds %d after update, want 5", got.Quantity)
	}

	// by app id too
	got, err := h.client.BatchUpdateFormation(ctx, fs[0].App.ID, []herokuapi.FormationUpdate{{Type: "web", Quantity: 3}, {Type: "worker", Quantity: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("batch answered %d formations", len(got))
	}
	web, _ := h.fake.Formation("shop", "web")
	worker, _ := h.fake.Formation("shop", "worker")
	if web.Quantity != 3 || worker.Quantity != 0 {
		t.Errorf("after batch: web %d worker %d, want 3 and 0", web.Quantity, worker.Quantity)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, hd := range h.hdrs {
		if hd.Get("Accept") != "application/vnd.heroku+json; version=3" || hd.Get("Authorization") != "Bearer "+token ||
			!strings.HasPrefix(hd.Get("User-Agent"), "dynopilot/1.2.3") {
			t.Errorf("request headers: %v", hd)
		}
	}
}

func TestAccountRateLimitsAndAuthorization(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	ctx := ctxFor(t, 10*time.Second)
	acct, err := h.client.Account(ctx)
	if err != nil || acct.Email == "" || acct.ID == "" {
		t.Fatalf("account: %+v %v", acct, err)
	}
	before := h.fake.Pool()
	n, err := h.client.RateLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != before || h.fake.Pool() != before {
		t.Errorf("rate-limits said %d, pool %d then %d: the call must report the pool and not take a token", n, before, h.fake.Pool())
	}
	if got := testutil.ToFloat64(mustGauge(t, h.reg, "dynopilot_heroku_ratelimit_remaining")); got != float64(n) {
		t.Errorf("remaining gauge %v, want %d", got, n)
	}

	if c, _ := testutil.GatherAndCount(h.reg, "dynopilot_heroku_token_expires_in_seconds"); c != 0 {
		t.Errorf("token expiry published before it is known")
	}
	week := 7 * 24 * 3600
	h.fake.AddAuthorization("auth-1", &week)
	a, err := h.client.Authorization(ctx, "auth-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.ExpiresIn == nil || *a.ExpiresIn > time.Duration(week)*time.Second || *a.ExpiresIn < time.Duration(week-60)*time.Second {
		t.Errorf("expires in %v, want a week", a.ExpiresIn)
	}
	if c, _ := testutil.GatherAndCount(h.reg, "dynopilot_heroku_token_expires_in_seconds"); c != 1 {
		t.Errorf("token expiry not published")
	}
	h.fake.AddAuthorization("auth-2", nil)
	if a, err := h.client.Authorization(ctx, "auth-2"); err != nil || a.ExpiresIn != nil {
		t.Errorf("never-expiring token: %+v %v", a, err)
	}
	if c, _ := testutil.GatherAndCount(h.reg, "dynopilot_heroku_token_expires_in_seconds"); c != 0 {
		t.Errorf("a token that never expires must have no expiry series")
	}
	if _, err := h.client.Authorization(ctx, "nope"); !errors.Is(err, herokuapi.NotFound) {
		t.Errorf("unknown authorization: %v", err)
	}
}

func mustGauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return gathered{reg, name}
}

// gathered adapts one metric of a registry to testutil.ToFloat64.
type gathered struct {
	reg  *prometheus.Registry
	name string
}

func (g gathered) Describe(chan<- *prometheus.Desc) {}
func (g gathered) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == g.name {
			for _, m := range mf.GetMetric() {
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.GaugeValue, m.GetGauge().GetValue())
			}
		}
	}
}

func TestErrorKinds(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	ctx := ctxFor(t, 10*time.Second)

	cases := []struct {
		name   string
		setup  func()
		call   func() error
		kind   herokuapi.Kind
		status int
		id     string
	}{
		{"unknown app", nil, func() error { _, err := h.client.ListFormation(ctx, "nope"); return err }, herokuapi.NotFound, 404, "not_found"},
		{"unknown process type", nil, func() error { _, err := h.client.UpdateFormation(ctx, "shop", "clock", 1); return err }, herokuapi.NotFound, 404, "not_found"},
		{"past the size limit", nil, func() error { _, err := h.client.UpdateFormation(ctx, "shop", "worker", 11); return err }, herokuapi.InvalidParams, 422, "invalid_params"},
		{"forbidden", func() { h.fake.Fail(403, 1) }, func() error { _, err := h.client.Account(ctx); return err }, herokuapi.Forbidden, 403, ""},
		{"server error that persists", func() { h.fake.Fail(503, 1000) }, func() error {
			// Long enough for the first answer to come on a loaded machine (the race detector, other tests): the
			// client retries the 503s until the deadline, then reports the last one.
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := h.client.ListFormation(c, "shop")
			return err
		}, herokuapi.Server, 503, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer h.fake.ClearFaults()
			if tc.setup != nil {
				tc.setup()
			}
			err := tc.call()
			var he *herokuapi.Error
			if !errors.As(err, &he) {
				t.Fatalf("got %v, want *herokuapi.Error", err)
			}
			if !errors.Is(err, tc.kind) || he.Status != tc.status || (tc.id != "" && he.ID != tc.id) {
				t.Errorf("got kind %s status %d id %q, want %s %d %q", he.Kind(), he.Status, he.ID, tc.kind, tc.status, tc.id)
			}
			if he.RequestID == "" || !strings.Contains(err.Error(), he.RequestID) {
				t.Errorf("error %q lacks the Request-Id", err)
			}
			if he.Message == "" {
				t.Errorf("no message from Heroku in %q", err)
			}
			if tc.kind == herokuapi.Forbidden && !strings.Contains(err.Error(), "heroku authorizations:create") {
				t.Errorf("403 should say how to get a long-lived token: %q", err)
			}
		})
	}
}

func TestUnauthorizedSaysHowToGetATokenAndHidesIt(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	f := fake.New(fake.Options{Token: "the-right-one"})
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := h.newClient(t, srv.URL, herokuapi.LimiterConfig{Capacity: 100, PerHour: 100})
	_, err := c.ListFormation(ctxFor(t, 5*time.Second), "shop")
	if !errors.Is(err, herokuapi.Unauthorized) {
		t.Fatalf("got %v, want Unauthorized", err)
	}
	if !strings.Contains(err.Error(), "heroku authorizations:create") {
		t.Errorf("401 should say how to get a long-lived token: %q", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(h.logs.String(), token) {
		t.Errorf("token leaked: error %q logs %q", err, h.logs.String())
	}
	if got := len(f.Requests()); got != 1 {
		t.Errorf("a 401 was tried %d times; it must not be retried", got)
	}
}

func TestRetriesServerErrorsAndNothingElse(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	ctx := ctxFor(t, 10*time.Second)
	h.fake.Fail(503, 2)
	if _, err := h.client.UpdateFormation(ctx, "shop", "web", 4); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	if got := len(h.fake.Requests()); got != 3 {
		t.Errorf("%d requests, want 3 (two failures and the success)", got)
	}
	h.fake.ClearRequests()
	_, err := h.client.UpdateFormation(ctx, "shop", "worker", 50)
	if !errors.Is(err, herokuapi.InvalidParams) {
		t.Fatalf("got %v", err)
	}
	if got := len(h.fake.Requests()); got != 1 {
		t.Errorf("a 422 was sent %d times; it must not be retried", got)
	}
}

func TestRateLimitedCallWaitsForRefillAndIsRetried(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	h.fake.SetPool(0) // someone else spent everything; the fake refills 75 a minute: one token in 0.8s
	ctx := ctxFor(t, 20*time.Second)
	if _, err := h.client.ListFormation(ctx, "shop"); err != nil {
		t.Fatalf("a 429 with time left must be retried until the pool refills: %v", err)
	}
	var saw429 bool
	for _, r := range h.fake.Requests() {
		saw429 = saw429 || r.Status == 429
	}
	if !saw429 {
		t.Errorf("expected the first attempt to meet a 429")
	}
}

func TestPoolDrainedBySomeoneElseIsRespected(t *testing.T) {
	// We keep 100 tokens in reserve. Someone else leaves only 50 in the pool: after one call the client knows,
	// and the next call fails at once, without touching the API, because no token will come before its deadline.
	h := newHarness(t, herokuapi.LimiterConfig{Capacity: 4500, PerHour: 4500, Reserve: 100})
	if _, err := h.client.ListFormation(ctxFor(t, 5*time.Second), "shop"); err != nil {
		t.Fatal(err)
	}
	h.fake.SetPool(50)
	if _, err := h.client.ListFormation(ctxFor(t, 5*time.Second), "shop"); err != nil {
		t.Fatal(err) // the client still believed the pool full: this answer tells it otherwise
	}
	h.fake.ClearRequests()
	start := time.Now()
	_, err := h.client.ListFormation(ctxFor(t, 2*time.Second), "shop")
	var we *herokuapi.WaitError
	if !errors.As(err, &we) {
		t.Fatalf("got %v, want a *WaitError", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("the caller waited %v for an error it could be given at once", time.Since(start))
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("%d requests reached the API while only the reserve was left", n)
	}
	if h.client.Limiter().Remaining() > 51 {
		t.Errorf("limiter believes %v tokens remain", h.client.Limiter().Remaining())
	}
}

func TestPerRequestTimeoutAndTransportErrors(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	h.fake.Delay(5*time.Second, 100)
	defer h.fake.ClearFaults()
	_, err := h.client.ListFormation(ctxFor(t, 3*time.Second), "shop")
	if !errors.Is(err, herokuapi.Transport) {
		t.Fatalf("a slow API: got %v, want a transport error", err)
	}

	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	c := h.newClient(t, srv.URL, herokuapi.LimiterConfig{Capacity: 100, PerHour: 100})
	_, err = c.Account(ctxFor(t, 200*time.Millisecond))
	if !errors.Is(err, herokuapi.Transport) {
		t.Fatalf("nothing listening: got %v, want a transport error", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("token in %q", err)
	}
}

func TestBadAnswerIsAnError(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	for _, body := range []string{`not json`, `[{"type":"web","quantity":-3}]`, `[{"quantity":2}]`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("RateLimit-Remaining", "100")
			w.Write([]byte(body))
		}))
		c := h.newClient(t, srv.URL, herokuapi.LimiterConfig{Capacity: 100, PerHour: 100})
		_, err := c.ListFormation(ctxFor(t, 5*time.Second), "shop")
		srv.Close()
		if !errors.Is(err, herokuapi.BadAnswer) {
			t.Errorf("answer %s: got %v, want BadAnswer", body, err)
		}
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	h := newHarness(t, herokuapi.LimiterConfig{})
	ctx := ctxFor(t, 5*time.Second)
	h.client.ListFormation(ctx, "shop")
	h.client.UpdateFormation(ctx, "shop", "web", 3)
	h.client.ListFormation(ctx, "nope")
	want := `
# HELP dynopilot_heroku_requests_total Heroku Platform API requests by method, route template and status code ("error" when no answer came).
# TYPE dynopilot_heroku_requests_total counter
dynopilot_heroku_requests_total{code="200",endpoint="/apps/{app}/formation",method="GET"} 1
dynopilot_heroku_requests_total{code="200",endpoint="/apps/{app}/formation/{type}",method="PATCH"} 1
dynopilot_heroku_requests_total{code="404",endpoint="/apps/{app}/formation",method="GET"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "dynopilot_heroku_requests_total"); err != nil {
		t.Error(err)
	}
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "shop") || strings.Contains(l.GetValue(), token) {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []herokuapi.Config{
		{BaseURL: "ftp://x", Token: "t"},
		{BaseURL: "https://user:hunter2@api.heroku.com", Token: "t"},
		{BaseURL: "https://api.heroku.com"},
	} {
		_, err := herokuapi.New(cfg)
		if err == nil {
			t.Errorf("New(%+v) accepted", cfg)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("password in %q", err)
		}
	}
}

// apiRequests returns what the fake received, as "METHOD path status".
func apiRequests(h *harness) []string {
	var out []string
	for _, r := range h.fake.Requests() {
		out = append(out, fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status))
	}
	return out
}

func gauge(t *testing.T, h *harness) float64 {
	t.Helper()
	return testutil.ToFloat64(mustGauge(t, h.reg, "dynopilot_heroku_ratelimit_remaining"))
}

func TestOne429WithTokensLeftIsReadAgainNotWaitedOut(t *testing.T) {
	// Heroku's defaults: 4500 tokens, 75 a minute, 450 kept in reserve. Taking a 429 to mean "empty" would stall
	// every call for the ~6 minutes the reserve takes to refill; the client reads the pool instead, and goes on.
	h := newHarness(t, herokuapi.LimiterConfig{Capacity: 4500, PerHour: 4500, Reserve: 450})
	if _, err := h.client.ListFormation(ctxFor(t, 10*time.Second), "shop"); err != nil {
		t.Fatal(err)
	}
	h.fake.ClearRequests()
	h.fake.Fail(429, 1)
	start := time.Now()
	// The scaler gives a PATCH 5 s.
	if _, err := h.client.UpdateFormation(ctxFor(t, 5*time.Second), "shop", "web", 3); err != nil {
		t.Fatalf("PATCH after one 429 with 4499 tokens left: %v", err)
	}
	t.Logf("PATCH done %v after the 429", time.Since(start).Round(time.Millisecond))
	want := []string{"PATCH /apps/shop/formation/web 429", "GET /account/rate-limits 200", "PATCH /apps/shop/formation/web 200"}
	if got := apiRequests(h); !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	if web, _ := h.fake.Formation("shop", "web"); web.Quantity != 3 {
		t.Errorf("web = %d, want 3", web.Quantity)
	}
	// The gauge is the limiter's belief, which the read set: what the account really has.
	pool := float64(h.fake.Pool())
	if got := gauge(t, h); got < pool-2 || got > pool+2 {
		t.Errorf("gauge %v, want about the %v the account has", got, pool)
	}
	if got := h.client.Limiter().Remaining(); got < pool-2 || got > pool+2 {
		t.Errorf("limiter believes %v, want about the %v the account has", got, pool)
	}
	if !strings.Contains(h.logs.String(), "re-read the account's rate limit") {
		t.Errorf("the re-read is not logged:\n%s", h.logs.String())
	}
}

func TestA429WhoseReadFailsIsReadAgainWithinAMinute(t *testing.T) {
	// The 429 and the read that follows it both fail: the limiter must take the pool to be empty (and the gauge
	// say so, whatever the 429's RateLimit-Remaining said), refuse callers whose deadline is too near, and read the
	// pool again within a minute, not wait out the 6-minute refill of the reserve.
	h := newHarness(t, herokuapi.LimiterConfig{Capacity: 4500, PerHour: 4500, Reserve: 450})
	if _, err := h.client.ListFormation(ctxFor(t, 10*time.Second), "shop"); err != nil {
		t.Fatal(err)
	}
	h.fake.ClearRequests()
	h.fake.Fail(429, 2)
	start := time.Now()
	_, err := h.client.UpdateFormation(ctxFor(t, 5*time.Second), "shop", "web", 3)
	if !errors.As(err, new(*herokuapi.WaitError)) {
		t.Fatalf("PATCH meeting a 429 whose read fails: %v, want a *WaitError", err)
	}
	if got := gauge(t, h); got > 10 {
		t.Errorf("gauge %v while the limiter believes %v: it must show the limiter's belief, not the 429's header", got, h.client.Limiter().Remaining())
	}
	var err2 error
	for time.Since(start) < 60*time.Second {
		if _, err2 = h.client.UpdateFormation(ctxFor(t, 5*time.Second), "shop", "web", 3); err2 == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err2 != nil {
		t.Fatalf("still failing a minute after the 429: %v\nrequests %q", err2, apiRequests(h))
	}
	took := time.Since(start)
	t.Logf("PATCH done %v after the 429", took.Round(time.Millisecond))
	if took < 10*time.Second {
		t.Errorf("went on after %v: the pool should have been read again only after %v", took, herokuapi.DefaultResyncEvery)
	}
	var reads, patches int
	for _, r := range h.fake.Requests() {
		switch r.Method + " " + r.Path {
		case "GET /account/rate-limits":
			reads++
		case "PATCH /apps/shop/formation/web":
			patches++
		}
	}
	if patches != 2 || reads > 1+int(took/herokuapi.DefaultResyncEvery)+1 {
		t.Errorf("%d PATCHes and %d reads of the pool in %v, want 2 PATCHes and a read at most every %v: %q",
			patches, reads, took, herokuapi.DefaultResyncEvery, apiRequests(h))
	}
	if got := gauge(t, h); got < 4400 {
		t.Errorf("gauge %v after the pool was read, want about %d", got, h.fake.Pool())
	}
}

func TestEmptyAccountIsWaitedForAndTheReserveKept(t *testing.T) {
	// The account really is empty. The 429 is confirmed by the read: callers are refused or wait, and nothing is
	// sent that would spend the reserve of 100.
	h := newHarness(t, herokuapi.LimiterConfig{Capacity: 4500, PerHour: 4500, Reserve: 100})
	if _, err := h.client.ListFormation(ctxFor(t, 10*time.Second), "shop"); err != nil {
		t.Fatal(err)
	}
	h.fake.SetPool(0)
	h.fake.ClearRequests()
	_, err := h.client.UpdateFormation(ctxFor(t, 5*time.Second), "shop", "web", 3)
	if !errors.As(err, new(*herokuapi.WaitError)) {
		t.Fatalf("PATCH on an empty account: %v, want a *WaitError", err)
	}
	want := []string{"PATCH /apps/shop/formation/web 429", "GET /account/rate-limits 200"}
	if got := apiRequests(h); !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	if got := gauge(t, h); got > 10 {
		t.Errorf("gauge %v on an empty account", got)
	}
	// A patient caller waits; a caller with a deadline is refused; neither sends anything.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := h.client.ListFormation(ctx, "shop"); done <- err }()
	if _, err := h.client.ListFormation(ctxFor(t, 5*time.Second), "shop"); !errors.As(err, new(*herokuapi.WaitError)) {
		t.Errorf("caller with a deadline: %v, want a *WaitError", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the patient caller returned (%v) while only the reserve can have refilled", err)
	case <-time.After(2 * time.Second):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("patient caller: %v, want context.Canceled", err)
	}
	if got := apiRequests(h); !slices.Equal(got, want) {
		t.Errorf("requests %q, want only %q", got, want)
	}
}

func TestAppGeneration(t *testing.T) {
	f := fake.New(fake.Options{Token: "tok"})
	f.AddApp("shop", fake.Process{Type: "web", Quantity: 2})
	f.AddApp("fir-shop", fake.Process{Type: "web", Quantity: 120, Size: "dyno-2c-4gb"})
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]string{"shop": "cedar", "fir-shop": "fir"} {
		a, err := c.App(context.Background(), app)
		if err != nil || a.Generation != want || a.Name != app {
			t.Errorf("App(%s) = %+v, %v; want generation %s", app, a, err, want)
		}
	}
	// A Fir app scales past Cedar's 100 within its 255.
	if _, err := c.UpdateFormation(context.Background(), "fir-shop", "web", 200); err != nil {
		t.Errorf("a Fir app to 200: %v", err)
	}
	if _, err := c.UpdateFormation(context.Background(), "fir-shop", "web", 256); !errors.Is(err, herokuapi.InvalidParams) {
		t.Errorf("a Fir app to 256: %v, want 422", err)
	}
	if _, err := c.UpdateFormation(context.Background(), "shop", "web", 101); !errors.Is(err, herokuapi.InvalidParams) {
		t.Errorf("a Cedar app to 101: %v, want 422", err)
	}
}
