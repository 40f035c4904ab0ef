package chart

import (
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Colours of the chart's furniture: quiet, so the data stands out.
const (
	textColor  = "#222222"
	muteColor  = "#555555"
	gridColor  = "#ececec"
	frameColor = "#bbbbbb"
	ruleDash   = "6 4"
	seriesDash = "3 3"
)

func (l *layout) draw(s *svg) {
	// What a screen reader announces: the title, else the columns' titles.
	label := l.c.Title
	for _, col := range l.c.Columns {
		if l.c.Title == "" && col.Title != "" {
			label = strings.TrimPrefix(label+", "+col.Title, ", ")
		}
	}
	if label == "" {
		label = "chart"
	}
	s.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s" `+
		`font-family="system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif" font-size="12" `+
		`style="max-width:100%%;height:auto">`+"\n", l.c.Width, l.c.Height, l.c.Width, l.c.Height, esc(label))
	s.rect(0, 0, l.w, l.h, "#ffffff", "")
	if l.titleY > 0 {
		s.text(pad, l.titleY, l.c.Title, textStyle{size: 15, bold: true, color: textColor})
	}
	if l.subtitleY > 0 {
		s.text(pad, l.subtitleY, l.c.Subtitle, textStyle{color: muteColor})
	}
	for ci := range l.cols {
		cl := &l.cols[ci]
		if l.hasColumnHeader {
			s.text(cl.x, l.headerY, cl.col.Title, textStyle{size: 13, bold: true, color: textColor})
			s.text(cl.x+cl.w, l.headerY, cl.col.Note, textStyle{anchor: "end", color: muteColor})
		}
		for pi := range cl.panels {
			l.drawPanel(s, cl, pi)
		}
		l.drawTimeLabels(s, cl)
	}
	s.raw("</svg>\n")
}

// geometry of one panel's plot area and its mappings from time and value to pixels.
type geom struct {
	x, w, top, h float64
	start, end   time.Time
	pl           *panelLayout
}

func (g geom) bottom() float64 { return g.top + g.h }

func (g geom) px(t time.Time) float64 {
	span := g.end.Sub(g.start).Seconds()
	f := t.Sub(g.start).Seconds() / span
	return g.x + g.w*math.Max(0, math.Min(1, f))
}

func (g geom) py(v float64) float64 {
	lo, hi := g.pl.lo, g.pl.hi
	var f float64
	switch {
	case g.pl.p.Log && v <= lo:
		f = 0
	case g.pl.p.Log:
		f = math.Log(v/lo) / math.Log(hi/lo)
	default:
		f = (v - lo) / (hi - lo)
	}
	if math.IsNaN(f) {
		f = 0
	}
	return g.top + g.h*(1-math.Max(0, math.Min(1, f)))
}

// inRange reports whether v lies on the value axis (not beyond an edge).
func (g geom) inRange(v float64) bool {
	const eps = 1e-9
	return v >= g.pl.lo-eps*math.Abs(g.pl.lo) && v <= g.pl.hi+eps*math.Abs(g.pl.hi)
}

func (l *layout) drawPanel(s *svg, cl *colLayout, r int) {
	pl := &cl.panels[r]
	g := geom{x: cl.x, w: cl.w, top: l.rowTop[r], h: l.rowH[r], start: l.start, end: l.end, pl: pl}

	// Grid: value ticks across, time ticks down.
	for _, v := range pl.ticks {
		y := g.py(v)
		s.line(g.x, y, g.x+g.w, y, gridColor, 1, "")
	}
	for _, tt := range l.ticks {
		x := g.px(tt.t)
		s.line(x, g.top, x, g.bottom(), gridColor, 1, "")
	}

	// Areas first, so lines and rules stay visible over them.
	for i := range pl.series {
		if sd := &pl.series[i]; sd.s.Fill {
			l.drawSeries(s, g, sd)
		}
	}
	for i := range pl.p.Rules {
		ru := &pl.p.Rules[i]
		if v := clean(ru.Value); !math.IsNaN(v) && g.inRange(v) {
			y := g.py(v)
			s.line(g.x, y, g.x+g.w, y, ruleColor(ru), 1.3, ruleDash)
		}
	}
	for i := range pl.series {
		if sd := &pl.series[i]; !sd.s.Fill {
			l.drawSeries(s, g, sd)
		}
	}
	l.drawMarkers(s, g, pl)
	s.rect(g.x, g.top, g.w, g.h, "none", frameColor)

	for _, v := range pl.ticks {
		s.text(g.x-5, g.py(v)+4, pl.format(v), textStyle{anchor: "end", color: muteColor})
	}
	l.drawRuleLabels(s, g, pl)
	if !pl.hasData {
		s.text(g.x+g.w/2, g.top+g.h/2+4, "no data", textStyle{anchor: "middle", color: "#999999"})
	}
	l.drawLegend(s, pl, l.rowLegendY[r])
}

