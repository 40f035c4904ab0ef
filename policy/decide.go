package policy

import (
	"math"
	"time"
)

// Input is what the caller knows at one evaluation: the time, the formation and the reading.
type Input struct {
	Now       time.Time
	Current   int       // quantity in the formation now
	Size      string    // dyno size name, for the size limit (dynosize.Limit), unless the policy sets SIZE_LIMIT
	LastScale time.Time // the last scale event: max(formation updated_at, the daemon's own last successful PATCH); zero when unknown
	Value     float64   // the reading (latencies in seconds); a negative one is a failed reading
	ReadingOK bool      // false: the reading failed or is missing

	// Also is the reading of each further metric (Policy.Also), in order; a missing one counts as failed.
	Also []Reading

	// Predicted is the quantity the load's learned profile needs ahead of now (Policy.Predict), 0 for none: a floor
	// under the metrics' recommendation, never a ceiling.
	Predicted int

	// Running is the jobs running now in the policy's process type, for a policy that protects busy dynos
	// (Policy.ProtectBusy); RunningOK is false when they could not be read, and then nothing scales down: who is
	// busy is unknown. Decide only reads the slice.
	Running   []RunningJob
	RunningOK bool
}

// Reading is one metric's reading: the value (latencies in seconds) and whether it is usable.
type Reading struct {
	Value float64
	OK    bool
}

// RunningJob is one job running now, as its source saw it.
type RunningJob struct {
	// Dyno is the number of the dyno that runs the job (2 for worker.2), 0 when the source cannot tell: then the
	// job holds a scale-down only once it has run longer than ShutdownGrace (see Decide).
	Dyno    int
	Started time.Time
	What    string // the job for a person: its class or function and queue, e.g. "HardJob (queue default)"
}

// ShutdownGrace is how long Heroku lets a dyno finish after SIGTERM before it kills it. A job whose dyno is unknown
// and that has run longer than this has shown that it is long: it is the one a scale-down would put at risk, so it
// holds every scale-down of its process type. A younger job is taken to be one of the short jobs that finish within
// the grace (job libraries stop taking work at SIGTERM and finish what they run).
const ShutdownGrace = 30 * time.Second

// Action is the direction of a decision, as published in dynopilot_decisions_total{action}.
type Action string

// The actions.
const (
	ActionUp   Action = "up"
	ActionDown Action = "down"
	ActionHold Action = "hold"
)

// Reason is why a decision came out as it did: one per decision, from a fixed vocabulary shown in logs, metrics and
// `check` (see the package doc for which one wins).
type Reason string

// The reasons.
const (
	ReasonAboveTarget      Reason = "above_target"      // target mode: value/target above 1 + TOLERANCE
	ReasonBelowTarget      Reason = "below_target"      // target mode: value/target below 1 - TOLERANCE
	ReasonWithinTolerance  Reason = "within_tolerance"  // target mode: value/target within 1 ± TOLERANCE
	ReasonAboveThreshold   Reason = "above_threshold"   // step mode: value above UP_ABOVE
	ReasonBelowThreshold   Reason = "below_threshold"   // step mode: value below DOWN_BELOW
	ReasonWithinThresholds Reason = "within_thresholds" // step mode: DOWN_BELOW <= value <= UP_ABOVE
	ReasonRatio            Reason = "ratio"             // ratio mode: ceil(R + SAFETY*sqrt(R)), R = value / PER_DYNO
	ReasonActivation       Reason = "activation"        // from zero: value above ACTIVATION
	ReasonBelowActivation  Reason = "below_activation"  // at zero: value not above ACTIVATION
	ReasonStabilizing      Reason = "stabilizing"       // held back by UP_/DOWN_STABILIZATION
	ReasonUpCooldown       Reason = "up_cooldown"       // a scale-up waits for UP_COOLDOWN
	ReasonDownCooldown     Reason = "down_cooldown"     // a scale-down waits for DOWN_COOLDOWN
	ReasonMaxStep          Reason = "max_step"          // the change was capped by MAX_STEP_UP/MAX_STEP_DOWN
	ReasonAtMax            Reason = "at_max"            // the move stopped at MAX
	ReasonAtMin            Reason = "at_min"            // the move stopped at MIN
	ReasonRaiseToMin       Reason = "raise_to_min"      // below MIN: raised at once
	ReasonLowerToMax       Reason = "lower_to_max"      // above MAX: lowered at once
	ReasonSchedule         Reason = "schedule"          // a schedule window's bound decided
	ReasonSizeLimit        Reason = "size_limit"        // the dyno size's limit decided
	ReasonReadingFailed    Reason = "reading_failed"    // no usable reading: hold (never down)
	ReasonFallback         Reason = "fallback"          // FALLBACK_AFTER failures in a row: at least FALLBACK_QUANTITY
	ReasonDryRun           Reason = "dry_run"           // given by the daemon: the change was decided, and DYNOPILOT_DRY_RUN kept it from being applied
	ReasonDeploying        Reason = "deploying"         // given by the daemon: Heroku refuses formation changes during a deploy
	ReasonDisabled         Reason = "disabled"          // ENABLED=false
	ReasonBusy             Reason = "busy"              // a scale-down waits for the dynos it would stop to finish their jobs (PROTECT_BUSY)
	ReasonPredicted        Reason = "predicted"         // the load's daily or weekly profile needs more ahead of now than the readings do (PREDICT)
)

