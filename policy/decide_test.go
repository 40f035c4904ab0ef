package policy_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

// reading is an evaluation at t0 of a formation of current Standard-1X dynos with a good reading of value.
func reading(current int, value float64) policy.Input {
	return policy.Input{Now: t0, Current: current, Size: "Standard-1X", Value: value, ReadingOK: true}
}

func failed(current int) policy.Input {
	return policy.Input{Now: t0, Current: current, Size: "Standard-1X"}
}

func (tc decideCase) with(f func(*policy.Input)) decideCase { f(&tc.in); return tc }

// tick is an earlier evaluation fed into the same State, at t0+at.
type tick struct {
	at      time.Duration
	current int
	value   float64
	ok      bool
}

type decideCase struct {
	name    string
	kv      []string
	prior   []tick
	in      policy.Input
	desired int
	action  policy.Action
	reason  policy.Reason
}

func runDecide(t *testing.T, tc decideCase) policy.Decision {
	t.Helper()
	p := mustPolicy(t, tc.kv...)
	var st policy.State
	for _, k := range tc.prior {
		policy.Decide(p, &st, policy.Input{Now: t0.Add(k.at), Current: k.current, Size: tc.in.Size, Value: k.value, ReadingOK: k.ok, LastScale: tc.in.LastScale})
	}
	d := policy.Decide(p, &st, tc.in)
	if d.Desired != tc.desired || d.Action != tc.action || d.Reason != tc.reason {
		t.Errorf("Decide(current %d, value %v, ok %v) = %d %s %s, want %d %s %s\n  %s",
			tc.in.Current, tc.in.Value, tc.in.ReadingOK, d.Desired, d.Action, d.Reason, tc.desired, tc.action, tc.reason, d.Explain())
	}
	if d.Desired < d.Min || d.Desired > d.Max || d.Desired > d.SizeLimit {
		t.Errorf("desired %d outside effective bounds [%d, %d] (size limit %d)", d.Desired, d.Min, d.Max, d.SizeLimit)
	}
	if e := d.Explain(); e == "" || strings.Contains(e, "%!") {
		t.Errorf("Explain() = %q", e)
	}
	return d
}