// drawRuleLabels names each rule at its right end, or at the edge it lies beyond; labels beyond the same edge
// stack so none hides another.
func (l *layout) drawRuleLabels(s *svg, g geom, pl *panelLayout) {
	above, below := 0, 0
	for i := range pl.p.Rules {
		ru := &pl.p.Rules[i]
		v := clean(ru.Value)
		if ru.Label == "" || math.IsNaN(v) {
			continue
		}
		st := textStyle{anchor: "end", size: 11, color: ruleColor(ru), halo: true}
		x := g.x + g.w - 4
		switch {
		case v > g.pl.hi && !g.inRange(v):
			s.text(x, g.top+12+float64(above)*13, ru.Label+" ↑", st)
			above++
		case !g.inRange(v):
			s.text(x, g.bottom()-4-float64(below)*13, ru.Label+" ↓", st)
			below++
		default:
			y := g.py(v)
			if y-14 < g.top { // no room above the line: write under it
				s.text(x, y+12, ru.Label, st)
			} else {
				s.text(x, y-4, ru.Label, st)
			}
		}
	}
}

type xy struct{ x, y float64 }

// runs splits a series at its gaps into pixel runs; end is where each run's last step ends.
func runs(g geom, sd *seriesData) (rs [][]xy, ends []float64) {
	var cur []xy
	for _, p := range sd.points {
		if math.IsNaN(p.V) {
			if len(cur) > 0 {
				rs, ends = append(rs, cur), append(ends, g.px(p.T))
				cur = nil
			}
			continue
		}
		cur = append(cur, xy{g.px(p.T), g.py(p.V)})
	}
	if len(cur) > 0 {
		rs, ends = append(rs, cur), append(ends, g.x+g.w)
	}
	for i, r := range rs {
		if len(r) > int(g.w) {
			rs[i] = reduce(r, g.x)
		}
	}
	return rs, ends
}

// reduce keeps, of each pixel column's points, the first, the lowest, the highest and the last, in time order: a
// line or step through them covers the same pixels as one through all of them (the M4 method), so a long history
// costs a bounded number of bytes.
func reduce(pts []xy, x0 float64) []xy {
	out := make([]xy, 0, 4*int(pts[len(pts)-1].x-x0+2))
	for i := 0; i < len(pts); {
		col := math.Floor(pts[i].x - x0)
		j, lo, hi := i, i, i
		for j < len(pts) && math.Floor(pts[j].x-x0) == col {
			if pts[j].y < pts[lo].y {
				lo = j
			}
			if pts[j].y > pts[hi].y {
				hi = j
			}
			j++
		}
		keep := []int{i, lo, hi, j - 1}
		slices.Sort(keep)
		for k, idx := range keep {
			if k == 0 || idx != keep[k-1] {
				out = append(out, pts[idx])
			}
		}
		i = j
	}
	return out
}

