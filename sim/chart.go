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

// WriteSVG draws the chart as a self-contained SVG.
func WriteSVG(w io.Writer, rep *Report) error {
	cd, err := newChartData(rep)
	if err != nil {
		return err
	}
	height := chartTop + 3*chartPanelH + 2*chartVGap + 60
	bw := &errWriter{w: w}
	bw.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, height, chartW, height)
	bw.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	bw.printf(`<text x="%d" y="22" font-size="15" font-weight="bold">%s: %s over %s</text>`+"\n", chartLeft, xmlEscape(filepath.Base(rep.Trace)),
		xmlEscape(strings.Join(colNames(cd), " beside ")), xmlEscape(dur(float64(rep.Seconds))))
	bw.printf(`<text x="%d" y="42" fill="#444">scale %g, %g req/s per dyno, boot %s, objective p95 %s; each point is the maximum over %s</text>`+"\n",
		chartLeft, rep.Scale, rep.Model.Capacity, dur(rep.Model.Boot), dur(rep.Model.Objective), dur(cd.perBucket*60))
	for ci, c := range cd.cols {
		ps := cd.panels(ci)
		n := len(c.p95)
		r := c.res
		bw.printf(`<text x="%.1f" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", ps[0].x, chartTop-10, xmlEscape(c.name))
		bw.printf(`<text x="%.1f" y="%d" text-anchor="end" fill="#444">%d breach min, %.0f dyno-h, %d events</text>`+"\n",
			ps[0].x+ps[0].w, chartTop-10, r.BreachMinutes, r.DynoHours, r.ScaleEvents)
		// Panel 1: load and serving capacity.
		p := ps[0]
		frame(bw, p, "requests/s", cd.maxRate)
		area(bw, p, n, func(b int) float64 { return p.py(c.rate[b], cd.maxRate) }, "#9ecae1")
		line(bw, p, n, func(b int) float64 { return p.py(c.serving[b]*cd.capacity, cd.maxRate) }, "#08519c", "")
		legend(bw, p, [][2]string{{"#9ecae1", "load"}, {"#08519c", "serving capacity"}})
		// Panel 2: dynos, serving and booting stacked.
		p = ps[1]
		frame(bw, p, "dynos", cd.maxDynos)
		area(bw, p, n, func(b int) float64 { return p.py(c.total[b], cd.maxDynos) }, "#fdae6b")
		area(bw, p, n, func(b int) float64 { return p.py(c.serving[b], cd.maxDynos) }, "#e6550d")
		legend(bw, p, [][2]string{{"#e6550d", "serving"}, {"#fdae6b", "booting"}})
		// Panel 3: p95 latency per minute against the objective, log scale; breach minutes marked below.
		p = ps[2]
		logFrame(bw, p, cd.latLo, cd.latHi)
		line(bw, p, n, func(b int) float64 { return p.pyLog(math.Max(c.p95[b], cd.latLo), cd.latLo, cd.latHi) }, "#31a354", "")
		oy := p.pyLog(cd.objective, cd.latLo, cd.latHi)
		bw.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="6 4"/>`+"\n", p.x, oy, p.x+p.w, oy)
		for b, br := range c.breach {
			if br {
				x := p.px(b, n)
				bw.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d62728" stroke-width="%.1f"/>`+"\n", x, p.y+p.h+3, x, p.y+p.h+9, math.Max(1, p.w/float64(n)))
			}
		}
		legend(bw, p, [][2]string{{"#31a354", "p95 latency"}, {"#d62728", "objective, breach minutes"}})
		timeAxis(bw, p, rep.Seconds)
	}
	bw.printf("</svg>\n")
	return bw.err
}

func colNames(cd *chartData) []string {
	var out []string
	for _, c := range cd.cols {
		out = append(out, c.name)
	}
	return out
}

func frame(bw *errWriter, p panel, label string, top float64) {
	bw.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#bbb"/>`+"\n", p.x, p.y, p.w, p.h)
	for _, f := range []float64{0, 0.5, 1} {
		y := p.py(f*top, top)
		bw.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", p.x, y, p.x+p.w, y)
		bw.printf(`<text x="%.1f" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", p.x-4, y+4, trimNum(f*top))
	}
	bw.printf(`<text x="%.1f" y="%.1f" fill="#444" transform="rotate(-90 %.1f %.1f)" text-anchor="middle">%s</text>`+"\n",
		p.x-48, p.y+p.h/2, p.x-48, p.y+p.h/2, label)
}

func logFrame(bw *errWriter, p panel, lo, hi float64) {
	bw.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#bbb"/>`+"\n", p.x, p.y, p.w, p.h)
	for v := math.Pow(10, math.Ceil(math.Log10(lo))); v <= hi; v *= 10 {
		y := p.pyLog(v, lo, hi)
		bw.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", p.x, y, p.x+p.w, y)
		bw.printf(`<text x="%.1f" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", p.x-4, y+4, dur(v))
	}
	bw.printf(`<text x="%.1f" y="%.1f" fill="#444" transform="rotate(-90 %.1f %.1f)" text-anchor="middle">p95 latency</text>`+"\n",
		p.x-52, p.y+p.h/2, p.x-52, p.y+p.h/2)
}

func timeAxis(bw *errWriter, p panel, seconds int) {
	unit, name := 3600.0, "h"
	if seconds > 3*86400 {
		unit, name = 86400, "d"
	} else if seconds < 3*3600 {
		unit, name = 60, "min"
	}
	span := float64(seconds) / unit
	step := niceCeil(span / 8)
	for v := 0.0; v <= span; v += step {
		x := p.x + p.w*v/span
		bw.printf(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s%s</text>`+"\n", x, p.y+p.h+24, trimNum(v), name)
	}
}

func area(bw *errWriter, p panel, n int, y func(int) float64, fill string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "M%.1f,%.1f", p.x, p.y+p.h)
	for b := range n {
		x0, x1 := p.x+p.w*float64(b)/float64(n), p.x+p.w*float64(b+1)/float64(n)
		fmt.Fprintf(&sb, " L%.1f,%.1f L%.1f,%.1f", x0, y(b), x1, y(b))
	}
	fmt.Fprintf(&sb, " L%.1f,%.1f Z", p.x+p.w, p.y+p.h)
	bw.printf(`<path d="%s" fill="%s" stroke="none"/>`+"\n", sb.String(), fill)
}

func line(bw *errWriter, p panel, n int, y func(int) float64, stroke, dash string) {
	var sb strings.Builder
	for b := range n {
		cmd := "L"
		if b == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&sb, "%s%.1f,%.1f ", cmd, p.px(b, n), y(b))
	}
	bw.printf(`<path d="%s" fill="none" stroke="%s" stroke-width="1.3"%s/>`+"\n", strings.TrimSpace(sb.String()), stroke, dash)
}

func legend(bw *errWriter, p panel, items [][2]string) {
	x := p.x + 8
	for _, it := range items {
		bw.printf(`<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", x, p.y+6, it[0], x+14, p.y+15, xmlEscape(it[1]))
		x += 24 + 7*float64(len(it[1]))
	}
}

func trimNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// errWriter keeps the first write error so drawing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// WritePNG is not drawn yet.
func WritePNG(w io.Writer, rep *Report) error {
	return errors.New("png charts are not supported yet: use .svg")
}
