package logdrain_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/logdrain"
)

const token = "drain-token-5f1c9a0e7b"

// t0 is a whole minute (and so a whole bucket): test times are written from it.
var t0 = time.Date(2026, 3, 11, 16, 0, 0, 0, time.UTC)

// clock is an injectable Options.Now that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a Store for the apps "shop" and "blog" on a clock at t0, registered with its own registry.
type env struct {
	store *logdrain.Store
	clock *clock
	reg   *prometheus.Registry
}

func newEnv(t testing.TB, opts ...func(*logdrain.Options)) *env {
	t.Helper()
	c := &clock{t: t0}
	reg := prometheus.NewRegistry()
	o := logdrain.Options{Token: token, Apps: []string{"shop", "blog"}, Registerer: reg, Now: c.Now}
	for _, f := range opts {
		f(&o)
	}
	s, err := logdrain.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: s, clock: c, reg: reg}
}

func stamp(at time.Time) string { return at.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// routerMsg is a router line for one request served by dyno in serviceMs.
func routerMsg(at time.Time, dyno string, serviceMs float64) string {
	return fmt.Sprintf(`<158>1 %s host heroku router - at=info method=GET path="/" host=shop.herokuapp.com request_id=r fwd="203.0.113.9" dyno=%s connect=0ms service=%gms status=200 bytes=10 protocol=https`,
		stamp(at), dyno, serviceMs)
}

// loadMsg is a runtime-metrics load line of dyno.
func loadMsg(at time.Time, dyno string, load float64) string {
	return fmt.Sprintf("<45>1 %s host heroku %s - source=%s dyno=heroku.1.abc sample#load_avg_1m=%g sample#load_avg_5m=0.5 sample#load_avg_15m=0.5",
		stamp(at), dyno, dyno, load)
}

// queueMsg is an app line with a HireFire queue time.
func queueMsg(at time.Time, dyno string, ms float64) string {
	return fmt.Sprintf("<190>1 %s host app %s - [hirefire:router] queue=%gms", stamp(at), dyno, ms)
}

// appMsg is an app line.
func appMsg(at time.Time, dyno, text string) string {
	return fmt.Sprintf("<190>1 %s host app %s - %s", stamp(at), dyno, text)
}

// frames frames messages as Logplex does.
func frames(msgs ...string) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	return b.Bytes()
}

// drainRequest is a POST as Logplex sends it, with the token.
func drainRequest(app string, body []byte, frameID string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/drain/"+app, bytes.NewReader(body))
	r.SetBasicAuth("logplex", token)
	r.Header.Set("Content-Type", "application/logplex-1")
	r.Header.Set("User-Agent", "Logplex/v123")
	r.Header.Set("Logplex-Msg-Count", fmt.Sprint(bytes.Count(body, []byte(" <"))))
	r.Header.Set("Logplex-Drain-Token", "d.01234567-89ab-cdef-0123-456789abcdef")
	if frameID != "" {
		r.Header.Set("Logplex-Frame-Id", frameID)
	}
	return r
}

// readFile reads a body under testdata.
func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serve sends r to h and returns the answer.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// post delivers messages to app's drain and fails the test unless they are accepted.
func (e *env) post(t testing.TB, app string, msgs ...string) {
	t.Helper()
	if w := serve(e.store, drainRequest(app, frames(msgs...), "")); w.Code != http.StatusNoContent {
		t.Fatalf("POST /drain/%s: %d %s, want 204", app, w.Code, w.Body)
	}
}

// stats returns the Stats of app.
func (e *env) stats(t testing.TB, app string) logdrain.Stats {
	t.Helper()
	for _, st := range e.store.Stats() {
		if st.App == app {
			return st
		}
	}
	t.Fatalf("no Stats for %s", app)
	return logdrain.Stats{}
}
