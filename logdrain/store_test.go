package logdrain_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/logdrain"
	"github.com/dynopilot/dynopilot/metrics"
)

// keepAlive posts a runtime line at each of times (arrival = the clock), so that the drain has delivered since then.
func (e *env) keepAlive(t *testing.T, app string, times ...time.Time) {
	t.Helper()
	for _, at := range times {
		e.clock.Set(at)
		e.post(t, app, appMsg(at, "web.1", "still here"))
	}
}

// keepAliveFrom posts an app line every 10 s from from to before to.
func (e *env) keepAliveFrom(t *testing.T, app string, from, to time.Time) {
	t.Helper()
	for at := from; at.Before(to); at = at.Add(10 * time.Second) {
		e.keepAlive(t, app, at)
	}
}

func (e *env) read(t *testing.T, app, process, measure string, q float64, window time.Duration) float64 {
	t.Helper()
	v, _, err := e.store.Read(app, process, measure, q, window)
	if err != nil {
		t.Fatalf("Read(%s, %s, %s, %v, %s): %v", app, process, measure, q, window, err)
	}
	return v
}

// wantNoData reads and expects a missing reading whose message holds each of says.
func (e *env) wantNoData(t *testing.T, app, process, measure string, window time.Duration, says ...string) {
	t.Helper()
	v, _, err := e.store.Read(app, process, measure, 0.95, window)
	if !errors.Is(err, metrics.ErrNoData) {
		t.Fatalf("Read(%s, %s, %s, %s) = %v, %v: want an error wrapping metrics.ErrNoData", app, process, measure, window, v, err)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Read(%s, %s, %s): %q does not say %q", app, process, measure, err, s)
		}
	}
}

// exactQuantile is the quantile the sketch's bound is stated against: the value of rank ⌊q·(n−1)⌋.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[int(math.Floor(q*float64(len(sorted)-1)))]
}

// The latency and queue-time quantiles are within the stated relative error of the exact quantile of what was sent.
func TestQuantileWithinStatedError(t *testing.T) {
	e := newEnv(t)
	now := t0.Add(2*time.Minute + 1*time.Second)
	e.clock.Set(now)
	rng := rand.New(rand.NewPCG(1, 2))
	var services, queues []float64
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			e.post(t, "shop", batch...)
			batch = batch[:0]
		}
	}
	for i := range 20000 {
		at := t0.Add(time.Minute + time.Duration(rng.Int64N(int64(time.Minute))))
		dyno := []string{"web.1", "web.2", "web.3"}[i%3]
		// Whole milliseconds as the router writes them, lognormal around 80 ms, some 0, none past the 30 s timeout.
		ms := math.Min(30000, math.Round(80*math.Exp(1.2*rng.NormFloat64())))
		if i%50 == 0 {
			ms = 0
		}
		services = append(services, ms/1000)
		batch = append(batch, routerMsg(at, dyno, ms))
		if i%4 == 0 { // queue times with fractions, as an app may log them
			q := math.Round(5*math.Exp(1.5*rng.NormFloat64())*1000)/1000 + 1
			queues = append(queues, q/1000)
			batch = append(batch, queueMsg(at, dyno, q))
		}
		if len(batch) >= 300 {
			flush()
		}
	}
	flush()
	slices.Sort(services)
	slices.Sort(queues)
	for _, q := range []float64{0.5, 0.75, 0.9, 0.95, 0.99, 0.999} {
		for _, m := range []struct {
			measure string
			values  []float64
		}{{"latency", services}, {"queue-time", queues}} {
			got := e.read(t, "shop", "web", m.measure, q, time.Minute)
			want := exactQuantile(m.values, q)
			if math.Abs(got-want) > logdrain.RelativeAccuracy*want+1e-12 {
				t.Errorf("%s q=%v: %v, exact %v: relative error %.4f over %v", m.measure, q, got, want, math.Abs(got-want)/want, logdrain.RelativeAccuracy)
			}
		}
	}
}

