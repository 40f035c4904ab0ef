package sim

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"
)

// CheckScenario is a short trace with a fixed serving-dyno schedule on which the per-second model and the
// request-by-request simulation are compared.
type CheckScenario struct {
	Name    string
	Model   Model
	Rates   []float64 // per second
	Serving []int     // serving dynos per second (no boot delay: the schedule is what serves)
}

// CheckResult is the agreement of the model with the request simulation on one scenario.
type CheckResult struct {
	Scenario        string  `json:"scenario"`
	Requests        int     `json:"requests"`
	Minutes         int     `json:"minutes"`                 // compared: minutes with at least 200 requests
	MedianMinuteErr float64 `json:"median_minute_p95_error"` // median over minutes of |model-DES|/DES of the minute's p95
	P90MinuteErr    float64 `json:"p90_minute_p95_error"`
	// NoiseMedianErr is the same median for two request simulations with different seeds: how far apart the
	// simulation is from itself, the floor no model can go under.
	NoiseMedianErr float64 `json:"noise_median_minute_p95_error"`
	BreachModel    int     `json:"breach_minutes_model"`
	BreachDES      int     `json:"breach_minutes_des"`
	BreachAgree    int     `json:"breach_minutes_agreeing"` // minutes both call the same way
	// ClearMinutes are the minutes whose p95 (in the request simulation) is more than 10% away from the objective,
	// where a verdict is not a coin toss of the simulation's randomness; ClearAgree of them get the same verdict.
	ClearMinutes int     `json:"clear_minutes"`
	ClearAgree   int     `json:"clear_minutes_agreeing"`
	P95Model     float64 `json:"p95_model_seconds"`
	P95DES       float64 `json:"p95_des_seconds"`
	P99Model     float64 `json:"p99_model_seconds"`
	P99DES       float64 `json:"p99_des_seconds"`
	H12Model     float64 `json:"h12_errors_model"` // requests past the router's timeout
	H12DES       int     `json:"h12_errors_des"`
}

// CrossCheck runs each scenario through the per-second model and through the request-by-request simulation (seeded,
// so the numbers are reproducible) and measures how far apart they are.
func CrossCheck(ctx context.Context, scenarios []CheckScenario, seed uint64) ([]CheckResult, error) {
	out := make([]CheckResult, 0, len(scenarios))
	for _, sc := range scenarios {
		m := sc.Model
		m.Boot = 0
		tr := &Trace{Name: sc.Name, Step: 1, Scale: 1, Rates: sc.Rates}
		res, err := Run(ctx, tr, m, []Contender{Fixed("schedule", slices.Clone(sc.Serving))}, Options{Series: true})
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		model := res[0]
		des := newRequestSim(m.params(), sc.Rates, sc.Serving, seed).run()
		other := newRequestSim(m.params(), sc.Rates, sc.Serving, seed+1000).run()
		cr := CheckResult{Scenario: sc.Name, Requests: des.requests,
			P95Model: model.P95, P95DES: des.p95, P99Model: model.P99, P99DES: des.p99, BreachModel: model.BreachMinutes,
			H12Model: model.H12, H12DES: des.h12}
		var errs, noise []float64
		for i, dm := range des.minutes {
			if dm.requests < 200 {
				continue
			}
			cr.Minutes++
			mp := float64(model.Series.P95[i])
			errs = append(errs, math.Abs(mp-dm.p95)/dm.p95)
			noise = append(noise, math.Abs(other.minutes[i].p95-dm.p95)/dm.p95)
			desBreach := dm.shareAbove > 0.05
			if desBreach {
				cr.BreachDES++
			}
			modelBreach := model.Series.Breach[i]
			if desBreach == modelBreach {
				cr.BreachAgree++
			}
			if obj := m.Objective.Seconds(); math.Abs(dm.p95-obj) > 0.1*obj {
				cr.ClearMinutes++
				if desBreach == modelBreach {
					cr.ClearAgree++
				}
			}
		}
		slices.Sort(errs)
		slices.Sort(noise)
		cr.NoiseMedianErr = sortedQuantile(noise, 0.5)
		cr.MedianMinuteErr = sortedQuantile(errs, 0.5)
		cr.P90MinuteErr = sortedQuantile(errs, 0.9)
		out = append(out, cr)
	}
	return out, nil
}

