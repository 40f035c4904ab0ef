package chart

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// svg writes SVG elements into a buffer. Writes to a bytes.Buffer cannot fail, so drawing code stays linear.
type svg struct{ b *bytes.Buffer }

// num writes a coordinate with at most one decimal: a tenth of a pixel is finer than any screen, and fewer digits
// keep a long series small.
func num(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// esc escapes text for XML content and attribute values alike, and replaces characters XML cannot hold: an app
// or policy name reaches the page through here, so it can never close a tag or open a script.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

func (s *svg) raw(str string) { s.b.WriteString(str) }

func (s *svg) printf(format string, a ...any) { fmt.Fprintf(s.b, format, a...) }

// textStyle is how a piece of text looks.
type textStyle struct {
	size   float64 // zero: the chart's 12px
	anchor string  // "", "middle" or "end"
	color  string
	bold   bool
	halo   bool // a white outline, so text stays legible over lines it crosses
}

func (s *svg) text(x, y float64, str string, st textStyle) {
	if str == "" {
		return
	}
	s.printf(`<text x="%s" y="%s"`, num(x), num(y))
	if st.size > 0 {
		s.printf(` font-size="%s"`, num(st.size))
	}
	if st.anchor != "" {
		s.printf(` text-anchor="%s"`, st.anchor)
	}
	if st.color != "" {
		s.printf(` fill="%s"`, st.color)
	}
	if st.bold {
		s.raw(` font-weight="bold"`)
	}
	if st.halo {
		s.raw(` stroke="#fff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"`)
	}
	s.printf(">%s</text>\n", esc(str))
}

func (s *svg) line(x1, y1, x2, y2 float64, color string, width float64, dash string) {
	s.printf(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"`, num(x1), num(y1), num(x2), num(y2),
		color, num(width))
	if dash != "" {
		s.printf(` stroke-dasharray="%s"`, dash)
	}
	s.raw("/>\n")
}

func (s *svg) rect(x, y, w, h float64, fill, stroke string) {
	s.printf(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"`, num(x), num(y), num(w), num(h), fill)
	if stroke != "" {
		s.printf(` stroke="%s"`, stroke)
	}
	s.raw("/>\n")
}

func (s *svg) circle(x, y, r float64, fill string) {
	s.printf(`<circle cx="%s" cy="%s" r="%s" fill="%s" stroke="#fff" stroke-width="1"/>`+"\n", num(x), num(y), num(r), fill)
}

// titled opens a group whose <title> is the tooltip for what is drawn inside it; close it with s.raw("</g>\n").
func (s *svg) titled(title string) {
	s.printf("<g><title>%s</title>\n", esc(title))
}

// pathBuilder assembles a path's d attribute.
type pathBuilder struct{ strings.Builder }

func (p *pathBuilder) cmd(c byte, vs ...float64) {
	if p.Len() > 0 {
		p.WriteByte(' ')
	}
	p.WriteByte(c)
	for i, v := range vs {
		if i > 0 {
			p.WriteByte(',')
		}
		p.WriteString(num(v))
	}
}