// Rate and load are exact; each process type's dynos count for it alone.
func TestRateLoadAndProcesses(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(9 * time.Minute) // the window: [start, start+1m)
	e.keepAlive(t, "shop", t0.Add(8*time.Minute+30*time.Second), t0.Add(9*time.Minute), t0.Add(9*time.Minute+30*time.Second))
	now := start.Add(time.Minute + 2*time.Second)
	e.clock.Set(now)
	var msgs []string
	for i := range 90 { // 90 requests in the minute: 1.5/s
		msgs = append(msgs, routerMsg(start.Add(time.Duration(i)*time.Minute/90), []string{"web.1", "web.2"}[i%2], 10))
	}
	msgs = append(msgs,
		routerMsg(start.Add(-time.Microsecond), "web.1", 10),    // before the window
		routerMsg(now, "web.1", 10),                             // in the bucket still filling
		loadMsg(start.Add(-10*time.Second), "web.3", 9),         // web.3's only sample is before the window
		loadMsg(start.Add(5*time.Second), "web.1", 2),           // web.1: 2 then 3, the latest counts
		loadMsg(start.Add(40*time.Second), "web.1", 3),          //
		loadMsg(start.Add(20*time.Second), "web.2", 1),          // web.2: 1
		loadMsg(start.Add(30*time.Second), "worker.1", 0.5),     // worker.1: 0.5
		loadMsg(start.Add(35*time.Second), "worker.2", 0.25),    // worker.2: 0.25
		queueMsg(start.Add(10*time.Second), "worker.1", 700),    // worker queue times are the worker's
		queueMsg(start.Add(10*time.Second), "web.1", 20),        // web's are web's
		appMsg(start.Add(11*time.Second), "web.1", "GET /cart"), // an app line is no request
	)
	e.post(t, "shop", msgs...)

	if got := e.read(t, "shop", "web", "rate", 0, time.Minute); got != 1.5 {
		t.Errorf("web rate %v, want 1.5", got)
	}
	if got := e.read(t, "shop", "web", "load", 0, time.Minute); got != 2 {
		t.Errorf("web load %v, want 2: the mean of web.1's latest (3) and web.2's (1)", got)
	}
	if got := e.read(t, "shop", "worker", "load", 0, time.Minute); got != 0.375 {
		t.Errorf("worker load %v, want 0.375", got)
	}
	if got := e.read(t, "shop", "worker", "rate", 0, time.Minute); got != 0 {
		t.Errorf("worker rate %v, want 0: requests go to web dynos", got)
	}
	e.wantNoData(t, "shop", "worker", "latency", time.Minute, "no request to worker dynos")
	if got := e.read(t, "shop", "worker", "queue-time", 0.5, time.Minute); math.Abs(got-0.7) > 0.007 {
		t.Errorf("worker queue time %v, want 0.7", got)
	}
	if got := e.read(t, "shop", "web", "queue-time", 0.5, time.Minute); math.Abs(got-0.02) > 0.0002 {
		t.Errorf("web queue time %v, want 0.02", got)
	}
	e.wantNoData(t, "shop", "clock", "load", time.Minute, "no runtime metrics for clock dynos", "heroku labs:enable log-runtime-metrics -a shop")
	// The other app saw nothing of it.
	e.wantNoData(t, "blog", "web", "rate", time.Minute, "no line has come from the drain of blog")
	// Apps are matched in any case.
	if got := e.read(t, "SHOP", "web", "rate", 0, time.Minute); got != 1.5 {
		t.Errorf("SHOP web rate %v, want 1.5", got)
	}
}

