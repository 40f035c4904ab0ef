package sim

import (
	"fmt"
	"sort"
	"time"
)

// Reactive is the reference for every controller that reacts to what has already happened, as an autoscaler must:
// it knows the model exactly (how many dynos any steady rate needs, as the oracle does) and every second's arrival
// rate the moment that second ends, with no reporting delay and no evaluation interval. At each second s it starts
// or stops dynos so that the count serving at s+boot is what the estimate needs: the highest mean rate over window
// seconds among the windows ending in the last lookback seconds, raised by headroom (0.2 for 20%). A dyno is kept
// while it boots for a later target; removed dynos stop at once. Bounded to [lo, hi].
//
// It is not a policy anyone can run (nobody knows the exact model), but it shows what reacting to the load can
// reach: `go run ./bench/simulate -frontier` sweeps window, lookback and headroom and compares the best it finds
// with the goals. It is a reference, not a bound: a controller reading queue time sees a burst within seconds and
// can do better where bursts are short (dynopilot's queue-time policy does on NASA).
func Reactive(window, lookback time.Duration, headroom float64, lo, hi int) Contender {
	w, l := int(window.Seconds()), int(lookback.Seconds())
	return Contender{
		Name: fmt.Sprintf("reactive w=%v l=%v h=%g", window, lookback, headroom), Kind: "reference",
		Settings: map[string]string{"WINDOW": window.String(), "LOOKBACK": lookback.String(), "HEADROOM": fmt.Sprint(headroom),
			"MIN": fmt.Sprint(lo), "MAX": fmt.Sprint(hi)},
		build: func(rc *runContext, _ *Contender) (controller, error) {
			if w < 1 || l < 0 || headroom < 0 {
				return nil, fmt.Errorf("reactive: window %v, lookback %v, headroom %g: expected a window of at least 1s, and a lookback and headroom of at least 0",
					window, lookback, headroom)
			}
			return &schedule{q: reactiveSchedule(rc, w, l, headroom, lo, hi)}, nil
		},
	}
}

// reactiveSchedule is Reactive's formation for every second.
func reactiveSchedule(rc *runContext, window, lookback int, headroom float64, lo, hi int) []int {
	T := len(rc.rates)
	boot := rc.params.boot
	// mean[s]: the mean rate of the window that ended as second s began, [s-window, s) (shorter at the start; at
	// s = 0, when nothing has ended, the first second, as the oracle's start knows it).
	mean := make([]float64, T)
	sum := 0.0
	for s := range T {
		if s > 0 {
			sum += rc.rates[s-1]
		}
		if s > window {
			sum -= rc.rates[s-window-1]
		}
		mean[s] = sum / float64(max(1, min(s, window)))
	}
	mean[0] = rc.rates[0]
	// est[s]: the highest mean of [s-lookback, s], by a monotone deque.
	caps := &capacities{nt: newNeedTable(rc.params), limit: hi}
	target := make([]int, T) // what should serve at s+boot, decided at s
	dq := make([]int, 0, 64)
	head := 0
	for s := range T {
		for len(dq) > head && mean[dq[len(dq)-1]] <= mean[s] {
			dq = dq[:len(dq)-1]
		}
		dq = append(dq, s)
		for dq[head] < s-lookback {
			head++
		}
		if head > 1024 {
			dq, head = append(dq[:0], dq[head:]...), 0
		}
		target[s] = clamp(caps.dynos(mean[dq[head]]*(1+headroom)), lo, hi)
	}
	// The formation at s holds every dyno that serves now (decided at s-boot) and every one booting for a later
	// target (decided in (s-boot, s]): the largest target of [s-boot, s].
	ahead := slidingMax(target, boot) // ahead[u] = max target[u..u+boot]
	q := make([]int, T)
	run := 0
	for s := range T {
		if s < boot {
			run = max(run, target[s])
			q[s] = run
			continue
		}
		q[s] = ahead[s-boot]
	}
	return q
}

// capacities answers needTable.dynos for any rate from the largest rate each count can carry, found once by
// bisection (needTable.dynos is monotone in the rate), so that millions of distinct rates cost a binary search each.
// Counts past limit (when above 0) are not worked out: any rate beyond limit's answers limit+1, which the caller
// clamps, so a wild rate costs nothing.
type capacities struct {
	nt    *needTable
	limit int
	top   []float64 // top[n-1]: the largest rate n dynos carry within the objective
}

func (c *capacities) dynos(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	for len(c.top) == 0 || c.top[len(c.top)-1] < lambda {
		if c.limit > 0 && len(c.top) >= c.limit {
			return c.limit + 1
		}
		n := len(c.top) + 1
		lo, hi := 0.0, float64(n)*c.nt.p.capacity // n dynos never carry more than n*C
		for range 60 {
			mid := (lo + hi) / 2
			if c.nt.dynos(mid) <= n {
				lo = mid
			} else {
				hi = mid
			}
		}
		c.top = append(c.top, lo)
	}
	return sort.SearchFloat64s(c.top, lambda) + 1
}
