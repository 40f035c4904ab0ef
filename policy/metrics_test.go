package policy_test

import (
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/policy"
)

// multiPolicy is a policy on two metrics: the request rate in ratio mode (10 per dyno, no headroom) and request
// queue time in step mode (up by 2 above 50ms, down by 1 below 5ms), reacting at once.
func multiPolicy(t *testing.T, kv ...string) *policy.Policy {
	t.Helper()
	s := load(t, append(append([]string(nil), base...), append([]string{"MODE", "ratio", "PER_DYNO", "10", "MAX", "50"}, kv...)...)...)
	p, err := s.ParseMetrics([]policy.RuleSettings{{Mode: "step", UpAbove: "50ms", DownBelow: "5ms", UpBy: "2", DownBy: "1",
		Tolerance: "0.1", Safety: "0", Activation: "0"}})
	if err != nil {
		t.Fatalf("ParseMetrics: %v", err)
	}
	return p
}

func TestTheLargestRecommendationWins(t *testing.T) {
	p := multiPolicy(t)
	for _, tc := range []struct {
		name      string
		rate, qt  float64
		cur, want int
		metric    int
		reason    policy.Reason
		explains  string
	}{
		{"the rate needs more", 120, 0.01, 8, 12, 0, policy.ReasonRatio, "metric 1: value 120 at PER_DYNO=10 needs 12 (the largest recommendation of the 2 metrics): 8 -> 12"},
		{"queue time needs more", 60, 0.2, 8, 10, 1, policy.ReasonAboveThreshold, "metric 2 (METRIC_2_): value 0.2s is above UP_ABOVE=0.05s"},
		{"both agree to go down: the larger of the two", 30, 0.001, 8, 7, 1, policy.ReasonBelowThreshold, "8 -> 7"},
		{"queue time holds what the rate would drop", 30, 0.02, 8, 8, 1, policy.ReasonWithinThresholds, "stay at 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := policy.Decide(p, nil, policy.Input{Now: t0, Current: tc.cur, Value: tc.rate, ReadingOK: true,
				Also: []policy.Reading{{Value: tc.qt, OK: true}}})
			if d.Desired != tc.want || d.Metric != tc.metric || d.Reason != tc.reason {
				t.Errorf("rate %v, queue time %v at %d: %d by metric %d (%s), want %d by metric %d (%s)",
					tc.rate, tc.qt, tc.cur, d.Desired, d.Metric, d.Reason, tc.want, tc.metric, tc.reason)
			}
			if e := d.Explain(); !strings.Contains(e, tc.explains) {
				t.Errorf("Explain() = %q, want it to contain %q", e, tc.explains)
			}
		})
	}
}

func TestAFailedMetricBlocksAScaleDownOnly(t *testing.T) {
	p := multiPolicy(t)
	for _, tc := range []struct {
		name         string
		rate         policy.Reading
		qt           []policy.Reading
		cur, want    int
		reason       policy.Reason
		readingOK    bool
		explains     string
		failedMetric int
	}{
		{"queue time failed, the rate would go down: hold", policy.Reading{Value: 30, OK: true}, []policy.Reading{{OK: false}}, 8, 8,
			policy.ReasonReadingFailed, false, "the reading of metric 2 (METRIC_2_) failed: holding at 8 (a metric that cannot be read blocks a scale-down; the others recommend 3)", 1},
		{"queue time missing (no reading given): hold", policy.Reading{Value: 30, OK: true}, nil, 8, 8,
			policy.ReasonReadingFailed, false, "metric 2 (METRIC_2_) failed", 1},
		{"queue time negative: hold", policy.Reading{Value: 30, OK: true}, []policy.Reading{{Value: -1, OK: true}}, 8, 8,
			policy.ReasonReadingFailed, false, "no reading can be negative", 1},
		{"the rate failed, queue time would go down: hold", policy.Reading{OK: false}, []policy.Reading{{Value: 0.001, OK: true}}, 8, 8,
			policy.ReasonReadingFailed, false, "the reading of metric 1 failed", 0},
		{"queue time failed, the rate goes up: up", policy.Reading{Value: 150, OK: true}, []policy.Reading{{OK: false}}, 8, 15,
			policy.ReasonRatio, true, "8 -> 15", 0},
		{"both failed: the usual failed reading", policy.Reading{OK: false}, []policy.Reading{{OK: false}}, 8, 8,
			policy.ReasonReadingFailed, false, "holding at 8 (a failed reading never scales down)", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := policy.Decide(p, nil, policy.Input{Now: t0, Current: tc.cur, Value: tc.rate.Value, ReadingOK: tc.rate.OK, Also: tc.qt})
			if d.Desired != tc.want || d.Reason != tc.reason || d.ReadingOK != tc.readingOK {
				t.Errorf("%d (%s, reading ok %v), want %d (%s, %v)", d.Desired, d.Reason, d.ReadingOK, tc.want, tc.reason, tc.readingOK)
			}
			if !tc.readingOK && d.Metric != tc.failedMetric {
				t.Errorf("Metric = %d, want the failed metric %d", d.Metric, tc.failedMetric)
			}
			if e := d.Explain(); !strings.Contains(e, tc.explains) {
				t.Errorf("Explain() = %q, want it to contain %q", e, tc.explains)
			}
		})
	}
}

