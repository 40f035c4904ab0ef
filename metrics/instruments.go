package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// Instruments publishes how readings go: dynopilot_reading_duration_seconds{source} and
// dynopilot_reading_errors_total{policy,source}, source being the kind (sidekiq, postgres, …).
type Instruments struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewInstruments creates the reading metrics and registers them with reg (nil: not registered, for one-off uses
// such as `dynopilot check`).
func NewInstruments(reg prometheus.Registerer) (*Instruments, error) {
	i := &Instruments{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dynopilot_reading_duration_seconds",
			Help:    "Time taken by one reading of a metric source, failed or not.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"source"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynopilot_reading_errors_total",
			Help: "Readings that failed (error, timeout, panic, or a value that is negative or not finite); a source with nothing to report is not counted.",
		}, []string{"policy", "source"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{i.duration, i.errors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register reading metrics: %w", err)
			}
		}
	}
	return i, nil
}

// Wrap returns src read under spec.Timeout, with its duration observed, its errors counted for policy, and any
// panic turned into an error. A value that is not a finite number of 0 or more is an error too, naming the source
// and the value: every measure (a latency, a size) is 0 or more, so a negative one is a broken query or exporter,
// and must fail the reading (which never scales down) rather than read as a reason to scale down. It returns at the
// deadline even if src ignores its context. A nil *Instruments still applies the timeout and the recovery.
func (i *Instruments) Wrap(policy string, spec Spec, src Source) Source {
	w := &instrumented{src: src, label: spec.label(), measure: spec.Measure, secrets: secretsOf(spec.URL), timeout: spec.Timeout}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.measure == "" {
		w.measure = "reading"
	}
	if i != nil {
		w.duration = i.duration.WithLabelValues(spec.Kind)
		w.errors = i.errors.WithLabelValues(policy, spec.Kind) // the series exists at 0 from the start
	}
	return w
}

type instrumented struct {
	src      Source
	label    string
	measure  string // what the source reads (latency, size), for messages
	secrets  []string
	timeout  time.Duration
	duration prometheus.Observer
	errors   prometheus.Counter
}

// pastDeadline reports whether ctx's deadline has passed, even if its timer has not fired yet: a client whose socket
// deadline is the same instant may return its I/O timeout first.
func pastDeadline(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

type result struct {
	r   Reading
	err error
}

func (w *instrumented) Read(ctx context.Context) (Reading, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	start := time.Now()
	done := make(chan result, 1) // buffered: a source that overruns its deadline finishes without anyone waiting
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("%s: panic: %s", w.label, setting.Scrub(fmt.Sprint(p), w.secrets))}
			}
		}()
		r, err := w.src.Read(ctx)
		done <- result{r, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = fmt.Errorf("%s: no answer: %w", w.label, ctx.Err())
	}
	switch {
	case res.err != nil && errors.Is(res.err, context.DeadlineExceeded):
		res.err = fmt.Errorf("%w (TIMEOUT=%s)", res.err, w.timeout)
	case res.err != nil && pastDeadline(ctx):
		// The client gave up with its own error as the deadline passed (an I/O timeout): say it was the deadline.
		res.err = fmt.Errorf("%w (%w: TIMEOUT=%s)", res.err, context.DeadlineExceeded, w.timeout)
	case res.err == nil && (math.IsNaN(res.r.Value) || math.IsInf(res.r.Value, 0)):
		res.err = fmt.Errorf("%s: read %v: expected a finite number", w.label, res.r.Value)
	case res.err == nil && res.r.Value < 0:
		res.err = fmt.Errorf("%s: read %v: expected a %s of 0 or more (no %s can be negative: the reading failed)", w.label, res.r.Value, w.measure, w.measure)
	}
	if w.duration != nil {
		w.duration.Observe(time.Since(start).Seconds())
		if res.err != nil && !errors.Is(res.err, ErrNoData) {
			w.errors.Inc()
		}
	}
	if res.err != nil {
		return Reading{}, res.err
	}
	return res.r, nil
}