func TestDecideModes(t *testing.T) {
	up, down, hold := policy.ActionUp, policy.ActionDown, policy.ActionHold
	step := []string{"MODE", "step", "UP_ABOVE", "10", "DOWN_BELOW", "2", "UP_BY", "2"}
	ratio := []string{"MODE", "ratio", "PER_DYNO", "100"}
	safety := []string{"MODE", "ratio", "PER_DYNO", "10", "SAFETY", "1", "MAX", "100", "SIZE_LIMIT", "100"}
	for _, tc := range []decideCase{
		// target: ceil(current * value / target), HPA's rule.
		{name: "target above", in: reading(3, 2), desired: 6, action: up, reason: policy.ReasonAboveTarget},
		{name: "target above rounds up", in: reading(3, 1.5), desired: 5, action: up, reason: policy.ReasonAboveTarget},
		{name: "target below", in: reading(6, 0.5), desired: 3, action: down, reason: policy.ReasonBelowTarget},
		{name: "target below rounds up", in: reading(5, 0.5), desired: 3, action: down, reason: policy.ReasonBelowTarget},
		{name: "target within tolerance", in: reading(4, 1.05), desired: 4, action: hold, reason: policy.ReasonWithinTolerance},
		{name: "target at upper tolerance edge", in: reading(4, 1.1), desired: 4, action: hold, reason: policy.ReasonWithinTolerance},
		{name: "target at lower tolerance edge", in: reading(4, 0.9), desired: 4, action: hold, reason: policy.ReasonWithinTolerance},
		{name: "target just past tolerance", in: reading(4, 1.1001), desired: 5, action: up, reason: policy.ReasonAboveTarget},
		{name: "target with tolerance 0", kv: []string{"TOLERANCE", "0"}, in: reading(8, 1.05), desired: 9, action: up, reason: policy.ReasonAboveTarget},
		{name: "target no rounding noise", kv: []string{"TARGET", "0.3", "TOLERANCE", "0"}, in: reading(3, 0.3), desired: 3, action: hold, reason: policy.ReasonWithinTolerance},
		{name: "target as duration", kv: []string{"TARGET", "250ms"}, in: reading(2, 0.5), desired: 4, action: up, reason: policy.ReasonAboveTarget},
		{name: "target to zero when idle with MIN=0", kv: []string{"MIN", "0"}, in: reading(1, 0), desired: 0, action: down, reason: policy.ReasonBelowTarget},
		{name: "target keeps one dyno for any load", kv: []string{"MIN", "0"}, in: reading(1, 0.01), desired: 1, action: hold, reason: policy.ReasonBelowTarget},

		// From zero dynos: activation.
		{name: "zero dynos idle stays at zero", kv: []string{"MIN", "0"}, in: reading(0, 0), desired: 0, action: hold, reason: policy.ReasonBelowActivation},
		{name: "zero dynos activates to one", kv: []string{"MIN", "0"}, in: reading(0, 0.2), desired: 1, action: up, reason: policy.ReasonActivation},
		{name: "zero dynos activates on big load to one (target mode)", kv: []string{"MIN", "0"}, in: reading(0, 50), desired: 1, action: up, reason: policy.ReasonActivation},
		{name: "zero dynos at activation threshold stays", kv: []string{"MIN", "0", "ACTIVATION", "5"}, in: reading(0, 5), desired: 0, action: hold, reason: policy.ReasonBelowActivation},
		{name: "zero dynos above activation threshold", kv: []string{"MIN", "0", "ACTIVATION", "5"}, in: reading(0, 5.5), desired: 1, action: up, reason: policy.ReasonActivation},
		{name: "activation only from zero", kv: []string{"MIN", "0", "ACTIVATION", "5"}, in: reading(2, 3), desired: 6, action: up, reason: policy.ReasonAboveTarget},
		{name: "zero dynos with MIN=1 is raised, whatever the value", in: reading(0, 0), desired: 1, action: up, reason: policy.ReasonRaiseToMin},

		// step: thresholds and jumps.
		{name: "step above", kv: step, in: reading(3, 11), desired: 5, action: up, reason: policy.ReasonAboveThreshold},
		{name: "step below", kv: step, in: reading(3, 1), desired: 2, action: down, reason: policy.ReasonBelowThreshold},
		{name: "step between", kv: step, in: reading(3, 5), desired: 3, action: hold, reason: policy.ReasonWithinThresholds},
		{name: "step at UP_ABOVE holds", kv: step, in: reading(3, 10), desired: 3, action: hold, reason: policy.ReasonWithinThresholds},
		{name: "step at DOWN_BELOW holds", kv: step, in: reading(3, 2), desired: 3, action: hold, reason: policy.ReasonWithinThresholds},
		{name: "step DOWN_BY", kv: append(step, "DOWN_BY", "3"), in: reading(8, 0), desired: 5, action: down, reason: policy.ReasonBelowThreshold},
		{name: "step down to zero", kv: append(step, "MIN", "0"), in: reading(1, 0), desired: 0, action: down, reason: policy.ReasonBelowThreshold},
		{name: "step from zero activates by UP_BY", kv: append(step, "MIN", "0"), in: reading(0, 1), desired: 2, action: up, reason: policy.ReasonActivation},
		{name: "step latency thresholds", kv: []string{"MODE", "step", "UP_ABOVE", "500ms", "DOWN_BELOW", "100ms"}, in: reading(2, 0.6), desired: 3, action: up, reason: policy.ReasonAboveThreshold},

		// ratio: ceil(value / PER_DYNO).
		{name: "ratio up", kv: ratio, in: reading(3, 950), desired: 10, action: up, reason: policy.ReasonRatio},
		{name: "ratio exact", kv: ratio, in: reading(10, 1000), desired: 10, action: hold, reason: policy.ReasonRatio},
		{name: "ratio just past", kv: ratio, in: reading(10, 1001), desired: 10, action: hold, reason: policy.ReasonAtMax},
		{name: "ratio down", kv: ratio, in: reading(8, 250), desired: 3, action: down, reason: policy.ReasonRatio},
		{name: "ratio from zero activates to the ratio", kv: append(ratio, "MIN", "0", "MAX", "20"), in: reading(0, 950), desired: 10, action: up, reason: policy.ReasonActivation},
		{name: "ratio from zero small queue", kv: append(ratio, "MIN", "0"), in: reading(0, 3), desired: 1, action: up, reason: policy.ReasonActivation},
		{name: "ratio empty queue to zero", kv: append(ratio, "MIN", "0"), in: reading(4, 0), desired: 0, action: down, reason: policy.ReasonRatio},

		// ratio with SAFETY: ceil(R + SAFETY*sqrt(R)), R = value / PER_DYNO.
		{name: "ratio safety at 40 dynos of load", kv: safety, in: reading(30, 400), desired: 47, action: up, reason: policy.ReasonRatio}, // 40 + 6.32
		{name: "ratio safety at 3.6 dynos of load", kv: safety, in: reading(8, 36), desired: 6, action: down, reason: policy.ReasonRatio}, // 3.6 + 1.90
		{name: "ratio safety exact square", kv: safety, in: reading(30, 90), desired: 12, action: down, reason: policy.ReasonRatio},       // 9 + 3
		{name: "ratio safety nothing to zero", kv: append(safety, "MIN", "0"), in: reading(4, 0), desired: 0, action: down, reason: policy.ReasonRatio},
		{name: "ratio safety from zero", kv: append(safety, "MIN", "0"), in: reading(0, 5), desired: 2, action: up, reason: policy.ReasonActivation}, // 0.5 + 0.71
	} {
		t.Run(tc.name, func(t *testing.T) { runDecide(t, tc) })
	}
}

