package logdrain_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/logdrain"
	"github.com/dynopilot/dynopilot/sim"
)

// trace GETs app's trace and reads it with sim.ReadTrace, as `dynopilot simulate --trace` would.
func (e *env) trace(t *testing.T, app string) (*sim.Trace, *httptest.ResponseRecorder) {
	t.Helper()
	w := serve(mux(e.store), httptest.NewRequest(http.MethodGet, "/api/traffic/"+app+".csv", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/traffic/%s.csv: %d %s", app, w.Code, w.Body)
	}
	tr, err := sim.ReadTrace(strings.NewReader(w.Body.String()), app+".csv")
	if err != nil {
		t.Fatalf("sim.ReadTrace: %v\n%.500s", err, w.Body)
	}
	return tr, w
}

// The trace is the requests per minute that were sent, from the first minute the drain delivered a line of, through
// the last complete minute, 0 where no request came, and sim.ReadTrace reads it.
func TestTrafficTrace(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(3 * time.Minute)
	sent := []int{0, 7, 0, 0, 120, 1, 59} // requests in each minute from start; the first minute has a runtime line only
	var msgs []string
	msgs = append(msgs, loadMsg(start.Add(30*time.Second), "web.1", 1))
	for m, n := range sent {
		for i := range n {
			at := start.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(n))
			dyno := []string{"web.1", "web.2", ""}[i%3] // every router request counts, with a dyno or not
			msgs = append(msgs, routerMsg(at, dyno, 5))
		}
	}
	// Lines of the minute still going do not show yet; a router line that is no request never does.
	msgs = append(msgs, routerMsg(start.Add(7*time.Minute+time.Second), "web.1", 5), `<158>1 2026-03-11T16:05:00Z host heroku router - "/x" dyno=web.1 service=1ms`)
	e.clock.Set(start.Add(7*time.Minute + 30*time.Second))
	e.post(t, "shop", msgs...)

	tr, w := e.trace(t, "shop")
	if tr.Step != 60 || tr.Seconds() != 60*len(sent) {
		t.Fatalf("step %d, %d s; want 60 and %d s", tr.Step, tr.Seconds(), 60*len(sent))
	}
	for m, n := range sent {
		if got := tr.Rates[m*60] * 60; math.Abs(got-float64(n)) > 1e-9 {
			t.Errorf("minute %d: %v requests, want %d", m, got, n)
		}
	}
	if !strings.HasPrefix(w.Body.String(), "t_seconds,rate_per_second\n0,0\n60,0.11666666666666667\n") {
		t.Errorf("body starts %q", w.Body.String()[:60])
	}
	for h, want := range map[string]string{"Content-Type": "text/csv; charset=utf-8", "Dynopilot-Trace-Start": "2026-03-11T16:03:00Z"} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("%s %q, want %q", h, got, want)
		}
	}
	// A minute later, that minute is complete.
	e.clock.Advance(time.Minute)
	if tr, _ := e.trace(t, "shop"); tr.Seconds() != 60*(len(sent)+1) || tr.Rates[len(sent)*60] != 1.0/60 {
		t.Errorf("after a minute: %d s, last rate %v", tr.Seconds(), tr.Rates[len(tr.Rates)-1])
	}
	// Errors.
	for path, want := range map[string]int{
		"/api/traffic/blog.csv":  http.StatusNotFound, // nothing recorded yet
		"/api/traffic/other.csv": http.StatusNotFound,
		"/api/traffic/shop":      http.StatusNotFound,
		"/api/traffic/shop.json": http.StatusNotFound,
	} {
		if w := serve(mux(e.store), httptest.NewRequest(http.MethodGet, path, nil)); w.Code != want {
			t.Errorf("GET %s: %d %s, want %d", path, w.Code, w.Body, want)
		}
	}
	if w := serve(mux(e.store), httptest.NewRequest(http.MethodPost, "/api/traffic/shop.csv", nil)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST the trace: %d, want 405", w.Code)
	}
	if w := serve(mux(e.store), httptest.NewRequest(http.MethodHead, "/api/traffic/shop.csv", nil)); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD the trace: %d with %d bytes, want 200 and none", w.Code, w.Body.Len())
	}
}

func TestTrafficTraceNeedsTwoMinutes(t *testing.T) {
	e := newEnv(t)
	e.clock.Set(t0.Add(90 * time.Second))
	e.post(t, "shop", routerMsg(t0.Add(10*time.Second), "web.1", 5))
	w := serve(mux(e.store), httptest.NewRequest(http.MethodGet, "/api/traffic/shop.csv", nil))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "only 1 complete minute(s) of traffic recorded for shop so far: a trace needs two") {
		t.Errorf("one minute: %d %q", w.Code, w.Body)
	}
	e.clock.Advance(time.Minute)
	if tr, _ := e.trace(t, "shop"); tr.Seconds() != 120 || tr.Rates[0] != 1.0/60 || tr.Rates[60] != 0 {
		t.Errorf("two minutes: %+v", tr.Rates[:1])
	}
}

// A week of minutes is kept, whatever the traffic, and no more.
func TestTrafficKeepsAWeek(t *testing.T) {
	e := newEnv(t)
	week := time.Duration(logdrain.TrafficMinutes-1) * time.Minute
	if week < 7*24*time.Hour {
		t.Fatalf("%s kept, want at least 7 days", week)
	}
	// A request every hour for 8 days, delivered as it happens.
	for h := range 8 * 24 {
		at := t0.Add(time.Duration(h) * time.Hour)
		e.clock.Set(at.Add(time.Second))
		e.post(t, "shop", routerMsg(at, "web.1", 5), routerMsg(at.Add(30*time.Second), "web.1", 5))
	}
	end := t0.Add(8*24*time.Hour - time.Hour + 2*time.Minute)
	e.clock.Set(end)
	tr, w := e.trace(t, "shop")
	if tr.Seconds() != int(week.Seconds()) {
		t.Errorf("%d minutes in the trace, want %d", tr.Seconds()/60, int(week.Minutes()))
	}
	first := end.Truncate(time.Minute).Add(-week)
	if got := w.Header().Get("Dynopilot-Trace-Start"); got != first.Format(time.RFC3339) {
		t.Errorf("start %s, want %s", got, first.Format(time.RFC3339))
	}
	var total float64
	for i := 0; i < len(tr.Rates); i += 60 {
		total += tr.Rates[i] * 60
		if minute := first.Add(time.Duration(i) * time.Second); minute.Minute() != 0 && tr.Rates[i] != 0 {
			t.Fatalf("%s: %v requests, want 0", minute, tr.Rates[i]*60)
		}
	}
	if math.Round(total) != 2*7*24 {
		t.Errorf("%v requests in the week, want %d", total, 2*7*24)
	}
	// A line older than a week counts nowhere, and a late line within it counts.
	e.post(t, "shop", routerMsg(first.Add(-time.Minute), "web.1", 5), routerMsg(first.Add(5*time.Minute), "web.1", 5))
	tr, _ = e.trace(t, "shop")
	if tr.Seconds() != int(week.Seconds()) || tr.Rates[5*60] != 1.0/60 {
		t.Errorf("after late lines: %d minutes, minute 5 at %v", tr.Seconds()/60, tr.Rates[5*60])
	}
}
