package policy

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Explain returns the decision as a sentence with its numbers, for logs, `check` and the status page, e.g.
// "value 0.62s is 2.07x the 0.3s target: 3 -> 7, capped by MAX_STEP_UP=3 to 6". It is built only when asked
// for, so that Decide allocates nothing.
func (d Decision) Explain() string {
	s := d.explain()
	if d.BusyOverridden && d.Policy != nil {
		s += fmt.Sprintf("; %s, but the scale-down was held for PROTECT_BUSY_MAX=%s: scaling down anyway", d.busyJobText(), d.Policy.ProtectBusyMax)
	}
	return s
}

func (d Decision) explain() string {
	p := d.Policy
	if p == nil {
		return fmt.Sprintf("%s: %s", d.Reason, move(d.Current, d.Desired))
	}
	var b strings.Builder
	switch {
	case d.BusyHeld:
		before := d
		before.Desired, before.Reason, before.BusyHeld = d.BusyWanted, d.BusyReason, false
		b.WriteString(before.explain())
		d.explainBusy(&b)
		return b.String()
	case d.Reason == ReasonDisabled:
		fmt.Fprintf(&b, "%s is disabled (ENABLED=false): holding at %d", p.Name(), d.Current)
		return b.String()
	case d.forced():
		d.explainForced(&b)
		if d.ReadingOK {
			b.WriteString(" (")
			d.explainMode(&b)
			b.WriteString(")")
		} else {
			fmt.Fprintf(&b, " (the reading failed, %d in a row)", d.Failures)
		}
		return b.String()
	case !d.ReadingOK:
		d.explainFailed(&b)
		return b.String()
	}

	d.explainMode(&b)
	if d.Predicted > d.metricRec && d.Recommendation == d.Predicted {
		fmt.Fprintf(&b, "; the load's daily and weekly profile needs %d by the time a new dyno would serve (PREDICT)", d.Predicted)
	}
	fmt.Fprintf(&b, ": %s", move(d.Current, d.Recommendation))
	if d.Stabilized != d.Recommendation {
		if d.Stabilized > d.Recommendation {
			fmt.Fprintf(&b, ", but the highest recommendation within DOWN_STABILIZATION=%s is %d", p.DownStabilization, d.Stabilized)
		} else {
			fmt.Fprintf(&b, ", but the lowest recommendation within UP_STABILIZATION=%s is %d", p.UpStabilization, d.Stabilized)
		}
		if d.Reason == ReasonStabilizing {
			fmt.Fprintf(&b, ": %s", outcome(d.Current, d.Desired))
		}
	}
	switch d.Reason {
	case ReasonUpCooldown:
		fmt.Fprintf(&b, ", but UP_COOLDOWN=%s since the last scale event has %s left: holding at %d", p.UpCooldown, round(d.CooldownLeft), d.Desired)
	case ReasonDownCooldown:
		fmt.Fprintf(&b, ", but DOWN_COOLDOWN=%s since the last scale event has %s left: holding at %d", p.DownCooldown, round(d.CooldownLeft), d.Desired)
	case ReasonMaxStep:
		if d.Desired > d.Current {
			fmt.Fprintf(&b, ", capped by MAX_STEP_UP=%d to %d", p.MaxStepUp, d.Desired)
		} else {
			fmt.Fprintf(&b, ", capped by MAX_STEP_DOWN=%d to %d", p.MaxStepDown, d.Desired)
		}
	case ReasonAtMax, ReasonAtMin, ReasonSchedule, ReasonSizeLimit:
		if d.unbounded < d.Desired {
			fmt.Fprintf(&b, ", stopped at %s: %s", d.minText(), outcome(d.Current, d.Desired))
		} else {
			fmt.Fprintf(&b, ", capped at %s: %s", d.maxText(), outcome(d.Current, d.Desired))
		}
	}
	if d.CooldownLeft > 0 && d.Reason != ReasonUpCooldown && d.Reason != ReasonDownCooldown {
		fmt.Fprintf(&b, " (cooldown: %s left)", round(d.CooldownLeft))
	}
	return b.String()
}

