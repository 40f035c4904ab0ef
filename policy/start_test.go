package policy_test

import (
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

func TestStartFillsTheDownWindowOnly(t *testing.T) {
	p := mustPolicy(t, "MODE", "ratio", "PER_DYNO", "1", "MAX", "20", "DOWN_STABILIZATION", "30s", "UP_STABILIZATION", "1m",
		"DOWN_COOLDOWN", "0", "UP_COOLDOWN", "0")
	at := func(d time.Duration, current int, value float64) policy.Input {
		return policy.Input{Now: t0.Add(d), Current: current, Size: "Standard-1X", Value: value, ReadingOK: true}
	}
	var st policy.State
	st.Start(p, t0, 8)
	for _, d := range []time.Duration{0, 10 * time.Second, 29 * time.Second} {
		if got := policy.Decide(p, &st, at(d, 8, 1)); got.Desired != 8 || got.Reason != policy.ReasonStabilizing {
			t.Fatalf("%v after Start(8) with a reading for 1: %d %s, want 8 stabilizing", d, got.Desired, got.Reason)
		}
	}
	if got := policy.Decide(p, &st, at(31*time.Second, 8, 1)); got.Desired != 1 {
		t.Errorf("a full DOWN_STABILIZATION after Start: %d %s, want 1", got.Desired, got.Reason)
	}

	// The up window is not filled: a scale-up right after a start is not held back by a window of the current.
	var up policy.State
	up.Start(p, t0, 2)
	if got := policy.Decide(p, &up, at(time.Second, 2, 6)); got.Desired != 6 {
		t.Errorf("scale-up after Start(2): %d %s, want 6", got.Desired, got.Reason)
	}

	// Without a down window Start changes nothing.
	q := mustPolicy(t, "MODE", "ratio", "PER_DYNO", "1", "MAX", "20", "DOWN_STABILIZATION", "0", "DOWN_COOLDOWN", "0")
	var none policy.State
	none.Start(q, t0, 8)
	if got := policy.Decide(q, &none, at(time.Second, 8, 1)); got.Desired != 1 {
		t.Errorf("Start without DOWN_STABILIZATION held a scale-down: %d %s", got.Desired, got.Reason)
	}
}

func TestStateRoundTrip(t *testing.T) {
	p := mustPolicy(t, "MODE", "ratio", "PER_DYNO", "1", "MAX", "20", "DOWN_STABILIZATION", "5m", "UP_STABILIZATION", "1m",
		"DOWN_COOLDOWN", "0", "UP_COOLDOWN", "0", "FALLBACK_AFTER", "3", "FALLBACK_QUANTITY", "4")
	in := func(d time.Duration, current int, value float64, ok bool) policy.Input {
		return policy.Input{Now: t0.Add(d), Current: current, Size: "Standard-1X", Value: value, ReadingOK: ok}
	}
	// A history: recommendations of 9, 7 and 5, then two failed readings.
	var st policy.State
	for i, v := range []float64{9, 7, 5} {
		policy.Decide(p, &st, in(time.Duration(i)*time.Minute, 9, v, true))
	}
	policy.Decide(p, &st, in(3*time.Minute, 9, 0, false))
	policy.Decide(p, &st, in(3*time.Minute+10*time.Second, 9, 0, false))
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var restored policy.State
	if err := restored.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	// The restored state decides as the original: the third failure in a row takes the fallback, and the window
	// still holds the 9 from t0 at 4m.
	for _, next := range []policy.Input{in(3*time.Minute+20*time.Second, 9, 0, false), in(4*time.Minute, 9, 1, true), in(5*time.Minute+time.Second, 9, 1, true)} {
		a, b := st, restored
		da, db := policy.Decide(p, &a, next), policy.Decide(p, &b, next)
		if da.Desired != db.Desired || da.Reason != db.Reason || da.Failures != db.Failures {
			t.Errorf("at %v: original %d %s (%d failures), restored %d %s (%d failures)", next.Now.Sub(t0), da.Desired, da.Reason, da.Failures, db.Desired, db.Reason, db.Failures)
		}
	}
	if d := policy.Decide(p, &restored, in(4*time.Minute, 9, 1, true)); d.Desired != 9 || d.Reason != policy.ReasonStabilizing {
		t.Errorf("restored window at 4m: %d %s, want 9 stabilizing", d.Desired, d.Reason)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append([]byte{3}, b[1:]...), append([]byte{1}, b[1:]...)} {
		var s policy.State
		if err := s.UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary of %d bytes starting %v: no error", len(bad), bad[:min(len(bad), 1)])
		}
	}
}

func TestResumeCarriesTheNewestRecommendationThroughTheGap(t *testing.T) {
	p := mustPolicy(t, "MODE", "ratio", "PER_DYNO", "1", "MAX", "20", "DOWN_STABILIZATION", "30s", "DOWN_COOLDOWN", "0", "UP_COOLDOWN", "0")
	at := func(d time.Duration, value float64) policy.Input {
		return policy.Input{Now: t0.Add(d), Current: 10, Size: "Standard-1X", Value: value, ReadingOK: true}
	}
	// The old leader saw load for 10 until t0+10s, then died; in the gap the load fell to 8 unseen. The new leader
	// resumes at t0+16s: an uninterrupted process would have seen 10 until at least t0+10s and held 10 until t0+40s;
	// resumed, the 10 holds until t0+46s, and never less.
	var st policy.State
	for d := time.Duration(0); d <= 10*time.Second; d += time.Second {
		policy.Decide(p, &st, at(d, 10))
	}
	st.Resume(p, t0.Add(16*time.Second))
	for _, d := range []time.Duration{20 * time.Second, 40 * time.Second, 45 * time.Second} {
		if got := policy.Decide(p, &st, at(d, 8)); got.Desired != 10 {
			t.Fatalf("at t0+%v after resuming: %d %s, want 10 held", d, got.Desired, got.Reason)
		}
	}
	if got := policy.Decide(p, &st, at(47*time.Second, 8)); got.Desired != 8 {
		t.Errorf("a window after resuming: %d %s, want 8", got.Desired, got.Reason)
	}
	// Resume on an empty State changes nothing.
	var empty policy.State
	empty.Resume(p, t0)
	if got := policy.Decide(p, &empty, at(time.Second, 8)); got.Desired != 8 {
		t.Errorf("Resume of an empty State held %d", got.Desired)
	}
}
