package chart

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// Geometry, in pixels. Text widths are estimated from the character count, since the viewer's font decides them:
// charW is generous for a 12px sans-serif, so estimated room is enough room.
const (
	defaultWidth  = 900
	defaultHeight = 320
	charW         = 6.6
	pad           = 8  // around the chart
	padRight      = 14 // right of the last column, for its last time label
	colGap        = 28 // between one column's plot and the next column's value labels
	panelGap      = 10 // between a panel and the next one's legend
	legendRowH    = 16
	stripH        = 9 // the bar for Strip markers under a panel
	timeLabelH    = 16
	minPlotH      = 24
	minPlotW      = 60
	maxAbsValue   = 1e300 // finite values beyond are drawn here, so no axis arithmetic overflows
)

// layout is a checked chart with every position worked out.
type layout struct {
	c                          Chart
	w, h                       float64
	start, end                 time.Time
	titleY, subtitleY, headerY float64 // baselines, zero when absent
	gutter                     float64 // room left of each plot for its value labels
	cols                       []colLayout
	ticks                      []timeTick
	timeY                      float64 // baseline of the time labels
	rowTop, rowH               []float64
	rowLegendY                 []float64
	rowStrip                   []bool
	rowLegendRows              []int
	hasColumnHeader            bool
}

type colLayout struct {
	col    *Column
	x, w   float64 // plot area
	panels []panelLayout
}

type panelLayout struct {
	p        *Panel
	lo, hi   float64
	auto     bool
	ticks    []float64
	format   func(float64) string
	series   []seriesData
	legend   [][]legendItem // rows
	hasStrip bool
	hasData  bool
}

type seriesData struct {
	s      *Series
	color  string
	points []Point // inside the time axis, cleaned; a Step series starts with the value in effect at its start
}

type legendItem struct {
	x      float64
	label  string
	title  bool // the panel's title, not an entry
	series *seriesData
	marker *Marker
	color  string
}

