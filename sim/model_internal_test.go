package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestQueue() queue { return queue{p: DefaultModel().params(), tables: &erlangTables{}} }

// Overload builds a backlog at arrivals minus capacity and drains it at capacity minus arrivals (once the queue is
// long, the servers never idle: within 0.5%); requests behind it wait backlog / capacity.
func TestOverloadBacklogBuildsAndDrainsAtKnownRates(t *testing.T) {
	q := newTestQueue()
	var d dist
	const n = 10 // capacity 100/s
	for range 300 {
		q.step(60, n, &d) // 60% load settles at the M/M/c mean
	}
	if want := 10*0.6 + erlangC(10, 6)*0.6/0.4; math.Abs(q.x-want) > 1e-3*want {
		t.Fatalf("x %v at 60%% load, want the M/M/c mean %v (the table interpolates)", q.x, want)
	}
	var at60 float64
	for s := 1; s <= 120; s++ {
		q.step(130, n, &d)
		if s == 60 {
			at60 = q.x
		}
	}
	if rate := (q.x - at60) / 60; math.Abs(rate-30) > 0.15 {
		t.Errorf("backlog builds at %.3f/s in the second minute at 130/s, want 30/s (130 - 100)", rate)
	}
	if d.fluid != 1 {
		t.Fatalf("last overloaded second: share behind the backlog %v, want 1", d.fluid)
	}
	tb := q.tables.get(10)
	if want := (q.x - tb.capL) / 100; math.Abs(d.d1-want) > 1e-9 {
		t.Errorf("delay behind the backlog %v, want %v (backlog beyond the queue at %v utilisation / capacity)", d.d1, want, rhoCap)
	}
	peak := q.x
	for s := 1; s <= 60; s++ {
		q.step(60, n, &d)
	}
	if rate := (peak - q.x) / 60; math.Abs(rate-40) > 0.2 {
		t.Errorf("backlog drains at %.3f/s at 60/s, want 40/s (100 - 60)", rate)
	}
	for range 300 {
		q.step(60, n, &d)
	}
	if d.fluid != 0 || math.Abs(q.x-(6+erlangC(10, 6)*1.5)) > 1e-3 {
		t.Errorf("after draining: share behind a backlog %v, x %v; want 0 and the steady mean", d.fluid, q.x)
	}
}

func TestNoServingDynoQueuesEverything(t *testing.T) {
	q := newTestQueue()
	var d dist
	q.step(5, 0, &d)
	q.step(5, 0, &d)
	if q.x != 10 || d.over != 1 {
		t.Fatalf("x %v, share beyond the grid %v; want 10 and 1", q.x, d.over)
	}
	q.step(5, 2, &d) // 20/s capacity serves the 15 waiting and the 5 new within the second, less its idle share
	if q.x >= 10 || d.over != 0 {
		t.Errorf("x %v, share beyond the grid %v; want the queue shrinking and 0", q.x, d.over)
	}
}

// A burst leaves a queue behind it that the next seconds see, which stationary formulas alone cannot.
func TestBurstLeavesAQueue(t *testing.T) {
	q := newTestQueue()
	var d dist
	for range 100 {
		q.step(20, 4, &d)
	}
	calm := q.x
	q.step(60, 4, &d) // 60 arrivals into 40/s of capacity
	if q.x < calm+15 {
		t.Fatalf("after a burst of 60 into 40/s: x %v, want at least %v", q.x, calm+15)
	}
	q.step(20, 4, &d)
	steady := newTestQueue()
	var sd dist
	for range 100 {
		steady.step(20, 4, &sd)
	}
	if d.latSurv(0.5) <= 2*sd.latSurv(0.5) {
		t.Errorf("the second after a burst: P(latency > 0.5s) %v, want well above the steady %v", d.latSurv(0.5), sd.latSurv(0.5))
	}
}

// erlangCDirect is Erlang C from its textbook sum, for checking the recursion.
func erlangCDirect(c int, a float64) float64 {
	sum, term := 0.0, 1.0
	for k := range c {
		if k > 0 {
			term *= a / float64(k)
		}
		sum += term
	}
	last := term * a / float64(c) * float64(c) / (float64(c) - a)
	return last / (sum + last)
}

