package sim_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/sim"
)

// shapesByName is every synthetic shape by name, failing the test when one the tests know is missing.
func shapesByName(t *testing.T) map[string]*sim.Trace {
	t.Helper()
	out := map[string]*sim.Trace{}
	for _, tr := range sim.Shapes() {
		out[strings.TrimPrefix(tr.Name, "synthetic: ")] = tr
	}
	for _, name := range []string{"flash crowds", "diurnal with noise", "on/off bursts", "clumped arrivals", "slow ramps", "isolated spikes"} {
		if out[name] == nil {
			t.Fatalf("no shape %q among %d", name, len(out))
		}
	}
	return out
}

// means is the trace's mean rate over consecutive windows of w seconds (the last one may be shorter).
func means(tr *sim.Trace, w int) []float64 {
	var out []float64
	for s := 0; s < len(tr.Rates); s += w {
		part := tr.Rates[s:min(len(tr.Rates), s+w)]
		sum := 0.0
		for _, r := range part {
			sum += r
		}
		out = append(out, sum/float64(len(part)))
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// onsets counts the minutes at which the minute mean has climbed from below lo to above hi within the last k minutes,
// counting a climb once (minutes within 10 of a counted one belong to it).
func onsets(mm []float64, lo, hi float64, k int) int {
	n, last := 0, -100
	for m := k; m < len(mm); m++ {
		if mm[m] > hi && mm[m-k] < lo && m-last > 10 {
			n, last = n+1, m
		}
	}
	return n
}

func TestShapesAreDeterministic(t *testing.T) {
	a, b := sim.Shapes(), sim.Shapes()
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Step != b[i].Step || !slices.Equal(a[i].Rates, b[i].Rates) {
			t.Errorf("%s: two calls differ", a[i].Name)
		}
	}
}

func TestShapesAreWellFormed(t *testing.T) {
	shapes := sim.Shapes()
	if len(shapes) < 6 {
		t.Fatalf("%d shapes, want at least 6", len(shapes))
	}
	seen := map[string]bool{}
	for _, tr := range shapes {
		if !strings.HasPrefix(tr.Name, "synthetic: ") || seen[tr.Name] {
			t.Errorf("name %q: want a distinct name starting with \"synthetic: \"", tr.Name)
		}
		seen[tr.Name] = true
		days := 1
		if strings.Contains(tr.Name, "diurnal") {
			days = 2 // so the daily pattern recurs
		}
		if tr.Seconds() < days*86400 || tr.Scale != 1 || (tr.Step != 1 && tr.Step != 60) {
			t.Errorf("%s: %d s, scale %v, step %d: want at least %d days, scale 1, step 1 or 60", tr.Name, tr.Seconds(), tr.Scale, tr.Step, days)
		}
		for i, r := range tr.Rates {
			if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
				t.Fatalf("%s: second %d has rate %v: want a finite rate of 0 or more", tr.Name, i, r)
			}
			if tr.Step == 60 && i%60 != 0 && r != tr.Rates[i-1] {
				t.Fatalf("%s: second %d's rate %v differs from the second before within a 60 s step", tr.Name, i, r)
			}
		}
		if tr.Peak() <= 0 {
			t.Errorf("%s: no traffic", tr.Name)
		}
	}
}

