package notify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/notify"
)

// sink records what the Detector passes on.
type sink struct {
	mu  sync.Mutex
	got []event.Event
}

func (s *sink) Publish(_ context.Context, e event.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, e)
}

// derived returns the events that are not decisions.
func (s *sink) derived() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.Event
	for _, e := range s.got {
		if e.Type != event.Decision {
			out = append(out, e)
		}
	}
	return out
}

var t0 = time.Date(2025, 1, 10, 14, 0, 0, 0, time.UTC)

// decision is a decision of shop/web with MAX=10 at tick i (every 10s): wanted is what the mode recommends.
func decision(i, current, wanted int) event.Event {
	to := min(wanted, 10)
	reason := "above_target"
	switch {
	case wanted > 10:
		reason = "at_max"
	case wanted == current:
		reason = "within_tolerance"
	}
	return event.Event{
		Type: event.Decision, Time: t0.Add(time.Duration(i) * 10 * time.Second), Policy: "shop/web", App: "shop", Process: "web",
		From: current, To: to, Wanted: wanted, Min: 1, Max: 10, Reason: reason,
		HasReading: true, Reading: 0.3 * float64(wanted) / float64(max(current, 1)), Target: 0.3, FallbackAfter: 3,
	}
}

// failed is a decision at tick i whose reading failed, the n-th in a row.
func failed(i, n int) event.Event {
	return event.Event{
		Type: event.Decision, Time: t0.Add(time.Duration(i) * 10 * time.Second), Policy: "shop/web",
		From: 4, To: 4, Wanted: 4, Min: 1, Max: 10, Reason: "reading_failed", Failures: n, FallbackAfter: 3,
		Error: "redis: connection refused",
	}
}