func TestErlangCMatchesTheTextbookSum(t *testing.T) {
	for _, c := range []int{1, 2, 5, 10, 40} {
		for _, rho := range []float64{0.1, 0.5, 0.8, 0.95, 0.99} {
			a := rho * float64(c)
			got, want := erlangC(c, a), erlangCDirect(c, a)
			if math.Abs(got-want) > 1e-9*math.Max(1, want) && math.Abs(got-want) > 1e-15 {
				t.Errorf("c=%d rho=%v: %v, want %v", c, rho, got, want)
			}
		}
	}
	if c := 1; erlangC(c, 0.5) != 0.5 {
		t.Errorf("M/M/1 waits with probability rho: got %v", erlangC(c, 0.5))
	}
}

func TestFleetBootsThenServesAndStopsBootingFirst(t *testing.T) {
	f := fleet{quantity: 2, serving: 2, boot: 45}
	f.apply(5, 100)
	for _, c := range []struct{ t, serving, booting int }{{100, 2, 3}, {144, 2, 3}, {145, 5, 0}} {
		f.tick(c.t)
		if f.serving != c.serving || f.booting() != c.booting {
			t.Fatalf("t=%d: %d serving %d booting, want %d and %d", c.t, f.serving, f.booting(), c.serving, c.booting)
		}
	}
	f.apply(7, 200) // two booting
	f.apply(4, 201) // remove three: both booting, then one serving
	if f.quantity != 4 || f.serving != 4 || f.booting() != 0 {
		t.Errorf("after scaling down: quantity %d, %d serving, %d booting; want 4, 4, 0", f.quantity, f.serving, f.booting())
	}
}

func TestGridQuantileIsExactForExponential(t *testing.T) {
	// A single M/M/1 second at 80% load: latency is exponential with rate mu - lambda, quantiles ln(1/(1-p))/(mu-lambda).
	p := DefaultModel().params()
	g := newGrid(p.objective, p.mu)
	d := dist{lambda: 8, mu: p.mu, pw: 0.8, theta: 2}
	var s secondHist
	g.fillLatency(&d, &s)
	var h hist
	h.add(&s)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
		want := math.Log(1/(1-q)) / 2
		if got := g.quantile(&h, q); math.Abs(got-want) > 0.005*want {
			t.Errorf("p%v: %v, want %v", q*100, got, want)
		}
	}
	if got := h.shareAbove(objEdge); math.Abs(got-math.Exp(-2*p.objective)) > 1e-9 {
		t.Errorf("share above the objective %v, want %v", got, math.Exp(-2*p.objective))
	}
}