// The window is the whole buckets before the current one, its length rounded up to a bucket.
func TestWindowBoundaries(t *testing.T) {
	e := newEnv(t)
	edge := t0.Add(5 * time.Minute) // the current bucket starts here
	now := edge.Add(3 * time.Second)
	e.keepAliveFrom(t, "shop", edge.Add(-20*time.Minute), now)
	e.clock.Set(now)
	e.post(t, "shop",
		routerMsg(edge.Add(-30*time.Second), "web.1", 100),                   // first instant of a 30 s window: in
		routerMsg(edge.Add(-30*time.Second-time.Microsecond), "web.1", 5000), // just before: out
		routerMsg(edge.Add(-time.Microsecond), "web.1", 100),                 // last instant of the last whole bucket: in
		routerMsg(edge, "web.1", 5000),                                       // the current bucket: out
		routerMsg(now.Add(time.Hour), "web.1", 5000),                         // the future counts as now: out
	)
	for _, tc := range []struct {
		window time.Duration
		rate   float64
	}{
		{30 * time.Second, 2.0 / 30},
		{27 * time.Second, 2.0 / 30}, // rounded up to 30 s
		{10 * time.Second, 1.0 / 10},
		{31 * time.Second, 3.0 / 35}, // 35 s: the one just before 30 s is in
	} {
		v, at, err := e.store.Read("shop", "web", "rate", 0, tc.window)
		if err != nil || math.Abs(v-tc.rate) > 1e-12 || !at.Equal(edge) {
			t.Errorf("rate over %s = %v at %v (%v), want %v at %v", tc.window, v, at, err, tc.rate, edge)
		}
	}
	if got := e.read(t, "shop", "web", "latency", 0.99, 30*time.Second); math.Abs(got-0.1) > 0.001 {
		t.Errorf("p99 over 30 s = %v, want 0.1: a 5 s request outside the window was counted", got)
	}
	// The bucket that was filling is read once complete, with the line from the future, which counted as then.
	e.clock.Set(edge.Add(logdrain.BucketWidth + 3*time.Second))
	e.post(t, "shop", loadMsg(edge.Add(logdrain.BucketWidth+3*time.Second), "web.1", 1)) // the drain covers the window
	if got := e.read(t, "shop", "web", "rate", 0, 10*time.Second); math.Abs(got-0.3) > 1e-12 {
		t.Errorf("rate over the next 10 s = %v, want 0.3: the last whole bucket before the edge, the edge's own and the future line", got)
	}
	for _, bad := range []time.Duration{4 * time.Second, logdrain.MaxWindow + time.Second} {
		if _, _, err := e.store.Read("shop", "web", "rate", 0, bad); err == nil || errors.Is(err, metrics.ErrNoData) {
			t.Errorf("window %s: %v, want an error that is not ErrNoData", bad, err)
		}
	}
	if _, _, err := e.store.Read("shop", "web", "latency", 0.5, logdrain.MaxWindow); err != nil {
		t.Errorf("window %s: %v", logdrain.MaxWindow, err)
	}
}

// A drain delivers in batches: read just after a bucket's edge, before the batch that covers it, the rate is the
// window that ends at the last edge the drain covered, a bucket earlier; a drain more than a bucket behind has none.
func TestRateJustAfterAnEdgeReadsTheLastCoveredWindow(t *testing.T) {
	e := newEnv(t)
	edge := t0.Add(5 * time.Minute) // the current bucket starts here
	e.keepAliveFrom(t, "shop", edge.Add(-10*time.Minute), edge.Add(-2*time.Second))
	e.clock.Set(edge.Add(-300 * time.Millisecond)) // the last batch before the edge
	e.post(t, "shop",
		routerMsg(edge.Add(-12*time.Second), "web.1", 100), // in the 10 s ending a bucket before the edge
		routerMsg(edge.Add(-7*time.Second), "web.1", 100),
		routerMsg(edge.Add(-4*time.Second), "web.1", 100), // in the last bucket before the edge: not in that window
	)
	e.clock.Set(edge.Add(200 * time.Millisecond)) // read before the next batch
	v, at, err := e.store.Read("shop", "web", "rate", 0, 10*time.Second)
	if err != nil || math.Abs(v-0.2) > 1e-12 || !at.Equal(edge.Add(-logdrain.BucketWidth)) {
		t.Errorf("rate over 10 s just after the edge = %v at %v (%v), want 0.2 at %v: the window the drain has covered", v, at, err, edge.Add(-logdrain.BucketWidth))
	}
	e.clock.Set(edge.Add(logdrain.BucketWidth + 200*time.Millisecond)) // a bucket later, still no batch
	e.wantNoData(t, "shop", "web", "rate", 10*time.Second, "has delivered nothing since", "before the end of the window")
}

