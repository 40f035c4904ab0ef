// Package chart draws time-series charts as SVG. The daemon's status page and `dynopilot simulate --chart` both
// draw with it, so a chart a person has learned to read on one reads the same on the other.
//
// Why SVG written here, and not gonum.org/v1/plot: the status page needs things a plotting library does not give.
// A failed reading must show as a gap, and gonum/plot's plotters refuse NaN points, so every gap would need its own
// plotter. A scale event must explain itself on hover through an SVG <title>, and gonum/plot cannot emit one. The
// viewer's browser should draw the text, in the page's font, sharp at any zoom and selectable, where gonum/plot
// positions text by the metrics of the fonts it bundles. And it would bring fonts, a LaTeX renderer, PDF and raster
// back ends into a daemon that serves one small page. What is drawn here is a few hundred lines: frames, ticks,
// paths and text. The output is deterministic (the same Chart gives the same bytes), has no element ids (several
// charts can sit inline on one page) and stays small however long the history: a series with more points than the
// plot has pixel columns keeps each column's first, lowest, highest and last point, which draws the same picture.
//
// A page should put the SVG inline, not in an <img>: an image's tooltips never show, and it cannot use the page's
// fonts. There is no PNG: a browser shows the SVG, and `chromium --headless --screenshot` turns it into a picture.
package chart

import (
	"bytes"
	"fmt"
	"io"
	"time"
)

// Chart is one picture: optional titles, then columns of panels stacked over a shared time axis. Panels in the
// same row of different columns share their value axis when they fit it to their data, so two contenders side by
// side compare like with like.
type Chart struct {
	Title    string
	Subtitle string // a line of smaller grey text under the title: the conditions the chart was drawn under
	// Width and Height in pixels; zero means 900 and 320, a chart across a web page.
	Width, Height int
	// Start and End bound the time axis. A zero one is taken from the data (an hour from the other when the data
	// lies on its wrong side); points and markers with a zero time count as missing. The status page passes now-6h
	// and now, so an idle policy still shows six hours.
	Start, End time.Time
	// Elapsed labels the time axis with the time since Start ("0", "6h", "1d12h") instead of the UTC clock ("14:05"):
	// for a replay, whose clock is virtual.
	Elapsed bool
	Columns []Column
}

// Column is one vertical stack of panels, such as one contender of a simulation.
type Column struct {
	Title string // bold, above the column's first panel
	Note  string // grey, right-aligned on the same line: the column's numbers
	// Panels, top to bottom. Every column has as many panels as the first: rows are compared across columns.
	Panels []Panel
}

// Panel is one plot area with its own value axis.
type Panel struct {
	Title   string // what the value axis measures, such as "dynos" or "p95 latency"; the legend follows it
	Series  []Series
	Rules   []Rule
	Markers []Marker
	// Log draws the value axis logarithmically, for latencies that span decades. Values at or below zero are
	// drawn on the bottom edge.
	Log bool
	// Min and Max fix the value axis. Both zero fits it to the data (from zero up, for a linear axis), together
	// with the other columns' panels in the same row.
	Min, Max float64
	// Format writes the value axis's tick labels; nil is Number. Seconds suits latencies.
	Format func(float64) string
	// Weight is the panel's share of the height against the others in its column; zero counts as 1.
	Weight float64
}

// Style is how a series joins its points.
type Style int

const (
	// Line joins points with straight lines: a measurement, such as a reading, between its samples.
	Line Style = iota
	// Step holds each point's value until the next point, and the last one until the end of the time axis: a
	// count, such as dynos, that changes at an instant and stays.
	Step
)

// Series is one named sequence of points in time order. A NaN value breaks the series: nothing is drawn from
// that point to the next, so a failed reading shows as a gap rather than a made-up line. Infinite values are
// gaps too, and finite values beyond ±1e300 are drawn at ±1e300, so the axis arithmetic stays finite.
type Series struct {
	Name   string // in the legend; empty leaves it out
	Points []Point
	Style  Style
	// Fill shades the area under the series down to the value axis's bottom instead of drawing a line. Filled
	// series are drawn first, in order, so a later one covers an earlier one: a stack is drawn as its totals,
	// largest first.
	Fill   bool
	Dashed bool   // a dotted line, for a second series of the same quantity (desired beside current dynos)
	Color  string // "#rrggbb", "#rgb" or a lower-case colour name; empty picks one from the palette
}

// Point is one value at one time.
type Point struct {
	T time.Time
	V float64
}

// Rule is a horizontal dashed line across a panel, labelled at its right end: a target, an objective, a bound.
type Rule struct {
	Value float64
	Label string
	Color string
	// Fit stretches the value axis to show the rule. Without it, a rule beyond the axis is named at the edge it
	// lies beyond ("max 100 ↑"), so a far-away bound does not flatten the data against the bottom.
	Fit bool
}

// MarkerKind is how a marker is drawn.
type MarkerKind int

const (
	// Vertical is a thin line across the panel at the marker's time: an event.
	Vertical MarkerKind = iota
	// Dot is a dot at the marker's time and value: an event that changed a value, such as a scale event on the
	// dyno count.
	Dot
	// Strip is a short bar under the panel from At to Until: a span, such as minutes in breach.
	Strip
)

// Marker marks a moment or a span. Its Title is the tooltip a browser shows on hover, so it can say what the
// chart cannot: "14:05 UTC scaled 3 → 5: p95 620ms above the 400ms target".
type Marker struct {
	Kind      MarkerKind
	At, Until time.Time // Until only for a Strip; a zero or earlier Until draws a one-pixel bar
	Value     float64   // only for a Dot
	Name      string    // in the legend, once per name; empty leaves it out
	Title     string
	Color     string
}

// Render writes c as one SVG element. It checks c whole before writing anything, so a handler that gets an error
// has written no half-drawn chart and can still answer with an error status.
func Render(w io.Writer, c Chart) error {
	l, err := plan(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	l.draw(&svg{b: &buf})
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("chart: write: %w", err)
	}
	return nil
}
