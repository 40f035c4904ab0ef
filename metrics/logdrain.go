package metrics

import (
	"context"
	"errors"
	"time"
)

// Drains is what a logdrain source reads: the aggregates that dynopilot's log drain receiver (package logdrain)
// keeps per app from the lines Heroku sends it. Read returns the reading of measure for the process type's dynos of
// app over the window ending now; a missing reading (a silent drain, a window without requests) wraps ErrNoData.
type Drains interface {
	Read(app, process, measure string, quantile float64, window time.Duration) (value float64, at time.Time, err error)
}

// errNoDrains is returned when a logdrain source is opened with no receiver: DYNOPILOT_DRAIN_TOKEN is unset.
var errNoDrains = errors.New("no log drain receiver: set DYNOPILOT_DRAIN_TOKEN and add a drain to the app")

// logdrainKind reads what Heroku's router, runtime metrics and the app itself log, as a log drain delivers it to
// dynopilot's own /drain/<app> endpoint: no Prometheus and no change in the app. It has no URL: the lines come to
// dynopilot. MEASURE is latency (a QUANTILE of the router's service time), queue-time (the same of the queue times
// an app logs in HireFire's format), rate (requests per second) or load (mean load_avg_1m per dyno), over WINDOW.
func logdrainKind() kind {
	return kind{
		name:     KindLogDrain,
		measures: []string{MeasureLatency, MeasureQueueTime, MeasureRate, MeasureLoad},
		window:   true,
		open: func(c *Connections, s Spec) (Source, error) {
			c.mu.Lock()
			d := c.drains
			c.mu.Unlock()
			if d == nil {
				return nil, errNoDrains
			}
			return &drainSource{drains: d, spec: s}, nil
		},
	}
}

type drainSource struct {
	drains Drains
	spec   Spec
}

func (s *drainSource) Read(ctx context.Context) (Reading, error) {
	if err := ctx.Err(); err != nil {
		return Reading{}, err
	}
	v, at, err := s.drains.Read(s.spec.App, s.spec.Process, s.spec.Measure, s.spec.Quantile, s.spec.Window)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Value: v, At: at}, nil
}
