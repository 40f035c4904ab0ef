package scaler

import (
	"strconv"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/policy"
)

// targets returns what each metric of p compares its readings with (its TARGET, UP_ABOVE or PER_DYNO), the
// policy's own first: what the engine publishes as Decision.Target for the metric a decision is about, asked of
// the engine once per metric (a disabled policy's decision sets it and decides nothing else) so that the daemon
// shows every metric's, and dynopilot_target stays the policy's own metric's, whichever metric decides.
func targets(p *policy.Policy) []float64 {
	out := make([]float64, p.Metrics())
	for i := range out {
		rule := p.Rule
		if i > 0 {
			rule = p.Also[i-1]
		}
		out[i] = policy.Decide(&policy.Policy{Rule: rule}, nil, policy.Input{}).Target
	}
	return out
}

// metricStatuses returns the entry's metrics as the status shows them before any reading.
func (e *entry) metricStatuses() []MetricStatus {
	out := make([]MetricStatus, e.metrics())
	for i := range out {
		m, mode := e.metric(i), e.Rules.Mode
		if i > 0 {
			mode = e.Rules.Also[i-1].Mode
		}
		out[i] = MetricStatus{Metric: i + 1, Source: m.SourceKind, Measure: m.Measure, Mode: string(mode), Target: e.targets[i]}
	}
	return out
}

// recordMetrics shows each metric's reading of a decision in the status (callers hold e.mu) and, for a policy on
// several metrics, in dynopilot_metric_reading{metric}.
func (s *Scaler) recordMetrics(e *entry, st *Status, readings []event.MetricReading) {
	for i, r := range readings {
		if i >= len(st.Metrics) {
			break
		}
		m := &st.Metrics[i]
		m.OK, m.Error = r.OK, r.Error
		if !r.OK {
			continue
		}
		v := r.Value
		m.Value, m.At = &v, r.At
		if len(readings) > 1 {
			s.in.metricReading.WithLabelValues(e.name, strconv.Itoa(i+1)).Set(v)
		}
	}
}
