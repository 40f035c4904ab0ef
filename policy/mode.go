package policy

import (
	"fmt"
	"math"
	"strings"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// Everything a mode means is in this file: a mode is a Mode constant (policy.go), a type implementing modeRules
// and one line in modes. Nothing else, in this package or out of it, looks at a policy's Mode to decide what to
// do: Decide, Explain and Parse ask the mode's rules, and a Mode that is not in modes is refused by Parse and
// never scales (Decide treats its readings as unusable). A rule left out of a mode does not compile, and
// TestModes (mode_internal_test.go) fails for a Mode constant missing from modes, for a switch or comparison on a
// Mode anywhere else in the module, and for a mode whose reasons, explanations or settings are incomplete.

// modeRules is one mode: how it reads a value, recommends a quantity, explains itself and validates its settings.
type modeRules interface {
	// reference is what readings are compared with, published as Decision.Target.
	reference(r *Rule) float64
	// activate is the recommendation from zero dynos for a value above ACTIVATION (reason activation).
	activate(r *Rule, min int, value float64) int
	// recommend is the recommendation at cur >= 1 dynos for a finite value >= 0, with its reason: one of reasons.
	recommend(r *Rule, cur int, value float64) (int, Reason)
	// quantityFor is the quantity a load of value needs, for a mode whose readings are a load that turns into dynos
	// the same way at any quantity, which is what a prediction can learn (Policy.PredictMetric); ok is false for a
	// mode whose readings say how the dynos of the moment coped (a latency, a queue time), not how much load came.
	quantityFor(r *Rule, value float64) (n int, ok bool)
	// reasons is every reason recommend gives.
	reasons() []Reason
	// explain describes the value v (formatted) against the mode's reference for r, a reason recommend gave.
	explain(b *strings.Builder, ru *Rule, d *Decision, r Reason, v string)
	// validate reports what the mode requires of its thresholds, once each has been parsed into p (t says how),
	// and returns whether the mode's own thresholds were written as durations (Policy.Seconds).
	validate(r *Rule, t thresholds, errs *setting.List) (seconds bool)
}

// modes is every mode, in the order MODE's error message lists them.
var modes = []struct {
	name  Mode
	rules modeRules
}{
	{ModeTarget, targetMode{}},
	{ModeStep, stepMode{}},
	{ModeRatio, ratioMode{}},
}

// Modes returns every mode a policy can be in.
func Modes() []Mode {
	out := make([]Mode, len(modes))
	for i, m := range modes {
		out[i] = m.name
	}
	return out
}

// modeNames lists the modes for a person: "target, step, ratio".
func modeNames() string {
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = string(m.name)
	}
	return strings.Join(names, ", ")
}

// rules returns the mode's rules, nil for a string that is not a mode.
func (m Mode) rules() modeRules {
	for i := range modes {
		if modes[i].name == m {
			return modes[i].rules
		}
	}
	return nil
}

// recommend is the recommendation of mode m for a finite value >= 0. From zero dynos ACTIVATION decides whether to
// move, the same way in every mode, and the mode how far.
func recommend(m modeRules, r *Rule, minimum, cur int, value float64) (int, Reason) {
	if cur == 0 {
		if !(value > r.Activation) {
			return 0, ReasonBelowActivation
		}
		return m.activate(r, minimum, value), ReasonActivation
	}
	return m.recommend(r, cur, value)
}

// thresholds says how each threshold setting was written; their values are in the Policy.
type thresholds struct {
	target, upAbove, downBelow, perDyno threshold
}

// threshold is one threshold setting as parsed by amount.
type threshold struct {
	raw     string // as written
	set     bool   // not empty
	ok      bool   // parsed
	seconds bool   // written as a duration
}

// target: hold the value at TARGET, ceil(current × value / TARGET), Kubernetes HPA's rule.
type targetMode struct{}

func (targetMode) reference(r *Rule) float64 { return r.Target }

// activate: the rule is proportional to the current quantity, which is zero, so MIN (at least one) dynos, and
// target tracking takes over from there.
func (targetMode) activate(_ *Rule, minimum int, _ float64) int {
	return min(max(minimum, 1), MaxQuantity)
}

func (targetMode) recommend(ru *Rule, cur int, value float64) (int, Reason) {
	if !(ru.Target > 0) {
		return cur, ReasonWithinTolerance
	}
	r := value / ru.Target
	switch {
	case r > 1+ru.Tolerance:
		n, _ := ceilQuantity(float64(cur)*r, 1)
		return max(n, cur), ReasonAboveTarget
	case r < 1-ru.Tolerance:
		n, _ := ceilQuantity(float64(cur)*r, 1)
		return min(n, cur), ReasonBelowTarget
	default:
		return cur, ReasonWithinTolerance
	}
}

func (targetMode) quantityFor(*Rule, float64) (int, bool) { return 0, false }

func (targetMode) reasons() []Reason {
	return []Reason{ReasonAboveTarget, ReasonBelowTarget, ReasonWithinTolerance}
}

func (targetMode) explain(b *strings.Builder, p *Rule, d *Decision, r Reason, v string) {
	fmt.Fprintf(b, "value %s is %sx the %s target", v, ratio(d.Value, p.Target), formatAmount(p.Target, p.Seconds))
	if r == ReasonWithinTolerance {
		fmt.Fprintf(b, ", within ±%g%%", p.Tolerance*100)
	}
}