func TestDecideBounds(t *testing.T) {
	up, down, hold := policy.ActionUp, policy.ActionDown, policy.ActionHold
	inCooldown := func(in *policy.Input) { in.LastScale = t0.Add(-10 * time.Second) }
	cooldowns := []string{"UP_COOLDOWN", "1m", "DOWN_COOLDOWN", "5m"}
	for _, tc := range []decideCase{
		{name: "capped at MAX", in: reading(8, 3), desired: 10, action: up, reason: policy.ReasonAtMax},
		{name: "holding at MAX", in: reading(10, 3), desired: 10, action: hold, reason: policy.ReasonAtMax},
		{name: "stopped at MIN", kv: []string{"MIN", "2"}, in: reading(6, 0), desired: 2, action: down, reason: policy.ReasonAtMin},
		{name: "holding at MIN", kv: []string{"MIN", "2"}, in: reading(2, 0.1), desired: 2, action: hold, reason: policy.ReasonAtMin},
		{name: "raised to MIN at once", kv: append([]string{"MIN", "3"}, cooldowns...), in: reading(1, 1), desired: 3, action: up, reason: policy.ReasonRaiseToMin},
		decideCase{name: "raised to MIN in a cooldown", kv: append([]string{"MIN", "3"}, cooldowns...), in: reading(1, 1), desired: 3, action: up, reason: policy.ReasonRaiseToMin}.with(inCooldown),
		decideCase{name: "lowered to MAX in a cooldown", kv: cooldowns, in: reading(15, 1), desired: 10, action: down, reason: policy.ReasonLowerToMax}.with(inCooldown),
		{name: "lowered past MAX by the reading", in: reading(15, 0.2), desired: 3, action: down, reason: policy.ReasonBelowTarget},
		{name: "raise to MIN ignores MAX_STEP_UP", kv: []string{"MIN", "5", "MAX_STEP_UP", "1"}, in: reading(1, 1), desired: 5, action: up, reason: policy.ReasonRaiseToMin},
		{name: "lower to MAX ignores MAX_STEP_DOWN", kv: []string{"MAX_STEP_DOWN", "1"}, in: reading(14, 1), desired: 10, action: down, reason: policy.ReasonLowerToMax},

		// MIN = MAX pins the quantity.
		{name: "MIN=MAX holds on high load", kv: []string{"MIN", "3", "MAX", "3"}, in: reading(3, 9), desired: 3, action: hold, reason: policy.ReasonAtMax},
		{name: "MIN=MAX holds on no load", kv: []string{"MIN", "3", "MAX", "3"}, in: reading(3, 0), desired: 3, action: hold, reason: policy.ReasonAtMin},
		{name: "MIN=MAX raises", kv: []string{"MIN", "3", "MAX", "3"}, in: reading(1, 0), desired: 3, action: up, reason: policy.ReasonRaiseToMin},
		{name: "MIN=MAX=0 lowers", kv: []string{"MIN", "0", "MAX", "1", "SCHEDULE", "0 0 * * * for 24h max=0"}, in: reading(1, 5), desired: 0, action: down, reason: policy.ReasonSchedule},

		// Size limits: the dyno size caps MAX (and MIN).
		decideCase{name: "size limit caps a move", kv: []string{"MAX", "20"}, in: reading(8, 3), desired: 10, action: up, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { in.Size = "Performance-M" }),
		decideCase{name: "size limit holds", kv: []string{"MAX", "20"}, in: reading(10, 3), desired: 10, action: hold, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { in.Size = "Performance-L" }),
		decideCase{name: "size limit lowers at once", kv: append([]string{"MAX", "20"}, cooldowns...), in: reading(12, 1), desired: 10, action: down, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { in.Size = "Private-M"; inCooldown(in) }),
		decideCase{name: "size limit not biting", kv: []string{"MAX", "20"}, in: reading(4, 2), desired: 8, action: up, reason: policy.ReasonAboveTarget}.with(func(in *policy.Input) { in.Size = "Shield-S" }),
		decideCase{name: "SIZE_LIMIT overrides the table", kv: []string{"MAX", "40", "SIZE_LIMIT", "15"}, in: reading(8, 3), desired: 15, action: up, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { in.Size = "Performance-M" }),
		decideCase{name: "Eco caps MIN", kv: []string{"MIN", "2"}, in: reading(0, 1), desired: 1, action: up, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { in.Size = "eco" }),
		decideCase{name: "Basic at its limit", kv: []string{"MIN", "1"}, in: reading(1, 5), desired: 1, action: hold, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { in.Size = "Basic" }),
		decideCase{name: "unknown size gets the default limit", kv: []string{"MAX", "500"}, in: reading(90, 2), desired: 100, action: up, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { in.Size = "" }),

		// Huge and odd numbers never overflow.
		{name: "huge reading", in: reading(5, 1e300), desired: 10, action: up, reason: policy.ReasonAtMax},
		{name: "huge ratio", kv: []string{"MODE", "ratio", "PER_DYNO", "1e-300", "MAX", "100000", "SIZE_LIMIT", "100000"}, in: reading(5, 1e300), desired: 100000, action: up, reason: policy.ReasonRatio},
		{name: "largest float", kv: []string{"MAX", "100000", "SIZE_LIMIT", "100000", "TARGET", "1e-300"}, in: reading(100000, math.MaxFloat64), desired: 100000, action: hold, reason: policy.ReasonAboveTarget},
		{name: "huge current", in: reading(math.MaxInt, 1), desired: 10, action: down, reason: policy.ReasonLowerToMax},
		{name: "negative current counts as zero", kv: []string{"MIN", "0"}, in: reading(-4, 0), desired: 0, action: hold, reason: policy.ReasonBelowActivation},
	} {
		t.Run(tc.name, func(t *testing.T) { runDecide(t, tc) })
	}
}

