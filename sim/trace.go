package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// TraceHeader is the first line every trace file must have.
const TraceHeader = "t_seconds,rate_per_second"

// Trace is an arrival-rate series at one-second resolution: Rates[i] is the mean arrival rate (requests per
// second) during second i. Traces recorded at a coarser step are expanded by holding each row's rate for its
// whole step, which keeps the number of requests per step unchanged.
type Trace struct {
	Name  string    // file name, for reports
	Step  int       // the file's own step in seconds (1, 60, ...)
	Scale float64   // factor already applied to Rates (1 when unscaled)
	Rates []float64 // requests per second, one per second
}

// LoadTrace reads a trace file; errors name the file and the line.
func LoadTrace(path string) (*Trace, error) {
	return LoadTraceContext(context.Background(), path)
}

// LoadTraceContext is LoadTrace that stops when ctx is done (a trace of 400 days at one-second steps takes seconds
// to read), with a *StoppedError.
func LoadTraceContext(ctx context.Context, path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	return readTrace(ctx, f, path)
}

// ReadTrace parses a CSV trace with header "t_seconds,rate_per_second", rows sorted by time at one constant whole
// step of seconds, rates finite and not negative. Every error names the line (name:line: ...), because a trace of
// 40,000 rows with one bad row is otherwise hopeless to fix.
func ReadTrace(r io.Reader, name string) (*Trace, error) {
	return readTrace(context.Background(), r, name)
}

func readTrace(ctx context.Context, r io.Reader, name string) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	lineErr := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	line := 0
	header := false
	var times []int64
	var rates []float64
	var stepLine int // line at which the step was established
	for sc.Scan() {
		line++
		if line%(16*checkEvery) == 0 && ctx.Err() != nil {
			return nil, stopped(ctx)
		}
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		if !header {
			if text == "" {
				return nil, lineErr(line, "empty line where the header %q was expected", TraceHeader)
			}
			if strings.ReplaceAll(text, " ", "") != TraceHeader {
				return nil, lineErr(line, "header %q: expected %q", text, TraceHeader)
			}
			header = true
			continue
		}
		if text == "" {
			continue // blank lines (a trailing newline, say) carry nothing
		}
		fields := strings.Split(text, ",")
		if len(fields) != 2 {
			return nil, lineErr(line, "%d fields in %q: expected 2 (t_seconds,rate_per_second)", len(fields), text)
		}
		tf, err := strconv.ParseFloat(strings.TrimSpace(fields[0]), 64)
		if err != nil || math.IsNaN(tf) || math.IsInf(tf, 0) {
			return nil, lineErr(line, "t_seconds %q is not a number", fields[0])
		}
		if tf != math.Trunc(tf) || tf < 0 || tf > 1e9 {
			return nil, lineErr(line, "t_seconds %q: expected a whole number of seconds from 0", fields[0])
		}
		rate, err := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
		if err != nil || math.IsNaN(rate) || math.IsInf(rate, 0) {
			return nil, lineErr(line, "rate_per_second %q is not a number", fields[1])
		}
		if rate < 0 {
			return nil, lineErr(line, "rate_per_second %v is negative: expected a rate of 0 or more", rate)
		}
		t := int64(tf)
		if n := len(times); n > 0 {
			prev := times[n-1]
			if t <= prev {
				return nil, lineErr(line, "t_seconds %d is not after %d on the line before: rows must be sorted by time, without repeats", t, prev)
			}
			if n == 1 {
				stepLine = line
			} else if step := times[1] - times[0]; t-prev != step {
				return nil, lineErr(line, "t_seconds jumps from %d to %d: expected %d (the trace's step is %d s, set at line %d); fill gaps with explicit rows", prev, t, prev+step, step, stepLine)
			}
		}
		times = append(times, t)
		rates = append(rates, rate)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: read: %w", name, line+1, err)
	}
	switch {
	case line == 0:
		return nil, lineErr(1, "empty trace: expected the header %q and rows", TraceHeader)
	case len(times) == 0:
		return nil, lineErr(line, "no data rows after the header: expected rows of %s", TraceHeader)
	case len(times) == 1:
		return nil, lineErr(line, "one data row: expected at least two, to know the step")
	}
	step := times[1] - times[0]
	if int64(len(times))*step > 400*24*3600 {
		return nil, errors.New(name + ": trace longer than 400 days: expected a shorter trace")
	}
	out := &Trace{Name: name, Step: int(step), Scale: 1, Rates: make([]float64, 0, int64(len(times))*step)}
	for _, r := range rates {
		for range step {
			out.Rates = append(out.Rates, r)
		}
	}
	return out, nil
}

// Scaled returns a copy of the trace with every rate multiplied by f, so that one shape can stand for an app of any
// size.
func (t *Trace) Scaled(f float64) *Trace {
	out := &Trace{Name: t.Name, Step: t.Step, Scale: t.Scale * f, Rates: make([]float64, len(t.Rates))}
	for i, r := range t.Rates {
		out.Rates[i] = r * f
	}
	return out
}

// Counted returns a copy of the trace whose every second holds a whole number of requests, drawn with rng from a
// Poisson distribution at that second's rate: what one real second at that mean rate brings, so that a trace
// recorded per minute gets the second-to-second noise it smoothed away.
func (t *Trace) Counted(rng *rand.Rand) *Trace {
	out := &Trace{Name: t.Name, Step: 1, Scale: t.Scale, Rates: make([]float64, len(t.Rates))}
	for i, mean := range t.Rates {
		out.Rates[i] = poissonDraw(rng, mean)
	}
	return out
}

// Seconds is the length of the trace.
func (t *Trace) Seconds() int { return len(t.Rates) }

// Peak is the highest per-second rate.
func (t *Trace) Peak() float64 {
	p := 0.0
	for _, r := range t.Rates {
		p = max(p, r)
	}
	return p
}
