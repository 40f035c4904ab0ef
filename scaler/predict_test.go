package scaler_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/scaler"
)

// clockSource is a source whose reading the test sets, true at the test's clock.
type clockSource struct {
	clock *clock
	mu    sync.Mutex
	value float64
}

func (s *clockSource) Read(context.Context) (metrics.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return metrics.Reading{Value: s.value, At: s.clock.Now()}, nil
}

func (s *clockSource) set(v float64) { s.mu.Lock(); s.value = v; s.mu.Unlock() }

func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// predicting is a worker policy that predicts: its load in ratio mode (one dyno per unit), looking 2 minutes ahead.
func predicting(t *testing.T) *policy.Policy {
	t.Helper()
	st := settings("worker", "20")
	st.RuleSettings = policy.RuleSettings{Mode: "ratio", PerDyno: "1", Safety: "0", Tolerance: "0.1", UpBy: "1", DownBy: "1", Activation: "0"}
	st.UpCooldown, st.DownCooldown, st.Predict, st.PredictAhead = "0s", "0s", "true", "2m"
	p, err := st.Parse()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// day is 09:00 UTC on day d after the world's start (2026-11-20 10:00 UTC): the ramp's time.
func day(d int) time.Time { return time.Date(2026, 11, 20+d, 9, 0, 0, 0, time.UTC) }

// rampDays plays days 1 to n of a load that is 2 but for a ramp to 10 at 09:00 UTC, observed every five minutes
// from 08:50 to 09:15: what a profile needs to predict the ramp on day n+1.
func rampDays(t *testing.T, w *world, load *clockSource, n int) {
	t.Helper()
	for d := 1; d <= n; d++ {
		for m := -10; m <= 15; m += 5 {
			w.clock.set(day(d).Add(time.Duration(m) * time.Minute))
			load.set(2)
			if m >= 0 && m < 10 {
				load.set(10)
			}
			w.tick(t)
		}
	}
}

func TestAPolicyThatPredictsRaisesAheadOfTheRampAndKeepsItsProfileAcrossARestart(t *testing.T) {
	store := &memory{}
	load := &clockSource{} // its clock is the world's, set once the world is made
	mk := func(st scaler.Store) *world {
		return newWorldWith(t, func(o *scaler.Options) {
			o.State = st
			o.Policies = []scaler.Managed{{Rules: predicting(t), Source: load, SourceKind: "hirefire", Interval: "@every 5m"}}
		})
	}
	first := mk(store)
	load.clock = first.clock
	rampDays(t, first, load, 3)
	if err := first.s.SavePredictions(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.m["predict/shop/worker"]; !ok {
		t.Fatalf("no load profile saved: keys %v", keys(store))
	}

	// A new process on day 4, two minutes before the ramp, the load still at 2: it raises to the ramp's 10 at once.
	second := mk(store)
	load.clock = second.clock
	second.clock.set(day(4).Add(-2 * time.Minute))
	load.set(2)
	second.tick(t)
	if q := second.quantity(t, "worker"); q != 10 {
		t.Fatalf("worker = %d two minutes before the ramp on day 4, want the predicted 10", q)
	}
	st := second.status(t, "shop/worker")
	if st.Reason != string(policy.ReasonPredicted) || st.Predict == nil || !st.Predict.On || st.Predict.Quantity != 10 ||
		!strings.Contains(st.Predict.Status, "predictions on") {
		t.Errorf("status %+v, predict %+v", st, st.Predict)
	}
	if got := counter(t, second.reg, "dynopilot_predicted_quantity", map[string]string{"policy": "shop/worker"}); got != 10 {
		t.Errorf("dynopilot_predicted_quantity %v, want 10", got)
	}
	h := second.s.Handler(second.reg)
	for path, want := range map[string]string{
		"/api/policies": `"predict": {
        "on": true,
        "quantity": 10,
        "status": "predictions on`,
		"/": "predict on</span> 10 dynos ahead predictions on",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}

	// The same without the saved profile: nothing learned, nothing predicted.
	fresh := mk(&memory{})
	load.clock = fresh.clock
	fresh.clock.set(day(4).Add(-2 * time.Minute))
	fresh.tick(t)
	if q := fresh.quantity(t, "worker"); q != 2 {
		t.Errorf("worker = %d with no profile learned, want 2", q)
	}
	if got := counter(t, fresh.reg, "dynopilot_predicted_quantity", map[string]string{"policy": "shop/worker"}); got != 0 {
		t.Errorf("dynopilot_predicted_quantity %v with no profile learned, want 0", got)
	}
}

func TestOnlyAPolicyThatPredictsHasAProfile(t *testing.T) {
	store := &memory{}
	w := newWorldWith(t, func(o *scaler.Options) { o.State = store }, settings("web", "10"))
	w.tick(t)
	if err := w.s.SavePredictions(context.Background()); err != nil {
		t.Fatal(err)
	}
	for k := range store.m {
		if strings.HasPrefix(k, "predict/") {
			t.Errorf("a policy that does not predict saved a load profile: %s", k)
		}
	}
	if st := w.status(t, "shop/web"); st.Predict != nil {
		t.Errorf("a policy that does not predict shows a prediction: %+v", st.Predict)
	}
	if got := counter(t, w.reg, "dynopilot_predicted_quantity", map[string]string{"policy": "shop/web"}); got != 0 {
		t.Errorf("dynopilot_predicted_quantity %v for a policy that does not predict", got)
	}
}

func keys(m *memory) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.m {
		out = append(out, k)
	}
	return out
}

func TestTheProfileLearnsThePredictingMetricsReadings(t *testing.T) {
	// Metric 1 is a queue time in step mode, metric 2 the load in ratio mode: the profile must learn metric 2's.
	st := settings("worker", "20")
	st.RuleSettings = policy.RuleSettings{Mode: "step", UpAbove: "1", DownBelow: "0.01", Tolerance: "0.1", UpBy: "1", DownBy: "1", Safety: "0", Activation: "0"}
	st.UpCooldown, st.DownCooldown, st.Predict, st.PredictAhead = "0s", "0s", "true", "2m"
	p, err := st.ParseMetrics([]policy.RuleSettings{{Mode: "ratio", PerDyno: "1", Safety: "0", Tolerance: "0.1", UpBy: "1", DownBy: "1", Activation: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	queue, load := &clockSource{value: 0.1}, &clockSource{}
	w := newWorldWith(t, func(o *scaler.Options) {
		o.Policies = []scaler.Managed{{Rules: p, Source: queue, SourceKind: "hirefire", Interval: "@every 5m",
			Also: []scaler.Metric{{Source: load, SourceKind: "logdrain"}}}}
	})
	queue.clock, load.clock = w.clock, w.clock
	rampDays(t, w, load, 3)
	w.clock.set(day(4).Add(-2 * time.Minute))
	load.set(2)
	w.tick(t)
	if st := w.status(t, "shop/worker"); st.Predict == nil || st.Predict.Quantity != 10 {
		t.Errorf("predict %+v: want the load's ramp of 10 predicted", st.Predict)
	}
}
