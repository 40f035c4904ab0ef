package main_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// metricsEnv is a web policy on two HireFire-style endpoints: its own metric, a load in ratio mode (one dyno per
// unit), and a second one from another endpoint in step mode (up above 1, down by 1 below 0.5).
func metricsEnv(h *heroku, load, queue *reading, extra ...string) []string {
	return baseEnv(h, load, append([]string{"POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1",
		"POLICY_0_METRIC_2_SOURCE_URL=" + queue.srv.URL + "/hirefire/t/info", "POLICY_0_METRIC_2_MODE=step",
		"POLICY_0_METRIC_2_UP_ABOVE=1", "POLICY_0_METRIC_2_DOWN_BELOW=0.5"}, extra...)...)
}

type metricStatus struct {
	Metric int
	Source string
	Value  *float64
	OK     bool
	Error  string
}

func (d *daemon) metricStatuses(t *testing.T, name string) []metricStatus {
	t.Helper()
	var body struct {
		Policies []struct {
			Policy  string
			Metrics []metricStatus
		}
	}
	getJSON(t, d.url+"/api/policies", &body)
	for _, p := range body.Policies {
		if p.Policy == name {
			return p.Metrics
		}
	}
	t.Fatalf("no policy %s in /api/policies", name)
	return nil
}

func TestAFailingSecondMetricHoldsEveryScaleDown(t *testing.T) {
	h := startHeroku(t)
	load, queue := newReading(t, 4), newReading(t, 0.1)
	d := startDaemon(t, metricsEnv(h, load, queue))
	waitFor(t, "web scaled to 4 by the load", 20*time.Second, func() bool { return h.quantity(t, "web") == 4 })

	queue.setFail(true)
	load.set(1) // the load alone would go down to 1
	waitFor(t, "metric 2 failing", 10*time.Second, func() bool {
		ms := d.metricStatuses(t, "shop/web")
		return len(ms) == 2 && !ms[1].OK && ms[1].Error != "" && ms[0].OK && ms[0].Value != nil && *ms[0].Value == 1
	})
	time.Sleep(3 * time.Second) // three ticks more
	if q := h.quantity(t, "web"); q != 4 {
		t.Fatalf("web = %d while metric 2 fails, want 4: a failed metric must never let a scale-down through", q)
	}
	if st := d.status(t, "shop/web"); st.Reason != "reading_failed" {
		t.Errorf("reason %q while metric 2 fails, want reading_failed", st.Reason)
	}
	m := d.metrics(t)
	for _, want := range []string{`dynopilot_metric_reading{metric="1",policy="shop/web"} 1`, `dynopilot_reading{policy="shop/web"} 1`,
		`dynopilot_reading_errors_total{policy="shop/web",source="hirefire"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	queue.setFail(false) // below DOWN_BELOW: down one at a time, to MIN 1
	waitFor(t, "web down to 1 once metric 2 reads again", 20*time.Second, func() bool { return h.quantity(t, "web") == 1 })
	if ms := d.metricStatuses(t, "shop/web"); !ms[1].OK || ms[1].Value == nil || *ms[1].Value != 0.1 {
		t.Errorf("metric 2 after it recovered: %+v", ms[1])
	}
	d.noToken(t)
}

func TestCheckShowsEveryMetricsReading(t *testing.T) {
	h := startHeroku(t)
	load, queue := newReading(t, 3), newReading(t, 2)
	build(t)
	cmd := exec.Command(bins.dynopilot, "check", "--json")
	cmd.Env = metricsEnv(h, load, queue)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	var rep struct {
		OK       bool
		Policies []struct {
			Explanation string
			Desired     *int
			Metrics     []struct {
				Metric  int
				Source  string
				Reading *float64
			}
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil || !rep.OK || len(rep.Policies) != 1 {
		t.Fatalf("report %s", out)
	}
	p := rep.Policies[0]
	if len(p.Metrics) != 2 || *p.Metrics[0].Reading != 3 || *p.Metrics[1].Reading != 2 || !strings.Contains(p.Metrics[1].Source, queue.srv.URL) ||
		*p.Desired != 3 || !strings.Contains(p.Explanation, "of the 2 metrics") {
		t.Errorf("check: %s", out)
	}

	queue.setFail(true)
	cmd = exec.Command(bins.dynopilot, "check")
	cmd.Env = metricsEnv(h, load, queue)
	text, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(text), "problem: POLICY_0_METRIC_2_SOURCE: hirefire") ||
		!strings.Contains(string(text), "shop/web: metric 1 (hirefire") {
		t.Errorf("check with metric 2 failing: exit %d\n%s", cmd.ProcessState.ExitCode(), text)
	}
}