func (targetMode) validate(p *Rule, t thresholds, errs *setting.List) bool {
	if !t.target.set {
		errs.Add(setting.Errorf("TARGET", t.target.raw, "the value to hold in target mode: a number > 0, or a duration such as 250ms (required)"))
	} else if t.target.ok && p.Target <= 0 {
		errs.Add(setting.Errorf("TARGET", t.target.raw, "a number > 0, or a duration > 0 such as 250ms"))
	}
	return t.target.seconds
}

// step: up by UP_BY above UP_ABOVE, down by DOWN_BY below DOWN_BELOW (HireFire's and Judoscale's thresholds).
type stepMode struct{}

func (stepMode) reference(r *Rule) float64 { return r.UpAbove }

func (stepMode) activate(r *Rule, _ int, _ float64) int { return clampStep(r.UpBy) }

func (stepMode) recommend(p *Rule, cur int, value float64) (int, Reason) {
	switch {
	case value > p.UpAbove:
		return min(cur+clampStep(p.UpBy), MaxQuantity), ReasonAboveThreshold
	case value < p.DownBelow:
		return max(cur-clampStep(p.DownBy), 0), ReasonBelowThreshold
	default:
		return cur, ReasonWithinThresholds
	}
}

func (stepMode) quantityFor(*Rule, float64) (int, bool) { return 0, false }

func (stepMode) reasons() []Reason {
	return []Reason{ReasonAboveThreshold, ReasonBelowThreshold, ReasonWithinThresholds}
}

func (stepMode) explain(b *strings.Builder, p *Rule, _ *Decision, r Reason, v string) {
	switch r {
	case ReasonAboveThreshold:
		fmt.Fprintf(b, "value %s is above UP_ABOVE=%s (UP_BY=%d)", v, formatAmount(p.UpAbove, p.Seconds), p.UpBy)
	case ReasonBelowThreshold:
		fmt.Fprintf(b, "value %s is below DOWN_BELOW=%s (DOWN_BY=%d)", v, formatAmount(p.DownBelow, p.Seconds), p.DownBy)
	default: // ReasonWithinThresholds
		fmt.Fprintf(b, "value %s is between DOWN_BELOW=%s and UP_ABOVE=%s", v, formatAmount(p.DownBelow, p.Seconds), formatAmount(p.UpAbove, p.Seconds))
	}
}

func (stepMode) validate(p *Rule, t thresholds, errs *setting.List) bool {
	if !t.upAbove.set {
		errs.Add(setting.Errorf("UP_ABOVE", t.upAbove.raw, "the value above which step mode scales up (required)"))
	}
	if !t.downBelow.set {
		errs.Add(setting.Errorf("DOWN_BELOW", t.downBelow.raw, "the value below which step mode scales down (required)"))
	}
	if t.upAbove.ok && t.downBelow.ok && p.DownBelow >= p.UpAbove {
		errs.Add(setting.Errorf("DOWN_BELOW", t.downBelow.raw, "less than UP_ABOVE (%s), so that the quantity holds between them", t.upAbove.raw))
	}
	return t.upAbove.seconds || t.downBelow.seconds
}

// ratio: ceil(R + SAFETY*sqrt(R)), R = value / PER_DYNO (HireFire's jobs-per-dyno, with square-root headroom).
type ratioMode struct{}

func (ratioMode) reference(r *Rule) float64 { return r.PerDyno }

func (ratioMode) activate(p *Rule, _ int, value float64) int {
	if n, ok := p.ratio(value); ok {
		return max(n, 1)
	}
	return 1
}

func (ratioMode) recommend(p *Rule, cur int, value float64) (int, Reason) {
	if n, ok := p.ratio(value); ok {
		return n, ReasonRatio
	}
	return cur, ReasonRatio
}

func (ratioMode) quantityFor(r *Rule, value float64) (int, bool) { return r.ratio(value) }

func (ratioMode) reasons() []Reason { return []Reason{ReasonRatio} }

func (ratioMode) explain(b *strings.Builder, p *Rule, d *Decision, _ Reason, v string) {
	n, _ := p.ratio(max(d.Value, 0))
	if p.Safety > 0 {
		fmt.Fprintf(b, "value %s at PER_DYNO=%s with SAFETY=%g needs %d", v, formatAmount(p.PerDyno, p.Seconds), p.Safety, n)
	} else {
		fmt.Fprintf(b, "value %s at PER_DYNO=%s needs %d", v, formatAmount(p.PerDyno, p.Seconds), n)
	}
}

func (ratioMode) validate(p *Rule, t thresholds, errs *setting.List) bool {
	if !t.perDyno.set {
		errs.Add(setting.Errorf("PER_DYNO", t.perDyno.raw, "the amount one dyno handles in ratio mode: a number > 0 (required)"))
	} else if t.perDyno.ok && p.PerDyno <= 0 {
		errs.Add(setting.Errorf("PER_DYNO", t.perDyno.raw, "a number > 0"))
	}
	return t.perDyno.seconds
}

// ratio is ratio mode's quantity for a finite value >= 0: ceil(R + Safety*sqrt(R)) with R = value/PerDyno, the
// square-root staffing rule of queueing theory (Halfin and Whitt): the dynos the load keeps busy, plus a headroom
// that shrinks relative to the load as it grows, which keeps the chance of queueing about the same at any size.
func (p *Rule) ratio(value float64) (int, bool) {
	if !(p.PerDyno > 0) {
		return 0, false
	}
	r := value / p.PerDyno
	if p.Safety > 0 && r > 0 && r < MaxQuantity {
		r += p.Safety * math.Sqrt(r)
	}
	return ceilQuantity(r, 1)
}

// clampStep keeps a step-mode jump within [1, MaxQuantity] whatever a hand-built Policy says.
func clampStep(n int) int { return min(max(n, 1), MaxQuantity) }
