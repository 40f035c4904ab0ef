package chart_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/chart"
)

// Golden files are rewritten with CHART_UPDATE=1 go test ./chart/; look at them in a browser before committing.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("CHART_UPDATE") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (CHART_UPDATE=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (CHART_UPDATE=1 rewrites it; look at both in a browser)", name)
	}
}

func render(t *testing.T, c chart.Chart) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := chart.Render(&b, c); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b.Bytes())
	return b.Bytes()
}

// checkSVG parses the whole document and checks it is one svg element with no script, no NaN and no infinity in
// it: what a browser needs to draw it and a status page needs to serve it.
func checkSVG(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if e.Name.Local != "svg" {
					t.Errorf("root element %q", e.Name.Local)
				}
			}
			if strings.EqualFold(e.Name.Local, "script") || strings.EqualFold(e.Name.Local, "foreignObject") {
				t.Errorf("element %q in the chart", e.Name.Local)
			}
			for _, a := range e.Attr {
				if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") {
					t.Errorf("event attribute %s on <%s>", a.Name.Local, e.Name.Local)
				}
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 {
		t.Errorf("%d root elements, want one svg", roots)
	}
	for _, bad := range []string{"NaN", "Inf"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("chart contains %q", bad)
		}
	}
}

// statusChart is what the status page draws for one policy: six hours of its reading against the target, and of
// its current and desired dynos within MIN and MAX, with each scale event a dot whose tooltip explains it.
func statusChart(now time.Time) chart.Chart {
	start := now.Add(-6 * time.Hour)
	var reading, current, desired []chart.Point
	var events, lines []chart.Marker
	dynos, last := 3, -100
	current = append(current, chart.Point{T: start.Add(-time.Hour), V: 3}) // in effect when the window opens
	for i := 0; i <= 6*120; i++ {                                          // a reading every 30 s
		t := start.Add(time.Duration(i) * 30 * time.Second)
		h := float64(i) / 120
		load := 4.5 + 3.5*math.Sin((h-2)*math.Pi/4) // dynos' worth of work: a daytime rise and fall
		if h > 3.0 && h < 3.3 {
			load += 3 // a burst
		}
		v := 0.08 + 0.3*math.Pow(load/float64(dynos), 2) + 0.015*math.Sin(float64(i)*1.7)
		want := min(10, max(2, int(math.Ceil(load/0.85))))
		if h > 4.2 && h < 4.35 {
			v = math.NaN() // the metrics source failed for nine minutes: the policy holds
			want = int(desired[len(desired)-1].V)
		}
		reading = append(reading, chart.Point{T: t, V: v})
		desired = append(desired, chart.Point{T: t, V: float64(want)})
		if want == dynos || i-last < 10 { // at most one scale event per five minutes
			continue
		}
		from := dynos
		dynos, last = want, i
		current = append(current, chart.Point{T: t, V: float64(dynos)})
		name, color, why := "scaled up", "#2ca02c", fmt.Sprintf("p95 %s, target 300ms", chart.Seconds(v))
		if dynos < from {
			name, color = "scaled down", "#9467bd"
		}
		title := fmt.Sprintf("%s UTC: %s %d → %d dynos (%s)", t.Format("15:04"), name, from, dynos, why)
		events = append(events, chart.Marker{Kind: chart.Dot, At: t, Value: float64(dynos), Name: name, Color: color, Title: title})
		lines = append(lines, chart.Marker{Kind: chart.Vertical, At: t, Color: "#cccccc", Title: title})
	}
	return chart.Chart{
		Width: 900, Height: 320, Start: start, End: now,
		Columns: []chart.Column{{
			Title: "shop<script>alert('x')</script> · web", Note: fmt.Sprintf("%d dynos now · %d scale events in 6h", dynos, len(events)),
			Panels: []chart.Panel{{
				Title:   "p95 latency",
				Format:  chart.Seconds,
				Series:  []chart.Series{{Name: "reading", Points: reading, Color: "#1f77b4"}},
				Rules:   []chart.Rule{{Value: 0.3, Label: "target 300ms", Color: "#d62728", Fit: true}},
				Markers: lines,
			}, {
				Title: "dynos",
				Series: []chart.Series{
					// Desired first, so the current count covers it where they agree and it shows where they differ.
					{Name: "desired", Points: desired, Style: chart.Step, Dashed: true, Color: "#555555"},
					{Name: "current", Points: current, Style: chart.Step, Color: "#e6550d"},
				},
				Rules: []chart.Rule{
					{Value: 10, Label: "MAX 10", Color: "#888888"},
					{Value: 2, Label: "MIN 2", Color: "#888888"},
				},
				Markers: events,
			}},
		}},
	}
}

