package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Chart layout: two columns (dynopilot, the best anchor) of three panels sharing their time axis and, across
// columns, their value axes, so the eye compares like with like.
const (
	chartW       = 1280
	chartPanelH  = 170
	chartTop     = 90
	chartLeft    = 70
	chartGap     = 60 // between columns
	chartVGap    = 34 // between panels
	chartRight   = 20
	chartBuckets = 560 // points per series; each is the maximum over its time bucket
)

// WriteChartFile writes the chart of dynopilot beside the best anchor to path (.svg; .png is drawn from the same
// geometry without text).
func WriteChartFile(path string, rep *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create chart: %w", err)
	}
	w := bufio.NewWriter(f)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		err = WritePNG(w, rep)
	default:
		err = WriteSVG(w, rep)
	}
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

// chartColumn is one contender's series, bucketed.
type chartColumn struct {
	name                 string
	res                  *Result
	rate, serving, total []float64 // total: serving plus booting
	p95                  []float64
	breach               []bool
}

// chartData is everything both renderers draw.
type chartData struct {
	cols                []chartColumn
	minutes             int
	perBucket           float64 // minutes per bucket
	maxRate, maxDynos   float64
	latLo, latHi        float64
	objective, capacity float64
}

func newChartData(rep *Report) (*chartData, error) {
	names := []string{"dynopilot", rep.BestAnchor}
	cd := &chartData{objective: rep.Model.Objective, capacity: rep.Model.Capacity}
	for _, n := range names {
		if n == "" {
			continue
		}
		r := rep.Result(n)
		if r == nil || r.Series == nil {
			continue
		}
		cd.cols = append(cd.cols, chartColumn{name: n, res: r})
	}
	if len(cd.cols) == 0 {
		return nil, errors.New("chart: no dynopilot or anchor series to draw (run them with series kept)")
	}
	cd.minutes = len(cd.cols[0].res.Series.P95)
	buckets := min(chartBuckets, cd.minutes)
	cd.perBucket = float64(cd.minutes) / float64(buckets)
	cd.latLo, cd.latHi = cd.objective/8, cd.objective*8
	for i := range cd.cols {
		c := &cd.cols[i]
		s := c.res.Series
		c.rate, c.serving, c.total, c.p95 = make([]float64, buckets), make([]float64, buckets), make([]float64, buckets), make([]float64, buckets)
		c.breach = make([]bool, buckets)
		for m := range cd.minutes {
			b := min(buckets-1, int(float64(m)/cd.perBucket))
			c.rate[b] = max(c.rate[b], float64(s.Rate[m]))
			c.serving[b] = max(c.serving[b], float64(s.Serving[m]))
			c.total[b] = max(c.total[b], float64(s.Serving[m]+s.Booting[m]))
			c.p95[b] = max(c.p95[b], float64(s.P95[m]))
			if s.Breach[m] {
				c.breach[b] = true
			}
		}
		for b := range buckets {
			cd.maxRate = max(cd.maxRate, c.rate[b], c.serving[b]*cd.capacity)
			cd.maxDynos = max(cd.maxDynos, c.total[b])
			if c.p95[b] > 0 {
				cd.latLo = min(cd.latLo, c.p95[b])
				cd.latHi = max(cd.latHi, c.p95[b])
			}
		}
	}
	cd.latHi = min(cd.latHi, cd.objective*4096)
	cd.maxRate = niceCeil(cd.maxRate)
	cd.maxDynos = niceCeil(max(cd.maxDynos, 1))
	return cd, nil
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// geometry of one panel.
type panel struct{ x, y, w, h float64 }

func (cd *chartData) panels(col int) [3]panel {
	colW := (chartW - chartLeft - chartRight - chartGap*float64(len(cd.cols)-1)) / float64(len(cd.cols))
	x := chartLeft + float64(col)*(colW+chartGap)
	var ps [3]panel
	for i := range ps {
		ps[i] = panel{x: x, y: chartTop + float64(i)*(chartPanelH+chartVGap), w: colW, h: chartPanelH}
	}
	return ps
}

func (p panel) px(b, n int) float64 { return p.x + p.w*(float64(b)+0.5)/float64(n) }
func (p panel) py(v, top float64) float64 {
	return p.y + p.h - p.h*math.Min(1, math.Max(0, v/top))
}
func (p panel) pyLog(v, lo, hi float64) float64 {
	v = math.Min(math.Max(v, lo), hi)
	return p.y + p.h - p.h*math.Log(v/lo)/math.Log(hi/lo)
}

// canvas is what the chart is drawn on: an SVG document or a PNG image. Coordinates are pixels from the top left.
type canvas interface {
	rect(x, y, w, h float64, fill, stroke string)
	line(x1, y1, x2, y2 float64, stroke string, width float64, dashed bool)
	polyline(pts []point, stroke string, width float64)
	fill(pts []point, color string) // a closed polygon
	text(x, y float64, s string, o textOpts)
}

type point struct{ x, y float64 }

type textOpts struct {
	size   float64
	anchor string // "start", "middle" or "end"
	color  string
	bold   bool
	rotate bool // rotated a quarter turn counter-clockwise, about (x, y)
}

func chartHeight() int { return chartTop + 3*chartPanelH + 2*chartVGap + 60 }

// draw draws the whole chart on c.
func (cd *chartData) draw(c canvas, rep *Report) {
	c.rect(0, 0, chartW, float64(chartHeight()), "#ffffff", "")
	c.text(chartLeft, 22, fmt.Sprintf("%s: %s over %s", filepath.Base(rep.Trace), strings.Join(colNames(cd), " beside "),
		dur(float64(rep.Seconds))), textOpts{size: 15, bold: true})
	c.text(chartLeft, 42, fmt.Sprintf("scale %g, %g req/s per dyno, boot %s, objective p95 %s; each point is the maximum over %s",
		rep.Scale, rep.Model.Capacity, dur(rep.Model.Boot), dur(rep.Model.Objective), dur(cd.perBucket*60)), textOpts{color: "#444444"})
	for ci := range cd.cols {
		col := &cd.cols[ci]
		ps := cd.panels(ci)
		n := len(col.p95)
		r := col.res
		c.text(ps[0].x, chartTop-12, col.name, textOpts{size: 14, bold: true})
		c.text(ps[0].x+ps[0].w, chartTop-12, fmt.Sprintf("%d breach min, %.0f dyno-h, %d events", r.BreachMinutes, r.DynoHours, r.ScaleEvents),
			textOpts{anchor: "end", color: "#444444"})
		// Panel 1: load and serving capacity.
		p := ps[0]
		frame(c, p, "requests/s", cd.maxRate)
		steps(c, p, n, func(b int) float64 { return p.py(col.rate[b], cd.maxRate) }, "#9ecae1")
		c.polyline(curve(p, n, func(b int) float64 { return p.py(col.serving[b]*cd.capacity, cd.maxRate) }), "#08519c", 1.3)
		legend(c, p, [][2]string{{"#9ecae1", "load"}, {"#08519c", "serving capacity"}})
		// Panel 2: dynos, serving and booting stacked.
		p = ps[1]
		frame(c, p, "dynos", cd.maxDynos)
		steps(c, p, n, func(b int) float64 { return p.py(col.total[b], cd.maxDynos) }, "#fdae6b")
		steps(c, p, n, func(b int) float64 { return p.py(col.serving[b], cd.maxDynos) }, "#e6550d")
		legend(c, p, [][2]string{{"#e6550d", "serving"}, {"#fdae6b", "booting"}})
		// Panel 3: p95 latency per minute against the objective, log scale; breach minutes marked below.
		p = ps[2]
		logFrame(c, p, cd.latLo, cd.latHi)
		c.polyline(curve(p, n, func(b int) float64 { return p.pyLog(math.Max(col.p95[b], cd.latLo), cd.latLo, cd.latHi) }), "#31a354", 1.3)
		oy := p.pyLog(cd.objective, cd.latLo, cd.latHi)
		c.line(p.x, oy, p.x+p.w, oy, "#d62728", 1.2, true)
		for b, br := range col.breach {
			if br {
				x := p.px(b, n)
				c.line(x, p.y+p.h+3, x, p.y+p.h+9, "#d62728", math.Max(1, p.w/float64(n)), false)
			}
		}
		legend(c, p, [][2]string{{"#31a354", "p95 latency"}, {"#d62728", "objective, breach minutes"}})
		timeAxis(c, p, rep.Seconds)
	}
}

// WriteSVG draws the chart as a self-contained SVG.
func WriteSVG(w io.Writer, rep *Report) error {
	cd, err := newChartData(rep)
	if err != nil {
		return err
	}
	sc := &svgCanvas{w: w}
	sc.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, chartHeight(), chartW, chartHeight())
	cd.draw(sc, rep)
	sc.printf("</svg>\n")
	return sc.err
}

