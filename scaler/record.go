package scaler

import (
	"context"
	"log/slog"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/policy"
)

// record is the daemon's own record of an event, its first consumer on the one event path (emit): the Prometheus
// metrics, the status that /api/policies and the status page show, and the log. It works from the event alone,
// in memory, and never blocks, so it runs inline; every other consumer gets the event through Options.Events.
func (s *Scaler) record(e *entry, ev event.Event) {
	switch ev.Type {
	case event.Decision:
		s.recordDecision(e, ev)
	case event.Scaled, event.ScaleFailed:
		s.recordScale(e, ev)
	}
}

// recordDecision shows one decision in the metrics, the status and the log. A failing source is said once when it
// starts failing and once when the fallback takes over, a busy hold once when it starts, a deploy once: not every
// tick.
//
// dynopilot_reading, dynopilot_target and the status's reading are the policy's own metric's (metric 1), whichever
// metric the decision is about: each further metric's reading is in dynopilot_metric_reading and the status's
// Metrics.
func (s *Scaler) recordDecision(e *entry, ev event.Event) {
	n := e.name
	s.in.decisions.WithLabelValues(n, ev.Action, ev.Reason).Inc()
	s.in.lastEval.WithLabelValues(n).Set(float64(ev.Time.UnixNano()) / 1e9)
	own, ownOK, ownAt := ev.Reading, ev.HasReading, ev.ReadingAt // an event without Metrics is about the policy's own
	if len(ev.Metrics) > 0 {
		own, ownOK, ownAt = ev.Metrics[0].Value, ev.Metrics[0].OK, ev.Metrics[0].At
	}
	if ownOK {
		s.in.reading.WithLabelValues(n).Set(own)
	}
	e.mu.Lock()
	st := &e.status
	failuresBefore, reasonBefore := st.Failures, st.Reason
	st.Action, st.Reason, st.Explanation = ev.Action, ev.Reason, ev.Explanation
	st.DecidedAt = ev.Time
	st.Evaluated = true
	if ownOK {
		v := own
		st.Reading, st.ReadingAt = &v, ownAt
	}
	switch {
	case ev.HasReading:
		st.ReadingError = ""
	case !ev.NoFormation:
		st.ReadingError = ev.Error
	}
	s.recordMetrics(e, st, ev.Metrics)
	st.RunningError = ev.RunningError
	if st.Predict != nil && !ev.NoFormation { // with no formation, nothing was decided, nor predicted
		st.Predict.On, st.Predict.Quantity, st.Predict.Status = ev.PredictionOn, ev.Predicted, ev.Prediction
		s.in.predicted.WithLabelValues(n).Set(float64(ev.Predicted))
	}
	if !ev.NoFormation {
		st.Current, st.Desired, st.Min, st.Max = ev.From, ev.To, ev.Min, ev.Max
		st.Size = ev.Size
		st.CooldownLeftSeconds = ev.CooldownLeft.Seconds()
		st.LastScale = ev.LastScale
		st.Failures = ev.Failures
		st.CostPerHour = costPerHour(ev.From, ev.PricePerHour)
	}
	e.mu.Unlock()

	if ev.NoFormation {
		s.log.Warn("cannot read formation; holding", "policy", n, "err", ev.Error)
		return
	}
	s.in.quantity.WithLabelValues(n).Set(float64(ev.From))
	s.in.desired.WithLabelValues(n).Set(float64(ev.To))
	s.in.min.WithLabelValues(n).Set(float64(ev.Min))
	s.in.max.WithLabelValues(n).Set(float64(ev.Max))
	s.in.target.WithLabelValues(n).Set(e.targets[0])
	if !ev.LastScale.IsZero() {
		s.in.lastScale.WithLabelValues(n).Set(float64(ev.LastScale.UnixNano()) / 1e9)
	}
	s.in.cost.WithLabelValues(n).Set(costPerHour(ev.From, ev.PricePerHour))
	s.in.price.WithLabelValues(n).Set(ev.PricePerHour)
	s.in.cooldownLeft.WithLabelValues(n).Set(ev.CooldownLeft.Seconds())

	attrs := []any{"policy", n, "action", ev.Action, "reason", ev.Reason, "current", ev.From, "desired", ev.To,
		"reading", ev.Reading, "target", ev.Target, "explanation", ev.Explanation}
	if !ev.HasReading && ev.Error != "" {
		attrs = append(attrs, "reading_error", ev.Error)
	}
	p := e.Rules
	switch {
	case ev.Reason == string(policy.ReasonDeploying):
		if !ev.Repeated {
			s.log.Info("app is being deployed: holding formation changes until it is done", "policy", n, "from", ev.From, "to", ev.Wanted, "err", ev.Error)
		}
	case !ev.HasReading && ev.Failures == 1:
		s.log.Warn("reading failed; holding", attrs...)
	case !ev.HasReading && p.FallbackQuantity > 0 && ev.Failures == p.FallbackAfter:
		s.log.Warn("readings keep failing; fallback", append(attrs, "failures", ev.Failures, "fallback_quantity", p.FallbackQuantity)...)
	case ev.HasReading && failuresBefore > 0:
		s.log.Info("reading recovered", append(attrs, "failed_readings", failuresBefore)...)
	case ev.Warning != "":
		s.log.Warn(ev.Warning, append(attrs, "held_for", ev.HeldFor)...)
	case ev.Reason == string(policy.ReasonBusy) && reasonBefore != ev.Reason:
		s.log.Info("a scale-down waits for busy dynos", attrs...)
	case ev.Action == string(policy.ActionHold):
		s.log.Debug("hold", attrs...)
	}
}

// recordScale counts and logs one attempted change, and shows it in the status.
func (s *Scaler) recordScale(e *entry, ev event.Event) {
	dir := "up"
	if ev.To < ev.From {
		dir = "down"
	}
	result, level, msg := "ok", slog.LevelInfo, "scaled"
	switch {
	case ev.Type == event.Scaled && ev.DryRun:
		result, msg = "dry_run", "would scale (dry run)"
	case ev.Type == event.ScaleFailed && !ev.RetryAt.IsZero():
		result, level, msg = "error", slog.LevelError, "Heroku refused the change; waiting before asking again"
		if ev.Repeated {
			level = slog.LevelDebug // said once already; dynopilot_scale_events_total{result="error"} still counts it
		}
	case ev.Type == event.ScaleFailed:
		result, level, msg = "error", slog.LevelError, "scaling failed"
	}
	s.in.events.WithLabelValues(e.name, dir, result).Inc()
	attrs := []any{"policy", e.name, "from", ev.From, "to", ev.To, "reason", ev.Reason, "reading", ev.Reading,
		"target", ev.Target, "result", result, "explanation", ev.Explanation}
	if ev.Error != "" {
		attrs = append(attrs, "err", ev.Error)
	}
	if !ev.RetryAt.IsZero() {
		attrs = append(attrs, "retry_in", ev.RetryAt.Sub(ev.Time))
	}
	e.mu.Lock()
	switch result {
	case "ok":
		s.in.lastScale.WithLabelValues(e.name).Set(float64(ev.Time.UnixNano()) / 1e9)
		s.in.quantity.WithLabelValues(e.name).Set(float64(ev.To))
		e.status.Current = ev.To
		e.status.LastScale = ev.Time
		e.status.RetryAt = ev.RetryAt
	case "error":
		e.status.LastError = ev.Error
		e.status.RetryAt = ev.RetryAt
	}
	e.mu.Unlock()
	s.log.Log(context.Background(), level, msg, attrs...)
}