// Reasons returns the whole vocabulary; the tests check that each one can be reached and is explained.
func Reasons() []Reason {
	return []Reason{
		ReasonAboveTarget, ReasonBelowTarget, ReasonWithinTolerance,
		ReasonAboveThreshold, ReasonBelowThreshold, ReasonWithinThresholds,
		ReasonRatio, ReasonActivation, ReasonBelowActivation,
		ReasonStabilizing, ReasonUpCooldown, ReasonDownCooldown, ReasonMaxStep,
		ReasonAtMax, ReasonAtMin, ReasonRaiseToMin, ReasonLowerToMax, ReasonSchedule, ReasonSizeLimit,
		ReasonReadingFailed, ReasonFallback, ReasonDryRun, ReasonDeploying, ReasonDisabled, ReasonBusy, ReasonPredicted,
	}
}

// Decision is the outcome of one evaluation with everything needed to publish and explain it. Building one
// allocates nothing; Explain writes the sentence when someone wants it.
type Decision struct {
	Policy *Policy
	Now    time.Time
	Size   string

	Current, Desired int
	Action           Action
	Reason           Reason

	Min, Max             int     // effective bounds now (schedules and the size limit applied)
	MinBy, MaxBy         BoundBy // what set them
	MinWindow, MaxWindow int     // index in Policy.Schedule of the window that set them, -1 for none
	SizeLimit            int

	// Metric is the metric the decision is about (0: the policy's own, i: Policy.Also[i-1]): the one whose
	// recommendation was the largest, or the one whose failed reading held a scale-down. Value, Target and
	// ReadingOK are that metric's.
	Metric    int
	Value     float64 // the reading as given
	Target    float64 // what the value is compared with: TARGET, UP_ABOVE (step) or PER_DYNO (ratio)
	ReadingOK bool    // false when the reading failed, was missing, negative, NaN or infinite, or the mode is unknown
	Failures  int     // evaluations in a row with a failed reading, this one included
	Failed    int     // metrics whose reading failed this time (a policy with several metrics may have some)
	Predicted int     // Input.Predicted when the policy predicts (PREDICT), else 0

	Recommendation int           // the mode's recommendation, before stabilization, cooldowns, steps and bounds (Current for a failed reading)
	Stabilized     int           // the recommendation after stabilization
	CooldownLeft   time.Duration // until a move in the wanted direction is allowed (0 when none is wanted or none is waiting)

	// Busy protection (PROTECT_BUSY): the job that held or limited a scale-down (BusyHeld), or that a scale-down
	// stops anyway because it was held for PROTECT_BUSY_MAX (BusyOverridden); BusyUnknown when the running jobs
	// could not be read. BusyFor is how long the scale-down has been held so far; BusyWanted and BusyReason are
	// what the decision was before busy protection held it.
	BusyHeld, BusyOverridden, BusyUnknown bool
	BusyJob                               RunningJob
	BusyFor                               time.Duration
	BusyWanted                            int
	BusyReason                            Reason

	unbounded int // the quantity before the bounds were applied, for Explain
	metricRec int // the metrics' recommendation before the prediction, for Explain
}

// Decide takes one decision for policy p from the facts in in, remembering in st what stabilization and the
// fallback need. st may be nil for a one-off decision (as `check` does): no history, and this reading is the first.
// Decide never allocates on its usual path and never panics on any input.
func Decide(p *Policy, st *State, in Input) Decision {
	if st == nil {
		st = new(State) // does not escape: stays on the stack
	}
	d := decide(p, st, in)
	if p.ProtectBusy && p.Enabled {
		d = p.protect(st, in, d)
	}
	return d
}