// A metric that keeps failing counts towards FALLBACK_AFTER even while another is read: the fallback floor is for
// a policy flying partly blind.
func TestAFailingMetricCountsTowardsTheFallback(t *testing.T) {
	p := multiPolicy(t, "FALLBACK_AFTER", "2", "FALLBACK_QUANTITY", "5")
	var st policy.State
	in := policy.Input{Now: t0, Current: 3, Value: 10, ReadingOK: true, Also: []policy.Reading{{OK: false}}}
	policy.Decide(p, &st, in)
	if st.Failures() != 1 {
		t.Fatalf("failures after one failed metric = %d, want 1", st.Failures())
	}
	in.Also[0] = policy.Reading{Value: 0.01, OK: true}
	policy.Decide(p, &st, in)
	if st.Failures() != 0 {
		t.Errorf("failures after every metric was read = %d, want 0", st.Failures())
	}
}

func TestMetricSettingsAreNamedWithTheirPrefix(t *testing.T) {
	s := load(t, append(append([]string(nil), base...), "MODE", "ratio", "PER_DYNO", "10")...)
	_, err := s.ParseMetrics([]policy.RuleSettings{{Mode: "step", UpAbove: "5ms", DownBelow: "50ms", UpBy: "1", DownBy: "1",
		Tolerance: "0.1", Safety: "0", Activation: "0"}, {Mode: "nope", Tolerance: "0.1", UpBy: "1", DownBy: "1", Safety: "0", Activation: "0"}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"METRIC_2_DOWN_BELOW", "METRIC_3_MODE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestPredictionRaisesOnly(t *testing.T) {
	p := multiPolicy(t, "PREDICT", "true")
	in := policy.Input{Now: t0, Current: 8, Value: 75, ReadingOK: true, Also: []policy.Reading{{Value: 0.01, OK: true}}}
	in.Predicted = 14
	d := policy.Decide(p, nil, in)
	if d.Desired != 14 || d.Reason != policy.ReasonPredicted {
		t.Errorf("predicted 14 over a recommendation of 8: %d (%s), want 14 (predicted)", d.Desired, d.Reason)
	}
	if e := d.Explain(); !strings.Contains(e, "needs 14 by the time a new dyno would serve (PREDICT): 8 -> 14") {
		t.Errorf("Explain() = %q", e)
	}
	in.Predicted = 3 // below what the readings need: no effect
	if d := policy.Decide(p, nil, in); d.Desired != 8 || d.Reason == policy.ReasonPredicted {
		t.Errorf("a prediction under the readings changed the decision: %d (%s)", d.Desired, d.Reason)
	}
	in.Predicted = 14
	off := multiPolicy(t) // PREDICT unset: Input.Predicted is ignored
	if d := policy.Decide(off, nil, in); d.Desired != 8 {
		t.Errorf("without PREDICT a prediction raised to %d", d.Desired)
	}
	if n := p.PredictedQuantity(75); n != 8 {
		t.Errorf("PredictedQuantity(75) = %d, want 8 by the ratio metric", n)
	}
}

func TestPredictNeedsARatioMetric(t *testing.T) {
	_, err := load(t, append(append([]string(nil), base...), "PREDICT", "true")...).Parse()
	if err == nil || !strings.Contains(err.Error(), "PREDICT") || !strings.Contains(err.Error(), "ratio mode") {
		t.Errorf("PREDICT on a target-mode policy: %v, want an error naming PREDICT and ratio mode", err)
	}
}