func (l *layout) drawSeries(s *svg, g geom, sd *seriesData) {
	rs, ends := runs(g, sd)
	for i, r := range rs {
		var p pathBuilder
		base := g.bottom()
		step := sd.s.Style == Step
		switch {
		case sd.s.Fill && step:
			p.cmd('M', r[0].x, base)
			for k, q := range r {
				if k > 0 {
					p.cmd('H', q.x)
				}
				p.cmd('V', q.y)
			}
			p.cmd('H', ends[i])
			p.cmd('V', base)
			p.cmd('Z')
		case sd.s.Fill:
			p.cmd('M', r[0].x, base)
			for _, q := range r {
				p.cmd('L', q.x, q.y)
			}
			p.cmd('L', r[len(r)-1].x, base)
			p.cmd('Z')
		case step && (len(r) > 1 || ends[i] > r[0].x+0.5):
			p.cmd('M', r[0].x, r[0].y)
			for _, q := range r[1:] {
				p.cmd('H', q.x)
				p.cmd('V', q.y)
			}
			p.cmd('H', ends[i])
		case len(r) > 1:
			p.cmd('M', r[0].x, r[0].y)
			for _, q := range r[1:] {
				p.cmd('L', q.x, q.y)
			}
		default: // one point alone: a dot, since a path through one point draws nothing
			s.printf(`<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", num(r[0].x), num(r[0].y), sd.color)
			continue
		}
		if sd.s.Fill {
			s.printf(`<path d="%s" fill="%s"/>`+"\n", p.String(), sd.color)
			continue
		}
		s.printf(`<path d="%s" fill="none" stroke="%s" stroke-width="1.6" stroke-linejoin="round"`, p.String(), sd.color)
		if sd.s.Dashed {
			s.printf(` stroke-dasharray="%s"`, seriesDash)
		}
		s.raw("/>\n")
	}
}

// drawMarkers draws vertical lines, then strips, then dots, so dots stay on top. Each marker with a title carries
// it as a tooltip; a vertical line gets a wider invisible twin so the pointer need not hit one pixel.
func (l *layout) drawMarkers(s *svg, g geom, pl *panelLayout) {
	for _, kind := range []MarkerKind{Vertical, Strip, Dot} {
		for i := range pl.p.Markers {
			m := &pl.p.Markers[i]
			if m.Kind != kind || !l.markerVisible(*m) {
				continue
			}
			if m.Title != "" {
				s.titled(m.Title)
			}
			color := markerColor(m)
			switch kind {
			case Vertical:
				x := g.px(m.At)
				s.line(x, g.top, x, g.bottom(), color, 1.2, "")
				s.printf(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="8" stroke-opacity="0"/>`+"\n",
					num(x), num(g.top), num(x), num(g.bottom()), color)
			case Strip:
				x1, x2 := g.px(m.At), g.px(m.At)
				if m.Until.After(m.At) {
					x2 = g.px(m.Until)
				}
				s.rect(x1, g.bottom()+2, math.Max(1.5, x2-x1), stripH-3, color, "")
			case Dot:
				v := clean(m.Value)
				y := g.py(v)
				if math.IsNaN(v) {
					y = g.bottom()
				}
				s.circle(g.px(m.At), y, 4, color)
			}
			if m.Title != "" {
				s.raw("</g>\n")
			}
		}
	}
}

func (l *layout) drawLegend(s *svg, pl *panelLayout, y0 float64) {
	for ri, row := range pl.legend {
		y := y0 + float64(ri)*legendRowH
		for _, it := range row {
			x := it.x
			switch {
			case it.title:
				s.text(x, y, it.label, textStyle{bold: true, color: textColor})
				continue
			case it.series != nil && it.series.s.Fill:
				s.rect(x, y-9, 12, 10, it.series.color, "")
			case it.series != nil:
				dash := ""
				if it.series.s.Dashed {
					dash = seriesDash
				}
				s.line(x, y-4, x+16, y-4, it.series.color, 2, dash)
			case it.marker.Kind == Vertical:
				s.line(x+6, y-11, x+6, y+1, it.color, 1.5, "")
			case it.marker.Kind == Dot:
				s.circle(x+6, y-4, 4, it.color)
			default:
				s.rect(x, y-7, 12, 6, it.color, "")
			}
			s.text(x+20, y, it.label, textStyle{color: textColor})
		}
	}
}

// drawTimeLabels labels the time axis under a column's last panel. On the clock it says "UTC" in the corner left
// of the first label, since a status page is read from anywhere.
func (l *layout) drawTimeLabels(s *svg, cl *colLayout) {
	leftmost := cl.x - l.gutter
	if !l.c.Elapsed && len(l.ticks) > 0 {
		s.text(cl.x-5, l.timeY, "UTC", textStyle{anchor: "end", color: muteColor, size: 11})
		leftmost = cl.x - 3
	}
	g := geom{x: cl.x, w: cl.w, start: l.start, end: l.end}
	for _, tt := range l.ticks {
		x := g.px(tt.t)
		half := float64(utf8.RuneCountInString(tt.label)) * charW / 2
		if x-half < leftmost || x+half > l.w-2 {
			continue
		}
		s.text(x, l.timeY, tt.label, textStyle{anchor: "middle", color: muteColor})
	}
}