func colNames(cd *chartData) []string {
	var out []string
	for _, c := range cd.cols {
		out = append(out, c.name)
	}
	return out
}

func frame(c canvas, p panel, label string, top float64) {
	c.rect(p.x, p.y, p.w, p.h, "", "#bbbbbb")
	for _, f := range []float64{0, 0.5, 1} {
		y := p.py(f*top, top)
		c.line(p.x, y, p.x+p.w, y, "#eeeeee", 1, false)
		c.text(p.x-4, y+4, trimNum(f*top), textOpts{anchor: "end", color: "#444444"})
	}
	c.text(p.x-48, p.y+p.h/2, label, textOpts{anchor: "middle", color: "#444444", rotate: true})
}

func logFrame(c canvas, p panel, lo, hi float64) {
	c.rect(p.x, p.y, p.w, p.h, "", "#bbbbbb")
	for v := math.Pow(10, math.Ceil(math.Log10(lo))); v <= hi; v *= 10 {
		y := p.pyLog(v, lo, hi)
		c.line(p.x, y, p.x+p.w, y, "#eeeeee", 1, false)
		c.text(p.x-4, y+4, dur(v), textOpts{anchor: "end", color: "#444444"})
	}
	c.text(p.x-52, p.y+p.h/2, "p95 latency", textOpts{anchor: "middle", color: "#444444", rotate: true})
}