func TestDecideTiming(t *testing.T) {
	up, down, hold := policy.ActionUp, policy.ActionDown, policy.ActionHold
	cooldowns := []string{"UP_COOLDOWN", "1m", "DOWN_COOLDOWN", "5m"}
	lastScale := func(ago time.Duration) func(*policy.Input) {
		return func(in *policy.Input) { in.LastScale = t0.Add(-ago) }
	}
	for _, tc := range []decideCase{
		decideCase{name: "up cooldown holds", kv: cooldowns, in: reading(3, 2), desired: 3, action: hold, reason: policy.ReasonUpCooldown}.with(lastScale(30 * time.Second)),
		decideCase{name: "up cooldown over", kv: cooldowns, in: reading(3, 2), desired: 6, action: up, reason: policy.ReasonAboveTarget}.with(lastScale(time.Minute)),
		decideCase{name: "down cooldown holds", kv: cooldowns, in: reading(6, 0.5), desired: 6, action: hold, reason: policy.ReasonDownCooldown}.with(lastScale(4 * time.Minute)),
		decideCase{name: "down cooldown over", kv: cooldowns, in: reading(6, 0.5), desired: 3, action: down, reason: policy.ReasonBelowTarget}.with(lastScale(5 * time.Minute)),
		decideCase{name: "up cooldown does not hold a scale-down", kv: []string{"UP_COOLDOWN", "1h"}, in: reading(6, 0.5), desired: 3, action: down, reason: policy.ReasonBelowTarget}.with(lastScale(time.Second)),
		decideCase{name: "down cooldown does not hold a scale-up", kv: []string{"DOWN_COOLDOWN", "1h"}, in: reading(3, 2), desired: 6, action: up, reason: policy.ReasonAboveTarget}.with(lastScale(time.Second)),
		{name: "no last scale event: no cooldown", kv: cooldowns, in: reading(3, 2), desired: 6, action: up, reason: policy.ReasonAboveTarget},
		decideCase{name: "activation waits for the up cooldown", kv: append([]string{"MIN", "0"}, cooldowns...), in: reading(0, 1), desired: 0, action: hold, reason: policy.ReasonUpCooldown}.with(lastScale(10 * time.Second)),

		// MAX_STEP_UP / MAX_STEP_DOWN.
		{name: "max step up", kv: []string{"MAX_STEP_UP", "3"}, in: reading(3, 2.3), desired: 6, action: up, reason: policy.ReasonMaxStep},
		{name: "max step down", kv: []string{"MAX_STEP_DOWN", "2"}, in: reading(10, 0.1), desired: 8, action: down, reason: policy.ReasonMaxStep},
		{name: "max step not reached", kv: []string{"MAX_STEP_UP", "5"}, in: reading(3, 2), desired: 6, action: up, reason: policy.ReasonAboveTarget},
		{name: "max step then MAX", kv: []string{"MAX_STEP_UP", "5"}, in: reading(8, 3), desired: 10, action: up, reason: policy.ReasonAtMax},

		// Stabilization: down only to the highest recommendation of DOWN_STABILIZATION.
		{name: "down stabilization holds", kv: []string{"DOWN_STABILIZATION", "2m"},
			prior: []tick{{-90 * time.Second, 6, 1, true}, {-30 * time.Second, 6, 0.5, true}},
			in:    reading(6, 0.5), desired: 6, action: hold, reason: policy.ReasonStabilizing},
		{name: "down stabilization goes to the window's highest", kv: []string{"DOWN_STABILIZATION", "2m"},
			prior: []tick{{-90 * time.Second, 6, 0.7, true}, {-30 * time.Second, 6, 0.5, true}},
			in:    reading(6, 0.3), desired: 5, action: down, reason: policy.ReasonStabilizing},
		{name: "down stabilization window passed", kv: []string{"DOWN_STABILIZATION", "2m"},
			prior: []tick{{-130 * time.Second, 6, 1, true}, {-30 * time.Second, 6, 0.5, true}},
			in:    reading(6, 0.5), desired: 3, action: down, reason: policy.ReasonBelowTarget},
		{name: "down stabilization does not slow a scale-up", kv: []string{"DOWN_STABILIZATION", "10m"},
			prior: []tick{{-30 * time.Second, 3, 3, true}},
			in:    reading(3, 2), desired: 6, action: up, reason: policy.ReasonAboveTarget},
		{name: "up stabilization holds", kv: []string{"UP_STABILIZATION", "1m"},
			prior: []tick{{-30 * time.Second, 3, 1, true}},
			in:    reading(3, 3), desired: 3, action: hold, reason: policy.ReasonStabilizing},
		{name: "up stabilization goes to the window's lowest", kv: []string{"UP_STABILIZATION", "1m"},
			prior: []tick{{-45 * time.Second, 3, 2, true}, {-15 * time.Second, 3, 3, true}},
			in:    reading(3, 3), desired: 6, action: up, reason: policy.ReasonStabilizing},
		{name: "failed readings are not recommendations", kv: []string{"DOWN_STABILIZATION", "2m"},
			prior: []tick{{-60 * time.Second, 6, 0, false}, {-30 * time.Second, 6, 0, false}},
			in:    reading(6, 0.5), desired: 3, action: down, reason: policy.ReasonBelowTarget},
		decideCase{name: "stabilization then cooldown", kv: []string{"UP_STABILIZATION", "1m", "UP_COOLDOWN", "1m"},
			prior: []tick{{-30 * time.Second, 3, 2, true}},
			in:    reading(3, 3), desired: 3, action: hold, reason: policy.ReasonUpCooldown}.with(func(in *policy.Input) { in.LastScale = t0.Add(-10 * time.Second) }),
	} {
		t.Run(tc.name, func(t *testing.T) { runDecide(t, tc) })
	}
}