// plan checks c and lays it out.
func plan(c Chart) (*layout, error) {
	if c.Width == 0 {
		c.Width = defaultWidth
	}
	if c.Height == 0 {
		c.Height = defaultHeight
	}
	if c.Width < 200 || c.Height < 100 || c.Width > 20000 || c.Height > 20000 {
		return nil, fmt.Errorf("chart: size %dx%d: expected 200x100 to 20000x20000 pixels", c.Width, c.Height)
	}
	if len(c.Columns) == 0 || len(c.Columns[0].Panels) == 0 {
		return nil, errors.New("chart: nothing to draw: expected at least one column with a panel")
	}
	rows := len(c.Columns[0].Panels)
	for i, col := range c.Columns {
		if len(col.Panels) != rows {
			return nil, fmt.Errorf("chart: column %d has %d panels and column 0 has %d: columns are compared row by row",
				i, len(col.Panels), rows)
		}
	}
	l := &layout{c: c, w: float64(c.Width), h: float64(c.Height)}
	if err := l.checkAndSpan(); err != nil {
		return nil, err
	}
	l.cols = make([]colLayout, len(c.Columns))
	for ci := range l.cols {
		col := &l.c.Columns[ci]
		cl := &l.cols[ci]
		cl.col = col
		cl.panels = make([]panelLayout, rows)
		for pi := range col.Panels {
			pl := &cl.panels[pi]
			pl.p = &col.Panels[pi]
			pl.format = pl.p.Format
			if pl.format == nil {
				pl.format = Number
			}
			for si := range pl.p.Series {
				s := &pl.p.Series[si]
				color := s.Color
				if color == "" {
					color = paletteColor(si)
				}
				sd := seriesData{s: s, color: color, points: visible(s, l.start, l.end)}
				for _, p := range sd.points {
					if !math.IsNaN(p.V) {
						pl.hasData = true
						break
					}
				}
				pl.series = append(pl.series, sd)
			}
			for _, m := range pl.p.Markers {
				if l.markerVisible(m) {
					pl.hasData = true
					if m.Kind == Strip {
						pl.hasStrip = true
					}
				}
			}
		}
	}

	// Vertical layout, first without the legends, whose rows depend on the widths, which depend on the value
	// labels, which depend on how many ticks the panel's height allows.
	y := float64(pad)
	if c.Title != "" {
		l.titleY = y + 14
		y += 22
	}
	if c.Subtitle != "" {
		l.subtitleY = y + 11
		y += 18
	}
	for _, col := range c.Columns {
		if col.Title != "" || col.Note != "" {
			l.hasColumnHeader = true
		}
	}
	if l.hasColumnHeader {
		l.headerY = y + 13
		y += 20
	}
	top := y
	l.rowStrip = make([]bool, rows)
	weights := make([]float64, rows)
	sumW := 0.0
	for r := range rows {
		for ci := range l.cols {
			pl := &l.cols[ci].panels[r]
			l.rowStrip[r] = l.rowStrip[r] || pl.hasStrip
			w := pl.p.Weight
			if !(w > 0) || math.IsInf(w, 0) {
				w = 1
			}
			weights[r] = max(weights[r], w)
		}
		sumW += weights[r]
	}
	fixed := func(legendRows []int) float64 {
		f := top + timeLabelH + pad
		for r := range rows {
			f += 2 + float64(max(legendRows[r], 0))*legendRowH
			if l.rowStrip[r] {
				f += stripH
			}
			if r > 0 {
				f += panelGap
			}
		}
		return f
	}
	oneRow := make([]int, rows)
	for r := range oneRow {
		oneRow[r] = 1
	}
	estH := (l.h - fixed(oneRow)) / sumW
	l.valueAxes(estH)

	// Widths.
	widest := 3
	for ci := range l.cols {
		for pi := range l.cols[ci].panels {
			pl := &l.cols[ci].panels[pi]
			for _, t := range pl.ticks {
				widest = max(widest, utf8.RuneCountInString(pl.format(t)))
			}
		}
	}
	l.gutter = float64(widest)*charW + 10
	n := float64(len(l.cols))
	plotW := (l.w - pad - padRight - n*l.gutter - (n-1)*colGap) / n
	if plotW < minPlotW {
		return nil, fmt.Errorf("chart: %d pixels is too narrow for %d columns", c.Width, len(l.cols))
	}
	for ci := range l.cols {
		l.cols[ci].x = pad + l.gutter + float64(ci)*(plotW+colGap+l.gutter)
		l.cols[ci].w = plotW
	}

	// Legends, then the heights.
	l.rowLegendRows = make([]int, rows)
	for ci := range l.cols {
		cl := &l.cols[ci]
		for pi := range cl.panels {
			pl := &cl.panels[pi]
			pl.legend = legendRows(pl, cl.x, cl.w)
			l.rowLegendRows[pi] = max(l.rowLegendRows[pi], len(pl.legend))
		}
	}
	avail := l.h - fixed(l.rowLegendRows)
	l.rowTop, l.rowH, l.rowLegendY = make([]float64, rows), make([]float64, rows), make([]float64, rows)
	y = top
	for r := range rows {
		if r > 0 {
			y += panelGap
		}
		l.rowLegendY[r] = y + 12
		y += 2 + float64(l.rowLegendRows[r])*legendRowH
		l.rowTop[r] = y
		l.rowH[r] = math.Floor(avail * weights[r] / sumW)
		if l.rowH[r] < minPlotH {
			return nil, fmt.Errorf("chart: %d pixels is too short for %d panels and their legends", c.Height, rows)
		}
		y += l.rowH[r]
		if l.rowStrip[r] {
			y += stripH
		}
	}
	l.timeY = y + 13
	l.ticks = timeTicks(l.start, l.end, int(plotW/64), l.c.Elapsed)
	return l, nil
}

