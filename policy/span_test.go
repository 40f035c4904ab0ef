package policy

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// searched is what Start answered before it had a cache: cron's first activation after t-Duration, if not after t.
func searched(w Window, t time.Time) (time.Time, bool) {
	s := w.sched.Next(t.Add(-w.Duration))
	if s.IsZero() || s.After(t) {
		return time.Time{}, false
	}
	return s, true
}

// spanZones have every kind of change: none, an hour at night (both hemispheres), half an hour (Lord Howe), odd
// offsets, a DST change at midnight (Sao Paulo until 2019) and DST suspended for Ramadan (Casablanca). Not
// Pacific/Apia: around the day it skipped (30 December 2011) robfig/cron's Next never returns, cache or not.
var spanZones = []string{
	"UTC", "America/New_York", "Europe/London", "Europe/Berlin", "Australia/Lord_Howe", "Australia/Sydney",
	"America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham", "America/Sao_Paulo", "Africa/Casablanca",
}

// spanWindows open at the hours clocks change, every few minutes, overlapping themselves, once a year, and on the
// 29th of February.
var spanWindows = []string{
	"0 8 * * MON-FRI for 10h min=1", "30 2 * * * for 1h min=1", "0 2 * * * for 90m min=1", "0 1 * * * for 30m min=1",
	"30 1 * * * for 45m min=1", "0 0 * * * for 25h min=1", "0 * * * * for 2h min=1", "*/15 * * * * for 5m min=1",
	"0,30 1-3 * * * for 20m min=1", "45 1 * * SUN for 3h min=1", "@daily for 1h min=1", "59 23 31 12 * for 1m min=1",
	"0 0 29 2 * for 1h min=1", "0 0 1 * * for 744h min=1", "0 3 * * * for 1s min=1", "0 0 * * * for 24h min=1",
}

// transitions returns the instants the zone's offset changes between from and to (a year or two apart).
func transitions(loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	offset := func(t time.Time) int { _, o := t.In(loc).Zone(); return o }
	for t := from; t.Before(to); t = t.Add(time.Hour) {
		if offset(t) == offset(t.Add(time.Hour)) {
			continue
		}
		lo, hi := t, t.Add(time.Hour) // the change is in (lo, hi]
		for hi.Sub(lo) > time.Second {
			mid := lo.Add(hi.Sub(lo) / 2)
			if offset(mid) == offset(lo) {
				lo = mid
			} else {
				hi = mid
			}
		}
		out = append(out, hi)
	}
	return out
}

// TestSpanAgreesWithSearch: Start and Active answer, with the cache, exactly what the search alone answers (the same
// instant, in the same location), for clocks that walk forwards in steps of a second to hours, jump forwards and
// backwards, and start at random times and around every change of offset, in every zone of spanZones.
func TestSpanAgreesWithSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2025))
	steps := 0
	for _, zone := range spanZones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		var starts []time.Time
		for _, year := range []int{2011, 2015, 2018, 2021, 2025} {
			for _, c := range transitions(loc, time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(year+1, 1, 1, 0, 0, 0, 0, time.UTC)) {
				starts = append(starts, c.Add(-time.Duration(rng.Int64N(int64(26*time.Hour)))))
			}
		}
		for range 4 {
			starts = append(starts, time.Unix(rng.Int64N(2_200_000_000), rng.Int64N(1e9)))
		}
		for _, spec := range spanWindows {
			windows, err := ParseSchedule("CRON_TZ=" + zone + " " + spec)
			if err != nil {
				t.Fatal(err)
			}
			w := windows[0]
			for _, at := range starts {
				for i := range 120 {
					steps++
					in := []*time.Location{time.UTC, loc, time.Local}[i%3] // Start answers in the location of t
					at = at.In(in)
					want, wantOK := searched(w, at)
					got, ok := w.Start(at)
					if got != want || ok != wantOK || w.Active(at) != wantOK {
						t.Fatalf("%s, %s at %s (%s): Start %s %v, Active %v; the search says %s %v",
							zone, spec, at, at.In(loc), got, ok, w.Active(at), want, wantOK)
					}
					switch r := rng.IntN(20); {
					case r < 12: // the daemon's evaluations: seconds to a minute apart
						at = at.Add(time.Duration(1+rng.Int64N(60)) * time.Second)
					case r < 15: // a pause, or the simulator's coarse steps
						at = at.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
					case r < 16: // a clock jump forwards
						at = at.Add(time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
					case r < 18: // a clock stepped back a little (NTP), or a replay
						at = at.Add(-time.Duration(rng.Int64N(int64(2 * time.Hour))))
					case r < 19: // far back
						at = at.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
					default: // a nanosecond either way of where it is
						at = at.Add(time.Duration(rng.IntN(3) - 1))
					}
				}
			}
		}
	}
	t.Logf("%d times compared", steps)
}