// TestManualScaleRestartsCooldown: the daemon scaled 10 minutes ago, then a person scaled by hand a minute ago; the
// caller passes the later of the two, and the engine leaves the person's choice alone for the cooldown.
func TestManualScaleRestartsCooldown(t *testing.T) {
	p := mustPolicy(t, "UP_COOLDOWN", "1m", "DOWN_COOLDOWN", "5m")
	ourPatch := t0.Add(-10 * time.Minute)
	updatedAt := t0.Add(-time.Minute) // the person
	in := reading(8, 0.25)            // wants 2
	in.LastScale = ourPatch
	if d := policy.Decide(p, nil, in); d.Desired != 2 || d.Reason != policy.ReasonBelowTarget {
		t.Fatalf("without the manual scale: %d %s, want 2 below_target", d.Desired, d.Reason)
	}
	in.LastScale = maxTime(ourPatch, updatedAt)
	d := policy.Decide(p, nil, in)
	if d.Desired != 8 || d.Reason != policy.ReasonDownCooldown || d.CooldownLeft != 4*time.Minute {
		t.Fatalf("after the manual scale: %d %s, %v left; want 8 down_cooldown 4m0s left (%s)", d.Desired, d.Reason, d.CooldownLeft, d.Explain())
	}
	in.Now = updatedAt.Add(5 * time.Minute)
	if d := policy.Decide(p, nil, in); d.Desired != 2 || d.CooldownLeft != 0 {
		t.Fatalf("after the cooldown: %d %s, %v left; want 2 and none left", d.Desired, d.Reason, d.CooldownLeft)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func TestCooldownLeft(t *testing.T) {
	p := mustPolicy(t, "UP_COOLDOWN", "1m", "DOWN_COOLDOWN", "5m")
	for _, tc := range []struct {
		name      string
		value     float64
		lastScale time.Time
		want      time.Duration
	}{
		{"wants up", 2, t0.Add(-20 * time.Second), 40 * time.Second},
		{"wants down", 0.5, t0.Add(-20 * time.Second), 4*time.Minute + 40*time.Second},
		{"wants nothing", 1, t0.Add(-20 * time.Second), 0},
		{"cooldown over", 2, t0.Add(-2 * time.Minute), 0},
		// A last scale event ahead of our clock (skew) counts as now: never more than the cooldown itself.
		{"last scale in the future", 2, t0.Add(time.Hour), time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := reading(4, tc.value)
			in.LastScale = tc.lastScale
			d := policy.Decide(p, nil, in)
			if d.CooldownLeft != tc.want {
				t.Errorf("CooldownLeft = %v, want %v (%s)", d.CooldownLeft, tc.want, d.Explain())
			}
		})
	}
}

func TestDecideFailedReadings(t *testing.T) {
	up, down, hold := policy.ActionUp, policy.ActionDown, policy.ActionHold
	nan := reading(3, math.NaN())
	inf := reading(3, math.Inf(1))
	ninf := reading(3, math.Inf(-1))
	fallback := []string{"FALLBACK_QUANTITY", "5", "FALLBACK_AFTER", "3"}
	fails := func(n int, current int) []tick {
		var ticks []tick
		for i := n; i > 0; i-- {
			ticks = append(ticks, tick{at: -time.Duration(i) * 15 * time.Second, current: current})
		}
		return ticks
	}
	for _, tc := range []decideCase{
		{name: "failed reading holds", in: failed(3), desired: 3, action: hold, reason: policy.ReasonReadingFailed},
		{name: "failed reading at MIN holds", kv: []string{"MIN", "2"}, in: failed(2), desired: 2, action: hold, reason: policy.ReasonReadingFailed},
		{name: "failed reading with MIN=0 never scales to zero", kv: []string{"MIN", "0"}, in: failed(1), desired: 1, action: hold, reason: policy.ReasonReadingFailed},
		{name: "failed reading at zero", kv: []string{"MIN", "0"}, in: failed(0), desired: 0, action: hold, reason: policy.ReasonReadingFailed},
		{name: "failed reading below MIN raises", kv: []string{"MIN", "2"}, in: failed(1), desired: 2, action: up, reason: policy.ReasonRaiseToMin},
		{name: "failed reading above MAX lowers (bounds always hold)", in: failed(12), desired: 10, action: down, reason: policy.ReasonLowerToMax},
		{name: "NaN is a failed reading", in: nan, desired: 3, action: hold, reason: policy.ReasonReadingFailed},
		{name: "+Inf is a failed reading", in: inf, desired: 3, action: hold, reason: policy.ReasonReadingFailed},
		{name: "-Inf is a failed reading", in: ninf, desired: 3, action: hold, reason: policy.ReasonReadingFailed},
		{name: "NaN never scales down", kv: []string{"MIN", "0"}, in: reading(4, math.NaN()), desired: 4, action: hold, reason: policy.ReasonReadingFailed},
		// Issue 11: a query answering -5 or -0.001 scaled 4 -> 1 in one PATCH. No latency, size or rate is negative.
		{name: "negative reading is a failed reading (target)", kv: []string{"MIN", "0"}, in: reading(4, -3), desired: 4, action: hold, reason: policy.ReasonReadingFailed},
		{name: "tiny negative reading is a failed reading", kv: []string{"MIN", "1", "DOWN_STABILIZATION", "0"}, in: reading(4, -0.001), desired: 4, action: hold, reason: policy.ReasonReadingFailed},
		{name: "negative reading is a failed reading (step)", kv: []string{"MODE", "step", "UP_ABOVE", "10", "DOWN_BELOW", "2"}, in: reading(4, -5), desired: 4, action: hold, reason: policy.ReasonReadingFailed},
		{name: "negative reading is a failed reading (ratio)", kv: []string{"MODE", "ratio", "PER_DYNO", "10", "MIN", "0"}, in: reading(4, -5), desired: 4, action: hold, reason: policy.ReasonReadingFailed},
		{name: "negative reading at zero dynos", kv: []string{"MIN", "0"}, in: reading(0, -5), desired: 0, action: hold, reason: policy.ReasonReadingFailed},
		{name: "negative readings count toward the fallback", kv: fallback, prior: []tick{{-30 * time.Second, 2, -5, true}, {-15 * time.Second, 2, -0.001, true}},
			in: reading(2, -5), desired: 5, action: up, reason: policy.ReasonFallback},
		{name: "negative zero is zero, not a failure", kv: []string{"MIN", "0"}, in: reading(1, math.Copysign(0, -1)), desired: 0, action: down, reason: policy.ReasonBelowTarget},

		{name: "before FALLBACK_AFTER", kv: fallback, prior: fails(1, 2), in: failed(2), desired: 2, action: hold, reason: policy.ReasonReadingFailed},
		{name: "fallback raises", kv: fallback, prior: fails(2, 2), in: failed(2), desired: 5, action: up, reason: policy.ReasonFallback},
		{name: "fallback never lowers", kv: fallback, prior: fails(2, 7), in: failed(7), desired: 7, action: hold, reason: policy.ReasonFallback},
		{name: "fallback goes on", kv: fallback, prior: fails(10, 2), in: failed(2), desired: 5, action: up, reason: policy.ReasonFallback},
		decideCase{name: "fallback ignores the up cooldown", kv: append([]string{"UP_COOLDOWN", "1h"}, fallback...), prior: fails(2, 2), in: failed(2), desired: 5, action: up, reason: policy.ReasonFallback}.
			with(func(in *policy.Input) { in.LastScale = t0.Add(-time.Second) }),
		{name: "fallback bounded by a schedule's max", kv: append([]string{"SCHEDULE", "0 0 * * * for 24h max=3"}, fallback...), prior: fails(2, 2), in: failed(2), desired: 3, action: up, reason: policy.ReasonFallback},
		decideCase{name: "fallback bounded by the size limit", kv: fallback, prior: fails(2, 0), in: failed(0), desired: 1, action: up, reason: policy.ReasonRaiseToMin}.
			with(func(in *policy.Input) { in.Size = "Basic" }),
		{name: "a good reading resets the count", kv: fallback,
			prior: []tick{{-60 * time.Second, 2, 0, false}, {-45 * time.Second, 2, 0, false}, {-30 * time.Second, 2, 1, true}, {-15 * time.Second, 2, 0, false}},
			in:    failed(2), desired: 2, action: hold, reason: policy.ReasonReadingFailed},
		{name: "NaN counts toward the fallback", kv: fallback, prior: []tick{{-30 * time.Second, 2, math.NaN(), true}, {-15 * time.Second, 2, math.Inf(1), true}},
			in: reading(2, math.NaN()), desired: 5, action: up, reason: policy.ReasonFallback},
		{name: "first good reading after the fallback", kv: fallback, prior: fails(5, 5), in: reading(5, 0.5), desired: 3, action: down, reason: policy.ReasonBelowTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := runDecide(t, tc)
			if d.ReadingOK && (math.IsNaN(tc.in.Value) || math.IsInf(tc.in.Value, 0) || tc.in.Value < 0 || !tc.in.ReadingOK) {
				t.Errorf("ReadingOK = true for value %v ok %v", tc.in.Value, tc.in.ReadingOK)
			}
		})
	}
}