// explainBusy says why busy protection held or shortened the scale-down explained before it.
func (d Decision) explainBusy(b *strings.Builder) {
	p := d.Policy
	if d.BusyUnknown {
		fmt.Fprintf(b, "; but the running jobs could not be read, so which dynos are busy is unknown: holding at %d (PROTECT_BUSY)", d.Desired)
		return
	}
	fmt.Fprintf(b, "; but that would stop %s: %s (PROTECT_BUSY", d.busyJobText(), outcome(d.Current, d.Desired))
	if p.ProtectBusyMax > 0 {
		fmt.Fprintf(b, "; held %s of PROTECT_BUSY_MAX=%s", round(d.BusyFor), p.ProtectBusyMax)
	}
	b.WriteString(")")
}

// busyJobText names the busy dyno and its job, e.g. "worker.2, which runs HardJob (queue default) for 3m10s".
func (d Decision) busyJobText() string {
	j := d.BusyJob
	what := j.What
	if what == "" {
		what = "a job"
	}
	ran := round(d.Now.Sub(j.Started))
	if j.Dyno > 0 {
		return fmt.Sprintf("%s.%d, which runs %s for %s", d.Policy.Process, j.Dyno, what, ran)
	}
	return fmt.Sprintf("the dyno that runs %s for %s (which dyno the source cannot tell, and it has run past Heroku's %s shutdown grace)", what, ran, ShutdownGrace)
}

// forced reports whether the decision brought a quantity that was outside the effective bounds inside them.
func (d Decision) forced() bool {
	switch d.Reason {
	case ReasonRaiseToMin, ReasonLowerToMax, ReasonSchedule, ReasonSizeLimit:
		return d.Current < d.Min || d.Current > d.Max
	}
	return false
}

func (d Decision) explainForced(b *strings.Builder) {
	if d.Current < d.Min {
		fmt.Fprintf(b, "%d is below %s: raising to %d at once", d.Current, d.minText(), d.Desired)
		return
	}
	fmt.Fprintf(b, "%d is above %s: lowering to %d at once", d.Current, d.maxText(), d.Desired)
}

func (d Decision) explainFailed(b *strings.Builder) {
	p := d.Policy
	rule := d.rule()
	switch {
	case rule.Mode.rules() == nil:
		fmt.Fprintf(b, "%sMODE=%q is not a mode (%s), so no reading can be used", d.metricPrefix(), rule.Mode, modeNames())
	case p.Metrics() > 1:
		fmt.Fprintf(b, "the reading of %s failed", metricName(d.Metric))
		if d.Failed > 1 {
			fmt.Fprintf(b, " (and %d more)", d.Failed-1)
		}
	default:
		b.WriteString("the reading failed")
	}
	if d.Value < 0 {
		fmt.Fprintf(b, " (it was %s, and no reading can be negative)", formatAmount(d.Value, rule.Seconds))
	}
	if d.Failed < p.Metrics() { // the others were read: they may scale up, never down
		fmt.Fprintf(b, ": holding at %d (a metric that cannot be read blocks a scale-down; the others recommend %d)", d.Desired, d.metricRec)
		return
	}
	if d.Failures > 1 {
		fmt.Fprintf(b, ", %d times in a row", d.Failures)
	}
	if d.Reason != ReasonFallback {
		fmt.Fprintf(b, ": holding at %d (a failed reading never scales down", d.Desired)
		if p.FallbackQuantity > 0 {
			fmt.Fprintf(b, "; FALLBACK_QUANTITY=%d after FALLBACK_AFTER=%d", p.FallbackQuantity, p.FallbackAfter)
		}
		b.WriteString(")")
		return
	}
	fmt.Fprintf(b, " (FALLBACK_AFTER=%d): at least FALLBACK_QUANTITY=%d", p.FallbackAfter, p.FallbackQuantity)
	if p.FallbackQuantity > d.Max {
		fmt.Fprintf(b, ", capped at %s", d.maxText())
	}
	fmt.Fprintf(b, ": %s", outcome(d.Current, d.Desired))
}

