package scaler_test

// Tests of Scaler.Run: the first evaluation at start, cron's after it, and shutdown. Run schedules on the wall
// clock, so these tests wait for what they expect to happen rather than for a time; nothing here asserts how long
// anything took.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/scaler"
)

// hang bounds a wait for something that must happen, so that a broken Run fails the test with a message rather
// than hanging until go test's own timeout. It is far beyond what any of it takes on a loaded machine.
const hang = time.Minute

// signalling is a source that tells the test of each reading.
type signalling struct {
	value float64
	reads chan struct{}
	block bool // read until the context ends, then fail with it
}

var _ metrics.Source = (*signalling)(nil)

func newSignalling(v float64) *signalling {
	return &signalling{value: v, reads: make(chan struct{}, 1000)}
}

func (s *signalling) Read(ctx context.Context) (metrics.Reading, error) {
	select {
	case s.reads <- struct{}{}:
	default:
	}
	if s.block {
		<-ctx.Done()
		return metrics.Reading{}, ctx.Err()
	}
	return metrics.Reading{Value: s.value, At: time.Now()}, nil
}

// waitFor waits for n signals on ch.
func waitFor(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	for i := range n {
		select {
		case <-ch:
		case <-time.After(hang):
			t.Fatalf("%s: %d of %d after %v", what, i, n, hang)
		}
	}
}

// runWorld is a world whose policies read signalling sources on the given intervals (by process type), with its
// scaler's options changed by opt.
func runWorld(t *testing.T, intervals map[string]string, opt func(*scaler.Options), ps ...policy.Settings) (*world, map[string]*signalling) {
	t.Helper()
	srcs := map[string]*signalling{}
	w := newWorldWith(t, func(o *scaler.Options) {
		for i := range o.Policies {
			p := &o.Policies[i]
			srcs[p.Rules.Process] = newSignalling(1)
			p.Source, p.Interval = srcs[p.Rules.Process], intervals[p.Rules.Process]
		}
		if opt != nil {
			opt(o)
		}
	}, ps...)
	return w, srcs
}

// start runs the scaler until the returned cancel is called; the channel gets what Run returned.
func launch(w *world) (cancel context.CancelFunc, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- w.s.Run(ctx) }()
	return cancel, ch
}

func stopped(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(hang):
		t.Fatalf("Run did not return within %v of shutdown", hang)
	}
}

func TestRunEvaluatesAtStartThenOnSchedule(t *testing.T) {
	// web's interval is an hour: only the first run at start (within firstRoundSpread) evaluates it during this
	// test. worker's is a second: cron's runs follow.
	w, srcs := runWorld(t, map[string]string{"web": "@every 1h", "worker": "@every 1s"}, nil, settings("web", "10"), settings("worker", "10"))
	cancel, done := launch(w)
	defer stopped(t, cancel, done)
	waitFor(t, srcs["web"].reads, 1, "web's first reading, at start")
	waitFor(t, srcs["worker"].reads, 3, "worker's readings, every second")
	for deadline := time.Now().Add(hang); !w.s.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within %v: %+v", hang, w.s.Statuses())
		}
	}
	if st := w.status(t, "shop/web"); st.Action != "hold" || st.Reason != string(policy.ReasonWithinTolerance) {
		t.Errorf("web after its first evaluation: %s (%s), want a hold within tolerance", st.Action, st.Reason)
	}
}

func TestRunEvaluatesACronSpecAtStart(t *testing.T) {
	w, srcs := runWorld(t, map[string]string{"web": "0 0 1 1 *"}, nil, settings("web", "10"))
	cancel, done := launch(w)
	defer stopped(t, cancel, done)
	waitFor(t, srcs["web"].reads, 1, "the first reading of a once-a-year cron spec, at start")
}

func TestRunReturnsWhenStoppedAtOnce(t *testing.T) {
	// Shutdown before the first evaluations are due, as they start, or while cron's run: each one is either never
	// admitted or waited for (TestNoEvaluationIsAdmittedOnceStopped tests that bookkeeping by itself).
	for i := range 10 {
		w, _ := runWorld(t, map[string]string{"web": "@every 2s", "worker": "@every 3s"}, nil, settings("web", "10"), settings("worker", "10"))
		cancel, done := launch(w)
		time.Sleep(time.Duration(i) * 50 * time.Millisecond) // another moment of the first round each time
		stopped(t, cancel, done)
	}
	w, _ := runWorld(t, map[string]string{"web": "@every 1h"}, nil, settings("web", "10"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.s.Run(ctx); err != nil {
		t.Errorf("Run with a context already done: %v", err)
	}
}

func TestShutdownAbandonsAReadingWithoutCountingItAsFailed(t *testing.T) {
	w, srcs := runWorld(t, map[string]string{"web": "@every 1h"}, nil, settings("web", "10"))
	srcs["web"].block = true
	cancel, done := launch(w)
	waitFor(t, srcs["web"].reads, 1, "the reading that hangs")
	stopped(t, cancel, done)
	if st := w.status(t, "shop/web"); st.Evaluated || st.Failures != 0 {
		t.Errorf("a reading cut short by shutdown was decided from: %+v", st)
	}
	if n := counter(t, w.reg, "dynopilot_decisions_total", map[string]string{"policy": "shop/web", "reason": string(policy.ReasonReadingFailed)}); n != 0 {
		t.Errorf("%v failed readings counted at shutdown", n)
	}
}

// patchAtShutdown is Heroku whose PATCH waits for the daemon's shutdown to begin before it is sent.
type patchAtShutdown struct {
	scaler.Heroku
	shutdown <-chan struct{}
	patching chan struct{}
	finished atomic.Bool
}

func (h *patchAtShutdown) UpdateFormation(ctx context.Context, app, typ string, quantity int) (herokuapi.Formation, error) {
	h.patching <- struct{}{}
	<-h.shutdown
	f, err := h.Heroku.UpdateFormation(ctx, app, typ, quantity)
	h.finished.Store(err == nil)
	return f, err
}

func TestShutdownLetsAPatchInFlightFinish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	heroku := &patchAtShutdown{shutdown: ctx.Done(), patching: make(chan struct{}, 1)}
	w, srcs := runWorld(t, map[string]string{"web": "@every 1h"}, func(o *scaler.Options) {
		heroku.Heroku = o.Heroku
		o.Heroku = heroku
		o.PatchTimeout = hang // this test is about Run waiting for the PATCH, not about the bound on that wait
	}, settings("web", "10"))
	srcs["web"].value = 2 // twice the target: 2 -> 4
	done := make(chan error, 1)
	go func() { done <- w.s.Run(ctx) }()
	waitFor(t, heroku.patching, 1, "the PATCH")
	stopped(t, cancel, done)
	if !heroku.finished.Load() {
		t.Error("Run returned before the PATCH it had sent finished")
	}
	if got := w.quantity(t, "web"); got != 4 {
		t.Errorf("web = %d after the PATCH finished during shutdown, want 4", got)
	}
}
