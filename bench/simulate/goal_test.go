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
	if err := goal(context.Background(), &table, io.Discard, o, fromEnv(env, sim.Reading{Kind: sim.ReadingQueueTime, Window: 10 * time.Second, Delay: 15 * time.Second})); err != nil {
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
