package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/chart"
)

// Chart layout: two columns (dynopilot, the best anchor) of three panels sharing their time axis and, across
// columns, their value axes (package chart shares fitted axes row by row), so the eye compares like with like.
const (
	chartW       = 1280
	chartH       = 760
	chartBuckets = 560 // points per series, about one per pixel column; each is the maximum over its time bucket
)

// Colours of the simulator's chart, kept from the chart it drew before package chart, so old and new pictures
// compare.
const (
	colorLoad     = "#9ecae1"
	colorCapacity = "#08519c"
	colorBooting  = "#fdae6b"
	colorServing  = "#e6550d"
	colorLatency  = "#31a354"
	colorBreach   = "#d62728"
	colorH12      = "#67000d"
	colorBound    = "#888888"
)

// ChartFormatHelp says why a chart file must be .svg, for the error that refuses another name: the chart is SVG
// whose text the viewer renders (package chart says why), and a browser turns it into a PNG when one is needed.
const ChartFormatHelp = "expected a file name ending in .svg: the chart is drawn as SVG, which a browser shows " +
	"(for a PNG: chromium --headless --screenshot=chart.png chart.svg)"

// WriteChartFile writes the chart of dynopilot beside the best anchor to path, an .svg file.
func WriteChartFile(path string, rep *Report) error {
	if !strings.EqualFold(filepath.Ext(path), ".svg") {
		return fmt.Errorf("chart %s: %s", path, ChartFormatHelp)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create chart: %w", err)
	}
	w := bufio.NewWriter(f)
	err = WriteSVG(w, rep)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write chart %s: %w", path, err)
	}
	return nil
}

// WriteSVG draws the chart of dynopilot beside the best anchor as one SVG document: per contender, load against
// serving capacity, serving and booting dynos within MIN and MAX, and p95 latency against the objective with the
// minutes in breach marked, and the minutes with H12 errors (requests the router gave up on at its timeout).
func WriteSVG(w io.Writer, rep *Report) error {
	c, err := simChart(rep)
	if err != nil {
		return err
	}
	if err := chart.Render(w, c); err != nil {
		return fmt.Errorf("draw chart: %w", err)
	}
	return nil
}

// chartColumn is one contender's series, bucketed.
type chartColumn struct {
	name                 string
	res                  *Result
	rate, serving, total []float64 // total: serving plus booting
	p95                  []float64
	breach               []int     // breach minutes in the bucket
	h12                  []float64 // H12 errors in the bucket
}