func TestDecideSchedule(t *testing.T) {
	up, down, hold := policy.ActionUp, policy.ActionDown, policy.ActionHold
	office := []string{"SCHEDULE", "0 8 * * MON-FRI for 10h min=4", "UP_COOLDOWN", "1h", "DOWN_COOLDOWN", "1h"}
	night := []string{"MIN", "0", "SCHEDULE", "0 0 * * * for 6h max=2", "UP_COOLDOWN", "1h", "DOWN_COOLDOWN", "1h"}
	at := func(h int) func(*policy.Input) {
		return func(in *policy.Input) {
			in.Now = time.Date(2025, 6, 2, h, 30, 0, 0, time.UTC)
			in.LastScale = in.Now.Add(-time.Minute)
		}
	}
	for _, tc := range []decideCase{
		decideCase{name: "window raises min at once", kv: office, in: reading(2, 1), desired: 4, action: up, reason: policy.ReasonSchedule}.with(at(9)),
		decideCase{name: "window holds at its min", kv: office, in: reading(4, 0.1), desired: 4, action: hold, reason: policy.ReasonSchedule}.with(at(9)),
		decideCase{name: "window over", kv: office, in: reading(4, 1), desired: 4, action: hold, reason: policy.ReasonWithinTolerance}.with(at(18)),
		{name: "window not on Saturday", kv: office, in: func() policy.Input {
			in := reading(2, 1)
			in.Now = time.Date(2025, 6, 7, 9, 0, 0, 0, time.UTC)
			return in
		}(), desired: 2, action: hold, reason: policy.ReasonWithinTolerance},
		decideCase{name: "window lowers max at once", kv: night, in: reading(5, 1), desired: 2, action: down, reason: policy.ReasonSchedule}.with(at(3)),
		decideCase{name: "window caps a move", kv: append(night, "UP_COOLDOWN", "0"), in: reading(1, 5), desired: 2, action: up, reason: policy.ReasonSchedule}.with(at(3)),
		decideCase{name: "highest min of overlapping windows", kv: []string{"SCHEDULE", "0 8 * * * for 10h min=3; 0 9 * * * for 1h min=6; 0 9 * * * for 1h min=5"}, in: reading(1, 1), desired: 6, action: up, reason: policy.ReasonSchedule}.with(at(9)),
		decideCase{name: "highest max of overlapping windows", kv: []string{"MAX", "20", "SCHEDULE", "0 8 * * * for 10h max=8; 0 9 * * * for 1h max=6"}, in: reading(2, 10), desired: 8, action: up, reason: policy.ReasonSchedule}.with(func(in *policy.Input) { at(9)(in); in.LastScale = time.Time{} }),
		decideCase{name: "window min above MAX raises max", kv: []string{"MAX", "5", "SCHEDULE", "0 8 * * * for 10h min=8"}, in: reading(3, 1), desired: 8, action: up, reason: policy.ReasonSchedule}.with(at(9)),
		decideCase{name: "window max below MIN gives way to MIN", kv: []string{"MIN", "3", "SCHEDULE", "0 8 * * * for 10h max=1"}, in: reading(3, 5), desired: 3, action: hold, reason: policy.ReasonAtMax}.with(func(in *policy.Input) { at(9)(in); in.LastScale = time.Time{} }),
		decideCase{name: "window min capped by size limit", kv: []string{"MAX", "30", "SCHEDULE", "0 8 * * * for 10h min=20"}, in: reading(3, 1), desired: 10, action: up, reason: policy.ReasonSizeLimit}.with(func(in *policy.Input) { at(9)(in); in.Size = "Performance-M" }),
	} {
		t.Run(tc.name, func(t *testing.T) { runDecide(t, tc) })
	}
}