func timeAxis(c canvas, p panel, seconds int) {
	unit, name := 3600.0, "h"
	if seconds > 3*86400 {
		unit, name = 86400, "d"
	} else if seconds < 3*3600 {
		unit, name = 60, "min"
	}
	span := float64(seconds) / unit
	step := niceCeil(span / 8)
	for v := 0.0; v <= span; v += step {
		c.text(p.x+p.w*v/span, p.y+p.h+24, trimNum(v)+name, textOpts{anchor: "middle", color: "#444444"})
	}
}

// steps fills the area under a step series (one step per bucket).
func steps(c canvas, p panel, n int, y func(int) float64, color string) {
	pts := []point{{p.x, p.y + p.h}}
	for b := range n {
		x0, x1 := p.x+p.w*float64(b)/float64(n), p.x+p.w*float64(b+1)/float64(n)
		pts = append(pts, point{x0, y(b)}, point{x1, y(b)})
	}
	pts = append(pts, point{p.x + p.w, p.y + p.h})
	c.fill(pts, color)
}

func curve(p panel, n int, y func(int) float64) []point {
	pts := make([]point, n)
	for b := range n {
		pts[b] = point{p.px(b, n), y(b)}
	}
	return pts
}

func legend(c canvas, p panel, items [][2]string) {
	x := p.x + 8
	for _, it := range items {
		c.rect(x, p.y+6, 10, 10, it[0], "")
		c.text(x+14, p.y+15, it[1], textOpts{})
		x += 24 + 7*float64(len(it[1]))
	}
}

func trimNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// svgCanvas writes SVG elements, keeping the first write error so drawing code stays linear.
type svgCanvas struct {
	w   io.Writer
	err error
}

func (s *svgCanvas) printf(format string, a ...any) {
	if s.err == nil {
		_, s.err = fmt.Fprintf(s.w, format, a...)
	}
}

func (s *svgCanvas) rect(x, y, w, h float64, fill, stroke string) {
	if fill == "" {
		fill = "none"
	}
	st := ""
	if stroke != "" {
		st = fmt.Sprintf(` stroke="%s"`, stroke)
	}
	s.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"%s/>`+"\n", x, y, w, h, fill, st)
}

func (s *svgCanvas) line(x1, y1, x2, y2 float64, stroke string, width float64, dashed bool) {
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s/>`+"\n", x1, y1, x2, y2, stroke, width, dash)
}

func (s *svgCanvas) path(pts []point, closed bool) string {
	var sb strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&sb, "%s%.1f,%.1f ", cmd, p.x, p.y)
	}
	if closed {
		sb.WriteString("Z")
	}
	return strings.TrimSpace(sb.String())
}

func (s *svgCanvas) polyline(pts []point, stroke string, width float64) {
	s.printf(`<path d="%s" fill="none" stroke="%s" stroke-width="%.1f"/>`+"\n", s.path(pts, false), stroke, width)
}

func (s *svgCanvas) fill(pts []point, color string) {
	s.printf(`<path d="%s" fill="%s" stroke="none"/>`+"\n", s.path(pts, true), color)
}

func (s *svgCanvas) text(x, y float64, str string, o textOpts) {
	attrs := ""
	if o.size > 0 {
		attrs += fmt.Sprintf(` font-size="%g"`, o.size)
	}
	if o.anchor != "" && o.anchor != "start" {
		attrs += fmt.Sprintf(` text-anchor="%s"`, o.anchor)
	}
	if o.color != "" {
		attrs += fmt.Sprintf(` fill="%s"`, o.color)
	}
	if o.bold {
		attrs += ` font-weight="bold"`
	}
	if o.rotate {
		attrs += fmt.Sprintf(` transform="rotate(-90 %.1f %.1f)"`, x, y)
	}
	s.printf(`<text x="%.1f" y="%.1f"%s>%s</text>`+"\n", x, y, attrs, xmlEscape(str))
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