func TestModelValidateNamesEveryProblem(t *testing.T) {
	err := Model{Capacity: -1, Boot: -time.Second, Objective: 0, Size: "Huge-9X"}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"capacity -1", "boot time -1s", "objective 0s", `dyno size "Huge-9X"`} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := (Model{Capacity: 10, ServiceTime: 250 * time.Millisecond, Objective: time.Second, Size: "Standard-1X"}).Validate(); err == nil ||
		!contains(err.Error(), "2.5 concurrent requests per dyno") {
		t.Errorf("fractional concurrency: %v", err)
	}
	if err := (Model{Capacity: 10, Objective: 200 * time.Millisecond, Size: "Standard-1X"}).Validate(); err == nil ||
		!contains(err.Error(), "p95 of the service time alone") {
		t.Errorf("objective under the service time's p95: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// The per-second path allocates nothing once its tables exist: a 7-day trace is 604,800 of them per contender.
func TestSecondAllocatesNothing(t *testing.T) {
	p := DefaultModel().params()
	g := newGrid(p.objective, p.mu)
	a := newApp(p, g, true)
	f := fleet{quantity: 5, serving: 5, boot: 45, ready: make([]int, 0, 16)}
	a.q.ahead = &f
	var h hist
	rates := []float64{30, 61, 45, 80, 12, 47}
	for i := range 600 { // warm up: tables for the counts used
		a.second(i, rates[i%len(rates)], 5)
	}
	i := 600
	allocs := testing.AllocsPerRun(2000, func() {
		e := a.second(i, rates[i%len(rates)]+float64(i%7), 5)
		h.add(&e.lat)
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per second, want 0", allocs)
	}
}

// A second whose latency is exponential with mean 10 s (an M/M/1 queue at 99% load: sojourn rate mu - lambda = 0.1)
// has its p95 just under the router's timeout (10 ln 20 = 29.96 s) and e^-3 = 5% of its requests past it: the p95
// is exact, the p99 is the timeout itself (those requests got the router's 503 at 30 s), and the H12 count is
// exact.
func TestLatencyIsCappedAtTheRouterTimeout(t *testing.T) {
	p := DefaultModel().params()
	g := newGrid(p.objective, p.mu)
	d := dist{lambda: 9.9, mu: p.mu, pw: 0.99, theta: 0.1}
	var s secondHist
	g.fillLatency(&d, &s)
	var h hist
	h.add(&s)
	if want := 9.9 * math.Exp(-3); math.Abs(h.timeout-want) > 1e-9*want {
		t.Errorf("H12 errors %v, want %v (P(latency > 30 s) = e^-3)", h.timeout, want)
	}
	if got, want := g.latencyQuantile(&h, 0.95), 10*math.Log(20); math.Abs(got-want) > 0.002*want {
		t.Errorf("p95 %v, want %v", got, want)
	}
	if got, want := g.latencyQuantile(&h, 0.5), 10*math.Log(2); math.Abs(got-want) > 0.002*want {
		t.Errorf("p50 %v, want %v: below the timeout nothing changes", got, want)
	}
	for _, q := range []float64{0.96, 0.99, 0.999} {
		if got := g.latencyQuantile(&h, q); got != routerTimeout {
			t.Errorf("p%v %v, want the router's timeout %v: a request past it is answered then", 100*q, got, routerTimeout)
		}
	}
	// Queue time is what the app measures when it serves a request, and it serves the H12s too: not capped.
	var w secondHist
	g.fillWait(&dist{lambda: 9.9, mu: p.mu, fluid: 1, d0: 40, d1: 60, cpw: 0.5, ctheta: 3}, &w)
	var hw hist
	hw.add(&w)
	if got := g.quantile(&hw, 0.5); got < 40 || got > 60 {
		t.Errorf("median queue time behind a 40-60 s backlog: %v, want it in [40, 60]", got)
	}
	// No dyno serving: every request of the second is an H12.
	var none secondHist
	g.fillLatency(&dist{lambda: 5, mu: p.mu, over: 1}, &none)
	if none.timeout != 5 {
		t.Errorf("no dyno serving: %v H12 errors of 5 requests, want 5", none.timeout)
	}
}

// refWait is the wait as it was computed before projections could drain: second by second, up to the second from
// which the serving count no longer changes (last), where a count of 0 means never.
func refWait(now int, servingAt func(int) int, last int, capacity, b float64, from int, k float64) float64 {
	if b <= 0 {
		return 0
	}
	tau := 0.0
	for s := from; ; s++ {
		ks := float64(servingAt(s)) * capacity
		if s == now {
			ks = k
		}
		if ks >= b {
			return tau + b/ks
		}
		if s > now && s >= last && ks == 0 {
			return neverServed
		}
		b -= ks
		tau++
	}
}

// The wait behind a backlog is what stepping through the seconds to come gives, for booting dynos and for known
// schedules (zeros, an end that serves nobody), without stepping.
func TestWaitDrainsAsSecondBySecond(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	p := DefaultModel().params()
	check := func(what string, q *queue, servingAt func(int) int, last int) {
		t.Helper()
		k := float64(max(1, servingAt(q.now))) * p.capacity
		for _, b := range []float64{0, 0.5, 7, 40, 333.3, 5000, 2e5} {
			for _, from := range []int{q.now, q.now + 1} {
				got := q.wait(b, from, k)
				want := refWait(q.now, servingAt, last, p.capacity, b, from, k)
				if math.Abs(got-want) > 1e-9*max(1, want) {
					t.Fatalf("%s: wait(%v, %d) = %v, second by second %v", what, b, from, got, want)
				}
			}
		}
	}
	for i := range 200 {
		now := 1000 + rng.IntN(100)
		f := &fleet{serving: rng.IntN(4), boot: 45}
		for range rng.IntN(6) {
			f.ready = append(f.ready, now+1+rng.IntN(400))
		}
		slices.Sort(f.ready)
		f.quantity = f.serving + len(f.ready)
		q := &queue{p: p, now: now, ahead: f}
		check(fmt.Sprintf("fleet %d (%d serving, ready at %v)", i, f.serving, f.ready), q, func(s int) int {
			n := f.serving
			for _, r := range f.ready {
				if r <= s {
					n++
				}
			}
			return n
		}, now+401)

		sc := &schedule{q: make([]int, 1+rng.IntN(3000))}
		for j := range sc.q {
			sc.q[j] = rng.IntN(4) // zeros included, the last one too sometimes
		}
		q = &queue{p: p, now: rng.IntN(len(sc.q) + 10), ahead: sc}
		check(fmt.Sprintf("schedule %d (%d s, last %d)", i, len(sc.q), sc.q[len(sc.q)-1]), q, func(s int) int {
			return sc.q[min(s, len(sc.q)-1)]
		}, len(sc.q))
	}
}
