package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

func TestJudgeAppliesTheCriteria(t *testing.T) {
	r := func(name, kind string, breach int, hours float64) sim.Result {
		return sim.Result{Name: name, Kind: kind, BreachMinutes: breach, DynoHours: hours}
	}
	res := []sim.Result{
		r("dynopilot", "dynopilot", 10, 100),
		r("hpa", "anchor", 8, 120),       // fewer breaches, more hours: no
		r("judoscale", "anchor", 10, 90), // as many breaches, fewer hours: dominates
		r("hirefire", "anchor", 12, 80),  // more breaches: no
		r("heroku", "anchor", 10, 100),   // the same on both: no
		r("static", "static", 0, 50),     // not an anchor, whatever its numbers
		r("oracle", "oracle", 0, 50),
	}
	row := judge(goalCase{tr: &sim.Trace{Scale: 1}}, res)
	if row.BStar != 8 || row.Bound != 10 || !row.WithinBound {
		t.Errorf("B* %d, bound %v, within %v: want 8, 10 (B*+2) and true", row.BStar, row.Bound, row.WithinBound)
	}
	if row.NotDominated || !slices.Equal(row.DominatedBy, []string{"judoscale"}) {
		t.Errorf("dominated by %v: want judoscale alone", row.DominatedBy)
	}
	if row.Ratio != 2 {
		t.Errorf("ratio %v: want 100/50", row.Ratio)
	}
	res[1].BreachMinutes = 40 // B* 10 now, bound 12.5
	if row := judge(goalCase{tr: &sim.Trace{Scale: 1}}, res); row.BStar != 10 || row.Bound != 12.5 {
		t.Errorf("B* %d, bound %v: want 10 and 12.5 (1.25 B*)", row.BStar, row.Bound)
	}
	if s := summarize([]GoalRow{{Ratio: 1.2}, {Ratio: 1.5}, {Ratio: 1.3}, {Ratio: 9}}, time.Second); s.MedianRatio != 1.4 || !s.Criterion3 {
		t.Errorf("median %v, criterion 3 %v: want 1.4 and met", s.MedianRatio, s.Criterion3)
	}
}

// TestGoalRunsThePluggedPolicy runs the bench on one small trace with an env-file policy in dynopilot's seat: three
// cases at the rotated sizes, the policy held to each case's MAX, and the JSON written.
func TestGoalRunsThePluggedPolicy(t *testing.T) {
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString(sim.TraceHeader + "\n")
	for m := range 180 { // three hours, busy in the middle one
		rate := 10.0
		if m >= 60 && m < 120 {
			rate = 30 + 20*math.Sin(float64(m))
		}
		fmt.Fprintf(&csv, "%d,%g\n", 60*m, rate)
	}
	if err := os.WriteFile(filepath.Join(dir, "tiny.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"POLICY_0_MODE=step", "POLICY_0_UP_ABOVE=50ms", "POLICY_0_DOWN_BELOW=5ms", "POLICY_0_MAX=7"}
	out := filepath.Join(dir, "goal.json")
	o := goalOptions{dir: dir, only: "tiny", json: out, delay: 15 * time.Second}
	var table strings.Builder
	if err := goal(context.Background(), &table, io.Discard, o, fromEnv(benchPolicy{env: env, kind: "queue-time", window: 10 * time.Second, windowSet: true, delay: 15 * time.Second})); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Cases   []GoalRow
		Summary GoalSummary
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Cases) != 3 || got.Summary.Cases != 3 {
		t.Fatalf("%d cases (summary %d): want 3, one per model", len(got.Cases), got.Summary.Cases)
	}
	for i, c := range got.Cases {
		if want := 20 * (i + 1); c.Need != want || c.Max != min(2*want, 100) {
			t.Errorf("case %s/%s: %d dynos at the peak, MAX %d: want %d and %d", c.Trace, c.Model, c.Need, c.Max, want, min(2*want, 100))
		}
		d := c.Results[0]
		if d.Name != "dynopilot" || d.Settings["MAX"] != fmt.Sprint(c.Max) || d.Settings["UP_ABOVE"] != "50ms" {
			t.Errorf("case %s/%s: dynopilot ran %s with %v: want the env file's policy with MAX %d", c.Trace, c.Model, d.Name, d.Settings, c.Max)
		}
		if len(c.Results) != 7 || c.Results[6].Name != "oracle" || c.Results[6].DynoHours <= 0 {
			t.Errorf("case %s/%s: %d results ending with %s: want 7 ending with the oracle's", c.Trace, c.Model, len(c.Results), c.Results[len(c.Results)-1].Name)
		}
	}
	if !strings.Contains(table.String(), "| tiny | B | ") || !strings.Contains(table.String(), "Criterion 3") {
		t.Errorf("table:\n%s\nwant a row per case and the summary", table.String())
	}
	if err := goal(context.Background(), io.Discard, io.Discard, goalOptions{dir: dir, only: "nothing"}, recommended(15*time.Second)); err == nil {
		t.Error("-goal-only matching no case: want an error")
	}
}

// The timing run and -tune run the recommended policy from its lines, and read them as the recommended policy reads:
// the request rate and request queue time over 10 s, as late as -delay says. -reading and -window are for an
// -env-file policy, whose first metric reads what its MEASURE says unless -reading is given.
func TestBenchPolicyIsTheRecommendedOneUnlessAnEnvFileIsGiven(t *testing.T) {
	dp, err := dynopilotPolicy(false, "", "", 10*time.Second, false, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := sim.Recommend(sim.DefaultModel(), 100, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pc, r, also, err := dp.load(dp.env)
	if err != nil {
		t.Fatal(err)
	}
	if !dp.recommended || !slices.Equal(dp.env, rec.Env) || r != rec.Reading || !slices.Equal(also, rec.Also) || pc.Policy.Max != 100 {
		t.Errorf("bench policy %v reading %+v and %+v: want the recommended lines %v, reading %+v and %+v", dp.env, r, also, rec.Env, rec.Reading, rec.Also)
	}
	if _, err := dynopilotPolicy(false, "", "rate", 10*time.Second, false, 0); err == nil {
		t.Error("-reading without -env-file: want an error")
	}

	file := filepath.Join(t.TempDir(), "policy.env")
	lines := "POLICY_0_MAX=9\nPOLICY_0_MEASURE=rate\nPOLICY_0_MODE=ratio\nPOLICY_0_PER_DYNO=10\nPOLICY_0_METRIC_2_MEASURE=queue-time\nPOLICY_0_METRIC_2_MODE=step\nPOLICY_0_METRIC_2_UP_ABOVE=100ms\nPOLICY_0_METRIC_2_DOWN_BELOW=20ms\n"
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind      string
		windowSet bool
		want      sim.Reading
	}{
		{"", false, sim.Reading{Kind: sim.ReadingRate, Window: 30 * time.Second, Delay: 15 * time.Second}},
		{"latency", true, sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second}},
	} {
		dp, err := dynopilotPolicy(true, file, c.kind, 30*time.Second, c.windowSet, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, r, also, err := dp.load(dp.env)
		if err != nil {
			t.Fatal(err)
		}
		if dp.recommended || r != c.want || len(also) != 1 || also[0].Kind != sim.ReadingQueueTime {
			t.Errorf("-reading %q: reads %+v and %+v, want %+v and queue time", c.kind, r, also, c.want)
		}
	}
}