// A drain silent for two windows makes every reading missing, rate included; any line keeps it alive.
func TestSilenceIsNoData(t *testing.T) {
	e := newEnv(t)
	for _, m := range logdrain.Measures() {
		e.wantNoData(t, "shop", "web", m, time.Minute, "no line has come from the drain of shop since dynopilot started")
	}
	// Deliver requests, loads and queue times up to T.
	T := t0.Add(10 * time.Minute)
	e.keepAliveFrom(t, "shop", T.Add(-6*time.Minute), T)
	e.clock.Set(T)
	e.post(t, "shop", routerMsg(T.Add(-20*time.Second), "web.1", 50), loadMsg(T.Add(-20*time.Second), "web.1", 1),
		queueMsg(T.Add(-20*time.Second), "web.1", 5))
	e.clock.Set(T.Add(2 * time.Second))
	for _, m := range logdrain.Measures() {
		e.read(t, "shop", "web", m, 0.95, time.Minute)
	}
	// Nothing more: the drain has not covered the window, so a rate cannot tell a gap in delivery from no traffic.
	e.clock.Set(T.Add(2*time.Minute - time.Millisecond))
	e.wantNoData(t, "shop", "web", "rate", time.Minute, "has delivered nothing since", "before the end of the window")
	e.wantNoData(t, "shop", "web", "latency", time.Minute, "no request to web dynos of shop")
	// At two windows of silence every measure is missing.
	e.clock.Set(T.Add(2 * time.Minute))
	for _, m := range logdrain.Measures() {
		e.wantNoData(t, "shop", "web", m, time.Minute, "has delivered nothing since", "silence is not zero traffic")
	}
	// A longer window is not silent yet: its latency is read.
	if got := e.read(t, "shop", "web", "latency", 0.95, 5*time.Minute); math.Abs(got-0.05) > 0.0005 {
		t.Errorf("latency over 5m %v, want 0.05", got)
	}

	// Runtime metrics alone keep it alive: rate is a real 0, load is read, latency has no request.
	for at := T.Add(2 * time.Minute); !at.After(T.Add(5 * time.Minute)); at = at.Add(20 * time.Second) {
		e.clock.Set(at)
		e.post(t, "shop", loadMsg(at, "web.1", 0.5))
	}
	e.clock.Set(T.Add(5*time.Minute + time.Second))
	if got := e.read(t, "shop", "web", "rate", 0, time.Minute); got != 0 {
		t.Errorf("rate %v with runtime metrics flowing, want a real 0", got)
	}
	if got := e.read(t, "shop", "web", "load", 0, time.Minute); got != 0.5 {
		t.Errorf("load %v, want 0.5", got)
	}
	e.wantNoData(t, "shop", "web", "latency", time.Minute, "no request to web dynos")
}

// After a silence of two windows, rate waits for a whole window of delivery: the requests of the silence were never
// delivered, they did not not happen.
func TestRateAfterSilence(t *testing.T) {
	e := newEnv(t)
	T := t0.Add(10 * time.Minute)
	e.keepAlive(t, "shop", T.Add(-2*time.Minute), T.Add(-time.Minute), T)
	// Silent from T to T+5m, then requests flow again, every 10 s.
	resumed := T.Add(5 * time.Minute)
	for at := resumed; at.Before(resumed.Add(3 * time.Minute)); at = at.Add(10 * time.Second) {
		e.clock.Set(at)
		e.post(t, "shop", routerMsg(at, "web.1", 10))
		switch {
		case at.Before(resumed.Add(time.Minute)): // the window reaches back into the silence
			e.wantNoData(t, "shop", "web", "rate", time.Minute, "resumed at", "rate needs a whole window")
			if at.After(resumed.Add(10 * time.Second)) {
				e.read(t, "shop", "web", "latency", 0.5, time.Minute) // other measures are read
			}
		default: // a whole window since the drain resumed
			if got := e.read(t, "shop", "web", "rate", 0, time.Minute); got != 0.1 {
				t.Errorf("at %s after resuming: rate %v, want 0.1", at.Sub(resumed), got)
			}
		}
	}
	// A drain that just started is the same.
	e2 := newEnv(t)
	e2.clock.Set(T)
	e2.post(t, "shop", routerMsg(T.Add(-30*time.Second), "web.1", 10))
	e2.wantNoData(t, "shop", "web", "rate", time.Minute, "delivers since", "rate needs a whole window")
}