// TestScheduleBerlinDST: a window at 08:00 Europe/Berlin opens at 08:00 Berlin time on both sides of both
// daylight-saving changes of 2025 (30 March, 26 October), i.e. at 07:00 UTC in winter and 06:00 UTC in summer, and
// lasts 10 hours of elapsed time.
func TestScheduleBerlinDST(t *testing.T) {
	p := mustPolicy(t, "MIN", "1", "SCHEDULE", "CRON_TZ=Europe/Berlin 0 8 * * * for 10h min=4")
	utc := func(month time.Month, day, h, m int) time.Time {
		return time.Date(2025, month, day, h, m, 0, 0, time.UTC)
	}
	for _, tc := range []struct {
		at     time.Time
		active bool
	}{
		// Saturday 29 March, still CET (UTC+1): 07:00-17:00 UTC.
		{utc(3, 29, 6, 59), false}, {utc(3, 29, 7, 0), true}, {utc(3, 29, 16, 59), true}, {utc(3, 29, 17, 0), false},
		// Sunday 30 March, clocks went forward at 01:00 UTC, CEST (UTC+2): 06:00-16:00 UTC.
		{utc(3, 30, 5, 59), false}, {utc(3, 30, 6, 0), true}, {utc(3, 30, 15, 59), true}, {utc(3, 30, 16, 0), false},
		// Saturday 25 October, still CEST: 06:00-16:00 UTC.
		{utc(10, 25, 5, 59), false}, {utc(10, 25, 6, 0), true}, {utc(10, 25, 16, 0), false},
		// Sunday 26 October, clocks went back at 01:00 UTC, CET: 07:00-17:00 UTC.
		{utc(10, 26, 6, 0), false}, {utc(10, 26, 6, 59), false}, {utc(10, 26, 7, 0), true}, {utc(10, 26, 16, 59), true}, {utc(10, 26, 17, 0), false},
	} {
		in := reading(1, 1)
		in.Now = tc.at
		d := policy.Decide(p, nil, in)
		want, reason := 1, policy.ReasonWithinTolerance
		if tc.active {
			want, reason = 4, policy.ReasonSchedule
		}
		if d.Desired != want || d.Reason != reason || d.Min != want {
			t.Errorf("at %s (%s Berlin): desired %d %s min %d, want %d %s", tc.at.Format(time.RFC3339), tc.at.In(berlin(t)).Format("15:04 MST"), d.Desired, d.Reason, d.Min, want, reason)
		}
	}
}

// TestScheduleAcrossDSTNight: a window opening at 23:00 Berlin for 10h spans the night the clocks go forward and
// lasts ten hours of elapsed time (until 10:00 CEST), not until 09:00 by the wall clock.
func TestScheduleAcrossDSTNight(t *testing.T) {
	windows, err := policy.ParseSchedule("CRON_TZ=Europe/Berlin 0 23 * * * for 10h min=2")
	if err != nil {
		t.Fatal(err)
	}
	w := windows[0]
	start := time.Date(2025, 3, 29, 23, 0, 0, 0, berlin(t)) // 22:00 UTC
	for _, tc := range []struct {
		at     time.Time
		active bool
	}{
		{start.Add(-time.Second), false},
		{start, true},
		{start.Add(10*time.Hour - time.Second), true},
		{start.Add(10 * time.Hour), false},
	} {
		s, ok := w.Start(tc.at)
		if ok != tc.active || (ok && !s.Equal(start)) {
			t.Errorf("at %s: Start = %s %v, want active %v from %s", tc.at.In(berlin(t)), s, ok, tc.active, start)
		}
	}
	if got := start.Add(10 * time.Hour).In(berlin(t)).Hour(); got != 10 {
		t.Errorf("10h after 23:00 CET on the DST night is %d:00 CEST, want 10", got)
	}
}

