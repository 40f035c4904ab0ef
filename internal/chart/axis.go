package chart

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Number formats a value axis label: at most four significant digits, thousands as k, M, G and T, so a tick label
// stays a few characters wide whatever the magnitude.
func Number(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0 || math.IsNaN(v):
		return "0"
	case a >= 1e15 || a < 1e-4:
		return strconv.FormatFloat(v, 'g', 3, 64)
	case a >= 1e12:
		return short(v/1e12) + "T"
	case a >= 1e9:
		return short(v/1e9) + "G"
	case a >= 1e6:
		return short(v/1e6) + "M"
	case a >= 1e4:
		return short(v/1e3) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// Seconds formats a duration in seconds for people: "250ms", "1.5s", "100s", "17min", "2h".
func Seconds(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0 || math.IsNaN(v):
		return "0"
	case a < 1e-3:
		return short(v*1e6) + "µs"
	case a < 1:
		return short(v*1e3) + "ms"
	case a < 1000:
		return short(v) + "s"
	case a < 100*60:
		return short(v/60) + "min"
	case a < 100*3600:
		return short(v/3600) + "h"
	}
	return short(v/86400) + "d"
}

// short writes x with three significant digits or fewer, without trailing zeros.
func short(x float64) string {
	a := math.Abs(x)
	prec := 0
	switch {
	case a < 10:
		prec = 2
	case a < 100:
		prec = 1
	}
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten, the steps people count in.
func niceStep(raw float64) float64 {
	if !(raw > 0) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if raw <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// linearTicks returns ticks from lo to hi about n apart, and, when the range is fitted, widens lo and hi to whole
// ticks so the top of the axis is labelled.
func linearTicks(lo, hi float64, n int, fitted bool) (ticks []float64, nlo, nhi float64) {
	step := niceStep((hi - lo) / float64(max(n, 1)))
	if fitted {
		lo = math.Floor(lo/step+1e-9) * step
		hi = math.Ceil(hi/step-1e-9) * step
	}
	first := math.Ceil(lo/step - 1e-9)
	for i := 0; i <= 40; i++ {
		v := (first + float64(i)) * step
		if v > hi+step*1e-6 {
			break
		}
		if v == 0 {
			v = 0 // no "-0"
		}
		ticks = append(ticks, v)
	}
	return ticks, lo, hi
}

// logTicks returns the powers of ten from lo to hi and, when there are fewer than three of them, the 2 and 5
// multiples too, so a narrow axis still has labels.
func logTicks(lo, hi float64) []float64 {
	var ticks []float64
	e0, e1 := int(math.Floor(math.Log10(lo)+1e-9)), int(math.Ceil(math.Log10(hi)-1e-9))
	if e1-e0 > 40 {
		e0 = e1 - 40
	}
	decades := 0
	for e := e0; e <= e1; e++ {
		if v := math.Pow(10, float64(e)); v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
			decades++
		}
	}
	mults := []float64{1}
	if decades < 3 {
		mults = []float64{1, 2, 5}
	}
	for e := e0; e <= e1; e++ {
		for _, m := range mults {
			if v := m * math.Pow(10, float64(e)); v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
				ticks = append(ticks, v)
			}
		}
	}
	return ticks
}

// timeSteps are the intervals the time axis is labelled at, in seconds: ones a clock reads naturally.
func timeSteps() []int64 {
	return []int64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600,
		86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400}
}

// timeTick is one labelled instant of the time axis.
type timeTick struct {
	t     time.Time
	label string
}

// timeTicks picks at most maxLabels ticks between start and end. On the clock they fall on whole UTC minutes,
// hours or days; elapsed, on whole multiples of the step since start.
func timeTicks(start, end time.Time, maxLabels int, elapsed bool) []timeTick {
	span := end.Sub(start).Seconds()
	if !(span > 0) || maxLabels < 1 {
		return nil
	}
	var step int64
	for _, s := range timeSteps() {
		if span/float64(s) <= float64(maxLabels) {
			step = s
			break
		}
	}
	if step == 0 {
		step = int64(math.Ceil(span/float64(maxLabels)/86400)) * 86400
	}
	var out []timeTick
	if elapsed {
		for k := int64(0); float64(k*step) <= span+1e-9; k++ {
			out = append(out, timeTick{start.Add(time.Duration(k*step) * time.Second), elapsedLabel(k * step)})
		}
		return out
	}
	u := start.Unix()
	if start.Nanosecond() != 0 {
		u++
	}
	first := u + (step-(u%step+step)%step)%step
	for u := first; u <= end.Unix(); u += step {
		t := time.Unix(u, 0).UTC()
		out = append(out, timeTick{t, clockLabel(t, step, span)})
	}
	return out
}

// clockLabel names a tick on the UTC clock: the time of day, or the date at midnight when the axis spans days.
func clockLabel(t time.Time, step int64, span float64) string {
	switch {
	case step >= 86400 || (span > 86400 && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0):
		return t.Format("Jan 2")
	case step < 60:
		return t.Format("15:04:05")
	}
	return t.Format("15:04")
}

// Elapsed writes a time since a start as an elapsed axis labels it: "0", "45s", "30m", "6h", "1d12h"; the
// simulator's tooltips use it too, so that they read like the axis under them.
func Elapsed(d time.Duration) string { return elapsedLabel(int64(d / time.Second)) }

// elapsedLabel names a tick by the seconds since the start.
func elapsedLabel(s int64) string {
	if s == 0 {
		return "0"
	}
	var b strings.Builder
	for _, u := range []struct {
		secs int64
		name string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if n := s / u.secs; n > 0 {
			b.WriteString(strconv.FormatInt(n, 10) + u.name)
			s -= n * u.secs
		}
	}
	return b.String()
}
