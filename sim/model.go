package sim

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/dynopilot/dynopilot/internal/dynosize"
)

// Model describes the app whose dynos are simulated: how much one dyno serves, how long a request takes, how long a
// new dyno takes to serve, and the latency objective every contender is judged against.
type Model struct {
	Capacity    float64       // requests per second one fully busy dyno completes
	ServiceTime time.Duration // mean time to serve one request; 0 means 1/Capacity (one request at a time)
	Boot        time.Duration // from the scale-up to serving traffic
	Objective   time.Duration // the p95 latency each minute must stay under
	Size        string        // dyno size, for the list price and the per-process-type limit
}

// DefaultModel is a Standard-1X web dyno serving 10 requests per second one at a time (100 ms mean service time),
// booting in 45 s, held to a 500 ms p95.
func DefaultModel() Model {
	return Model{Capacity: 10, Boot: 45 * time.Second, Objective: 500 * time.Millisecond, Size: "Standard-1X"}
}

// queueParams are the numbers the per-second model works with, derived once from a Model.
type queueParams struct {
	capacity  float64 // requests per second per dyno (K = n*capacity)
	mu        float64 // service rate of one server, 1/service time
	service   float64 // mean service time, seconds
	perDyno   int     // concurrent requests one dyno serves: capacity * service time
	objective float64 // seconds
	boot      int     // seconds
}