func TestReadErrors(t *testing.T) {
	e := newEnv(t)
	e.post(t, "shop", routerMsg(t0, "web.1", 1))
	for _, tc := range []struct {
		app, measure string
		q            float64
		says         string
	}{
		{"nope", "rate", 0, `app "nope": no drain is received for it (drains are received for blog, shop)`},
		{"shop", "size", 0, `measure "size": expected one of latency, queue-time, rate, load`},
		{"shop", "latency", 1, "quantile 1: expected a number between 0 and 1"},
		{"shop", "queue-time", 0, "quantile 0"},
	} {
		_, _, err := e.store.Read(tc.app, "web", tc.measure, tc.q, time.Minute)
		if err == nil || errors.Is(err, metrics.ErrNoData) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Read(%s, %s, %v) = %v, want an error saying %q", tc.app, tc.measure, tc.q, err, tc.says)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		o    logdrain.Options
		says []string
	}{
		{logdrain.Options{Apps: []string{"shop"}}, []string{"a token is required"}},
		{logdrain.Options{Token: "t"}, []string{"no app"}},
		{logdrain.Options{Token: "t", Apps: []string{"shop", "", "a/b"}, MaxBody: -1}, []string{`app ""`, `app "a/b"`, "MaxBody -1"}},
	} {
		_, err := logdrain.New(tc.o)
		for _, s := range tc.says {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("New(%+v) = %v, want an error saying %q", tc.o, err, s)
			}
		}
	}
	if _, err := logdrain.New(logdrain.Options{Token: "t", Apps: []string{"shop", "SHOP"}}); err != nil {
		t.Errorf("an app twice in any case: %v", err)
	}
}

// The fixtures read as Heroku sends them give the readings their lines say.
func TestFixturesThroughTheStore(t *testing.T) {
	e := newEnv(t)
	at := time.Date(2026, 3, 11, 16, 18, 0, 0, time.UTC)
	e.keepAliveFrom(t, "shop", at.Add(-2*time.Minute), at)
	e.clock.Set(at.Add(time.Second))
	for _, name := range []string{"router.logplex", "runtime.logplex", "app.logplex", "l10.logplex", "split.logplex", "garbage.logplex"} {
		if w := serve(e.store, drainRequest("shop", readFile(t, name), "")); w.Code != 204 {
			t.Fatalf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	st := e.stats(t, "shop")
	want := map[string]int64{"router": 9 + 5 + 2, "runtime": 8 + 1 + 1, "app": 12 + 7 + 2 + 1, "lost": 514, "invalid": 6}
	for k, n := range want {
		if st.Lines[k] != n {
			t.Errorf("%s lines %d, want %d", k, st.Lines[k], n)
		}
	}
	// Requests in [16:17:00, 16:18:00): router.logplex 8 (one without dyno counts for web), split 3, garbage 2.
	if got := e.read(t, "shop", "web", "rate", 0, time.Minute); got != 13.0/60 {
		t.Errorf("rate %v, want 13/60", got)
	}
	// Service times 0, 5, 7, 10, 20, 23, 41, 120 ms and 30 s: p99 is the value of rank ⌊0.99·8⌋ = 7, 120 ms. The
	// split requests' 900 and 800 ms are in neither part (were one read, p99 would be 800 or 900 ms).
	if got := e.read(t, "shop", "web", "latency", 0.99, time.Minute); math.Abs(got-0.120) > 0.0012 {
		t.Errorf("p99 latency %v, want 0.120", got)
	}
	// web.1's latest load is 0.80 (runtime.logplex), garbage.logplex gives web.1 1.50 earlier; web.2 1.06.
	if got := e.read(t, "shop", "web", "load", 0, time.Minute); math.Abs(got-(0.80+1.06)/2) > 1e-12 {
		t.Errorf("web load %v, want %v", got, (0.80+1.06)/2)
	}
	if st.LastLost.IsZero() {
		t.Error("no LastLost after L10 notices")
	}
}
