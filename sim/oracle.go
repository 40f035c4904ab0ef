package sim

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

// needTable answers how many serving dynos a steady arrival rate needs to keep the p95 latency at or under the
// objective: the smallest n with n*C above the rate and, in the stationary M/M/c queue, P(latency > objective) at
// most 5%. It is monotone in the rate, and memoised because traces repeat rates.
type needTable struct {
	p      queueParams
	memo   map[float64]int
	tables *erlangTables
}

func newNeedTable(p queueParams) *needTable {
	return &needTable{p: p, memo: map[float64]int{}, tables: &erlangTables{}}
}

func (nt *needTable) dynos(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if n, ok := nt.memo[lambda]; ok {
		return n
	}
	p := nt.p
	n := int(lambda/p.capacity) + 1
	for ; ; n++ {
		c := n * p.perDyno
		pw := erlangC(c, lambda/p.mu)
		if statLatSurv(p.objective, p.mu, pw, float64(c)*p.mu-lambda) <= 0.05 {
			break
		}
	}
	nt.memo[lambda] = n
	return n
}

// minuteNeed is the count a minute needs at a constant count: the smallest n for which at most 5% of the minute's
// requests take longer than the objective. A minute of one rate needs what that rate needs (needTable); a minute
// whose rate varies from second to second is run through the model at each candidate count (the queue
// starts with the queue the minute's mean rate holds in steady state), so that a busy second is judged with the
// queue the seconds before it leave, as the model will judge it.
func (nt *needTable) minuteNeed(rates []float64) int {
	total, peak, same := 0.0, 0.0, true
	for _, r := range rates {
		total += r
		peak = max(peak, r)
		same = same && r == rates[0]
	}
	if total == 0 {
		return 0
	}
	if same {
		return nt.dynos(peak)
	}
	p := nt.p
	mean := total / float64(len(rates))
	hi := nt.dynos(peak) // enough for every second on its own
	var d dist
	for n := max(1, int(mean/p.capacity), nt.dynos(mean)-1); n < hi; n++ {
		c := n * p.perDyno
		q := queue{p: p, tables: nt.tables}
		if rho := mean / (float64(c) * p.mu); rho < 1 {
			q.x = float64(c)*rho + erlangC(c, mean/p.mu)*rho/(1-rho) // the M/M/c mean at the minute's mean rate
		}
		above := 0.0
		for _, r := range rates {
			q.step(r, n, &d)
			above += r * d.latSurv(p.objective)
		}
		if above <= 0.05*total {
			return n
		}
	}
	return hi
}

// Static is the smallest fixed count that meets the objective at the peak: the largest count any minute needs
// (see Oracle), then raised one at a time while the model still shows a breach minute; clamped to [lo, hi]. It
// never scales, so it follows no schedule window.
func Static(lo, hi int) Contender {
	return Contender{
		Name: "static", Kind: "static",
		Settings: map[string]string{"MIN": fmt.Sprint(lo), "MAX": fmt.Sprint(hi)},
		build: func(rc *runContext, _ *Contender) (controller, error) {
			need := newNeedTable(rc.params) // each contender its own: they run in parallel
			n := 0
			for m := 0; m*60 < len(rc.rates); m++ {
				if m%(checkEvery/60) == 0 && rc.ctx.Err() != nil {
					return nil, rc.ctx.Err()
				}
				n = max(n, need.minuteNeed(rc.rates[m*60:min(len(rc.rates), (m+1)*60)]))
			}
			n = clamp(n, lo, hi)
			var res Result
			for range repairRounds {
				var err error
				res, err = simulate(rc.ctx, rc, fixedSchedule([]int{n}), rc.opt)
				if err != nil {
					return nil, err
				}
				if res.BreachMinutes == 0 || (hi > 0 && n >= hi) {
					return &schedule{q: []int{n}, res: &res}, nil
				}
				n++
			}
			return &schedule{q: []int{n}}, nil
		},
	}
}

// repairRounds bounds the verification loops of static and oracle.
const repairRounds = 30

func fixedSchedule(q []int) *Contender {
	c := Fixed("schedule", q)
	return &c
}

// Fixed is a contender that sets the formation to q[t] at every second t (the last entry holds to the end),
// starting with q[0] serving: a known schedule to check the model with, or to replay one decided elsewhere.
func Fixed(name string, q []int) Contender {
	return Contender{Name: name, Kind: "schedule",
		build: func(*runContext, *Contender) (controller, error) { return &schedule{q: q}, nil }}
}