// Validate reports every problem with the model at once.
func (m Model) Validate() error {
	var errs []error
	if !(m.Capacity > 0) || math.IsInf(m.Capacity, 0) {
		errs = append(errs, fmt.Errorf("capacity %v requests per second per dyno: expected a number above 0", m.Capacity))
	}
	if m.ServiceTime < 0 {
		errs = append(errs, fmt.Errorf("service time %v: expected a duration above 0 (or unset for 1/capacity)", m.ServiceTime))
	}
	if m.Boot < 0 {
		errs = append(errs, fmt.Errorf("boot time %v: expected 0 or more", m.Boot))
	}
	if m.Objective <= 0 || m.Objective >= RouterTimeout {
		errs = append(errs, fmt.Errorf("objective %v: expected a p95 latency above 0 and under the router's %v timeout (a slower request is an H12 error)", m.Objective, RouterTimeout))
	}
	if _, ok := dynosize.Lookup(m.Size); !ok {
		errs = append(errs, fmt.Errorf("dyno size %q: expected a Heroku dyno size such as Standard-1X or Performance-M", m.Size))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	p := m.params()
	if k := m.Capacity * p.service; math.Abs(k-float64(p.perDyno)) > 1e-6*k || p.perDyno < 1 || p.perDyno > 1000 {
		return fmt.Errorf("capacity %v/s times service time %v = %.4g concurrent requests per dyno: expected a whole number from 1 to 1000", m.Capacity, m.ServiceTime, k)
	}
	if floor := p.serviceP95(); p.objective <= floor {
		return fmt.Errorf("objective %v: expected more than %v, the p95 of the service time alone (exponential with mean %v)",
			m.Objective, time.Duration(floor*1e9).Round(time.Millisecond), time.Duration(p.service*1e9))
	}
	return nil
}

func (m Model) params() queueParams {
	service := m.ServiceTime.Seconds()
	if service == 0 {
		service = 1 / m.Capacity
	}
	return queueParams{
		capacity:  m.Capacity,
		mu:        1 / service,
		service:   service,
		perDyno:   int(math.Round(m.Capacity * service)),
		objective: m.Objective.Seconds(),
		boot:      int(math.Ceil(m.Boot.Seconds())),
	}
}

// serviceP95 is the p95 of the service time alone (exponential with mean service): ln(20) × the mean, the least
// latency an objective can ask for.
func (p queueParams) serviceP95() float64 { return math.Log(20) * p.service }

// headroom is what the objective leaves to queueing: objective − serviceP95 (H in the anchors' and the recommended
// policy's thresholds).
func (p queueParams) headroom() float64 { return p.objective - p.serviceP95() }

// latencySetting writes a latency in seconds as a duration setting, rounded to the unit: 100ms, 1.2s.
func latencySetting(v float64, unit time.Duration) string {
	return (time.Duration(math.Round(v*float64(time.Second)/float64(unit))) * unit).String()
}

// erlangC is the probability that an arrival waits in an M/M/c queue with c servers and offered load a (in
// servers); 1 when a >= c. It runs the Erlang B recursion on 1/B, which needs no division per step and cannot
// overflow before it can stop: once 1/B passes 1e15 past the load, waiting is negligible.
func erlangC(c int, a float64) float64 {
	if a <= 0 || c <= 0 {
		if c <= 0 {
			return 1
		}
		return 0
	}
	fc := float64(c)
	if a >= fc {
		return 1
	}
	ia := 1 / a
	inv := 1.0
	for n := 1; n <= c; n++ {
		inv = 1 + inv*float64(n)*ia
		if inv > 1e15 && float64(n) > a {
			return 0
		}
	}
	b := 1 / inv
	rho := a / fc
	return b / (1 - rho*(1-b))
}

// dist is the latency distribution of the requests that arrive in one second, as the model describes it: a share
// that finds no dyno serving (latency beyond any bound), a share that waits behind a backlog (a delay spread evenly
// between d0 and d1, then the queue at the cap utilisation, then its service: parameters cpw and ctheta), and the
// rest as in a stationary M/M/c queue at the utilisation its queue corresponds to (pw, theta).
type dist struct {
	lambda float64 // requests arriving this second
	over   float64 // share arriving with no dyno serving
	fluid  float64 // share arriving behind a backlog
	d0, d1 float64 // backlog delay range in seconds for that share, d0 <= d1
	cpw    float64 // backlog share: probability of waiting and tail rate of the queue in front of the backlog
	ctheta float64
	pw     float64 // stationary share: probability of waiting (Erlang C at the equivalent utilisation)
	theta  float64 // stationary share: rate of the waiting-time tail, c*mu*(1 - rho)
	mu     float64 // service rate of one server
	lq     float64 // mean number of requests waiting during the second
}

// statShare is the share of the second's requests in the stationary regime.
func (d *dist) statShare() float64 { return max(0, 1-d.over-d.fluid) }

// phi is (1 - e^-z)/z, computed without cancellation near 0.
func phi(z float64) float64 {
	if z < 1e-8 {
		return 1 - z/2
	}
	return -math.Expm1(-z) / z
}

// latSurv is P(latency > x) for the requests of the second.
func (d *dist) latSurv(x float64) float64 {
	s := d.over
	if d.fluid > 0 {
		s += d.fluid * backlogSurv(x, d.d0, d.d1, d.mu, d.cpw, d.ctheta, true)
	}
	if st := d.statShare(); st > 0 {
		s += st * statLatSurv(x, d.mu, d.pw, d.theta)
	}
	return min(1, s)
}

// statLatSurv is P(W + E > x) in a stationary M/M/c queue, where E is the exponential service (rate mu) and W the
// FIFO waiting time: 0 with probability 1-pw, else exponential with rate theta, independent of E.
//
//	P = e^(-mu x) + pw * mu x * e^(-min(mu,theta) x) * phi(|theta-mu| x)
func statLatSurv(x, mu, pw, theta float64) float64 {
	s := math.Exp(-mu * x)
	if pw > 0 {
		s += pw * mu * x * math.Exp(-min(mu, theta)*x) * phi(math.Abs(theta-mu)*x)
	}
	return s
}

// backlogSurv is P(D + W + E > x) (withService) or P(D + W > x), where D is spread evenly on [a, b], W is 0 with
// probability 1-pw and else exponential with rate theta, and E is exponential with rate mu: the wait behind a
// backlog, then the queue in front of it, then the service. Integrating the survival of W+E (or W) over D has a
// closed form: for Y = W+E, P(Y > y) = (1-A) e^(-mu y) + A e^(-theta y) with A = pw mu / (mu - theta), and 1 for y < 0.
func backlogSurv(x, a, b, mu, pw, theta float64, withService bool) float64 {
	var t backlogTerms
	t.set(a, b, mu, pw, theta, withService)
	return t.surv(x)
}

// backlogTerms holds what backlogSurv needs that does not depend on x, so that a second's edges share it.
type backlogTerms struct {
	a, b, width float64
	n           int
	w, k, phiW  [2]float64 // P(Y > y) = sum w e^(-k y); phiW = phi(k * width)
	atZero      float64    // P(Y > 0)
}

func (t *backlogTerms) set(a, b, mu, pw, theta float64, withService bool) {
	t.a, t.b, t.width = a, b, b-a
	if withService {
		if math.Abs(theta-mu) < 1e-9*mu {
			theta = mu * (1 + 1e-6) // the closed form's limit, approached
		}
		A := pw * mu / (mu - theta)
		t.w, t.k, t.n, t.atZero = [2]float64{1 - A, A}, [2]float64{mu, theta}, 2, 1
	} else {
		t.w, t.k, t.n, t.atZero = [2]float64{pw}, [2]float64{theta}, 1, pw
	}
	for i := range t.n {
		t.phiW[i] = phi(t.k[i] * t.width)
	}
}

func (t *backlogTerms) surv(x float64) float64 {
	if t.width < 1e-9 {
		y := x - t.a
		switch {
		case y < 0:
			return 1
		case y == 0:
			return t.atZero
		}
		v := 0.0
		for i := range t.n {
			v += t.w[i] * math.Exp(-t.k[i]*y)
		}
		return min(1, v)
	}
	// (1/width) * integral of P(Y > y) for y from x-b to x-a.
	lo, hi := x-t.b, x-t.a
	if hi <= 0 {
		return 1
	}
	total := 0.0
	if lo < 0 {
		total = -lo // P(Y > y) = 1 for y < 0
		for i := range t.n {
			// integral of e^(-k y) over [0, hi] = hi phi(k hi)
			total += t.w[i] * hi * phi(t.k[i]*hi)
		}
	} else {
		for i := range t.n {
			// integral of e^(-k y) over [lo, lo+width] = e^(-k lo) width phi(k width)
			total += t.w[i] * math.Exp(-t.k[i]*lo) * t.width * t.phiW[i]
		}
	}
	return min(1, max(0, total/t.width))
}

// queue is one contender's app: the number of requests in the system, carried from second to second.
type queue struct {
	p      queueParams
	tables *erlangTables
	x      float64 // expected requests in the system (in service and waiting)
	// ahead, when set, tells how many dynos will serve in the seconds to come (booting dynos, a known schedule), so
	// that the wait behind a backlog counts the capacity that will clear it; now is the second being stepped.
	ahead projection
	now   int
	// settled is true when the last second left x where it found it: the steady state of that second's load.
	settled bool
}

// rhoCap is the utilisation up to which the queue is described as a stationary M/M/c queue; requests in the system
// beyond that queue's mean are a backlog that arrivals wait behind for backlog/capacity, a delay rather than a
// random queue, as in a sustained overload.
const rhoCap = 0.97

// step advances the queue by one second in which lambda requests per second arrive and n dynos serve, and
// describes in d the latency of the requests that arrive in that second.
//
// The number in the system x follows the stationary-fluid balance dx/dt = lambda - c mu rho(x), where rho(x) is the
// utilisation at which a stationary M/M/c queue holds x on average (so the throughput is what such a queue would
// deliver): solved implicitly over the second, x' = x + lambda - c mu rho(x'). At a steady load x settles exactly at
// the M/M/c mean; a burst raises x by its excess arrivals at once and the seconds after it see that queue; under a
// sustained overload rho(x) -> 1, so x builds at lambda - n*C and drains at n*C - lambda.
//
// Arrivals see the queue of the second (the mean of x and x'): up to the mean queue at utilisation rhoCap they wait
// as in the stationary queue at rho(x); beyond it, they wait (x - x_cap)/(n*C) behind the backlog first.
func (q *queue) step(lambda float64, n int, d *dist) {
	*d = dist{lambda: lambda, mu: q.p.mu}
	c := n * q.p.perDyno
	x0 := q.x
	if c == 0 {
		q.x, q.settled = x0+lambda, false
		d.over = 1
		d.lq = x0 + lambda/2
		return
	}
	tb := q.tables.get(c)
	k := float64(c) * q.p.mu
	x1 := tb.solve(x0+lambda, k)
	q.x = x1
	q.settled = math.Abs(x1-x0) <= 1e-9*max(x1, 1e-9)
	xc := tb.capL
	xlo, xhi := min(x0, x1), max(x0, x1)
	stationary := func(x float64) {
		rho, pw := tb.at(x)
		d.pw, d.theta = pw, k*(1-rho)
	}
	switch {
	case xhi <= xc:
		xm := (x0 + x1) / 2
		stationary(xm)
		d.lq = max(0, xm-float64(c)*tb.rhoOf(xm))
	case xlo >= xc:
		d.fluid = 1
		d.d0, d.d1 = q.wait(x0-xc, q.now, k), q.wait(x1-xc, q.now+1, k)
		if d.d0 > d.d1 {
			d.d0, d.d1 = d.d1, d.d0
		}
		d.cpw, d.ctheta = tb.capPw, k*(1-rhoCap)
		d.lq = (x0+x1)/2 - float64(c)*rhoCap
	default: // the backlog appears or clears within the second
		u := (xhi - xc) / (xhi - xlo)
		d.fluid = u
		at := q.now
		if x1 > x0 {
			at++
		}
		d.d0, d.d1 = 0, q.wait(xhi-xc, at, k)
		d.cpw, d.ctheta = tb.capPw, k*(1-rhoCap)
		xm := (xlo + xc) / 2
		stationary(xm)
		d.lq = u*((xhi+xc)/2-float64(c)*rhoCap) + (1-u)*max(0, xm-float64(c)*tb.rhoOf(xm))
	}
}

// projection tells how many dynos will serve in the seconds to come, as far as is known now (booting dynos, a
// known schedule).
type projection interface {
	// drain is how long b requests take to be served from the start of second s on, when every dyno serving
	// completes capacity requests per second: the time at which the capacity summed over the seconds from s
	// reaches b. neverServed when it never does (no dyno will ever serve). It costs one step per change of the
	// serving count on the way (or a binary search), never one per second waited, so that a backlog days long
	// costs no more than a short one.
	drain(b float64, s int, capacity float64) float64
}

// neverServed is the wait of a request no dyno will ever serve: beyond every edge of any latency grid (whose top is
// objective x 2^21, and the objective is under the router's timeout), and finite, so that the arithmetic on it stays
// ordinary.
const neverServed = 1e9

// wait is how long a request that finds b requests ahead of it at the start of second from waits for them to be
// served: at the current capacity k, or with ahead, at k for the current second and then at the capacity each
// second to come will have (FIFO: the backlog ahead of a request is served before it, by whatever capacity there
// is meanwhile).
func (q *queue) wait(b float64, from int, k float64) float64 {
	if b <= 0 {
		return 0
	}
	if q.ahead == nil {
		return b / k
	}
	tau := 0.0
	if from == q.now {
		if k >= b {
			return b / k
		}
		b -= k
		tau, from = 1, from+1
	}
	if w := q.ahead.drain(b, from, q.p.capacity); w < neverServed {
		return tau + w
	}
	return neverServed
}

// erlangTable describes the stationary M/M/c queue of one c on a grid of utilisations dense towards 1:
// rho_i = 1 - 2^(-i/16), with the mean number in the system L_i = c rho_i + Pw_i rho_i / (1 - rho_i) and the
// probability of waiting Pw_i (Erlang C). L is increasing in rho, so it can be inverted by search.
type erlangTable struct {
	rho, l, pw []float64
	capL       float64 // L at rhoCap
	capPw      float64 // Pw at rhoCap
}

const erlangGrid = 16 * 24 // up to rho = 1 - 2^-24

func newErlangTable(c int) *erlangTable {
	t := &erlangTable{rho: make([]float64, erlangGrid+1), l: make([]float64, erlangGrid+1), pw: make([]float64, erlangGrid+1)}
	fc := float64(c)
	mean := func(rho float64) (l, pw float64) {
		pw = erlangC(c, rho*fc)
		return fc*rho + pw*rho/(1-rho), pw
	}
	for i := range t.rho {
		r := 1 - math.Exp2(-float64(i)/16)
		t.rho[i] = r
		t.l[i], t.pw[i] = mean(r)
	}
	t.capL, t.capPw = mean(rhoCap)
	return t
}

// at returns the utilisation at which the stationary queue holds x on average, and its probability of waiting.
func (t *erlangTable) at(x float64) (rho, pw float64) {
	n := len(t.l)
	if x >= t.l[n-1] {
		return t.rho[n-1], t.pw[n-1]
	}
	if x <= 0 {
		return 0, 0
	}
	i := sort.SearchFloat64s(t.l, x) // l[i-1] < x <= l[i]
	f := (x - t.l[i-1]) / (t.l[i] - t.l[i-1])
	return t.rho[i-1] + f*(t.rho[i]-t.rho[i-1]), t.pw[i-1] + f*(t.pw[i]-t.pw[i-1])
}

func (t *erlangTable) rhoOf(x float64) float64 {
	r, _ := t.at(x)
	return r
}

// solve finds x' >= 0 with x' + k rho(x') = r: the number in the system after a second that started with r - lambda
// and received lambda, with throughput k rho. Past the table's last utilisation the server is taken as always busy.
func (t *erlangTable) solve(r, k float64) float64 {
	n := len(t.l)
	if r <= 0 {
		return 0
	}
	if last := t.l[n-1] + k*t.rho[n-1]; r >= last {
		return r - k
	}
	i := sort.Search(n, func(i int) bool { return t.l[i]+k*t.rho[i] >= r })
	if i == 0 {
		return 0
	}
	g0, g1 := t.l[i-1]+k*t.rho[i-1], t.l[i]+k*t.rho[i]
	f := (r - g0) / (g1 - g0)
	return t.l[i-1] + f*(t.l[i]-t.l[i-1])
}

// erlangTables holds one table per server count, built when first needed.
type erlangTables struct{ byC []*erlangTable }

func (ts *erlangTables) get(c int) *erlangTable {
	if c >= len(ts.byC) {
		ts.byC = append(ts.byC, make([]*erlangTable, c+1-len(ts.byC))...)
	}
	if ts.byC[c] == nil {
		ts.byC[c] = newErlangTable(c)
	}
	return ts.byC[c]
}

// Latency is summarised on a fixed grid of edges, three per octave, with the objective exactly on an edge: the share
// of a minute's requests above the objective is then exact, and quantiles between edges are interpolated on the
// logarithm of the survival function, which is exact for exponential tails.
const (
	edgesPerOctave = 3
	nEdges         = 128
	objEdge        = 64 // index of the edge equal to the objective
)

type grid struct {
	x   [nEdges]float64
	eMu [nEdges]float64 // e^(-mu x) at each edge: the service-time survival, the same for every second
	obj float64
	mu  float64
	// lastUnder is the last edge below the router's timeout, where latencies are capped (see latencyQuantile);
	// eMuTimeout is the service-time survival at the timeout.
	lastUnder  int
	eMuTimeout float64
}

func newGrid(objective, mu float64) *grid {
	g := &grid{obj: objective, mu: mu, eMuTimeout: math.Exp(-mu * routerTimeout)}
	for j := range g.x {
		g.x[j] = objective * math.Exp2(float64(j-objEdge)/edgesPerOctave)
		g.eMu[j] = math.Exp(-mu * g.x[j])
		if g.x[j] < routerTimeout {
			g.lastUnder = j
		}
	}
	return g
}

// RouterTimeout is how long Heroku's router waits for a dyno to start answering a request, counted from when it
// hands the request over (so the time queued in the dyno counts): past it the router answers the client 503 with
// an H12 error, while the dyno, which does not know, goes on to serve the request in its turn.
const RouterTimeout = 30 * time.Second

// routerTimeout is RouterTimeout in seconds.
const routerTimeout = 30.0

// latSurvAt is d.latSurv at edge j, with the service part taken from the table: one exponential per edge in the
// stationary regime; bt holds the backlog share's constants (set when d.fluid > 0).
func (g *grid) latSurvAt(d *dist, bt *backlogTerms, j int) float64 {
	return latSurvWith(d, bt, g.x[j], g.eMu[j])
}

// latSurvWith is d.latSurv at x, given em = e^(-mu x).
func latSurvWith(d *dist, bt *backlogTerms, x, em float64) float64 {
	s := d.over
	if d.fluid > 0 {
		s += d.fluid * bt.surv(x)
	}
	if st := d.statShare(); st > 0 {
		if d.pw > 0 {
			mu, delta := d.mu, d.theta-d.mu
			if dx := delta * x; math.Abs(dx) < 1e-3 {
				em += d.pw * mu * x * em * (1 - dx/2)
			} else {
				em += d.pw * mu * (math.Exp(-d.theta*x) - em) / -delta
			}
		}
		s += st * em
	}
	return min(1, s)
}

// floor is the largest edge index at or below x (clamped to the grid).
func (g *grid) floor(x float64) int {
	if x <= 0 {
		return 0
	}
	j := objEdge + int(math.Floor(edgesPerOctave*math.Log2(x/g.obj)))
	return min(max(j, 0), nEdges-1)
}

func (g *grid) ceil(x float64) int {
	if x <= 0 {
		return 0
	}
	j := objEdge + int(math.Ceil(edgesPerOctave*math.Log2(x/g.obj)))
	return min(max(j, 0), nEdges-1)
}

// secondHist is one second's requests on the grid: le[j] for lo <= j <= hi is how many have latency at or below
// edge j; below edge lo the count is taken as `below`, above edge hi as `above` (everyone but those with no dyno).
// For latencies, timeout is how many take longer than the router's timeout (H12 errors, those with no dyno
// included), and no edge past the last one under the timeout is filled: the router answers those requests at the
// timeout (see latencyQuantile).
type secondHist struct {
	lambda  float64
	below   float64
	above   float64
	timeout float64
	lo, hi  int
	le      [nEdges]float64
}

func (s *secondHist) copyFrom(o *secondHist) {
	s.lambda, s.below, s.above, s.timeout, s.lo, s.hi = o.lambda, o.below, o.above, o.timeout, o.lo, o.hi
	if o.lo <= o.hi {
		copy(s.le[o.lo:o.hi+1], o.le[o.lo:o.hi+1])
	}
}

// fillLatency puts the second's request latencies (service plus queueing) on the grid, evaluating the survival
// function only where it is between about 0.75 and 0.0005, and always at the objective; and counts the requests
// whose latency passes the router's timeout (exactly, whenever the tail reaches it: a share under 0.0005 is left
// off, as the grid leaves it off every edge).
func (g *grid) fillLatency(d *dist, s *secondHist) {
	s.lambda, s.below, s.above, s.timeout = d.lambda, 0, d.lambda*(1-d.over), d.lambda*d.over
	if d.lambda == 0 || d.over >= 1 {
		s.lo, s.hi = 0, -1
		return
	}
	svc := 1 / d.mu
	lo := 0.2877 * svc // P(E > lo) = 0.75
	if d.fluid > 0 && d.statShare() < 0.25 {
		lo += d.d0
	}
	tail := 0.0
	if d.fluid > 0 {
		tail = d.d1
		if p := d.cpw * d.fluid; p > 5e-4 {
			tail += math.Log(p/5e-4) / d.ctheta
		}
	}
	if pw := d.pw * d.statShare(); pw > 5e-4 {
		tail = max(tail, math.Log(pw/5e-4)/d.theta)
	}
	hi := 7.6*svc + tail // P(E > 7.6 svc) = 0.0005
	// Edges below lo count nobody (P > 0.75 there), above hi everybody (P < 0.0005): the objective's edge is
	// exact whenever it lies between, and otherwise off by at most those amounts.
	s.lo, s.hi = g.floor(lo), g.ceil(hi)
	var bt backlogTerms
	if d.fluid > 0 {
		bt.set(d.d0, d.d1, d.mu, d.cpw, d.ctheta, true)
	}
	if hi >= routerTimeout {
		s.timeout = d.lambda * min(1, latSurvWith(d, &bt, routerTimeout, g.eMuTimeout))
		s.hi = min(s.hi, g.lastUnder)
		s.lo = min(s.lo, s.hi)
	}
	for j := s.lo; j <= s.hi; j++ {
		s.le[j] = d.lambda * (1 - g.latSurvAt(d, &bt, j))
	}
}

// fillWait puts the second's queueing delays (time before service starts) on the grid.
func (g *grid) fillWait(d *dist, s *secondHist) {
	s.lambda, s.above, s.timeout = d.lambda, d.lambda*(1-d.over), 0
	if d.lambda == 0 || d.over >= 1 {
		s.below, s.lo, s.hi = 0, 0, -1
		return
	}
	lo, hi := math.Inf(1), 0.0
	st := d.statShare()
	if p := st * d.pw; p > 0 {
		lo = 0.02 / d.theta
		if p > 5e-4 {
			hi = math.Log(p/5e-4) / d.theta
		}
	}
	if d.fluid > 0 {
		w := d.d1 - d.d0
		lo = min(lo, d.d0+0.02*w)
		hi = max(hi, d.d1)
		if p := d.cpw * d.fluid; p > 5e-4 {
			hi = max(hi, d.d1+math.Log(p/5e-4)/d.ctheta)
		}
	}
	if math.IsInf(lo, 1) || hi <= lo {
		// Nobody waits: everyone is at or below every edge.
		s.below, s.lo, s.hi = s.above, 0, -1
		return
	}
	s.lo, s.hi = g.floor(lo), g.ceil(hi)
	var bt backlogTerms
	if d.fluid > 0 {
		bt.set(d.d0, d.d1, d.mu, d.cpw, d.ctheta, false)
	}
	for j := s.lo; j <= s.hi; j++ {
		x := g.x[j]
		w := d.over
		if d.fluid > 0 {
			w += d.fluid * bt.surv(x)
		}
		if st := d.statShare(); st > 0 && d.pw > 0 {
			w += st * d.pw * math.Exp(-d.theta*x)
		}
		s.le[j] = d.lambda * (1 - min(1, w))
	}
	s.below = s.le[s.lo]
}

// hist accumulates seconds: total requests, explicit counts at or below each edge, a difference array for the
// ranges each second leaves implicit, and (latencies) the requests past the router's timeout.
type hist struct {
	total   float64
	timeout float64
	le      [nEdges]float64
	diff    [nEdges + 1]float64
}

func (h *hist) reset() { *h = hist{} }

func (h *hist) add(s *secondHist) {
	if s.lambda == 0 {
		return
	}
	h.total += s.lambda
	h.timeout += s.timeout
	if s.lo > s.hi {
		h.diff[0] += s.below
		h.diff[nEdges] -= s.below
		return
	}
	if s.below != 0 {
		h.diff[0] += s.below
		h.diff[s.lo] -= s.below
	}
	for j := s.lo; j <= s.hi; j++ {
		h.le[j] += s.le[j]
	}
	h.diff[s.hi+1] += s.above
}

func (h *hist) merge(o *hist) {
	h.total += o.total
	h.timeout += o.timeout
	for j := range h.le {
		h.le[j] += o.le[j]
	}
	for j := range h.diff {
		h.diff[j] += o.diff[j]
	}
}

// atEdge is how many requests have latency at or below edge j.
func (h *hist) atEdge(j int) float64 {
	run := 0.0
	for i := 0; i <= j; i++ {
		run += h.diff[i]
	}
	return h.le[j] + run
}

// shareAbove is the share of requests above edge j (0 with no requests).
func (h *hist) shareAbove(j int) float64 {
	if h.total <= 0 {
		return 0
	}
	return max(0, 1-h.atEdge(j)/h.total)
}

// quantile is the p-quantile of the accumulated latencies; 0 with no requests, the top edge when the quantile lies
// beyond the grid (requests that found no dyno serving).
func (g *grid) quantile(h *hist, p float64) float64 {
	if h.total <= 0 {
		return 0
	}
	target := p * h.total
	run := 0.0
	prev := 0.0 // count at or below the previous edge
	for j := range nEdges {
		run += h.diff[j]
		c := h.le[j] + run
		if c >= target*(1-1e-12) {
			if j == 0 {
				return 0
			}
			s0, s1, sx := h.total-prev, h.total-c, h.total-target
			x0, x1 := g.x[j-1], g.x[j]
			if s0 <= sx {
				return x0
			}
			if s1 > 0 && s0 > s1 {
				return x0 + (x1-x0)*math.Log(s0/sx)/math.Log(s0/s1)
			}
			return x0 + (x1-x0)*(s0-sx)/(s0-s1)
		}
		prev = c
	}
	return g.x[nEdges-1]
}

// latencyQuantile is the p-quantile of the accumulated latencies as the clients see them: a request past the
// router's timeout gets the router's H12 answer at the timeout, so latencies are capped there. Below the last edge
// under the timeout it is quantile; beyond it, the survival is interpolated (on its logarithm) from that edge to
// the timeout, where it is the share of H12 errors, and a quantile within that share is the timeout itself.
func (g *grid) latencyQuantile(h *hist, p float64) float64 {
	if h.total <= 0 {
		return 0
	}
	target := p * h.total
	c := h.atEdge(g.lastUnder)
	if c >= target*(1-1e-12) {
		return g.quantile(h, p)
	}
	s0, sx := h.total-c, h.total-target
	sT := min(h.timeout, s0) // survival just under the timeout
	if sx <= sT {
		return routerTimeout
	}
	x0 := g.x[g.lastUnder]
	if sT > 0 && s0 > sT {
		return x0 + (routerTimeout-x0)*math.Log(s0/sx)/math.Log(s0/sT)
	}
	return x0 + (routerTimeout-x0)*(s0-sx)/(s0-sT)
}

// app is one contender's app as the runner sees it: the queue, and a cache of the seconds already described. The
// cache makes seconds that repeat a settled load already seen (every second of a minute-step trace once its queue
// has settled) cost a lookup instead of a search and a few dozen exponentials.
type app struct {
	q        queue
	g        *grid
	needWait bool
	cache    []cacheEntry
	scratch  cacheEntry
}

// cacheEntry is one settled second: arrivals lambda with n dynos serving, x requests in the system before and after.
type cacheEntry struct {
	lambda    float64
	n         int
	x         float64
	valid     bool
	d         dist
	lat, wait secondHist
}

const cacheSize = 1024

func newApp(p queueParams, g *grid, needWait bool) *app {
	return &app{q: queue{p: p, tables: &erlangTables{}}, g: g, needWait: needWait, cache: make([]cacheEntry, cacheSize)}
}

func cacheSlot(lambda float64, n int) int {
	h := math.Float64bits(lambda)*0x9e3779b97f4a7c15 ^ uint64(n)*0xc2b2ae3d27d4eb4f
	return int(h>>40) % cacheSize
}

// second simulates second t and returns its description (valid until the next call).
func (a *app) second(t int, lambda float64, n int) *cacheEntry {
	q := &a.q
	q.now = t
	slot := cacheSlot(lambda, n)
	e := &a.cache[slot]
	if e.valid && e.lambda == lambda && e.n == n && e.x == q.x {
		return e
	}
	out := &a.scratch
	q.step(lambda, n, &out.d)
	a.g.fillLatency(&out.d, &out.lat)
	if a.needWait {
		a.g.fillWait(&out.d, &out.wait)
	}
	if q.settled {
		e.lambda, e.n, e.x, e.valid, e.d = lambda, n, q.x, true, out.d
		e.lat.copyFrom(&out.lat)
		if a.needWait {
			e.wait.copyFrom(&out.wait)
		}
	}
	return out
}