func types(es []event.Event) []event.Type {
	out := make([]event.Type, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// TestOnePinnedNoticeOverManyDecisions: an hour at MAX wanting more, with a few ticks of relief shorter than the
// quiet time, gives one pinned_at_max; the end comes once, after the quiet time, and carries when it began.
func TestOnePinnedNoticeOverManyDecisions(t *testing.T) {
	s := &sink{}
	d := notify.NewDetector(s, notify.DefaultQuiet)
	ctx := context.Background()
	i := 0
	for ; i < 360; i++ { // an hour of ticks at MAX, wanting 12..14, with a 100-second dip every 10 minutes
		wanted := 12 + i%3
		if i%60 >= 40 && i%60 < 50 {
			wanted = 9
		}
		d.Publish(ctx, decision(i, 10, wanted))
	}
	got := s.derived()
	if len(got) != 1 || got[0].Type != event.PinnedAtMax {
		t.Fatalf("derived %v, want one pinned_at_max", types(got))
	}
	if p := got[0]; !p.Time.Equal(t0) || p.Wanted != 12 || p.Max != 10 || p.Policy != "shop/web" || !p.HasReading {
		t.Errorf("pinned_at_max = %+v, want the first decision's facts", p)
	}
	if n := len(s.got); n != 361 {
		t.Errorf("passed on %d events, want the 360 decisions and the notice", n)
	}

	// Relief: 5 minutes of decisions that do not want more than MAX end it, once.
	for j := range 60 {
		d.Publish(ctx, decision(i+j, 10, 8))
	}
	got = s.derived()
	if len(got) != 2 || got[1].Type != event.PinnedAtMaxEnded {
		t.Fatalf("derived %v, want pinned_at_max then pinned_at_max_ended", types(got))
	}
	ended := got[1]
	if !ended.Since.Equal(t0) || ended.Time.Sub(decision(i, 10, 8).Time) != notify.DefaultQuiet {
		t.Errorf("pinned_at_max_ended at %v since %v, want %v after the first quiet decision, since %v", ended.Time, ended.Since, notify.DefaultQuiet, t0)
	}

	// Pinned again later: a new episode, a new notice.
	d.Publish(ctx, decision(i+100, 10, 15))
	if got = s.derived(); len(got) != 3 || got[2].Type != event.PinnedAtMax {
		t.Errorf("derived %v, want a second pinned_at_max", types(got))
	}
}

// TestPinnedNeedsToWantMore: at MAX but content (the load fits), not at MAX yet, or a failed reading: no notice.
func TestPinnedNeedsToWantMore(t *testing.T) {
	s := &sink{}
	d := notify.NewDetector(s, notify.DefaultQuiet)
	ctx := context.Background()
	d.Publish(ctx, decision(0, 10, 10)) // at MAX, wants exactly MAX
	d.Publish(ctx, decision(1, 6, 9))   // wants more, below MAX
	up := decision(2, 6, 14)            // wants more than MAX but an up cooldown holds it below
	up.To, up.Reason = 6, "up_cooldown"
	d.Publish(ctx, up)
	for i := range 2 {
		d.Publish(ctx, failed(3+i, 1+i))
	}
	if got := s.derived(); len(got) != 0 {
		t.Errorf("derived %v, want nothing", types(got))
	}
	// A schedule's MAX counts: the app needs more than it may have.
	sched := decision(10, 4, 7)
	sched.To, sched.Max, sched.Reason = 4, 4, "schedule"
	d.Publish(ctx, sched)
	if got := s.derived(); len(got) != 1 || got[0].Type != event.PinnedAtMax {
		t.Errorf("derived %v, want pinned_at_max under a schedule's MAX", types(got))
	}
}

// TestReadingFailingOnceThenRecovered: failures below FALLBACK_AFTER say nothing; reaching it says
// reading_failing once however long it goes on; the first good reading says reading_recovered, once, with when
// the failures began. Failed readings do not end a pinning.
func TestReadingFailingOnceThenRecovered(t *testing.T) {
	s := &sink{}
	d := notify.NewDetector(s, 0) // a pinning ends at the first decision that is not pinned
	ctx := context.Background()
	d.Publish(ctx, decision(0, 10, 14))
	for n := 1; n <= 50; n++ {
		d.Publish(ctx, failed(n, n))
	}
	d.Publish(ctx, decision(51, 10, 13)) // recovered, still pinned
	d.Publish(ctx, decision(52, 10, 13))
	got := s.derived()
	want := []event.Type{event.PinnedAtMax, event.ReadingFailing, event.ReadingRecovered}
	if len(got) != len(want) {
		t.Fatalf("derived %v, want %v", types(got), want)
	}
	for i, e := range got {
		if e.Type != want[i] {
			t.Fatalf("derived %v, want %v", types(got), want)
		}
	}
	if f := got[1]; f.Failures != 3 || f.FallbackAfter != 3 || f.Error != "redis: connection refused" || !f.Time.Equal(failed(3, 3).Time) {
		t.Errorf("reading_failing = %+v, want the third failure's facts", f)
	}
	if r := got[2]; !r.Since.Equal(failed(1, 1).Time) || !r.HasReading {
		t.Errorf("reading_recovered since %v, want the first failure's time %v", r.Since, failed(1, 1).Time)
	}

	// Failing again: a new run, a new notice; two failures (below FALLBACK_AFTER) in between say nothing.
	d.Publish(ctx, failed(60, 1))
	d.Publish(ctx, failed(61, 2))
	d.Publish(ctx, decision(62, 10, 13))
	for n := 1; n <= 3; n++ {
		d.Publish(ctx, failed(62+n, n))
	}
	if got = s.derived(); len(got) != 4 || got[3].Type != event.ReadingFailing {
		t.Errorf("derived %v, want a second reading_failing only", types(got))
	}
}

// TestDetectorPassesEverythingOn: the Detector sits in front of the bus: every event goes through unchanged,
// derived ones after the decision that caused them.
func TestDetectorPassesEverythingOn(t *testing.T) {
	s := &sink{}
	d := notify.NewDetector(s, notify.DefaultQuiet)
	ctx := context.Background()
	in := []event.Event{scaledEvent(t0), {Type: event.LeadershipChanged, Leader: true}, decision(0, 10, 14)}
	for _, e := range in {
		d.Publish(ctx, e)
	}
	if len(s.got) != 4 || s.got[0].Type != event.Scaled || s.got[1].Type != event.LeadershipChanged ||
		s.got[2].Type != event.Decision || s.got[3].Type != event.PinnedAtMax {
		t.Errorf("passed on %v", types(s.got))
	}
}