func TestShapesHaveTheirProperties(t *testing.T) {
	s := shapesByName(t)

	t.Run("flash crowds", func(t *testing.T) {
		mm := means(s["flash crowds"], 60)
		med, peak := median(mm), slices.Max(mm)
		if peak/med <= 5 {
			t.Errorf("peak minute / median minute = %.1f: want above 5", peak/med)
		}
		// Each crowd reaches over 4× the median within 4 minutes of being under 1.5× it (a 1-3 minute ramp, read in
		// whole minutes).
		if n := onsets(mm, 1.5*med, 4*med, 4); n < 6 {
			t.Errorf("%d sudden surges to over 4× the median: want at least 6", n)
		}
		// Crowds last 10-60 minutes: a day of eight spends between 80 and 8*68 minutes above 3× the median.
		above := 0
		for _, v := range mm {
			if v > 3*med {
				above++
			}
		}
		if above < 80 || above > 8*68 {
			t.Errorf("%d minutes above 3× the median: want 80 to %d", above, 8*68)
		}
	})

	t.Run("diurnal with noise", func(t *testing.T) {
		tr := s["diurnal with noise"]
		hm := means(tr, 3600)
		var weekday, weekend float64
		for d := range tr.Seconds() / 86400 {
			hours := hm[d*24 : (d+1)*24]
			lo, hi := slices.Min(hours), slices.Max(hours)
			if r := hi / lo; r < 3 || r > 5.5 {
				t.Errorf("day %d: busiest hour / quietest = %.1f: want about 4", d, r)
			}
			if h := slices.Index(hours, hi); h < 12 || h > 20 {
				t.Errorf("day %d: busiest hour %d: want the afternoon", d, h)
			}
			sum := 0.0
			for _, v := range hours {
				sum += v
			}
			if d%7 >= 5 {
				weekend += sum / 2
			} else {
				weekday += sum / 5
			}
		}
		if weekend > 0.8*weekday {
			t.Errorf("a weekend day carries %.0f%% of a weekday: want under 80%%", 100*weekend/weekday)
		}
		// Poisson noise: consecutive minutes differ, by about 1/√(count) at night.
		mm := means(tr, 60)
		same := 0
		for m := 1; m < len(mm); m++ {
			if mm[m] == mm[m-1] {
				same++
			}
		}
		if same > len(mm)/10 {
			t.Errorf("%d of %d minutes repeat the one before: want noise", same, len(mm))
		}
	})

	t.Run("on/off bursts", func(t *testing.T) {
		mm := means(s["on/off bursts"], 60)
		peak := slices.Max(mm)
		// Stretches of at least 2 whole minutes near zero (under 5% of the peak minute).
		stretches, run, quiet := 0, 0, 0
		for _, v := range mm {
			if v < 0.05*peak {
				run++
				quiet++
				if run == 2 {
					stretches++
				}
			} else {
				run = 0
			}
		}
		if stretches < 10 {
			t.Errorf("%d near-zero stretches of 2 minutes or more: want at least 10", stretches)
		}
		if f := float64(quiet) / float64(len(mm)); f < 0.2 || f > 0.8 {
			t.Errorf("%.0f%% of minutes near zero: want between 20%% and 80%%", 100*f)
		}
	})

	t.Run("clumped arrivals", func(t *testing.T) {
		tr := s["clumped arrivals"]
		empty := 0
		for i, r := range tr.Rates {
			switch {
			case r == 0:
				empty++
			case r < 10:
				t.Fatalf("second %d holds %v requests: want clumps of 10 or more", i, r)
			}
		}
		if f := float64(empty) / float64(tr.Seconds()); f <= 0.5 {
			t.Errorf("%.0f%% of seconds empty: want over 50%%", 100*f)
		}
		// The batch jobs: the busiest minutes carry several times the day's mean.
		mm := means(tr, 60)
		sum := 0.0
		for _, v := range mm {
			sum += v
		}
		if r := slices.Max(mm) / (sum / float64(len(mm))); r < 2.5 {
			t.Errorf("busiest minute / mean minute = %.1f: want at least 2.5", r)
		}
	})

	t.Run("slow ramps", func(t *testing.T) {
		tm := means(s["slow ramps"], 600)
		lo, hi := slices.Min(tm), slices.Max(tm)
		if hi/lo < 4 {
			t.Errorf("busiest 10 minutes / quietest = %.1f: want at least 4", hi/lo)
		}
		for i := 1; i < len(tm); i++ {
			if d := math.Abs(tm[i] - tm[i-1]); d > 0.1*hi {
				t.Errorf("10-minute mean moves by %.1f (%.0f%% of the peak) at %d min: want a slow ramp, under 10%%", d, 100*d/hi, i*10)
			}
		}
	})

	t.Run("isolated spikes", func(t *testing.T) {
		mm := means(s["isolated spikes"], 60)
		med := median(mm)
		if r := slices.Max(mm) / med; r < 3 {
			t.Errorf("peak minute / median minute = %.1f: want at least 3", r)
		}
		above := 0
		for _, v := range mm {
			if v > 2*med {
				above++
			}
		}
		if above == 0 || above > len(mm)/20 {
			t.Errorf("%d of %d minutes above twice the median: want rare spikes, a few but at most 5%%", above, len(mm))
		}
		if n := onsets(mm, 1.5*med, 2*med, 1); n < 8 {
			t.Errorf("%d sudden spikes: want at least 8 (of 16, some close together)", n)
		}
	})
}
