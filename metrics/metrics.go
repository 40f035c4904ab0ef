// Package metrics reads the numbers dynopilot scales on (the latency of a web process, the age or size of a job
// queue) from where teams already keep them: Prometheus, Sidekiq, RQ and Celery in Redis, plain Redis keys, the job
// tables of GoodJob, Solid Queue, Delayed Job, Que and river in PostgreSQL, RabbitMQ, and HireFire endpoints.
//
// Every kind of source implements the one small Source interface and lives in its own file (prometheus.go,
// sidekiq.go, …); kinds.go is the one place that lists them. Settings come in as strings (Settings), are validated
// into a Spec (Settings.Parse), and turned into a Source by Connections.Open, which shares one connection pool per
// URL between all policies. Instruments.Wrap adds the per-reading timeout, the metrics and panic recovery.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// Reading is one value read from a source. Latencies are in seconds, sizes in jobs or messages.
type Reading struct {
	Value float64
	At    time.Time // when the value was true: the query's evaluation time, or when the queue was looked at

	// Running is the jobs running now, read with the value when Spec.Running is set; RunningErr is why they could
	// not be read, in which case the value may be good all the same (it still scales up) but nothing scales down.
	Running    []Job
	RunningErr error
}

// Source reads one number. Implementations honour ctx (its deadline is the policy's TIMEOUT) and return errors that
// name the kind of source and its URL without secrets; they never return a made-up value.
type Source interface {
	Read(ctx context.Context) (Reading, error)
}

// ErrNoData is wrapped by the error a source returns when it answered but had nothing to report (a Prometheus query
// with an empty result or NaN under EMPTY=missing). The caller treats it as a missing reading, never as zero: a
// missing reading must not scale anything down.
var ErrNoData = errors.New("no data")

// SourceError is the error every Source made by Connections.Open returns: it names the source (kind and URL with
// secrets replaced) and carries the cause with any secret of that URL scrubbed from its text.
type SourceError struct {
	Source string // e.g. "sidekiq redis://:xxxxx@host:6379/0"
	msg    string // the cause's text, scrubbed
	cause  error
}

func (e *SourceError) Error() string { return e.Source + ": " + e.msg }

// Unwrap gives the cause, so that errors.Is finds ErrNoData and context.DeadlineExceeded.
func (e *SourceError) Unwrap() error { return e.cause }

// named wraps a kind's source so that every error names it and no error text carries a secret of its URL, whatever
// the underlying client put in its message; it also turns a panic into an error.
type named struct {
	label   string
	secrets []string
	src     Source
}

func (n *named) Read(ctx context.Context) (r Reading, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = Reading{}, fmt.Errorf("panic: %v", p)
		}
		if err != nil {
			err = &SourceError{Source: n.label, msg: setting.Scrub(err.Error(), n.secrets), cause: err}
		}
		if r.RunningErr != nil {
			r.RunningErr = &SourceError{Source: n.label, msg: "running jobs: " + setting.Scrub(r.RunningErr.Error(), n.secrets), cause: r.RunningErr}
		}
	}()
	return n.src.Read(ctx)
}

// latencySince is the age of something stamped at t as seen at now, never negative: a clock that runs ahead on the
// machine that stamped the job must not turn into a negative latency. This clock-skew case (and its twin in the
// postgres presets' SQL) is the only place a negative number is made 0 rather than refused (Instruments.Wrap
// refuses every negative reading): the source computes the latency itself from job timestamps, and a job stamped
// by a clock a little ahead of ours has just been enqueued, so 0 is what it has waited.
func latencySince(now, t time.Time) float64 {
	d := now.Sub(t).Seconds()
	if d < 0 {
		return 0
	}
	return d
}

// sameOrigin reports whether a and b have the same scheme, host and port (the port a scheme implies when none is
// written): the only place credentials configured for b may be sent to.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		switch strings.ToLower(u.Scheme) {
		case "https":
			return "443"
		case "http":
			return "80"
		}
		return ""
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}