// TestSpanAtTheEdges: around each opening and closing of a window, to the second and the nanosecond, in zones
// where the wall clock repeats or skips the hour the window opens in.
func TestSpanAtTheEdges(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Europe/London", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range []string{"30 1 * * * for 1h min=1", "0 2 * * * for 30m min=1", "0 1 * * * for 24h min=1"} {
			windows, err := ParseSchedule("CRON_TZ=" + zone + " " + spec)
			if err != nil {
				t.Fatal(err)
			}
			w, fresh := windows[0], windows[0]
			for _, c := range transitions(loc, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
				// Every edge of the window within two days of the change: s and s+Duration for each activation s.
				var edges []time.Time
				for s := w.sched.Next(c.Add(-48 * time.Hour)); s.Before(c.Add(48 * time.Hour)); s = w.sched.Next(s) {
					edges = append(edges, s, s.Add(w.Duration))
				}
				for _, e := range edges {
					for _, d := range []time.Duration{-time.Second, -1, 0, 1, time.Second} {
						at := e.Add(d)
						want, wantOK := searched(w, at)
						if got, ok := w.Start(at); got != want || ok != wantOK {
							t.Fatalf("%s, %s at %s: Start %s %v, the search says %s %v", zone, spec, at.In(loc), got, ok, want, wantOK)
						}
						fresh.span = &span{} // and with an empty cache, which searches
						if got, ok := fresh.Start(at); got != want || ok != wantOK {
							t.Fatalf("%s, %s at %s, empty cache: Start %s %v, the search says %s %v", zone, spec, at.In(loc), got, ok, want, wantOK)
						}
					}
				}
			}
		}
	}
}

// TestSpanShared: Decide runs on one Policy from several goroutines (the simulator, `check`), each at its own
// times; the copies of a Window share its span and every answer stays the search's. Run with -race.
func TestSpanShared(t *testing.T) {
	windows, err := ParseSchedule("CRON_TZ=Europe/London 0 8 * * MON-FRI for 10h min=4; CRON_TZ=Australia/Lord_Howe 30 1 * * * for 2h max=3")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 8))
			at := time.Date(2025, 3, 28, 0, 0, 0, 0, time.UTC).Add(time.Duration(g) * 37 * time.Hour)
			for range 3000 {
				w := windows[rng.IntN(len(windows))] // a copy, as Decide makes
				want, wantOK := searched(w, at)
				if got, ok := w.Start(at); got != want || ok != wantOK {
					errs <- fmt.Errorf("goroutine %d, %s at %s: Start %s %v, the search says %s %v", g, w.Spec, at, got, ok, want, wantOK)
					return
				}
				at = at.Add(time.Duration(rng.Int64N(int64(20*time.Minute))) - 2*time.Minute)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSpanOfAnotherDuration: a copy of a Window given another Duration shares the span but never answers from it.
func TestSpanOfAnotherDuration(t *testing.T) {
	windows, err := ParseSchedule("0 8 * * * for 10h min=4")
	if err != nil {
		t.Fatal(err)
	}
	long := windows[0]
	at := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)
	if !long.Active(at) {
		t.Fatal("08:00 for 10h is not active at 12:00")
	}
	short := long
	short.Duration = time.Hour
	if short.Active(at) || !long.Active(at.Add(time.Minute)) || short.Active(at.Add(2*time.Minute)) {
		t.Error("a copy with another Duration answered from the original's span")
	}
}

// TestSpanOutOfRange: times that Unix nanoseconds cannot hold are searched, never cached wrongly.
func TestSpanOutOfRange(t *testing.T) {
	windows, err := ParseSchedule("CRON_TZ=America/New_York 0 8 * * * for 10h min=4")
	if err != nil {
		t.Fatal(err)
	}
	w := windows[0]
	for _, at := range []time.Time{
		time.Date(1600, 6, 2, 12, 0, 0, 0, time.UTC), time.Date(2400, 6, 2, 12, 0, 0, 0, time.UTC),
		time.Date(2400, 6, 2, 12, 0, 1, 0, time.UTC), time.Date(2261, 12, 31, 23, 0, 0, 0, time.UTC), {},
		time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want, wantOK := searched(w, at)
		if got, ok := w.Start(at); got != want || ok != wantOK {
			t.Errorf("at %s: Start %s %v, the search says %s %v", at, got, ok, want, wantOK)
		}
	}
}

// TestDecideScheduleAllocatesNothing: a decision with schedule windows, cached or searched, allocates nothing.
func TestDecideScheduleAllocatesNothing(t *testing.T) {
	windows, err := ParseSchedule("CRON_TZ=Europe/Berlin 0 8 * * MON-FRI for 10h min=4; CRON_TZ=Europe/Berlin 0 22 * * * for 8h max=3")
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{App: "shop", Process: "web", Enabled: true, Min: 1, Max: 20,
		Rule: Rule{Mode: ModeTarget, Target: 0.3, Tolerance: 0.1, UpBy: 1, DownBy: 1}, FallbackAfter: 3, Schedule: windows}
	var st State
	in := Input{Now: time.Date(2025, 3, 29, 12, 0, 0, 0, time.UTC), Current: 4, Size: "Standard-1X", ReadingOK: true, Value: 0.3}
	if n := testing.AllocsPerRun(5000, func() {
		in.Now = in.Now.Add(97 * time.Second) // crosses openings, closings and the change to summer time
		Decide(p, &st, in)
	}); n != 0 {
		t.Errorf("%v allocations per decision", n)
	}
}
