package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one simulation: what was run and what happened to every contender.
type Report struct {
	Trace      string   `json:"trace"`
	Step       int      `json:"trace_step_seconds"`
	Scale      float64  `json:"scale"`
	Seconds    int      `json:"seconds"`
	PeakRate   float64  `json:"peak_rate_per_second"`
	Model      ModelDoc `json:"model"`
	Results    []Result `json:"contenders"`
	BestAnchor string   `json:"best_anchor,omitempty"`
	// Policy is the recommended policy's environment lines when that is what ran (no --env-file), to copy.
	Policy []string `json:"policy_env,omitempty"`
}

// ModelDoc is the model as reported (durations in seconds, for machines).
type ModelDoc struct {
	Capacity      float64 `json:"capacity_per_second"`
	ServiceTime   float64 `json:"service_time_seconds"`
	PerDyno       int     `json:"concurrency_per_dyno"`
	Boot          float64 `json:"boot_seconds"`
	Objective     float64 `json:"objective_p95_seconds"`
	Size          string  `json:"size"`
	Reading       string  `json:"reading"`
	ReadingWindow float64 `json:"reading_window_seconds"`
	ReadingDelay  float64 `json:"reading_delay_seconds"`
	// Also are the further metrics' readings of a multi-metric policy, e.g. "queue-time over 10s".
	Also []string `json:"further_readings,omitempty"`
	// RouterTimeout is when Heroku's router gives up on a request (H12): such requests are counted as errors and
	// enter the latency percentiles at this value.
	RouterTimeout float64 `json:"router_timeout_seconds"`
}

// NewReport gathers a run's results and picks the best anchor: the anchor with the fewest breach minutes, then the
// fewest dyno-hours.
func NewReport(tr *Trace, m Model, r Reading, results []Result, also ...Reading) *Report {
	p := m.params()
	rep := &Report{Trace: tr.Name, Step: tr.Step, Scale: tr.Scale, Seconds: tr.Seconds(), PeakRate: tr.Peak(), Results: results,
		Model: ModelDoc{Capacity: m.Capacity, ServiceTime: p.service, PerDyno: p.perDyno, Boot: m.Boot.Seconds(),
			Objective: p.objective, Size: m.Size, Reading: string(r.Kind), ReadingWindow: r.Window.Seconds(), ReadingDelay: r.Delay.Seconds(),
			RouterTimeout: RouterTimeout.Seconds()}}
	for _, a := range also {
		rep.Model.Also = append(rep.Model.Also, fmt.Sprintf("%s over %s", a.Kind, dur(a.Window.Seconds())))
	}
	best := -1
	for i, res := range results {
		if res.Kind != "anchor" {
			continue
		}
		if best < 0 || res.BreachMinutes < results[best].BreachMinutes ||
			(res.BreachMinutes == results[best].BreachMinutes && res.DynoHours < results[best].DynoHours) {
			best = i
		}
	}
	if best >= 0 {
		rep.BestAnchor = results[best].Name
	}
	return rep
}

// Result returns the named contender's result, or nil.
func (r *Report) Result(name string) *Result {
	for i := range r.Results {
		if r.Results[i].Name == name {
			return &r.Results[i]
		}
	}
	return nil
}

// WriteTable prints the comparison a person reads: one row per contender. H12 errors are the requests the router
// gave up on after its 30 s timeout, with their share of all requests; p95 and p99 count them at 30 s.
func (r *Report) WriteTable(w io.Writer) error {
	if len(r.Policy) > 0 {
		fmt.Fprintln(w, "# dynopilot's recommended policy for this app, as simulated below. Copy it, with POLICY_0_APP, POLICY_0_PROCESS and")
		fmt.Fprintln(w, "# POLICY_0_SOURCE (logdrain reads both metrics from Heroku's router logs; see the README's backtesting section):")
		for _, kv := range r.Policy {
			fmt.Fprintln(w, kv)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "trace %s (%s at %d s steps, scale %g, peak %.1f/s); %g req/s per dyno, service %s, %d at once, boot %s; objective p95 %s; reading %s over %s, %s late%s\n",
		r.Trace, time.Duration(r.Seconds)*time.Second, r.Step, r.Scale, r.PeakRate, r.Model.Capacity, dur(r.Model.ServiceTime), r.Model.PerDyno,
		dur(r.Model.Boot), dur(r.Model.Objective), r.Model.Reading, dur(r.Model.ReadingWindow), dur(r.Model.ReadingDelay), r.Model.alsoText())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "contender\tbreach min\tH12 errors\tp95\tp99\tdyno-hours\tcost (%s)\tscale events\tpeak\t\n", r.Model.Size)
	for _, res := range r.Results {
		name := res.Name
		if res.Name == r.BestAnchor {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.1f\t$%.2f\t%d\t%d\t\n", name, res.BreachMinutes, errorsText(res.H12, res.Requests),
			dur(res.P95), dur(res.P99), res.DynoHours, res.Cost, res.ScaleEvents, res.PeakDynos)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.BestAnchor != "" {
		_, err := fmt.Fprintln(w, "* best anchor: fewest breach minutes, then fewest dyno-hours")
		return err
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// errorsText prints an expected count of errors and its share of the requests: "0", "1234 (0.52%)". Under half a
// request rounds to 0.
func errorsText(n, of float64) string {
	if n < 0.5 || of <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.0f (%s)", n, percent(n/of))
}

// percent prints a share with two significant digits: 52%, 1.3%, 0.052%.
func percent(f float64) string {
	return strconv.FormatFloat(100*f, 'g', 2, 64) + "%"
}

// dur prints seconds as a short duration: 312ms, 1.25s, 4m3s.
func dur(s float64) string {
	d := time.Duration(s * 1e9)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// alsoText names the further readings after the first: " and queue-time over 10s".
func (m ModelDoc) alsoText() string {
	if len(m.Also) == 0 {
		return ""
	}
	return " and " + strings.Join(m.Also, " and ")
}