// Oracle is the offline optimum that knows the whole trace and the boot time: the fewest dyno-seconds with no minute
// above the objective, with the formation within [lo, hi] at every second (hi <= 0: no upper bound). Construction:
//
//  1. need(m), per minute: the smallest constant count for which at most 5% of the minute's requests exceed the
//     objective (see minuteNeed; on a 60 s step trace, the count the minute's rate needs in steady state), at most
//     the upper bound of each of its seconds.
//  2. A dyno serving at s must have been started by s-boot and kept since, so the formation at t must be at least
//     the largest need in [t, t+boot]; that sliding maximum is also enough: each added dyno starts exactly boot
//     seconds before it is first needed and stops as soon as no need in the next boot seconds requires it (cheaper
//     than keeping it through a gap longer than boot, no dearer for a shorter one, which the window bridges). The
//     formation is then brought within the second's bounds: raised to the lower bound (a floor is a floor, not a
//     need, so nothing boots ahead of it), lowered to the upper one.
//  3. Verification: the schedule is run through the same model (which carries queues from second to second); any
//     minute still above the objective gets one more dyno (over the larger of its need and its lower bound) where
//     its upper bound allows, and steps 2 and 3 repeat until no minute breaches.
//
// Dyno-seconds count booting dynos, as Heroku bills them. It is a lower bound for breach-free controllers up to what
// step 1 cannot see: the queue a minute inherits from the one before (step 3 corrects that only upwards), and the
// freedom to change the count within a minute.
func Oracle(lo, hi int) Contender {
	upper := hi
	if upper <= 0 {
		upper = math.MaxInt
	}
	return oracle(map[string]string{"MIN": fmt.Sprint(lo), "MAX": fmt.Sprint(hi)}, func(*runContext) (*dynoBounds, error) {
		return &dynoBounds{lo: lo, hi: upper}, nil
	})
}

// PolicyOracle is Oracle within the bounds the policy holds its own formation to at each second of the run's
// virtual clock: MIN and MAX as the active SCHEDULE windows replace them, within the dyno size's limit (SIZE_LIMIT
// when set). They come from policy.Policy.Bounds, the engine's own rule, so a window that raises the floor for
// office hours or caps the formation at night binds the oracle exactly as it binds dynopilot.
func PolicyOracle(p *policy.Policy) Contender {
	settings := map[string]string{"MIN": fmt.Sprint(p.Min), "MAX": fmt.Sprint(p.Max)}
	if len(p.Schedule) > 0 {
		specs := make([]string, len(p.Schedule))
		for i, w := range p.Schedule {
			specs[i] = w.Spec
		}
		settings["SCHEDULE"] = strings.Join(specs, "; ")
	}
	return oracle(settings, func(rc *runContext) (*dynoBounds, error) {
		at := func(t int) (int, int) {
			lo, hi, _, _ := p.Bounds(rc.start.Add(time.Duration(t)*time.Second), rc.model.Size)
			return lo, hi
		}
		lo, hi := at(0)
		b := &dynoBounds{lo: lo, hi: hi}
		if len(p.Schedule) == 0 { // MIN, MAX and the size limit: the same at every second
			return b, nil
		}
		T := len(rc.rates)
		b.los, b.his = make([]int32, T), make([]int32, T)
		for t := range T {
			if t%checkEvery == 0 && rc.ctx.Err() != nil {
				return nil, rc.ctx.Err()
			}
			lo, hi := at(t)
			b.los[t], b.his[t] = int32(lo), int32(hi)
		}
		return b, nil
	})
}

// dynoBounds are the bounds a formation keeps to: lo and hi at every second, or los and his second by second when
// they change (schedule windows).
type dynoBounds struct {
	lo, hi   int
	los, his []int32
}

func (b *dynoBounds) at(t int) (lo, hi int) {
	if b.los == nil {
		return b.lo, b.hi
	}
	return int(b.los[t]), int(b.his[t])
}