func TestChartStatusPage(t *testing.T) {
	now := time.Date(2026, 3, 14, 17, 30, 0, 0, time.UTC)
	c := statusChart(now)
	b := render(t, c)
	golden(t, "status.svg", b)
	for _, want := range []string{
		"shop&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; · web", // the app name, escaped
		"target 300ms", "MAX 10", "MIN 2", "reading", "desired", "scaled up", "scaled down", "UTC",
		"<title>13:25 UTC: scaled up 5 → 6 dynos (p95 314ms, target 300ms)", // a scale event explains itself on hover
		">12:00<", ">17:00<", // the clock, every hour
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("status chart lacks %q", want)
		}
	}
	if bytes.Contains(b, []byte("<script")) {
		t.Error("the app name opened a script element")
	}
	var again bytes.Buffer
	if err := chart.Render(&again, statusChart(now)); err != nil || !bytes.Equal(again.Bytes(), b) {
		t.Errorf("a second rendering of the same chart differs (err %v): output must be deterministic", err)
	}
}

// simChart is the simulator's layout: two columns of three panels with an elapsed time axis.
func simChart() chart.Chart {
	start := time.Unix(0, 0).UTC()
	col := func(name string, lag int) chart.Column {
		var load, capac, total, serving, p95 []chart.Point
		var breaches []chart.Marker
		for b := range 200 {
			t := start.Add(time.Duration(b) * 3 * time.Minute)
			l := 300 + 250*math.Sin(float64(b)/20)
			if b > 120 && b < 130 {
				l += 500
			}
			d := math.Ceil((300+250*math.Sin(float64(b-lag)/20))/10) + 2
			load = append(load, chart.Point{T: t, V: l})
			capac = append(capac, chart.Point{T: t, V: d * 10})
			total = append(total, chart.Point{T: t, V: d + float64(b%7/5)})
			serving = append(serving, chart.Point{T: t, V: d})
			lat := 0.15 * math.Exp(math.Max(0, l-d*10)/80)
			p95 = append(p95, chart.Point{T: t.Add(90 * time.Second), V: lat})
			if lat > 0.5 {
				breaches = append(breaches, chart.Marker{Kind: chart.Strip, At: t, Until: t.Add(3 * time.Minute), Name: "breach minutes",
					Color: "#d62728", Title: "breach in the 3 minutes from " + t.Sub(start).String()})
			}
		}
		return chart.Column{Title: name, Note: fmt.Sprintf("%d breach min, 412 dyno-h, 97 events", len(breaches)), Panels: []chart.Panel{
			{Title: "requests/s", Series: []chart.Series{
				{Name: "load", Points: load, Style: chart.Step, Fill: true, Color: "#9ecae1"},
				{Name: "serving capacity", Points: capac, Style: chart.Step, Color: "#08519c"}}},
			{Title: "dynos", Series: []chart.Series{
				{Name: "booting", Points: total, Style: chart.Step, Fill: true, Color: "#fdae6b"},
				{Name: "serving", Points: serving, Style: chart.Step, Fill: true, Color: "#e6550d"}},
				Rules: []chart.Rule{{Value: 100, Label: "MAX 100", Color: "#888888"}, {Value: 1, Label: "MIN 1", Color: "#888888"}}},
			{Title: "p95 latency", Log: true, Min: 0.0625, Max: 64, Format: chart.Seconds,
				Series:  []chart.Series{{Name: "p95 latency", Points: p95, Color: "#31a354"}},
				Rules:   []chart.Rule{{Value: 0.5, Label: "objective 500ms", Color: "#d62728"}},
				Markers: breaches},
		}}
	}
	return chart.Chart{
		Title:    "trace.csv: dynopilot beside judoscale over 10h",
		Subtitle: "scale 1, 10 req/s per dyno, boot 45s, objective p95 500ms; each point is the maximum over 3m",
		Width:    1280, Height: 740, Elapsed: true, Start: start, End: start.Add(10 * time.Hour),
		Columns: []chart.Column{col("dynopilot", 2), col("judoscale", 6)},
	}
}

func TestChartTwoColumns(t *testing.T) {
	b := render(t, simChart())
	golden(t, "columns.svg", b)
	for _, want := range []string{">0<", ">2h<", ">10h<", "MAX 100 ↑", "objective 500ms", ">100ms<", ">1s<", "breach minutes", "serving capacity"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("two-column chart lacks %q", want)
		}
	}
	if bytes.Contains(b, []byte("UTC")) {
		t.Error("an elapsed time axis is not on the clock: no UTC")
	}
}

