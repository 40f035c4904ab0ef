package scaler

import (
	"strconv"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/policy"
)

// targets returns what each metric of p compares its readings with (its TARGET, UP_ABOVE or PER_DYNO), the
// policy's own first, so that the daemon shows every metric's, and dynopilot_target stays the policy's own
// metric's, whichever metric decides.
func targets(p *policy.Policy) []float64 {
	out := make([]float64, p.Metrics())
	for i := range out {
		out[i] = p.RuleOf(i).Reference()
	}
	return out
}

// metricStatuses returns the entry's metrics as the status shows them before any reading.
func (e *entry) metricStatuses() []MetricStatus {
	out := make([]MetricStatus, e.metrics())
	for i := range out {
		m := e.metric(i)
		out[i] = MetricStatus{Metric: i + 1, Source: m.SourceKind, Measure: m.Measure, Mode: string(e.Rules.RuleOf(i).Mode), Target: e.targets[i]}
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