func oracle(settings map[string]string, bounds func(*runContext) (*dynoBounds, error)) Contender {
	return Contender{
		Name: "oracle", Kind: "oracle", Settings: settings,
		build: func(rc *runContext, _ *Contender) (controller, error) {
			b, err := bounds(rc)
			if err != nil {
				return nil, err
			}
			T := len(rc.rates)
			nt := newNeedTable(rc.params) // each contender its own: they run in parallel
			need := make([]int, T)        // what serving needs, within the upper bound
			for m := 0; m*60 < T; m++ {
				if m%(checkEvery/60) == 0 && rc.ctx.Err() != nil {
					return nil, rc.ctx.Err()
				}
				end := min(T, (m+1)*60)
				n := nt.minuteNeed(rc.rates[m*60 : end])
				for t := m * 60; t < end; t++ {
					_, hi := b.at(t)
					need[t] = min(n, hi)
				}
			}
			within := func(need []int) []int {
				q := slidingMax(need, rc.params.boot)
				for t := range q {
					lo, hi := b.at(t)
					q[t] = max(min(q[t], hi), lo)
				}
				return q
			}
			q := within(need)
			opt := rc.opt
			opt.Series = true // the repair needs the minutes' verdicts
			for range repairRounds {
				res, err := simulate(rc.ctx, rc, fixedSchedule(q), opt)
				if err != nil {
					return nil, err
				}
				if res.BreachMinutes == 0 {
					if !rc.opt.Series && !rc.opt.PerSecond {
						res.Series = nil
					}
					return &schedule{q: q, res: &res}, nil
				}
				bumped := false
				for m, br := range res.Series.Breach {
					if !br {
						continue
					}
					for t := m * 60; t < min(T, (m+1)*60); t++ {
						if lo, hi := b.at(t); max(need[t], lo) < hi {
							need[t] = max(need[t], lo) + 1
							bumped = true
						}
					}
				}
				if !bumped {
					break
				}
				q = within(need)
			}
			return &schedule{q: q}, nil
		},
	}
}

// slidingMax returns, for every t, the largest need in [t, t+boot].
func slidingMax(need []int, boot int) []int {
	T := len(need)
	q := make([]int, T)
	dq := make([]int, 0, boot+2) // indexes whose needs decrease
	head := 0
	next := 0
	for t := range T {
		for next < T && next <= t+boot {
			for len(dq) > head && need[dq[len(dq)-1]] <= need[next] {
				dq = dq[:len(dq)-1]
			}
			dq = append(dq, next)
			next++
		}
		for dq[head] < t {
			head++
		}
		q[t] = need[dq[head]]
		if head > boot+2 && head == len(dq) {
			dq, head = dq[:0], 0
		}
	}
	return q
}

func clamp(v, lo, hi int) int {
	if hi > 0 && v > hi {
		v = hi
	}
	return max(v, lo)
}

// schedule is a controller that sets a precomputed quantity every second (the last entry holds to the end). res,
// when set, is the result of running it already (the verification of static and oracle), which the runner reuses.
type schedule struct {
	q   []int
	res *Result
	// cum[t] is the sum of q[0..t), built when drain first needs it.
	cum []int64
}

func (s *schedule) first() int   { return 0 }
func (s *schedule) initial() int { return s.q[0] }

// drain implements projection for a schedule without boot delays, which is what serves: a binary search on the
// running sum of the schedule, so a backlog costs the same whatever the number of changes it waits through.
func (s *schedule) drain(b float64, from int, capacity float64) float64 {
	n := len(s.q)
	last := s.q[n-1]
	after := func(b float64) float64 { // past the schedule's end, where the last entry holds
		if last == 0 {
			return neverServed
		}
		return b / (float64(last) * capacity)
	}
	if from >= n {
		return after(b)
	}
	if s.cum == nil {
		s.cum = make([]int64, n+1)
		for t, v := range s.q {
			s.cum[t+1] = s.cum[t] + int64(v)
		}
	}
	base := s.cum[from]
	if total := float64(s.cum[n]-base) * capacity; total < b {
		if last == 0 {
			return neverServed
		}
		return float64(n-from) + after(b-total)
	}
	// The first second e by whose end the capacity from `from` on reaches b.
	e := from + sort.Search(n-from, func(i int) bool { return float64(s.cum[from+i+1]-base)*capacity >= b })
	return float64(e-from) + (b-float64(s.cum[e]-base)*capacity)/(float64(s.q[e])*capacity)
}
func (s *schedule) next(t int) int { return t + 1 }
func (s *schedule) decide(t, _ int, _ []policy.Reading) int {
	return s.q[min(t, len(s.q)-1)]
}
