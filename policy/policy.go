package policy

import (
	"math"
	"time"

	"github.com/dynopilot/dynopilot/internal/dynosize"
)

// Mode is how a policy turns a reading into a recommended quantity. What each mode does is in one place, its rules
// in mode.go: a new mode is a constant here and a line in that file's table (see the comment at its top).
type Mode string

// The modes a policy can be in (MODE); Modes lists them.
const (
	ModeTarget Mode = "target" // hold the value at TARGET: ceil(current × value / TARGET), HPA's rule
	ModeStep   Mode = "step"   // up by UP_BY above UP_ABOVE, down by DOWN_BY below DOWN_BELOW
	ModeRatio  Mode = "ratio"  // ceil(R + SAFETY*sqrt(R)), R = value / PER_DYNO
)

// Rule is how one metric's readings become a recommended quantity: its MODE and the mode's thresholds. A policy
// has its own (its MODE, TARGET, …) and may have more (Also, from METRIC_<m>_ settings), one per further reading.
type Rule struct {
	Mode Mode

	Target    float64 // target mode: the value to hold (latencies in seconds)
	Tolerance float64 // target mode: no change while value/Target is within 1 ± Tolerance

	UpAbove, DownBelow float64 // step mode thresholds (DownBelow < UpAbove)
	UpBy, DownBy       int     // step mode jumps, >= 1

	PerDyno float64 // ratio mode: the amount one dyno handles
	// Safety is ratio mode's square-root headroom: with R = value/PerDyno dynos' worth of load, the recommendation
	// is ceil(R + Safety*sqrt(R)) (0: ceil(R)). Queueing needs headroom that grows with the square root of the load,
	// not in proportion to it, so one setting suits an app at 2 dynos and at 50.
	Safety float64

	// Seconds records that the mode's thresholds were written as durations, so values are latencies in seconds
	// (only used to print them with a unit).
	Seconds bool

	Activation float64 // from zero dynos, move only when the value exceeds this
}

// Policy is one validated policy: how one process type of one app is scaled. Build it with Settings.Parse; a
// Policy is never modified by the engine, so one value can be shared by concurrent callers.
type Policy struct {
	App, Process string
	Enabled      bool
	Min, Max     int // configured bounds; schedule windows and the size limit make the effective ones

	// Rule is the policy's first metric's rule (its reading is Input.Value); Also the rules of its further metrics
	// (METRIC_2_, METRIC_3_, …; their readings are Input.Also). With several, each metric recommends and the
	// largest recommendation wins, as Kubernetes' HPA does with several metrics, and a metric whose reading failed
	// blocks a scale-down (see Decide).
	Rule
	Also []Rule

	// Predict raises the floor ahead of recurring ramps (PREDICT): the caller learns the load's daily and weekly
	// profile from the readings of PredictMetric and passes the quantity it predicts as Input.Predicted. A
	// prediction only ever raises. PredictAhead is how far ahead it looks: a dyno started now serves only after
	// booting, so the floor must be raised for the peak expected until then.
	Predict      bool
	PredictAhead time.Duration

	UpCooldown, DownCooldown           time.Duration // since the last scale event
	UpStabilization, DownStabilization time.Duration // windows over past recommendations
	MaxStepUp, MaxStepDown             int           // largest change in one event; 0 = no limit

	Schedule []Window

	FallbackAfter    int // failed readings in a row before the fallback applies, >= 1
	FallbackQuantity int // floor while readings fail; 0 = no fallback
	SizeLimit        int // overrides dynosize.Limit for the formation's size; 0 = use the table

	// ProtectBusy keeps a scale-down from stopping a dyno that runs a job (see Input.Running); ProtectBusyMax is how
	// long a scale-down may be held so before it goes ahead anyway (0: forever).
	ProtectBusy    bool
	ProtectBusyMax time.Duration
}

// BoundBy says what set an effective bound, so that a decision can name it (MIN, a schedule window, the size).
type BoundBy uint8

// What can set an effective bound.
const (
	BoundByPolicy    BoundBy = iota // the policy's MIN or MAX
	BoundBySchedule                 // an active schedule window
	BoundBySizeLimit                // the dyno size's limit (or SIZE_LIMIT)
)

func (b BoundBy) String() string {
	switch b {
	case BoundBySchedule:
		return "schedule"
	case BoundBySizeLimit:
		return "size_limit"
	default:
		return "policy"
	}
}