// simChart turns a report into the chart: each series is cut into chartBuckets time buckets, and each bucket
// shows its maximum, so a one-minute spike in a week stays visible.
func simChart(rep *Report) (chart.Chart, error) {
	var cols []chartColumn
	for _, n := range []string{"dynopilot", rep.BestAnchor} {
		if n == "" {
			continue
		}
		r := rep.Result(n)
		if r == nil || r.Series == nil {
			continue
		}
		cols = append(cols, chartColumn{name: n, res: r})
	}
	if len(cols) == 0 {
		return chart.Chart{}, errors.New("chart: no dynopilot or anchor series to draw (run them with series kept)")
	}
	minutes := len(cols[0].res.Series.P95)
	buckets := max(1, min(chartBuckets, minutes))
	perBucket := max(1, float64(minutes)) / float64(buckets) // minutes per bucket
	objective := rep.Model.Objective
	latLo, latHi := objective/8, objective*8
	for i := range cols {
		c := &cols[i]
		s := c.res.Series
		c.rate, c.serving, c.total, c.p95 = make([]float64, buckets), make([]float64, buckets), make([]float64, buckets), make([]float64, buckets)
		c.breach, c.h12 = make([]int, buckets), make([]float64, buckets)
		for m := range s.P95 {
			b := min(buckets-1, int(float64(m)/perBucket))
			c.rate[b] = max(c.rate[b], float64(s.Rate[m]))
			c.serving[b] = max(c.serving[b], float64(s.Serving[m]))
			c.total[b] = max(c.total[b], float64(s.Serving[m]+s.Booting[m]))
			c.p95[b] = max(c.p95[b], float64(s.P95[m]))
			if s.Breach[m] {
				c.breach[b]++
			}
			if m < len(s.H12) {
				c.h12[b] += float64(s.H12[m])
			}
		}
		for _, v := range c.p95 {
			if v > 0 {
				latLo, latHi = min(latLo, v), max(latHi, v)
			}
		}
	}
	latHi = min(latHi, objective*4096)
	// The replay's clock is virtual: the axis counts from the trace's start.
	start := time.Unix(0, 0).UTC()
	at := func(b float64) time.Time { return start.Add(time.Duration(b * perBucket * float64(time.Minute))) }
	names := make([]string, len(cols))
	out := chart.Chart{
		Width: chartW, Height: chartH, Elapsed: true, Start: start, End: start.Add(time.Duration(rep.Seconds) * time.Second),
		Subtitle: fmt.Sprintf("scale %g, %g req/s per dyno, boot %s, objective p95 %s; each point is the maximum over %s",
			rep.Scale, rep.Model.Capacity, dur(rep.Model.Boot), dur(objective), dur(perBucket*60)),
	}
	for i, c := range cols {
		names[i] = c.name
		var load, capacity, total, serving, p95 []chart.Point
		var breaches []chart.Marker
		for b := range buckets {
			t := at(float64(b))
			load = append(load, chart.Point{T: t, V: c.rate[b]})
			capacity = append(capacity, chart.Point{T: t, V: c.serving[b] * rep.Model.Capacity})
			total = append(total, chart.Point{T: t, V: c.total[b]})
			serving = append(serving, chart.Point{T: t, V: c.serving[b]})
			lat := c.p95[b]
			if lat == 0 { // no request in the bucket, so no latency: a gap, not a dive to the axis's bottom
				lat = math.NaN()
			}
			p95 = append(p95, chart.Point{T: at(float64(b) + 0.5), V: lat})
		}
		// Consecutive buckets in breach make one bar, whose tooltip counts its minutes.
		for b := 0; b < buckets; b++ {
			if c.breach[b] == 0 {
				continue
			}
			e, n := b, 0
			for ; e < buckets && c.breach[e] > 0; e++ {
				n += c.breach[e]
			}
			from, to := at(float64(b)), at(float64(e))
			breaches = append(breaches, chart.Marker{Kind: chart.Strip, At: from, Until: to, Name: "breach minutes", Color: colorBreach,
				Title: fmt.Sprintf("%d breach min between %s and %s", n, elapsed(from.Sub(start)), elapsed(to.Sub(start)))})
			b = e
		}
		// Minutes with H12 errors (at least one request, rounded) make a darker bar over the breach bar: they are
		// breaches at their worst, requests that got the router's 503.
		for b := 0; b < buckets; b++ {
			if c.h12[b] < 0.5 {
				continue
			}
			e, n := b, 0.0
			for ; e < buckets && c.h12[e] >= 0.5; e++ {
				n += c.h12[e]
			}
			from, to := at(float64(b)), at(float64(e))
			breaches = append(breaches, chart.Marker{Kind: chart.Strip, At: from, Until: to, Name: "H12 errors", Color: colorH12,
				Title: fmt.Sprintf("%.0f H12 errors (router timeout %s) between %s and %s", n, dur(rep.Model.RouterTimeout),
					elapsed(from.Sub(start)), elapsed(to.Sub(start)))})
			b = e
		}
		latencyRules := []chart.Rule{{Value: objective, Label: "objective " + dur(objective), Color: colorBreach}}
		if c.res.H12 >= 0.5 && rep.Model.RouterTimeout > 0 {
			latencyRules = append(latencyRules, chart.Rule{Value: rep.Model.RouterTimeout,
				Label: "H12 timeout " + dur(rep.Model.RouterTimeout), Color: colorH12})
		}
		var bounds []chart.Rule
		for _, k := range []string{"MAX", "MIN"} {
			if v, err := strconv.ParseFloat(c.res.Settings[k], 64); err == nil {
				bounds = append(bounds, chart.Rule{Value: v, Label: k + " " + c.res.Settings[k], Color: colorBound})
			}
		}
		r := c.res
		out.Columns = append(out.Columns, chart.Column{
			Title: c.name,
			Note: fmt.Sprintf("%d breach min, %s H12, %.0f dyno-h, %d events", r.BreachMinutes, errorsText(r.H12, r.Requests),
				r.DynoHours, r.ScaleEvents),
			Panels: []chart.Panel{{
				Title: "requests/s",
				Series: []chart.Series{
					{Name: "load", Points: load, Style: chart.Step, Fill: true, Color: colorLoad},
					{Name: "serving capacity", Points: capacity, Style: chart.Step, Color: colorCapacity},
				},
			}, {
				Title: "dynos",
				// Booting dynos stack on the serving ones: the total is drawn first and the serving count over it.
				Series: []chart.Series{
					{Name: "booting", Points: total, Style: chart.Step, Fill: true, Color: colorBooting},
					{Name: "serving", Points: serving, Style: chart.Step, Fill: true, Color: colorServing},
				},
				Rules: bounds,
			}, {
				Title: "latency", Log: true, Min: latLo, Max: latHi, Format: chart.Seconds,
				Series:  []chart.Series{{Name: "p95", Points: p95, Color: colorLatency}},
				Rules:   latencyRules,
				Markers: breaches,
			}},
		})
	}
	out.Title = fmt.Sprintf("%s: %s over %s", filepath.Base(rep.Trace), strings.Join(names, " beside "), dur(float64(rep.Seconds)))
	return out, nil
}

// elapsed writes a time since the trace's start, to the minute, as the chart's axis does: "1d4h30m".
func elapsed(d time.Duration) string { return chart.Elapsed(d.Round(time.Minute)) }
