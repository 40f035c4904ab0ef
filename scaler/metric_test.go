package scaler_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/scaler"
)

// twoMetrics is a web policy on two metrics, reacting at once: the request rate in ratio mode (10 per dyno) and
// the queue time in step mode (up by 2 above 50ms, down by 1 below 5ms).
func twoMetrics(t *testing.T) *policy.Policy {
	t.Helper()
	st := settings("web", "20")
	st.UpCooldown, st.DownCooldown = "0s", "0s"
	st.RuleSettings = policy.RuleSettings{Mode: "ratio", PerDyno: "10", Safety: "0", Tolerance: "0.1", UpBy: "1", DownBy: "1", Activation: "0"}
	p, err := st.ParseMetrics([]policy.RuleSettings{{Mode: "step", UpAbove: "50ms", DownBelow: "5ms", UpBy: "2", DownBy: "1",
		Tolerance: "0.1", Safety: "0", Activation: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// multiWorld is a world whose one policy is p, reading its own metric from rate and its second from queue, both
// through the source instruments (their timeouts and reading metrics) as the program wraps them.
func multiWorld(t *testing.T, p *policy.Policy, rate, queue metrics.Source, timeouts ...time.Duration) *world {
	t.Helper()
	return multiWorldWith(t, p, rate, queue, timeouts, func(*scaler.Options) {})
}

// multiWorldWith is multiWorld with the scaler's options changed by opt before it is made.
func multiWorldWith(t *testing.T, p *policy.Policy, rate, queue metrics.Source, timeouts []time.Duration, opt func(*scaler.Options)) *world {
	t.Helper()
	w := &world{clock: &clock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}, reg: prometheus.NewRegistry()}
	w.heroku = fake.New(fake.Options{Token: "tok", Now: w.clock.Now})
	w.heroku.AddApp("shop", fake.Process{Type: "web", Quantity: 8})
	srv := httptest.NewServer(w.heroku)
	t.Cleanup(srv.Close)
	client, err := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Hour)
	in, err := metrics.NewInstruments(w.reg)
	if err != nil {
		t.Fatal(err)
	}
	timeouts = append(timeouts, 5*time.Second, 5*time.Second)
	rateSpec := metrics.Spec{Kind: "logdrain", Measure: "rate", Timeout: timeouts[0]}
	queueSpec := metrics.Spec{Kind: "hirefire", Measure: "queue-time", Timeout: timeouts[1]}
	m := scaler.Managed{Rules: p, Source: in.Wrap(p.Name(), rateSpec, rate), SourceKind: rateSpec.Kind, Measure: rateSpec.Measure,
		Timeout: rateSpec.Timeout, Interval: "@every 15s",
		Also: []scaler.Metric{{Source: in.Wrap(p.Name(), queueSpec, queue), SourceKind: queueSpec.Kind, Measure: queueSpec.Measure, Timeout: queueSpec.Timeout}}}
	o := scaler.Options{Heroku: client, Policies: []scaler.Managed{m}, Refresh: time.Nanosecond, APIBudget: 4050,
		Registerer: w.reg, Now: w.clock.Now, PatchTimeout: time.Second}
	opt(&o)
	w.s, err = scaler.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAFailedFurtherMetricNeverScalesDown(t *testing.T) {
	rate, queue := &source{value: 30}, &source{}
	queue.set(0, errors.New("hirefire: 503"))
	w := multiWorld(t, twoMetrics(t), rate, queue)

	// The rate wants 3 of the 8 dynos; the queue time cannot be read: hold, for as long as it fails.
	for range 3 {
		w.tick(t)
		w.clock.Advance(15 * time.Second)
	}
	if q := w.quantity(t, "web"); q != 8 || w.patches() != 0 {
		t.Fatalf("web = %d with %d PATCHes while metric 2 fails, want 8 and none", q, w.patches())
	}
	st := w.status(t, "shop/web")
	if st.Reason != string(policy.ReasonReadingFailed) || !strings.Contains(st.Explanation, "metric 2") ||
		!strings.Contains(st.ReadingError, "metric 2: ") || !strings.Contains(st.ReadingError, "503") {
		t.Errorf("status %+v: want reading_failed explained by metric 2, its error named", st)
	}
	if len(st.Metrics) != 2 || st.Metrics[0].Value == nil || *st.Metrics[0].Value != 30 || !st.Metrics[0].OK ||
		st.Metrics[1].OK || st.Metrics[1].Value != nil || !strings.Contains(st.Metrics[1].Error, "503") {
		t.Errorf("status metrics %+v", st.Metrics)
	}
	if st.Reading == nil || *st.Reading != 30 || st.Target != 10 {
		t.Errorf("status reading %v target %v: want metric 1's, 30 against PER_DYNO 10", st.Reading, st.Target)
	}
	if got := counter(t, w.reg, "dynopilot_reading_errors_total", map[string]string{"policy": "shop/web", "source": "hirefire"}); got != 3 {
		t.Errorf("metric 2's reading errors %v, want 3", got)
	}
	if got := counter(t, w.reg, "dynopilot_reading", map[string]string{"policy": "shop/web"}); got != 30 {
		t.Errorf("dynopilot_reading %v, want metric 1's 30", got)
	}

	// The rate needs more: up, metric 2 failing or not.
	rate.set(150, nil)
	w.tick(t)
	if q := w.quantity(t, "web"); q != 15 {
		t.Fatalf("web = %d for a rate of 150 with metric 2 failing, want 15", q)
	}

	// Metric 2 reads again, below DOWN_BELOW: down, by its step of 1 (the larger recommendation beside the rate's 3).
	w.clock.Advance(15 * time.Second)
	rate.set(30, nil)
	queue.set(0.001, nil)
	w.tick(t)
	if q := w.quantity(t, "web"); q != 14 {
		t.Fatalf("web = %d once metric 2 reads again, want 14", q)
	}
	st = w.status(t, "shop/web")
	if st.ReadingError != "" || !st.Metrics[1].OK || st.Metrics[1].Value == nil || *st.Metrics[1].Value != 0.001 {
		t.Errorf("status after metric 2 recovered: %+v", st)
	}
	for metric, want := range map[string]float64{"1": 30, "2": 0.001} {
		if got := counter(t, w.reg, "dynopilot_metric_reading", map[string]string{"policy": "shop/web", "metric": metric}); got != want {
			t.Errorf("dynopilot_metric_reading{metric=%q} = %v, want %v", metric, got, want)
		}
	}
}

func TestTheLargestMetricWinsThroughTheScaler(t *testing.T) {
	rate, queue := &source{value: 60}, &source{value: 0.2}
	w := multiWorld(t, twoMetrics(t), rate, queue)
	w.tick(t) // the rate wants 6, the queue time 8+2
	if q := w.quantity(t, "web"); q != 10 {
		t.Fatalf("web = %d, want 10 (metric 2's step up beats metric 1's 6)", q)
	}
	if st := w.status(t, "shop/web"); st.Reason != string(policy.ReasonAboveThreshold) || !strings.Contains(st.Explanation, "metric 2") {
		t.Errorf("status %+v: want above_threshold explained by metric 2", st)
	}
}

// slowSource answers after delay, or fails at its context's deadline.
type slowSource struct {
	delay time.Duration
	value float64
}

func (s slowSource) Read(ctx context.Context) (metrics.Reading, error) {
	select {
	case <-time.After(s.delay):
		return metrics.Reading{Value: s.value, At: time.Now()}, nil
	case <-ctx.Done():
		return metrics.Reading{}, ctx.Err()
	}
}

func TestEachMetricIsReadConcurrentlyWithItsOwnTimeout(t *testing.T) {
	// Both take 400ms: read one after the other the tick would take 800ms.
	w := multiWorld(t, twoMetrics(t), slowSource{delay: 400 * time.Millisecond, value: 30}, slowSource{delay: 400 * time.Millisecond, value: 0.01})
	start := time.Now()
	w.tick(t)
	if took := time.Since(start); took > 700*time.Millisecond {
		t.Errorf("a tick reading two metrics of 400ms each took %v: not read concurrently", took)
	}
	if st := w.status(t, "shop/web"); !st.Metrics[0].OK || !st.Metrics[1].OK {
		t.Errorf("metrics %+v", st.Metrics)
	}

	// Metric 2 hangs past its own TIMEOUT of 300ms; metric 1 answers in 100ms with a TIMEOUT of 5s.
	w = multiWorld(t, twoMetrics(t), slowSource{delay: 100 * time.Millisecond, value: 30}, slowSource{delay: time.Hour}, 5*time.Second, 300*time.Millisecond)
	start = time.Now()
	w.tick(t)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a tick with metric 2 hanging past its 300ms TIMEOUT took %v", took)
	}
	st := w.status(t, "shop/web")
	if !st.Metrics[0].OK || st.Metrics[1].OK || !strings.Contains(st.Metrics[1].Error, "TIMEOUT=300ms") {
		t.Errorf("metrics %+v: want metric 1 read, metric 2 failed at its own TIMEOUT", st.Metrics)
	}
	if q := w.quantity(t, "web"); q != 8 {
		t.Errorf("web = %d with metric 2 timed out, want 8 (held)", q)
	}
}

func TestMetricsInTheAPIAndOnTheStatusPage(t *testing.T) {
	w := multiWorld(t, twoMetrics(t), &source{value: 30}, &source{value: 0.02})
	w.tick(t)
	h := w.s.Handler(w.reg)
	get := func(path string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	var api struct {
		Policies []struct {
			Metrics []struct {
				Metric                int
				Source, Measure, Mode string
				Target                float64
				Value                 *float64
				OK                    bool
				Error                 string
			}
		}
	}
	if err := json.Unmarshal([]byte(get("/api/policies")), &api); err != nil || len(api.Policies) != 1 {
		t.Fatalf("/api/policies: %v", err)
	}
	ms := api.Policies[0].Metrics
	if len(ms) != 2 || ms[0].Metric != 1 || ms[0].Source != "logdrain" || ms[0].Measure != "rate" || ms[0].Mode != "ratio" || ms[0].Target != 10 ||
		*ms[0].Value != 30 || !ms[0].OK || ms[1].Metric != 2 || ms[1].Source != "hirefire" || ms[1].Measure != "queue-time" ||
		ms[1].Mode != "step" || ms[1].Target != 0.05 || *ms[1].Value != 0.02 || !ms[1].OK {
		t.Errorf("/api/policies metrics %+v", ms)
	}
	page := get("/")
	for _, want := range []string{"1: 30", "logdrain rate · ratio 10", "2: 0.02", "hirefire queue-time · step 0.05"} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
}

// TestTheMetricsOfASavedStatus: a new process shows the last reading saved for each of its metrics, and nothing
// of a metric saved when the policy read another one.
func TestTheMetricsOfASavedStatus(t *testing.T) {
	store := &memory{}
	withStore := func(o *scaler.Options) { o.State = store }
	down := errors.New("down")
	first := multiWorldWith(t, twoMetrics(t), &source{value: 30}, &source{value: 0.02}, nil, withStore)
	first.tick(t)

	second := multiWorldWith(t, twoMetrics(t), &source{err: down}, &source{err: down}, nil, withStore)
	second.tick(t)
	st := second.status(t, "shop/web")
	if st.Metrics[0].Value == nil || *st.Metrics[0].Value != 30 || st.Metrics[1].Value == nil || *st.Metrics[1].Value != 0.02 || st.Metrics[1].OK {
		t.Errorf("metrics after a restart whose readings fail: %+v; want the saved readings, failing now", st.Metrics)
	}

	// Now the policy's own metric is a sidekiq queue's latency in target mode: nothing of the saved rate is its.
	other := twoMetrics(t)
	other.Rule = policy.Rule{Mode: policy.ModeTarget, Target: 10, Tolerance: 0.1, UpBy: 1, DownBy: 1}
	third := newWorldWith(t, func(o *scaler.Options) {
		o.State = store
		o.Policies = []scaler.Managed{{Rules: other, Source: &source{err: down}, SourceKind: "sidekiq", Measure: "latency", Interval: "@every 15s",
			Also: []scaler.Metric{{Source: &source{err: down}, SourceKind: "hirefire", Measure: "queue-time"}}}}
	})
	third.tick(t)
	st = third.status(t, "shop/web")
	if st.Metrics[0].Source != "sidekiq" || st.Metrics[0].Mode != "target" || st.Metrics[0].Value != nil || st.Target != 10 ||
		st.Metrics[1].Value == nil || *st.Metrics[1].Value != 0.02 {
		t.Errorf("metrics after a restart with another metric 1: %+v (target %v): want metric 1 as configured, metric 2's saved reading", st.Metrics, st.Target)
	}
}
