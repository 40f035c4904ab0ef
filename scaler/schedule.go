package scaler

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// phases is how many instants an "@every D" interval is divided into: the groups on one interval are spread over
// that many phases of it, by the name of their app. Reading every source at the same instant is what cost memory:
// with 1,000 policies on one host, each tick opened up to 1,000 connections at once, and net/http kept only a few,
// so the rest were dialled again on the next tick. Ten phases put a tenth of the reads in each, which is what the
// connection cap per host (metrics.NewConnections) can serve by reusing its connections. More phases would not
// spread the reads much further but would wake the scheduler more often: robfig/cron sorts all its entries at
// every wake-up.
const phases = 10

// schedule returns the cron schedule of a group whose policies are evaluated on spec, for the app named app.
//
// "@every D" (which is what a duration INTERVAL such as 15s becomes) runs every D at a phase of its own: a whole
// number of tenths of D after a multiple of D since the Unix epoch, chosen by a hash of the app's name. The gap
// between two evaluations is D exactly, as configured, so no reaction waits longer than it did; only the instant
// within D moves. The phase is the same on every start and on every instance, so a standby that takes over reads
// at the same instants as the leader it replaces.
//
// Any other cron spec ("*/1 * * * *", "0 9 * * MON-FRI") keeps its cron times exactly: whoever writes a cron spec
// chooses the instant (at a schedule window's start, say), and moving it would surprise them. Many policies on
// one such spec still read at the same instant; the connection cap per host bounds what that costs.
func schedule(spec, app string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("scheduling %s every %q: %w", app, spec, err)
	}
	every, ok := sched.(cron.ConstantDelaySchedule)
	if !ok {
		return sched, nil
	}
	return phased{every: every.Delay, phase: slotOffset(app, every.Delay)}, nil
}

// firstRoundSpread bounds how long after start a group's first evaluation may wait (see firstDelay).
const firstRoundSpread = 2 * time.Second

// firstDelay is how long after start the app's group on sched is first evaluated: an instant of its own within the
// first phase of its interval (a tenth of it), and never more than firstRoundSpread, so that no policy waits more
// than a fraction of its interval for its first decision, nor a long interval's policy long for /readyz, and the
// first round is not one burst of every reading and every formation read.
func firstDelay(app string, sched cron.Schedule, now time.Time) time.Duration {
	next := sched.Next(now)
	window := min(sched.Next(next).Sub(next)/phases, firstRoundSpread)
	if window <= 0 {
		return 0
	}
	return time.Duration(nameHash(app) % uint64(window))
}

// firstRoundConcurrency bounds the first round's evaluations running at once. Spread over a tenth of the interval,
// they still pile up when the daemon cannot keep up: at start every policy is evaluated for the first time and
// every formation read, and with 4,000 policies on two busy cores the evaluations of 2,000 apps took longer than the
// half second they were spread over, so that nearly all ran at once (some 12,000 goroutines). That cost lasts: the
// runtime never frees a goroutine's descriptor (it keeps it for reuse), so the most goroutines ever alive at once
// stay on the heap (a heap profile held 5.5 to 8 MB of them), and the garbage collector's headroom doubles that in
// resident memory. 64 at a time keeps the first round to a few hundred goroutines; against Heroku's latency (about
// 150 ms a formation read) it still evaluates 2,000 apps in about 5 seconds.
const firstRoundConcurrency = 64

// firstRun is one group's first evaluation.
type firstRun struct {
	run  func()      // the group's job
	at   time.Time   // no sooner than this
	done func() bool // whether the group has been evaluated already (by cron, when the first round fell behind)
}

// firstRound runs each of runs once, in the order of their instants, each no sooner than its instant and at most
// limit at a time; a group that cron has evaluated in the meantime is left out. It returns once it has started
// the last of them, or when ctx is done.
func firstRound(ctx context.Context, runs []firstRun, limit int) {
	slices.SortStableFunc(runs, func(a, b firstRun) int { return a.at.Compare(b.at) })
	slots := make(chan struct{}, limit)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for _, r := range runs {
		if wait := time.Until(r.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if r.done() {
			<-slots
			continue
		}
		go func() {
			defer func() { <-slots }()
			r.run()
		}()
	}
}

// slotOffset is the app's phase within every: one of phases instants, chosen by a hash of the app's name.
func slotOffset(app string, every time.Duration) time.Duration {
	return time.Duration(nameHash(app)%phases) * (every / phases)
}

// refreshOffset is the app's phase within a formation refresh interval: any instant of it, chosen by a hash of
// the app's name.
func refreshOffset(app string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	return time.Duration(nameHash(app) % uint64(interval))
}

// nameHash is a stable hash of an app's name (as Heroku compares them, without case): the same on every start,
// unlike hash/maphash, whose seed changes with each process.
func nameHash(app string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(app)))
	return mix(h.Sum64())
}

// mix spreads FNV's bits (splitmix64's finalizer). FNV-1a's low bits are simple functions of the name's bytes (its
// lowest bit is the parity of their lowest bits), and a small modulus such as the ten phases keeps mostly those.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// phased runs every every, at phase after each multiple of every since the Unix epoch.
type phased struct {
	every, phase time.Duration
}

// Next is the first instant after t at the schedule's phase.
func (p phased) Next(t time.Time) time.Time { return nextAt(t, p.every, p.phase) }

// nextAt is the first instant strictly after t that is phase after a multiple of every since the Unix epoch.
func nextAt(t time.Time, every, phase time.Duration) time.Time {
	if every <= 0 {
		return t
	}
	n := t.UnixNano() - int64(phase)
	k := n / int64(every)
	if n%int64(every) < 0 { // floor, for instants before the epoch's phase
		k--
	}
	return time.Unix(0, (k+1)*int64(every)+int64(phase)).In(t.Location())
}

// inflight counts the evaluations running, so that Run can wait for them when it stops. sync.WaitGroup requires
// an Add from zero to happen before Wait; an evaluation that cron, or the first round, starts just as shutdown
// begins would break that. So an evaluation is admitted only until stop, under the same lock.
type inflight struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// enter admits one evaluation, unless Run is stopping; done must follow an admitted one.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.wg.Add(1)
	return true
}

func (f *inflight) done() { f.wg.Done() }

// stop admits no more evaluations and returns a channel closed once those admitted have ended.
func (f *inflight) stop() <-chan struct{} {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	ended := make(chan struct{})
	go func() { f.wg.Wait(); close(ended) }()
	return ended
}