// The awkward inputs a status page meets: nothing yet, one reading, failed readings, absurd values, a flat line.
func TestChartEdgeCases(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	pts := func(vs ...float64) []chart.Point {
		out := make([]chart.Point, len(vs))
		for i, v := range vs {
			out[i] = chart.Point{T: at(i * 10), V: v}
		}
		return out
	}
	one := func(s ...chart.Series) chart.Chart {
		return chart.Chart{Width: 600, Height: 200, Columns: []chart.Column{{Panels: []chart.Panel{{Title: "value", Series: s}}}}}
	}
	nan := math.NaN()
	cases := []struct {
		name string
		c    chart.Chart
		want []string
	}{
		{"empty", one(), []string{"no data"}},
		{"empty-with-span", chart.Chart{Width: 600, Height: 200, Start: t0, End: at(360), Columns: []chart.Column{{
			Panels: []chart.Panel{{Title: "reading", Series: []chart.Series{{Name: "reading"}}}, {Title: "dynos"}}}}},
			[]string{"no data", ">13:00<", "UTC"}},
		{"single-point", one(chart.Series{Name: "reading", Points: pts(0.3)}, chart.Series{Name: "dynos", Style: chart.Step, Points: pts(4)}),
			[]string{"<circle", "12:00"}},
		{"nan-gaps", one(chart.Series{Name: "reading", Points: pts(1, 2, nan, nan, 3, 4, nan, 5, 6, math.Inf(1), 2)},
			chart.Series{Name: "dynos", Style: chart.Step, Points: pts(2, 2, 3, nan, 3, 4, 4, 4, nan, 1, 1)}),
			[]string{"reading"}},
		{"huge", one(chart.Series{Name: "huge", Points: pts(1e308, math.MaxFloat64, -1e307, 5e299, 0)}), []string{"1e"}},
		{"negative", one(chart.Series{Name: "v", Points: pts(-3, -1, 2, -0.5)}), []string{">-3<", ">2<"}},
		{"all-equal", one(chart.Series{Name: "flat", Points: pts(7, 7, 7, 7)}, chart.Series{Name: "zero", Style: chart.Step, Points: pts(0, 0, 0)}),
			[]string{">8<"}},
		{"log-no-positive", chart.Chart{Width: 600, Height: 200, Columns: []chart.Column{{Panels: []chart.Panel{{Log: true, Format: chart.Seconds,
			Series: []chart.Series{{Name: "p95", Points: pts(0, -1, nan)}}}}}}}, []string{">1s<", ">10s<"}},
		{"escaping", chart.Chart{Width: 600, Height: 200, Title: `a"b<c>&d`, Subtitle: "\x00\x1b]0;title\a",
			Columns: []chart.Column{{Title: "</text><script>x</script>", Note: "'quoted'", Panels: []chart.Panel{{
				Title: "<b>", Series: []chart.Series{{Name: "]]><!--", Points: pts(1, 2)}},
				Rules: []chart.Rule{{Value: 1.5, Label: "<rule>"}}, Markers: []chart.Marker{{Kind: chart.Dot, At: at(5), Value: 1.5, Title: "</title><script>"}}}}}}},
			[]string{"a&#34;b&lt;c&gt;&amp;d", "&lt;/text&gt;&lt;script&gt;", "&lt;/title&gt;&lt;script&gt;", "]]&gt;&lt;!--"}},
		{"rules-beyond", chart.Chart{Width: 600, Height: 200, Columns: []chart.Column{{Panels: []chart.Panel{{Title: "dynos",
			Series: []chart.Series{{Style: chart.Step, Points: pts(3, 4, 5)}},
			Rules:  []chart.Rule{{Value: 100, Label: "MAX 100"}, {Value: 50, Label: "half"}, {Value: -5, Label: "below"}}}}}}},
			[]string{"MAX 100 ↑", "half ↑", "below ↓"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := render(t, c.c)
			golden(t, "edge-"+c.name+".svg", b)
			for _, w := range c.want {
				if !bytes.Contains(b, []byte(w)) {
					t.Errorf("lacks %q", w)
				}
			}
		})
	}
}

// A gap in a series draws nothing between the points on either side: the path restarts.
func TestChartNaNBreaksTheLine(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	c := chart.Chart{Width: 400, Height: 150, Columns: []chart.Column{{Panels: []chart.Panel{{Series: []chart.Series{{Points: []chart.Point{
		{T: t0, V: 1}, {T: t0.Add(time.Minute), V: 2}, {T: t0.Add(2 * time.Minute), V: math.NaN()},
		{T: t0.Add(3 * time.Minute), V: 3}, {T: t0.Add(4 * time.Minute), V: 1}}}}}}}}}
	b := render(t, c)
	if n := bytes.Count(b, []byte(`<path d="M`)); n != 2 {
		t.Errorf("%d paths, want 2: one each side of the gap\n%s", n, b)
	}
}