// checkAndSpan checks every series, rule and marker, and settles the time axis.
func (l *layout) checkAndSpan() error {
	var lo, hi time.Time
	seen := func(t time.Time) { // a zero time is a missing one, not the year 1
		if t.IsZero() {
			return
		}
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if hi.IsZero() || t.After(hi) {
			hi = t
		}
	}
	for ci, col := range l.c.Columns {
		for pi, p := range col.Panels {
			where := fmt.Sprintf("column %d panel %d (%q)", ci, pi, p.Title)
			if p.Min != 0 || p.Max != 0 {
				if !(p.Max > p.Min) || math.IsInf(p.Min, 0) || math.IsInf(p.Max, 0) {
					return fmt.Errorf("chart: %s: value axis %v to %v: expected Max above Min, both finite", where, p.Min, p.Max)
				}
				if p.Log && !(p.Min > 0) {
					return fmt.Errorf("chart: %s: logarithmic axis from %v: expected Min above 0", where, p.Min)
				}
			}
			for si, s := range p.Series {
				if err := checkColor(s.Color); err != nil {
					return fmt.Errorf("chart: %s series %d (%q): %w", where, si, s.Name, err)
				}
				if s.Style != Line && s.Style != Step {
					return fmt.Errorf("chart: %s series %d (%q): unknown style %d", where, si, s.Name, s.Style)
				}
				for i, pt := range s.Points {
					if i > 0 && pt.T.Before(s.Points[i-1].T) {
						return fmt.Errorf("chart: %s series %d (%q): point %d at %s is before the one before it: expected time order",
							where, si, s.Name, i, pt.T.UTC().Format(time.RFC3339))
					}
					seen(pt.T)
				}
			}
			for ri, r := range p.Rules {
				if err := checkColor(r.Color); err != nil {
					return fmt.Errorf("chart: %s rule %d (%q): %w", where, ri, r.Label, err)
				}
			}
			for mi, m := range p.Markers {
				if err := checkColor(m.Color); err != nil {
					return fmt.Errorf("chart: %s marker %d (%q): %w", where, mi, m.Name, err)
				}
				if m.Kind != Vertical && m.Kind != Dot && m.Kind != Strip {
					return fmt.Errorf("chart: %s marker %d (%q): unknown kind %d", where, mi, m.Name, m.Kind)
				}
				seen(m.At)
				if m.Kind == Strip && m.Until.After(m.At) {
					seen(m.Until)
				}
			}
		}
	}
	// A bound not given comes from the data, unless the data lies on the wrong side of the one given: then the
	// axis spans an hour from it.
	l.start, l.end = l.c.Start, l.c.End
	switch {
	case l.start.IsZero() && l.end.IsZero():
		if lo.IsZero() {
			return nil // no time at all: empty panels, no time labels
		}
		l.start, l.end = lo, hi
	case l.start.IsZero():
		l.start = lo
		if lo.IsZero() || !lo.Before(l.end) {
			l.start = l.end.Add(-time.Hour)
		}
	case l.end.IsZero():
		l.end = hi
		if hi.IsZero() || !hi.After(l.start) {
			l.end = l.start.Add(time.Hour)
		}
	}
	if l.end.Before(l.start) {
		return fmt.Errorf("chart: time axis from %s to %s: expected End after Start",
			l.start.UTC().Format(time.RFC3339), l.end.UTC().Format(time.RFC3339))
	}
	if l.end.Equal(l.start) { // one instant: a minute either side, so it is drawn in the middle
		if !l.c.Start.IsZero() && !l.c.End.IsZero() {
			return fmt.Errorf("chart: time axis from %s to itself: expected End after Start", l.start.UTC().Format(time.RFC3339))
		}
		l.start, l.end = l.start.Add(-time.Minute), l.end.Add(time.Minute)
	}
	return nil
}

// visible returns the series' points inside the time axis, with non-finite values as NaN and huge ones clamped.
// A Step series starts with the value in effect at the axis's start, from the last point before it.
func visible(s *Series, start, end time.Time) []Point {
	if start.IsZero() {
		return nil
	}
	i := 0
	for i < len(s.Points) && s.Points[i].T.Before(start) {
		i++
	}
	var out []Point
	if s.Style == Step && i > 0 && (i == len(s.Points) || s.Points[i].T.After(start)) {
		out = append(out, Point{T: start, V: clean(s.Points[i-1].V)})
	}
	for ; i < len(s.Points) && !s.Points[i].T.After(end); i++ {
		out = append(out, Point{T: s.Points[i].T, V: clean(s.Points[i].V)})
	}
	return out
}

func clean(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return math.NaN()
	}
	return math.Max(-maxAbsValue, math.Min(maxAbsValue, v))
}

func (l *layout) markerVisible(m Marker) bool {
	if l.start.IsZero() {
		return false
	}
	end := m.At
	if m.Kind == Strip && m.Until.After(m.At) {
		end = m.Until
	}
	return !end.Before(l.start) && !m.At.After(l.end)
}

