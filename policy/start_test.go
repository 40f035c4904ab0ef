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