// A week of readings every five seconds stays a page-sized chart and draws the spike inside it.
func TestChartLongSeriesStaysSmall(t *testing.T) {
	t0 := time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)
	n := 7 * 86400 / 5
	pts := make([]chart.Point, n)
	for i := range pts {
		pts[i] = chart.Point{T: t0.Add(time.Duration(i) * 5 * time.Second), V: 1 + math.Sin(float64(i))}
	}
	pts[n/2].V = 50
	c := chart.Chart{Columns: []chart.Column{{Panels: []chart.Panel{{Series: []chart.Series{{Name: "reading", Points: pts},
		{Name: "dynos", Style: chart.Step, Fill: true, Points: pts}}}}}}}
	b := render(t, c)
	if len(b) > 150_000 {
		t.Errorf("%d points drew %d bytes: want at most 150 kB", n, len(b))
	}
	if !bytes.Contains(b, []byte(">50<")) {
		t.Error("the spike to 50 did not reach the value axis")
	}
}

// Two columns fitted to their data share each row's value axis, so equal values sit at equal heights.
func TestChartColumnsShareValueAxes(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	col := func(top float64) chart.Column {
		return chart.Column{Panels: []chart.Panel{{Series: []chart.Series{{Points: []chart.Point{{T: t0, V: 1}, {T: t0.Add(time.Hour), V: top}}}}}}}
	}
	b := render(t, chart.Chart{Columns: []chart.Column{col(3), col(40)}})
	if n := bytes.Count(b, []byte(">40<")); n != 2 {
		t.Errorf("the tick 40 appears %d times, want once per column", n)
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestChartErrors(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	ok := chart.Panel{Series: []chart.Series{{Points: []chart.Point{{T: t0, V: 1}}}}}
	cases := []struct {
		name string
		c    chart.Chart
		want string
	}{
		{"no columns", chart.Chart{}, "nothing to draw"},
		{"tiny", chart.Chart{Width: 50, Columns: []chart.Column{{Panels: []chart.Panel{ok}}}}, "size 50x320"},
		{"too many panels", chart.Chart{Height: 120, Columns: []chart.Column{{Panels: []chart.Panel{ok, ok, ok, ok}}}}, "too short"},
		{"ragged columns", chart.Chart{Columns: []chart.Column{{Panels: []chart.Panel{ok}}, {Panels: []chart.Panel{ok, ok}}}}, "row by row"},
		{"colour injection", chart.Chart{Columns: []chart.Column{{Panels: []chart.Panel{{Series: []chart.Series{{Name: "x",
			Color: `red" onload="alert(1)`}}}}}}}, "colour"},
		{"unsorted", chart.Chart{Columns: []chart.Column{{Panels: []chart.Panel{{Series: []chart.Series{{Name: "r",
			Points: []chart.Point{{T: t0, V: 1}, {T: t0.Add(-time.Second), V: 2}}}}}}}}}, "time order"},
		{"axis upside down", chart.Chart{Columns: []chart.Column{{Panels: []chart.Panel{{Min: 5, Max: 1}}}}}, "Max above Min"},
		{"log from zero", chart.Chart{Columns: []chart.Column{{Panels: []chart.Panel{{Log: true, Min: 0, Max: 1}}}}}, "Min above 0"},
		{"time backwards", chart.Chart{Start: t0, End: t0.Add(-time.Hour), Columns: []chart.Column{{Panels: []chart.Panel{ok}}}}, "End after Start"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			err := chart.Render(&b, c.c)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v: want one saying %q", err, c.want)
			}
			if b.Len() > 0 {
				t.Error("a chart that failed its checks wrote something")
			}
		})
	}
	err := chart.Render(failingWriter{}, chart.Chart{Columns: []chart.Column{{Panels: []chart.Panel{ok}}}})
	if !errors.Is(err, errDiskFull) {
		t.Errorf("write error %v: want it wrapped", err)
	}
}

func TestChartFormats(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.00025: "250µs", 0.0625: "62.5ms", 0.5: "500ms", 1.5: "1.5s", 100: "100s",
		1000: "16.7min", 7200: "2h", 36000: "10h", 1e6: "11.6d", -0.2: "-200ms"} {
		if got := chart.Seconds(v); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 0.3: "0.3", 2.5: "2.5", 1500: "1500", 25000: "25k", 3e6: "3M", 1.25e9: "1.25G",
		4e12: "4T", 1e300: "1e+300", -40: "-40", 0.00001: "1e-05"} {
		if got := chart.Number(v); got != want {
			t.Errorf("Number(%v) = %q, want %q", v, got, want)
		}
	}
}