// WriteCrossCheck prints the agreement table.
func WriteCrossCheck(w io.Writer, rs []CheckResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\tminute p95 error median\tp90\tseed to seed\tbreach min model\trequests\tverdicts agree\tclear minutes agree\tp95 model\trequests\tp99 model\trequests\tH12 model\trequests\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t%d\t%d/%d\t%d/%d\t%s\t%s\t%s\t%s\t%.0f\t%d\t\n", r.Scenario, r.Requests,
			100*r.MedianMinuteErr, 100*r.P90MinuteErr, 100*r.NoiseMedianErr, r.BreachModel, r.BreachDES, r.BreachAgree, r.Minutes, r.ClearAgree, r.ClearMinutes,
			fmtSeconds(r.P95Model), fmtSeconds(r.P95DES), fmtSeconds(r.P99Model), fmtSeconds(r.P99DES), r.H12Model, r.H12DES)
	}
	return tw.Flush()
}

func fmtSeconds(s float64) string {
	return time.Duration(s * 1e9).Round(time.Millisecond).String()
}

// StandardScenarios are the cross-check scenarios quoted in the README: steady load at three utilisations, an
// overload that builds and drains a backlog, a slow ramp through saturation, and for each trace given (scaled so
// it needs several dynos) the oracle's schedule and the same schedule two minutes late, which overloads the app
// whenever the load rises.
func StandardScenarios(ctx context.Context, traces []*Trace) ([]CheckScenario, error) {
	m := DefaultModel()
	const C = 10.0
	steady := func(name string, n int, rho float64, secs int) CheckScenario {
		r := make([]float64, secs)
		s := make([]int, secs)
		for i := range r {
			r[i], s[i] = rho*C*float64(n), n
		}
		return CheckScenario{Name: name, Model: m, Rates: r, Serving: s}
	}
	var out []CheckScenario
	out = append(out, steady("steady rho=0.5 n=4", 4, 0.5, 1800))
	out = append(out, steady("steady rho=0.8 n=10", 10, 0.8, 1800))
	out = append(out, steady("steady rho=0.95 n=30", 30, 0.95, 1800))
	{ // overload: 5 min at 80%, 2 min at 130%, 10 min at 60%
		var r []float64
		var s []int
		add := func(secs int, rho float64) {
			for range secs {
				r = append(r, rho*C*10)
				s = append(s, 10)
			}
		}
		add(300, 0.8)
		add(120, 1.3)
		add(600, 0.6)
		out = append(out, CheckScenario{Name: "overload 130% 2 min n=10", Model: m, Rates: r, Serving: s})
	}
	{ // ramp from 30% to 120% of capacity over 20 minutes with 10 dynos
		secs := 1200
		r := make([]float64, secs)
		s := make([]int, secs)
		for i := range r {
			r[i] = C * 10 * (0.3 + 0.9*float64(i)/float64(secs))
			s[i] = 10
		}
		out = append(out, CheckScenario{Name: "ramp 30%->120% n=10", Model: m, Rates: r, Serving: s})
	}
	for _, tr := range traces {
		res, err := Run(ctx, tr, m, []Contender{Oracle(1, 0)}, Options{PerSecond: true})
		if err != nil {
			return nil, fmt.Errorf("oracle schedule for %s: %w", tr.Name, err)
		}
		serving := res[0].Series.ServingPerSecond
		name := fmt.Sprintf("%s x%g", filepath.Base(tr.Name), tr.Scale)
		out = append(out, CheckScenario{Name: name + " oracle", Model: m, Rates: tr.Rates, Serving: serving})
		late := make([]int, len(serving))
		for i := range late {
			late[i] = serving[max(0, i-120)]
		}
		out = append(out, CheckScenario{Name: name + " 2 min late", Model: m, Rates: tr.Rates, Serving: late})
	}
	return out, nil
}