// valueAxes settles every panel's value axis: fixed ones as given, fitted ones to the data of their row.
func (l *layout) valueAxes(plotH float64) {
	nTicks := int(math.Max(3, math.Min(8, math.Floor(plotH/30))))
	for r := range l.cols[0].panels {
		// A row fits one linear and one logarithmic range, each to its panels' data together.
		type acc struct{ lo, hi float64 }
		lin, lg := acc{math.Inf(1), math.Inf(-1)}, acc{math.Inf(1), math.Inf(-1)}
		for ci := range l.cols {
			pl := &l.cols[ci].panels[r]
			p := pl.p
			if p.Min != 0 || p.Max != 0 {
				continue
			}
			pl.auto = true
			a := &lin
			if p.Log {
				a = &lg
			}
			see := func(v float64) {
				v = clean(v)
				if math.IsNaN(v) || (p.Log && !(v > 0)) {
					return
				}
				a.lo, a.hi = math.Min(a.lo, v), math.Max(a.hi, v)
			}
			for _, sd := range pl.series {
				for _, pt := range sd.points {
					see(pt.V)
				}
			}
			for _, ru := range p.Rules {
				if ru.Fit {
					see(ru.Value)
				}
			}
			for _, m := range p.Markers {
				if m.Kind == Dot && l.markerVisible(m) {
					see(m.Value)
				}
			}
		}
		for ci := range l.cols {
			pl := &l.cols[ci].panels[r]
			p := pl.p
			switch {
			case !pl.auto && p.Log:
				pl.lo, pl.hi = p.Min, p.Max
				pl.ticks = logTicks(pl.lo, pl.hi)
			case !pl.auto:
				pl.ticks, pl.lo, pl.hi = linearTicks(p.Min, p.Max, nTicks, false)
			case p.Log:
				lo, hi := lg.lo, lg.hi
				if lo > hi { // no positive value
					lo, hi = 1, 10
				}
				pl.lo = math.Pow(10, math.Floor(math.Log10(lo)))
				pl.hi = math.Pow(10, math.Ceil(math.Log10(hi)))
				if !(pl.hi > pl.lo) {
					pl.hi = pl.lo * 10
				}
				pl.ticks = logTicks(pl.lo, pl.hi)
			default:
				lo, hi := math.Min(0, lin.lo), math.Max(0, lin.hi)
				if lin.lo > lin.hi { // no value
					lo, hi = 0, 1
				}
				if hi == lo {
					hi = lo + 1
				}
				pl.ticks, pl.lo, pl.hi = linearTicks(lo, hi, nTicks, true)
			}
		}
	}
}

// legendRows lays out a panel's title and legend entries from the plot's left edge, wrapping at its right edge.
func legendRows(pl *panelLayout, x0, w float64) [][]legendItem {
	var items []legendItem
	if pl.p.Title != "" {
		items = append(items, legendItem{label: pl.p.Title, title: true})
	}
	for i := range pl.series {
		if pl.series[i].s.Name != "" {
			items = append(items, legendItem{label: pl.series[i].s.Name, series: &pl.series[i]})
		}
	}
	type key struct {
		name, color string
		kind        MarkerKind
	}
	var seenKeys []key
	for i := range pl.p.Markers {
		m := &pl.p.Markers[i]
		color := markerColor(m)
		k := key{m.Name, color, m.Kind}
		if m.Name == "" || slices.Contains(seenKeys, k) {
			continue
		}
		seenKeys = append(seenKeys, k)
		items = append(items, legendItem{label: m.Name, marker: m, color: color})
	}
	var rows [][]legendItem
	x := x0
	for _, it := range items {
		wd := float64(utf8.RuneCountInString(it.label)) * charW
		if it.title {
			wd = wd*1.08 + 14
		} else {
			wd += 20 + 14
		}
		if len(rows) == 0 || (x+wd > x0+w+14 && len(rows[len(rows)-1]) > 0) {
			rows = append(rows, nil)
			x = x0
		}
		it.x = x
		rows[len(rows)-1] = append(rows[len(rows)-1], it)
		x += wd
	}
	return rows
}

// checkColor accepts "#rgb", "#rrggbb" (with or without alpha) and lower-case colour names, and nothing that could
// break out of an attribute.
func checkColor(c string) error {
	if c == "" {
		return nil
	}
	if c[0] == '#' {
		if n := len(c) - 1; n == 3 || n == 4 || n == 6 || n == 8 {
			ok := true
			for _, r := range c[1:] {
				ok = ok && (r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F')
			}
			if ok {
				return nil
			}
		}
	} else if len(c) <= 32 {
		ok := true
		for _, r := range c {
			ok = ok && r >= 'a' && r <= 'z'
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("colour %q: expected #rrggbb, #rgb or a lower-case colour name", c)
}

// paletteColor is the default colour of a panel's i-th series: distinct neighbours that stay apart for people
// with the common colour deficiencies (Tableau's ten).
func paletteColor(i int) string {
	switch i % 10 {
	case 0:
		return "#1f77b4"
	case 1:
		return "#ff7f0e"
	case 2:
		return "#2ca02c"
	case 3:
		return "#d62728"
	case 4:
		return "#9467bd"
	case 5:
		return "#8c564b"
	case 6:
		return "#e377c2"
	case 7:
		return "#7f7f7f"
	case 8:
		return "#bcbd22"
	}
	return "#17becf"
}

func markerColor(m *Marker) string {
	if m.Color != "" {
		return m.Color
	}
	return "#555555"
}

func ruleColor(r *Rule) string {
	if r.Color != "" {
		return r.Color
	}
	return "#666666"
}
