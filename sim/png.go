package sim

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"sort"
	"strconv"
)

// WritePNG draws the chart as a PNG: the same drawing as WriteSVG, rasterised here (filled polygons, lines, and text
// in a built-in 5x7 pixel font), so no graphics library or font file is needed.
func WritePNG(w io.Writer, rep *Report) error {
	cd, err := newChartData(rep)
	if err != nil {
		return err
	}
	pc := &pngCanvas{img: image.NewRGBA(image.Rect(0, 0, chartW, chartHeight()))}
	cd.draw(pc, rep)
	return png.Encode(w, pc.img)
}

type pngCanvas struct{ img *image.RGBA }

func parseColor(s string) color.RGBA {
	if len(s) != 7 || s[0] != '#' {
		return color.RGBA{0, 0, 0, 255}
	}
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if err != nil {
		return color.RGBA{0, 0, 0, 255}
	}
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 255}
}

func (c *pngCanvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

func (c *pngCanvas) rect(x, y, w, h float64, fill, stroke string) {
	if fill != "" {
		col := parseColor(fill)
		for py := int(math.Round(y)); py < int(math.Round(y+h)); py++ {
			for px := int(math.Round(x)); px < int(math.Round(x+w)); px++ {
				c.set(px, py, col)
			}
		}
	}
	if stroke != "" {
		c.polyline([]point{{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}, {x, y}}, stroke, 1)
	}
}

func (c *pngCanvas) line(x1, y1, x2, y2 float64, stroke string, width float64, dashed bool) {
	col := parseColor(stroke)
	length := math.Hypot(x2-x1, y2-y1)
	steps := int(math.Ceil(length*2)) + 1
	half := math.Max(0.5, width/2)
	for i := 0; i <= steps; i++ {
		f := float64(i) / float64(steps)
		if dashed && math.Mod(f*length, 10) >= 6 {
			continue
		}
		x, y := x1+(x2-x1)*f, y1+(y2-y1)*f
		for dy := -half + 0.5; dy < half; dy++ {
			for dx := -half + 0.5; dx < half; dx++ {
				c.set(int(math.Floor(x+dx)), int(math.Floor(y+dy)), col)
			}
		}
	}
}

func (c *pngCanvas) polyline(pts []point, stroke string, width float64) {
	for i := 1; i < len(pts); i++ {
		c.line(pts[i-1].x, pts[i-1].y, pts[i].x, pts[i].y, stroke, width, false)
	}
}

// fill paints a closed polygon with the even-odd rule, one scanline at a time.
func (c *pngCanvas) fill(pts []point, col string) {
	if len(pts) < 3 {
		return
	}
	rgba := parseColor(col)
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
	}
	var xs []float64
	for py := int(math.Floor(minY)); py <= int(math.Ceil(maxY)); py++ {
		yc := float64(py) + 0.5
		xs = xs[:0]
		for i := range pts {
			a, b := pts[i], pts[(i+1)%len(pts)]
			if (a.y <= yc) != (b.y <= yc) {
				xs = append(xs, a.x+(yc-a.y)*(b.x-a.x)/(b.y-a.y))
			}
		}
		sort.Float64s(xs)
		for i := 0; i+1 < len(xs); i += 2 {
			for px := int(math.Round(xs[i])); px < int(math.Round(xs[i+1])); px++ {
				c.set(px, py, rgba)
			}
		}
	}
}

func (c *pngCanvas) text(x, y float64, s string, o textOpts) {
	col := parseColor(o.color)
	if o.color == "" {
		col = color.RGBA{0, 0, 0, 255}
	}
	scale := 1
	if o.size >= 14 {
		scale = 2
	}
	adv := 6 * scale // glyph width 5 plus a column of space
	width := float64(len(s) * adv)
	switch o.anchor {
	case "middle":
		width /= 2
	case "end":
	default:
		width = 0
	}
	// Baseline at y: glyph rows 0..6 sit above it.
	for i, r := range s {
		g := glyph(r)
		for row := range 7 {
			for colx := range 5 {
				if g[row]&(1<<(4-colx)) == 0 {
					continue
				}
				for sy := range scale {
					for sx := range scale {
						gx := float64(i*adv+colx*scale+sx) - width
						gy := float64((row-7)*scale + sy)
						px, py := x+gx, y+gy
						if o.rotate { // a quarter turn counter-clockwise about (x, y)
							px, py = x+gy, y-gx
						}
						c.set(int(px), int(py), col)
						if o.bold {
							c.set(int(px)+1, int(py), col)
						}
					}
				}
			}
		}
	}
}