// bounds is the effective bounds at one instant, computed without allocating.
type bounds struct {
	min, max, limit      int
	minBy, maxBy         BoundBy
	minWindow, maxWindow int // index into Policy.Schedule of the window that set the bound, -1 for none
}

// effectiveBounds applies the active windows and the size limit to MIN and MAX (see the package doc).
func (p *Policy) effectiveBounds(now time.Time, limit int) bounds {
	b := bounds{min: max(p.Min, 0), max: p.Max, limit: limit, minWindow: -1, maxWindow: -1}
	for i := range p.Schedule {
		w := &p.Schedule[i]
		if !w.Active(now) {
			continue
		}
		if w.SetsMin && (b.minBy != BoundBySchedule || w.Min > b.min) {
			b.min, b.minBy, b.minWindow = w.Min, BoundBySchedule, i
		}
		if w.SetsMax && (b.maxBy != BoundBySchedule || w.Max > b.max) {
			b.max, b.maxBy, b.maxWindow = w.Max, BoundBySchedule, i
		}
	}
	if b.min > b.max {
		b.max, b.maxBy, b.maxWindow = b.min, b.minBy, b.minWindow
	}
	if b.max > limit {
		b.max, b.maxBy, b.maxWindow = limit, BoundBySizeLimit, -1
	}
	if b.min > limit {
		b.min, b.minBy, b.minWindow = limit, BoundBySizeLimit, -1
	}
	return b
}

// limitFor returns the per-process-type limit for a dyno size: SIZE_LIMIT when set, else the dynosize table.
func (p *Policy) limitFor(size string) int {
	if p.SizeLimit > 0 {
		return min(p.SizeLimit, MaxQuantity)
	}
	return min(dynosize.Limit(size), MaxQuantity)
}

// Bounds returns the effective bounds at now for a formation of the given dyno size: min and max after schedule
// windows and the size limit, the size limit itself, and the windows active now (for `check` and the status page).
func (p *Policy) Bounds(now time.Time, size string) (min, max, limit int, active []Window) {
	b := p.effectiveBounds(now, p.limitFor(size))
	for _, w := range p.Schedule {
		if w.Active(now) {
			active = append(active, w)
		}
	}
	return b.min, b.max, b.limit, active
}

// RuleOf returns metric i's rule (0: the policy's own, i: Also[i-1]); nil when there is no metric i.
func (p *Policy) RuleOf(i int) *Rule {
	switch {
	case i == 0:
		return &p.Rule
	case i < 0 || i > len(p.Also):
		return nil
	}
	return &p.Also[i-1]
}

// Reference is what the rule compares its readings with (TARGET, UP_ABOVE or PER_DYNO), as Decision.Target
// shows it for the metric a decision is about; 0 for a mode that is not one.
func (r *Rule) Reference() float64 {
	if mode := r.Mode.rules(); mode != nil {
		return mode.reference(r)
	}
	return 0
}

// Metrics returns how many metrics the policy scales on: 1 + len(Also).
func (p *Policy) Metrics() int { return 1 + len(p.Also) }

// reading returns metric i's reading from the input; a further metric's missing reading is a failed one.
func (in *Input) reading(i int) Reading {
	if i <= 0 {
		return Reading{Value: in.Value, OK: in.ReadingOK}
	}
	if i-1 < len(in.Also) {
		return in.Also[i-1]
	}
	return Reading{}
}

// PredictMetric is the metric whose readings the prediction learns (PREDICT): the first whose mode turns a load
// into dynos the same way at every size (ratio mode), -1 when none does (Parse refuses PREDICT then). A queue time or
// a latency is not learnable that way: it says how the dynos of that moment coped, not how much load there was.
func (p *Policy) PredictMetric() int {
	for i := range p.Metrics() {
		rule := p.RuleOf(i)
		if mode := rule.Mode.rules(); mode != nil {
			if _, ok := mode.quantityFor(rule, 0); ok {
				return i
			}
		}
	}
	return -1
}

// PredictedQuantity turns a predicted load (a reading of PredictMetric) into the quantity it needs, by that
// metric's own rule; 0 when the policy does not predict or the load is not a usable reading.
func (p *Policy) PredictedQuantity(load float64) int {
	i := p.PredictMetric()
	if !p.Predict || i < 0 || !(load >= 0) || math.IsInf(load, 0) {
		return 0
	}
	rule := p.RuleOf(i)
	n, _ := rule.Mode.rules().quantityFor(rule, load)
	return n
}
