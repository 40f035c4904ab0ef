package sim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

// A tested policy's metrics read what their settings say, as the daemon's would: MEASURE for what, WINDOW for how
// long (a further metric on the policy's SOURCE takes the policy's WINDOW, on another SOURCE its own or the flag's),
// --reading and --window override the first metric only.
func TestPolicyReadingsFollowTheSettings(t *testing.T) {
	env := []string{"POLICY_0_MAX=10", "POLICY_0_SOURCE=logdrain", "POLICY_0_MEASURE=rate", "POLICY_0_WINDOW=20s",
		"POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=10",
		"POLICY_0_METRIC_2_MEASURE=queue-time", "POLICY_0_METRIC_2_MODE=step", "POLICY_0_METRIC_2_UP_ABOVE=100ms", "POLICY_0_METRIC_2_DOWN_BELOW=10ms",
		"POLICY_0_METRIC_3_SOURCE=prometheus", "POLICY_0_METRIC_3_QUERY=up", "POLICY_0_METRIC_3_TARGET=300ms",
	}
	pc, err := sim.LoadPolicy(env, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Policy.Also) != 2 {
		t.Fatalf("%d further metrics, want 2", len(pc.Policy.Also))
	}
	r, also, err := sim.PolicyReadings(env, 0, pc.Policy, "", 30*time.Second, false, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []sim.Reading{
		{Kind: sim.ReadingRate, Window: 20 * time.Second, Delay: 15 * time.Second},      // its MEASURE and WINDOW
		{Kind: sim.ReadingQueueTime, Window: 20 * time.Second, Delay: 15 * time.Second}, // the policy's SOURCE: its WINDOW
		{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second},   // another SOURCE, no MEASURE: latency over --window
	}
	if got := append([]sim.Reading{r}, also...); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("readings %+v, want %+v", got, want)
	}
	r, also, err = sim.PolicyReadings(env, 0, pc.Policy, "queue-size", time.Minute, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r != (sim.Reading{Kind: sim.ReadingQueueSize, Window: time.Minute}) || also[0].Window != 20*time.Second {
		t.Errorf("--reading queue-size --window 1m: %+v and %+v, want them on the first metric only", r, also)
	}
	bad := append(env, "POLICY_0_METRIC_2_WINDOW=soon")
	if _, _, err := sim.PolicyReadings(bad, 0, pc.Policy, "", 30*time.Second, false, 0); err == nil || !strings.Contains(err.Error(), "POLICY_0_METRIC_2_WINDOW=soon") {
		t.Errorf("a bad WINDOW: %v, want an error naming POLICY_0_METRIC_2_WINDOW=soon", err)
	}
	load := append(env[:len(env):len(env)], "POLICY_0_METRIC_3_MEASURE=load")
	if _, _, err := sim.PolicyReadings(load, 0, pc.Policy, "", 30*time.Second, false, 0); err == nil || !strings.Contains(err.Error(), "MEASURE=load") {
		t.Errorf("MEASURE=load: %v, want an error naming it", err)
	}
}