// TestScheduleSkippedHour documents cron's rule: an activation whose local time does not exist (02:30 on the night
// clocks go forward) does not happen that day; it happens the day after.
func TestScheduleSkippedHour(t *testing.T) {
	windows, err := policy.ParseSchedule("CRON_TZ=Europe/Berlin 30 2 * * * for 1h min=2")
	if err != nil {
		t.Fatal(err)
	}
	w := windows[0]
	if w.Active(time.Date(2025, 3, 30, 1, 0, 0, 0, time.UTC)) { // 03:00 CEST
		t.Error("active on the night 02:30 does not exist")
	}
	if !w.Active(time.Date(2025, 3, 31, 0, 45, 0, 0, time.UTC)) { // 02:45 CEST
		t.Error("not active the next night")
	}
	if w.Active(time.Date(2025, 3, 31, 0, 29, 59, 0, time.UTC)) || !w.Active(time.Date(2025, 3, 31, 0, 30, 0, 0, time.UTC)) {
		t.Error("the next activation is not 2025-03-31 00:30 UTC (02:30 CEST)")
	}
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestDisabled(t *testing.T) {
	p := mustPolicy(t, "ENABLED", "false", "FALLBACK_QUANTITY", "5", "FALLBACK_AFTER", "1")
	var st policy.State
	for _, in := range []policy.Input{reading(3, 5), failed(3), reading(20, 0)} {
		d := policy.Decide(p, &st, in)
		if d.Desired != in.Current || d.Action != policy.ActionHold || d.Reason != policy.ReasonDisabled {
			t.Errorf("disabled: %d %s %s, want hold at %d disabled", d.Desired, d.Action, d.Reason, in.Current)
		}
	}
	if st.Failures() != 0 {
		t.Errorf("a disabled policy counted %d failures", st.Failures())
	}
}

// TestFailedPatchIsNotRemembered: the daemon does not tell the engine whether its PATCH worked. The engine keeps
// deciding from the formation it is shown: after a failed PATCH the current quantity and the last scale event are
// unchanged, so the next evaluation asks for the same move again rather than believing it was made.
func TestFailedPatchIsNotRemembered(t *testing.T) {
	p := mustPolicy(t, "UP_COOLDOWN", "1m")
	var st policy.State
	in := reading(3, 2)
	in.LastScale = t0.Add(-time.Hour)
	first := policy.Decide(p, &st, in)
	if first.Desired != 6 {
		t.Fatalf("first decision %d, want 6", first.Desired)
	}
	// The PATCH failed: same formation, same last scale event, 15 s later.
	in.Now = in.Now.Add(15 * time.Second)
	again := policy.Decide(p, &st, in)
	if again.Desired != 6 || again.Reason != policy.ReasonAboveTarget {
		t.Fatalf("after a failed PATCH: %d %s, want 6 above_target again", again.Desired, again.Reason)
	}
	// Had it succeeded, the caller would show 6 dynos and a new last scale event.
	in.Current, in.LastScale, in.Value = 6, in.Now, 2
	after := policy.Decide(p, &st, in)
	if after.Desired != 6 || after.Reason != policy.ReasonUpCooldown {
		t.Fatalf("after a successful PATCH: %d %s, want 6 up_cooldown", after.Desired, after.Reason)
	}
}

func TestReasonsVocabulary(t *testing.T) {
	seen := map[policy.Reason]bool{}
	for _, r := range policy.Reasons() {
		if r == "" || seen[r] || strings.ToLower(string(r)) != string(r) || strings.ContainsAny(string(r), " -") {
			t.Errorf("bad or repeated reason %q", r)
		}
		seen[r] = true
	}
	for _, r := range []policy.Reason{"above_target", "below_target", "within_tolerance", "up_cooldown", "down_cooldown",
		"stabilizing", "at_max", "at_min", "raise_to_min", "lower_to_max", "schedule", "activation", "reading_failed",
		"fallback", "size_limit", "dry_run", "disabled"} {
		if !seen[r] {
			t.Errorf("the spec's reason %q is missing from Reasons()", r)
		}
	}
}

func TestBounds(t *testing.T) {
	p := mustPolicy(t, "MIN", "2", "MAX", "30", "SCHEDULE", "0 8 * * * for 10h min=6; 0 9 * * * for 1h max=12; 0 20 * * * for 1h max=40")
	for _, tc := range []struct {
		at                    time.Time
		size                  string
		min, max, limit, wins int
	}{
		{time.Date(2025, 6, 2, 7, 0, 0, 0, time.UTC), "Standard-2X", 2, 30, 100, 0},
		{time.Date(2025, 6, 2, 8, 30, 0, 0, time.UTC), "Standard-2X", 6, 30, 100, 1},
		{time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC), "Standard-2X", 6, 12, 100, 2},
		{time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC), "Performance-M", 6, 10, 10, 2},
		{time.Date(2025, 6, 2, 20, 30, 0, 0, time.UTC), "Standard-1X", 2, 40, 100, 1},
		{time.Date(2025, 6, 2, 20, 30, 0, 0, time.UTC), "Eco", 1, 1, 1, 1},
	} {
		lo, hi, limit, active := p.Bounds(tc.at, tc.size)
		if lo != tc.min || hi != tc.max || limit != tc.limit || len(active) != tc.wins {
			t.Errorf("Bounds(%s, %s) = %d %d %d %d windows, want %d %d %d %d", tc.at.Format("15:04"), tc.size, lo, hi, limit, len(active), tc.min, tc.max, tc.limit, tc.wins)
		}
		d := policy.Decide(p, nil, policy.Input{Now: tc.at, Size: tc.size, Current: 3, Value: 1, ReadingOK: true})
		if d.Min != lo || d.Max != hi || d.SizeLimit != limit {
			t.Errorf("Decide's bounds %d %d %d differ from Bounds' %d %d %d", d.Min, d.Max, d.SizeLimit, lo, hi, limit)
		}
	}
}

func TestExplain(t *testing.T) {
	p := mustPolicy(t, "TARGET", "300ms", "MAX", "20", "MAX_STEP_UP", "3")
	d := policy.Decide(p, nil, policy.Input{Now: t0, Current: 3, Size: "Standard-1X", Value: 0.62, ReadingOK: true})
	if got, want := d.Explain(), "value 0.62s is 2.07x the 0.3s target: 3 -> 7, capped by MAX_STEP_UP=3 to 6"; got != want {
		t.Errorf("Explain() =\n  %q\nwant\n  %q", got, want)
	}
	for _, tc := range []struct {
		kv   []string
		in   policy.Input
		want []string
	}{
		{[]string{"UP_COOLDOWN", "1m"}, policy.Input{Now: t0, Current: 3, Value: 2, ReadingOK: true, LastScale: t0.Add(-20 * time.Second)}, []string{"UP_COOLDOWN=1m0s", "40s left", "holding at 3"}},
		{[]string{"MIN", "2"}, failed(2), []string{"reading failed", "holding at 2", "never scales down"}},
		{[]string{"MIN", "0"}, reading(4, -5), []string{"reading failed (it was -5, and no reading can be negative)", "holding at 4"}},
		{[]string{"SCHEDULE", "0 0 * * * for 24h min=4"}, reading(1, 1), []string{"1 is below min=4 of schedule window `0 0 * * * for 24h min=4`", "raising to 4"}},
		{[]string{"MAX", "20"}, policy.Input{Now: t0, Current: 12, Size: "Performance-M", Value: 1, ReadingOK: true}, []string{"12 is above the limit of 10 dynos per process type for Performance-M", "lowering to 10"}},
		{[]string{"MIN", "0", "ACTIVATION", "2"}, reading(0, 1), []string{"value 1 is not above ACTIVATION=2 at zero dynos"}},
		{[]string{"MODE", "ratio", "PER_DYNO", "100"}, reading(3, 950), []string{"value 950 at PER_DYNO=100 needs 10", "3 -> 10"}},
		{[]string{"MODE", "ratio", "PER_DYNO", "100", "SAFETY", "1"}, reading(3, 400), []string{"value 400 at PER_DYNO=100 with SAFETY=1 needs 6", "3 -> 6"}},
		{[]string{"MODE", "step", "UP_ABOVE", "10", "DOWN_BELOW", "2"}, reading(3, 1), []string{"value 1 is below DOWN_BELOW=2", "3 -> 2"}},
	} {
		d := policy.Decide(mustPolicy(t, tc.kv...), nil, tc.in)
		got := d.Explain()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: Explain() = %q, want it to contain %q", d.Reason, got, w)
			}
		}
	}
}