// decide is every rule but busy protection, which applies to whatever lowered the quantity.
func decide(p *Policy, st *State, in Input) Decision {
	cur := min(max(in.Current, 0), MaxQuantity)
	b := p.effectiveBounds(in.Now, st.limit(p, in.Size))
	d := Decision{
		Policy: p, Now: in.Now, Size: in.Size,
		Current: cur, Min: b.min, Max: b.max, MinBy: b.minBy, MaxBy: b.maxBy,
		MinWindow: b.minWindow, MaxWindow: b.maxWindow, SizeLimit: b.limit,
		Value: in.Value, Failures: st.failures,
		Recommendation: cur, Stabilized: cur,
	}
	if mode := p.Mode.rules(); mode != nil { // nil for a hand-built Policy whose Mode is none
		d.Target = mode.reference(&p.Rule)
	}
	if p.Predict {
		d.Predicted = max(in.Predicted, 0)
	}
	if !p.Enabled {
		return d.finish(cur, ReasonDisabled)
	}

	// Each metric recommends and the largest recommendation wins (HPA's rule for several metrics: the quantity that
	// satisfies every metric). A metric without a usable reading recommends nothing, and blocks a scale-down: what
	// it would ask for is unknown.
	rec, reason, failedAt := -1, Reason(""), -1
	for i := range 1 + len(p.Also) {
		rule, r := p.RuleOf(i), in.reading(i)
		mode := rule.Mode.rules()
		// A negative value cannot be a latency, a size or a rate: a broken query or exporter, to be held on like
		// any failed reading, never a reason to scale down (metrics refuses it already; this is the second line).
		// An unknown mode (Parse refuses one) makes every reading unusable the same way.
		if !(r.OK && r.Value >= 0 && !math.IsInf(r.Value, 0) && mode != nil) { // NaN is not >= 0
			d.Failed++
			if failedAt < 0 {
				failedAt = i
			}
			continue
		}
		if n, why := recommend(mode, rule, p.Min, cur, r.Value); n > rec {
			rec, reason = n, why
			d.Metric, d.Value, d.Target = i, r.Value, mode.reference(rule)
		}
	}
	if d.Failed > 0 {
		d.Failures = st.failed()
	} else {
		st.failures, d.Failures = 0, 0
	}
	if rec < 0 { // every reading failed: hold, and after FALLBACK_AFTER of them, at least FALLBACK_QUANTITY
		d.Metric, d.Value = failedAt, in.reading(failedAt).Value
		want, reason := cur, ReasonReadingFailed
		fallback := p.FallbackQuantity > 0 && d.Failures >= p.FallbackAfter
		if fallback {
			reason = ReasonFallback
		}
		if cur < b.min || cur > b.max {
			want, reason = b.clamp(cur, cur)
		}
		if floor := min(p.FallbackQuantity, b.max); fallback && want < floor {
			want, reason = floor, ReasonFallback
		}
		return d.finish(want, reason)
	}
	d.ReadingOK = true
	d.metricRec = rec
	if d.Failed > 0 && rec < cur { // some readings failed: up with the others, never down
		rec, reason = cur, ReasonReadingFailed
		d.Metric, d.Value, d.ReadingOK = failedAt, in.reading(failedAt).Value, false
	}
	if d.Predicted > rec { // the profile needs more ahead than the readings now: raise ahead of the ramp
		rec, reason = min(d.Predicted, MaxQuantity), ReasonPredicted
	}
	d.Recommendation = rec

	// Stabilization (HPA): up only to the lowest, down only to the highest recommendation of the window.
	want := rec
	if p.UpStabilization > 0 || p.DownStabilization > 0 {
		lowest, highest := st.window(in.Now, rec, p.UpStabilization, p.DownStabilization)
		st.record(in.Now, rec, rec, bucketWidth(p.UpStabilization, p.DownStabilization))
		want = cur
		if want < lowest {
			want = lowest
		}
		if want > highest {
			want = highest
		}
		if want != rec {
			reason = ReasonStabilizing
		}
	}
	d.Stabilized = want

	// The bounds, first as a limit on the move: a move the bounds stop anyway is not held by a cooldown or a step.
	d.unbounded = want
	if want < b.min || want > b.max {
		want, reason = b.clamp(want, cur)
	}

	// Cooldowns, from the last scale event (a time ahead of ours counts as now, so a skewed clock can never block
	// scaling for longer than the cooldown itself).
	dir := want - cur
	if dir == 0 && reason == ReasonStabilizing {
		dir = rec - cur
	}
	if !in.LastScale.IsZero() && dir != 0 {
		last := in.LastScale
		if last.After(in.Now) {
			last = in.Now
		}
		since := in.Now.Sub(last)
		if dir > 0 && since < p.UpCooldown {
			d.CooldownLeft = p.UpCooldown - since
			if want > cur {
				want, reason = cur, ReasonUpCooldown
			}
		}
		if dir < 0 && since < p.DownCooldown {
			d.CooldownLeft = p.DownCooldown - since
			if want < cur {
				want, reason = cur, ReasonDownCooldown
			}
		}
	}

	// Differences, not sums: want and cur are within [0, MaxQuantity], a hand-built step may be anything.
	if p.MaxStepUp > 0 && want-cur > p.MaxStepUp {
		want, reason = cur+p.MaxStepUp, ReasonMaxStep
	}
	if p.MaxStepDown > 0 && cur-want > p.MaxStepDown {
		want, reason = cur-p.MaxStepDown, ReasonMaxStep
	}

	// The bounds again, as a force: a quantity outside them goes inside at once, whatever held it above.
	if want < b.min || want > b.max {
		want, reason = b.clamp(want, cur)
	}
	return d.finish(want, reason)
}

