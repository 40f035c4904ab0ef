package sim

import (
	"math"
	"math/rand/v2"
	"slices"
)

// requestSim is the request-by-request discrete-event simulation the per-second model is checked against: Poisson
// arrivals at each second's rate, exponential service times, one FIFO queue in front of every server of the serving
// dynos (perDyno servers each). Events are processed in time order: arrivals, departures, and the serving count at
// each second's start; a waiting request starts as soon as a server is free and the count allows. A server whose
// dyno is removed finishes the request it holds but takes no more. A request whose latency passes the router's
// timeout is an H12 error: counted, and recorded at the timeout, when the router answered it; it is still served
// in its turn, as a dyno serves it not knowing.
type requestSim struct {
	p       queueParams
	rates   []float64
	serving []int // serving dynos per second; the last count holds after the trace
	rng     *rand.Rand
}

// desMinute is what the request simulation measured in one minute.
type desMinute struct {
	requests   int
	p95        float64
	shareAbove float64 // share of the minute's requests above the objective
}

// desResult is a whole request-by-request run.
type desResult struct {
	minutes  []desMinute
	p95, p99 float64
	requests int
	h12      int // requests past the router's timeout
}

func newRequestSim(p queueParams, rates []float64, serving []int, seed uint64) *requestSim {
	return &requestSim{p: p, rates: rates, serving: serving, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *requestSim) run() desResult {
	T := len(s.rates)
	lat := make([][]float64, (T+59)/60)
	var all []float64
	h12 := 0
	// record files a request's latency, at the router's timeout when it passed it.
	record := func(arrival, l float64) {
		if l > routerTimeout {
			h12++
			l = routerTimeout
		}
		m := int(arrival) / 60
		lat[m] = append(lat[m], l)
		all = append(all, l)
	}
	var (
		busy    int
		servers int
		waiting []float64 // arrival times, FIFO
		head    int
		departs floatHeap
	)
	start := func(arrival, at float64) {
		service := s.rng.ExpFloat64() / s.p.mu
		busy++
		departs.push(at + service)
		record(arrival, at+service-arrival)
	}
	// advance processes departures up to t, starting waiting requests as servers free up.
	advance := func(t float64) {
		for len(departs) > 0 && departs[0] <= t {
			at := departs.pop()
			busy--
			if head < len(waiting) && busy < servers {
				start(waiting[head], at)
				head++
			}
		}
	}
	fill := func(at float64) {
		for head < len(waiting) && busy < servers {
			start(waiting[head], at)
			head++
		}
	}
	for sec := 0; sec < T || head < len(waiting); sec++ {
		t0 := float64(sec)
		advance(t0)
		servers = s.serving[min(sec, len(s.serving)-1)] * s.p.perDyno
		if sec >= T && servers == 0 {
			break // nothing will ever serve the rest
		}
		fill(t0)
		if head > 4096 && head*2 > len(waiting) {
			waiting, head = append(waiting[:0], waiting[head:]...), 0
		}
		if sec >= T {
			continue
		}
		lambda := s.rates[sec]
		if lambda <= 0 {
			continue
		}
		at := t0
		for {
			at += s.rng.ExpFloat64() / lambda
			if at >= t0+1 {
				break
			}
			advance(at)
			if head == len(waiting) && busy < servers {
				start(at, at)
			} else {
				waiting = append(waiting, at)
			}
		}
	}
	for _, a := range waiting[head:] { // never served: beyond any bound
		record(a, math.Inf(1))
	}
	res := desResult{minutes: make([]desMinute, len(lat)), requests: len(all), h12: h12}
	for m, ls := range lat {
		if len(ls) == 0 {
			continue
		}
		slices.Sort(ls)
		above := len(ls) - sortedCountAtMost(ls, s.p.objective)
		res.minutes[m] = desMinute{requests: len(ls), p95: sortedQuantile(ls, 0.95), shareAbove: float64(above) / float64(len(ls))}
	}
	slices.Sort(all)
	res.p95, res.p99 = sortedQuantile(all, 0.95), sortedQuantile(all, 0.99)
	return res
}

// floatHeap is a min-heap of departure times.
type floatHeap []float64

func (h *floatHeap) push(v float64) {
	*h = append(*h, v)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p] <= a[i] {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *floatHeap) pop() float64 {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(a) && a[l] < a[m] {
			m = l
		}
		if r < len(a) && a[r] < a[m] {
			m = r
		}
		if m == i {
			break
		}
		a[m], a[i] = a[i], a[m]
		i = m
	}
	*h = a
	return top
}

func sortedQuantile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := p * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (sorted[i+1]-sorted[i])*(pos-float64(i))
}

func sortedCountAtMost(sorted []float64, x float64) int {
	n, _ := slices.BinarySearchFunc(sorted, x, func(a, b float64) int {
		if a <= b {
			return -1
		}
		return 1
	})
	return n
}