// explainMode describes the deciding metric's reading against its mode's reference; with several metrics it
// names the metric and says that its recommendation was the largest.
func (d Decision) explainMode(b *strings.Builder) {
	p := d.Policy
	rule := d.rule()
	v := formatAmount(d.Value, rule.Seconds)
	mode := rule.Mode.rules()
	b.WriteString(d.metricPrefix())
	if mode == nil { // never with ReadingOK, so never explained
		fmt.Fprintf(b, "value %s", v)
		return
	}
	switch _, mr := recommend(mode, rule, p.Min, d.Current, max(d.Value, 0)); mr {
	case ReasonActivation:
		fmt.Fprintf(b, "value %s is above ACTIVATION=%s at zero dynos", v, formatAmount(rule.Activation, rule.Seconds))
	case ReasonBelowActivation:
		fmt.Fprintf(b, "value %s is not above ACTIVATION=%s at zero dynos", v, formatAmount(rule.Activation, rule.Seconds))
	default:
		mode.explain(b, rule, &d, mr, v)
	}
	if p.Metrics() > 1 {
		fmt.Fprintf(b, " (the largest recommendation of the %d metrics)", p.Metrics())
	}
}

// rule is the rule of the metric the decision is about.
func (d Decision) rule() *Rule {
	if r := d.Policy.RuleOf(d.Metric); r != nil {
		return r
	}
	return &d.Policy.Rule
}

// metricPrefix names the deciding metric when the policy has several: "metric 2 (METRIC_2_): ".
func (d Decision) metricPrefix() string {
	if d.Policy.Metrics() < 2 {
		return ""
	}
	return metricName(d.Metric) + ": "
}

// metricName names metric i for a person: "metric 1" is the policy's own settings, "metric 2" its METRIC_2_ ones.
func metricName(i int) string {
	if i <= 0 {
		return "metric 1"
	}
	return fmt.Sprintf("metric %d (METRIC_%d_)", i+1, i+1)
}

func (d Decision) minText() string {
	switch d.MinBy {
	case BoundBySchedule:
		return fmt.Sprintf("min=%d of schedule window `%s`", d.Min, d.window(d.MinWindow))
	case BoundBySizeLimit:
		return d.limitText()
	default:
		return fmt.Sprintf("MIN=%d", d.Min)
	}
}

func (d Decision) maxText() string {
	switch d.MaxBy {
	case BoundBySchedule:
		return fmt.Sprintf("max=%d of schedule window `%s`", d.Max, d.window(d.MaxWindow))
	case BoundBySizeLimit:
		return d.limitText()
	default:
		return fmt.Sprintf("MAX=%d", d.Max)
	}
}

func (d Decision) limitText() string {
	if d.Policy.SizeLimit > 0 {
		return fmt.Sprintf("SIZE_LIMIT=%d", d.SizeLimit)
	}
	size := d.Size
	if size == "" {
		size = "an unknown size"
	}
	return fmt.Sprintf("the limit of %d dynos per process type for %s", d.SizeLimit, size)
}

func (d Decision) window(i int) string {
	if i < 0 || i >= len(d.Policy.Schedule) {
		return "?"
	}
	return d.Policy.Schedule[i].Spec
}

func move(from, to int) string {
	if from == to {
		return fmt.Sprintf("stay at %d", from)
	}
	return fmt.Sprintf("%d -> %d", from, to)
}

func outcome(from, to int) string {
	if from == to {
		return fmt.Sprintf("holding at %d", from)
	}
	return fmt.Sprintf("%d -> %d", from, to)
}

func round(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d
}

// ratio prints value/target with two decimals, or in exponent form when huge.
func ratio(value, target float64) string {
	r := value / target
	if r >= 1e6 || math.IsInf(r, 0) || math.IsNaN(r) {
		return fmt.Sprintf("%.3g", r)
	}
	return fmt.Sprintf("%.2f", r)
}
