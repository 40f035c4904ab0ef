package notify

import (
	"context"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/event"
)

// DefaultQuiet is how long a policy pinned at MAX must go without wanting more than MAX before the pinning is
// said to have ended: long enough that a load hovering around the limit gives one notice, not one per tick.
const DefaultQuiet = 5 * time.Minute

// Detector turns the stream of per-tick decisions into the few events worth telling someone about. It is a Sink
// to put in front of the bus (producers → Detector → Bus): it passes every event on to next unchanged, and after
// a decision that starts or ends an episode it publishes the derived event too:
//
//   - pinned_at_max, once, at the first decision that is pinned: it has a reading, its desired quantity is the
//     effective MAX, and it wants more (Wanted > Max, or the reason is at_max). A decision that hits a MAX set by
//     a schedule or the dyno size's limit counts too: the app needs more than it may have.
//   - pinned_at_max_ended, once, when decisions with a reading have not been pinned for the quiet time (measured
//     in the decisions' own times, from the first one that was not pinned); a pinned decision in between starts
//     the quiet time again. Decisions whose reading failed neither prolong nor end an episode: nothing is known.
//   - reading_failing, once, at the decision that makes FALLBACK_AFTER failed readings in a row (Failures >=
//     FallbackAfter); reading_recovered, once, at the next decision with a reading.
//
// Derived events are copies of the decision that caused them (its numbers and explanation) with their own Type,
// and Since set on an end. The state is in memory: after a restart an episode still going on is announced again,
// once. Publish does no I/O and holds a mutex for a map lookup: it is safe on the producer's goroutine.
type Detector struct {
	next  event.Sink
	quiet time.Duration

	mu    sync.Mutex
	state map[string]*watch // by policy
}

// watch is what the Detector remembers of one policy.
type watch struct {
	pinned      bool
	pinnedSince time.Time
	quietSince  time.Time // the first decision not pinned since the last pinned one; zero: none yet

	failing      bool
	firstFailure time.Time // the decision that began the current run of failed readings
}

// NewDetector returns a Detector publishing to next; quiet is the time that ends a pinning (DefaultQuiet suits;
// 0 ends it at the first decision that is not pinned).
func NewDetector(next event.Sink, quiet time.Duration) *Detector {
	return &Detector{next: next, quiet: max(quiet, 0), state: map[string]*watch{}}
}

// Publish passes e on, then any event it derives from it.
func (d *Detector) Publish(ctx context.Context, e event.Event) {
	d.next.Publish(ctx, e)
	if e.Type != event.Decision || e.Policy == "" || e.Reason == "disabled" {
		return
	}
	for _, derived := range d.observe(e) {
		d.next.Publish(ctx, derived)
	}
}

// observe updates the policy's state with decision e and returns what it derives (at most two events).
func (d *Detector) observe(e event.Event) []event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.state[e.Policy]
	if w == nil {
		w = &watch{}
		d.state[e.Policy] = w
	}
	var out []event.Event
	derive := func(t event.Type, since time.Time) {
		x := e
		x.Type, x.Since = t, since
		out = append(out, x)
	}

	switch {
	case !e.HasReading && e.Failures > 0:
		if e.Failures == 1 || w.firstFailure.IsZero() {
			w.firstFailure = e.Time
		}
		if !w.failing && e.Failures >= max(e.FallbackAfter, 1) {
			w.failing = true
			derive(event.ReadingFailing, time.Time{})
		}
	case e.HasReading:
		if w.failing {
			w.failing = false
			derive(event.ReadingRecovered, w.firstFailure)
		}
		w.firstFailure = time.Time{}
	}

	if !e.HasReading {
		return out
	}
	switch {
	case pinned(e):
		w.quietSince = time.Time{}
		if !w.pinned {
			w.pinned, w.pinnedSince = true, e.Time
			derive(event.PinnedAtMax, time.Time{})
		}
	case w.pinned:
		if w.quietSince.IsZero() {
			w.quietSince = e.Time
		}
		if e.Time.Sub(w.quietSince) >= d.quiet {
			w.pinned, w.quietSince = false, time.Time{}
			derive(event.PinnedAtMaxEnded, w.pinnedSince)
		}
	}
	return out
}

// pinned reports whether decision e is at its MAX and wants more.
func pinned(e event.Event) bool {
	return e.Max > 0 && e.To >= e.Max && (e.Wanted > e.Max || e.Reason == "at_max")
}