// protect keeps a scale-down from stopping a dyno that runs a job. Heroku stops the highest-numbered dynos, so
// going from Current to Desired stops dynos Desired+1 … Current, and the lowest quantity that stops no busy dyno is
// the number of the highest busy one: the scale-down goes that far (the idle dynos above it stop) and no further.
// A job whose dyno is unknown and that has run past ShutdownGrace holds the whole scale-down; running jobs that
// could not be read hold it too. Whatever lowered the quantity (a reading, a schedule, MAX, scale-to-zero), the
// rule is the same. After PROTECT_BUSY_MAX of holding, the scale-down goes ahead (BusyOverridden), except when the
// jobs could not be read: a failed reading never scales down.
func (p *Policy) protect(st *State, in Input, d Decision) Decision {
	if d.Desired >= d.Current {
		st.busySince = 0
		return d
	}
	floor := 0
	if !in.RunningOK {
		floor, d.BusyUnknown = d.Current, true
	} else {
		for _, j := range in.Running {
			n := j.Dyno
			switch {
			case n > d.Current: // a dyno already on its way out: this scale-down does not stop it
				continue
			case n <= 0 && in.Now.Sub(j.Started) > ShutdownGrace:
				n = d.Current // somewhere in the process type: any dyno may be the one stopped
			case n <= 0:
				continue
			}
			if n > floor || (n == floor && j.Started.Before(d.BusyJob.Started)) {
				floor, d.BusyJob = n, j
			}
		}
	}
	if floor <= d.Desired {
		st.busySince = 0
		return d
	}
	now := in.Now.UnixNano()
	if st.busySince == 0 || st.busySince > now {
		st.busySince = now
	}
	d.BusyFor = time.Duration(now - st.busySince)
	d.BusyWanted, d.BusyReason = d.Desired, d.Reason
	if !d.BusyUnknown && p.ProtectBusyMax > 0 && d.BusyFor >= p.ProtectBusyMax {
		d.BusyOverridden = true
		return d
	}
	d.BusyHeld = true
	return d.finish(floor, ReasonBusy)
}

// finish sets the outcome.
func (d Decision) finish(want int, reason Reason) Decision {
	d.Desired, d.Reason = want, reason
	switch {
	case want > d.Current:
		d.Action = ActionUp
	case want < d.Current:
		d.Action = ActionDown
	default:
		d.Action = ActionHold
	}
	return d
}

// clamp brings want inside the bounds and names what did it: a quantity already outside the bounds is forced in
// (raise_to_min, lower_to_max), a move that overshoots stops at them (at_min, at_max); schedule or size_limit when
// they set the bound in question.
func (b bounds) clamp(want, cur int) (int, Reason) {
	switch {
	case want < b.min:
		forced := cur < b.min
		switch {
		case b.minBy == BoundBySchedule:
			return b.min, ReasonSchedule
		case b.minBy == BoundBySizeLimit && forced:
			return b.min, ReasonSizeLimit
		case forced:
			return b.min, ReasonRaiseToMin
		default:
			return b.min, ReasonAtMin
		}
	case want > b.max:
		forced := cur > b.max
		switch {
		case b.maxBy == BoundBySchedule:
			return b.max, ReasonSchedule
		case b.maxBy == BoundBySizeLimit:
			return b.max, ReasonSizeLimit
		case forced:
			return b.max, ReasonLowerToMax
		default:
			return b.max, ReasonAtMax
		}
	}
	return want, ""
}

// ceilQuantity is ceil(num/den) as a quantity, clamped to [0, MaxQuantity] in floating point before converting so
// that no value overflows; ok is false when den is not positive. A relative epsilon keeps 3×0.3/0.3 from
// becoming 4 through rounding.
func ceilQuantity(num, den float64) (int, bool) {
	if !(den > 0) {
		return 0, false
	}
	x := num / den
	if !(x > 0) { // 0, negative or NaN
		return 0, true
	}
	if x >= MaxQuantity {
		return MaxQuantity, true
	}
	return int(math.Ceil(x * (1 - 1e-12))), true
}
