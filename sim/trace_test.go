package sim_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/sim"
)

func TestReadTraceExpandsStepsAndScales(t *testing.T) {
	tr, err := sim.ReadTrace(strings.NewReader("t_seconds,rate_per_second\n0,1.5\n60,3\n120,0\n"), "m.csv")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Step != 60 || tr.Seconds() != 180 {
		t.Fatalf("step %d, %d seconds: want 60 and 180", tr.Step, tr.Seconds())
	}
	for i, want := range map[int]float64{0: 1.5, 59: 1.5, 60: 3, 119: 3, 120: 0, 179: 0} {
		if tr.Rates[i] != want {
			t.Errorf("second %d: rate %v, want %v", i, tr.Rates[i], want)
		}
	}
	s := tr.Scaled(4)
	if s.Rates[60] != 12 || s.Scale != 4 || tr.Rates[60] != 3 {
		t.Errorf("scaled rate %v (scale %v), original %v: want 12 (4) and 3 untouched", s.Rates[60], s.Scale, tr.Rates[60])
	}
	if s.Peak() != 12 {
		t.Errorf("peak %v, want 12", s.Peak())
	}
}

func TestReadTraceOneSecondWithCRLFAndTrailingBlank(t *testing.T) {
	tr, err := sim.ReadTrace(strings.NewReader("t_seconds,rate_per_second\r\n0,1\r\n1,7\r\n2,0\r\n\r\n"), "s.csv")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Step != 1 || len(tr.Rates) != 3 || tr.Rates[1] != 7 {
		t.Fatalf("got step %d rates %v", tr.Step, tr.Rates)
	}
}

func TestReadTraceErrorsNameTheLine(t *testing.T) {
	const h = "t_seconds,rate_per_second\n"
	cases := []struct {
		name, text, want string
	}{
		{"empty", "", "bad.csv:1: empty trace"},
		{"header only", h, "bad.csv:1: no data rows"},
		{"wrong header", "time,rate\n0,1\n", `bad.csv:1: header "time,rate": expected "t_seconds,rate_per_second"`},
		{"one row", h + "0,1\n", "bad.csv:2: one data row"},
		{"unsorted", h + "0,1\n60,2\n30,3\n", "bad.csv:4: t_seconds 30 is not after 60"},
		{"repeated time", h + "0,1\n1,2\n1,3\n", "bad.csv:4: t_seconds 1 is not after 1"},
		{"gap", h + "0,1\n60,2\n120,3\n240,1\n", "bad.csv:5: t_seconds jumps from 120 to 240: expected 180"},
		{"irregular step", h + "0,1\n1,2\n3,3\n", "bad.csv:4: t_seconds jumps from 1 to 3: expected 2"},
		{"negative rate", h + "0,1\n1,-2\n", "bad.csv:3: rate_per_second -2 is negative"},
		{"rate not a number", h + "0,1\n1,lots\n", `bad.csv:3: rate_per_second "lots" is not a number`},
		{"NaN rate", h + "0,1\n1,NaN\n", `bad.csv:3: rate_per_second "NaN" is not a number`},
		{"time not a number", h + "x,1\n1,2\n", `bad.csv:2: t_seconds "x" is not a number`},
		{"fractional time", h + "0,1\n0.5,2\n", `bad.csv:3: t_seconds "0.5": expected a whole number`},
		{"three fields", h + "0,1\n1,2,3\n", "bad.csv:3: 3 fields"},
		{"blank line before header", "\n" + h, "bad.csv:1: empty line where the header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sim.ReadTrace(strings.NewReader(c.text), "bad.csv")
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestLoadTraceReadsEveryTraceShipped(t *testing.T) {
	for _, name := range []string{"nasa_jul1995_1min.csv", "worldcup98_0624_0630_1min.csv", "alibaba_ms2021_6d9c26b9_1min.csv",
		"azure_llm2023_code_1s.csv", "azure_llm2023_conv_1s.csv"} {
		path := tracePath(t, name)
		tr, err := sim.LoadTrace(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tr.Seconds() < 3000 || tr.Peak() <= 0 {
			t.Errorf("%s: %d seconds, peak %v", name, tr.Seconds(), tr.Peak())
		}
	}
}

// Reading a long trace stops when the context is done (a 400-day trace at one-second steps takes seconds to read).
func TestLoadTraceContextStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "long.csv")
	var b strings.Builder
	b.WriteString(sim.TraceHeader + "\n")
	for i := range 200_000 {
		b.WriteString(strconv.Itoa(i) + ",1\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if tr, err := sim.LoadTraceContext(context.Background(), path); err != nil || tr.Seconds() != 200_000 {
		t.Fatalf("uncancelled: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stop *sim.StoppedError
	if tr, err := sim.LoadTraceContext(ctx, path); !errors.As(err, &stop) || tr != nil {
		t.Errorf("cancelled: trace %v, error %v; want none and a *StoppedError", tr != nil, err)
	}
}

// Counted draws each second's requests from a Poisson distribution at its rate: whole numbers, the same for the same
// seed, the mean kept, and the spread of a Poisson count (variance = mean).
func TestCountedIsPoissonPerSecond(t *testing.T) {
	tr := &sim.Trace{Name: "steady", Step: 60, Scale: 2, Rates: make([]float64, 20000)}
	for i := range tr.Rates {
		tr.Rates[i] = []float64{3, 50}[i%2]
	}
	a, b := tr.Counted(rand.New(rand.NewPCG(1, 2))), tr.Counted(rand.New(rand.NewPCG(1, 2)))
	if !slices.Equal(a.Rates, b.Rates) || a.Step != 1 || a.Scale != 2 {
		t.Fatalf("Counted is not deterministic for one seed, or lost the scale: step %d scale %v", a.Step, a.Scale)
	}
	for k, mean := range []float64{3, 50} {
		sum, sq := 0.0, 0.0
		for i := k; i < len(a.Rates); i += 2 {
			v := a.Rates[i]
			if v != math.Trunc(v) || v < 0 {
				t.Fatalf("second %d holds %v requests: want a whole number", i, v)
			}
			sum, sq = sum+v, sq+v*v
		}
		n := float64(len(a.Rates) / 2)
		m := sum / n
		if v := sq/n - m*m; math.Abs(m-mean) > 0.05*mean || math.Abs(v-mean) > 0.1*mean {
			t.Errorf("rate %v: counts of mean %v and variance %v, want both near %v", mean, m, v, mean)
		}
	}
}
