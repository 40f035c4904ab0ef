package scaler

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/herokuapi"
)

// anInstant is where the tests' clocks start: not on a whole second, as a real clock is not.
func anInstant() time.Time { return time.Date(2026, 11, 20, 9, 0, 0, 123456789, time.UTC) }

func TestAnEveryRunsEveryIntervalAtItsAppsPhase(t *testing.T) {
	start := anInstant()
	for _, spec := range []string{"@every 1s", "@every 5s", "@every 15s", "@every 7s", "@every 1m", "@every 1h", "CRON_TZ=Europe/Berlin @every 10s"} {
		sched, err := schedule(spec, "shop")
		if err != nil {
			t.Fatal(err)
		}
		p, ok := sched.(phased)
		if !ok {
			t.Fatalf("%s: schedule %T, want a phased @every", spec, sched)
		}
		if p.phase < 0 || p.phase >= p.every {
			t.Errorf("%s: phase %v outside [0, %v)", spec, p.phase, p.every)
		}
		for _, from := range []time.Time{start, start.Add(p.every / 3), start.Add(17 * time.Hour)} {
			next := sched.Next(from)
			if gap := next.Sub(from); gap <= 0 || gap > p.every {
				t.Errorf("%s: next run %v after %v, want within (0, %v]", spec, gap, from, p.every)
			}
			if off := time.Duration(next.UnixNano() % int64(p.every)); off != p.phase {
				t.Errorf("%s: run at %v past a multiple of the interval, want the phase %v", spec, off, p.phase)
			}
			for range 3 { // once it runs, it runs every interval exactly
				after := sched.Next(next)
				if after.Sub(next) != p.every {
					t.Errorf("%s: %v between two runs, want %v", spec, after.Sub(next), p.every)
				}
				next = after
			}
		}
		if again, _ := schedule(spec, "SHOP"); again != sched {
			t.Errorf("%s: another phase for the same app (names are compared without case): %v, then %v", spec, again, sched)
		}
	}
}

func TestDistinctAppsSpreadOverThePhases(t *testing.T) {
	const apps = 1000
	perSlot := map[time.Duration]int{}
	for i := range apps {
		off := slotOffset(fmt.Sprintf("app-%04d", i), 5*time.Second)
		if off < 0 || off >= 5*time.Second || off%(500*time.Millisecond) != 0 {
			t.Fatalf("app-%04d: offset %v, want a tenth of 5s, from 0 to 4.5s", i, off)
		}
		perSlot[off]++
	}
	if len(perSlot) != phases {
		t.Errorf("%d apps use %d of the %d phases: %v", apps, len(perSlot), phases, perSlot)
	}
	for off, n := range perSlot {
		if n > 2*apps/phases {
			t.Errorf("%d of %d apps at %v: more than twice their share %v", n, apps, off, perSlot)
		}
	}
}

func TestTheFirstRoundIsSpreadWithinTheFirstPhase(t *testing.T) {
	start := anInstant()
	for _, c := range []struct {
		spec   string
		window time.Duration
	}{
		{"@every 5s", 500 * time.Millisecond}, // a tenth of the interval
		{"@every 1h", firstRoundSpread},       // never more than firstRoundSpread
		{"*/1 * * * *", firstRoundSpread},     // a cron spec: a tenth of its gap, at most firstRoundSpread
		{"@every 1s", 100 * time.Millisecond}, // the shortest interval
		{"0 9 * * MON-FRI", firstRoundSpread}, // a day between runs
	} {
		instants := map[time.Duration]int{}
		for i := range 1000 {
			app := fmt.Sprintf("app-%04d", i)
			sched, err := schedule(c.spec, app)
			if err != nil {
				t.Fatal(err)
			}
			d := firstDelay(app, sched, start)
			if d < 0 || d >= c.window {
				t.Fatalf("%s, %s: first evaluation %v after start, want within [0, %v)", c.spec, app, d, c.window)
			}
			instants[d/(c.window/100)]++
		}
		if len(instants) < 90 { // 1,000 apps over a hundredth of the window each: nearly all of them used
			t.Errorf("%s: 1,000 apps start in %d of 100 parts of the first %v, want them spread", c.spec, len(instants), c.window)
		}
	}
}

func TestACronSpecKeepsItsCronTimes(t *testing.T) {
	start := anInstant()
	for _, spec := range []string{"*/1 * * * *", "0 9 * * MON-FRI", "CRON_TZ=Europe/Berlin 30 8 * * *", "@hourly"} {
		sched, err := schedule(spec, "shop")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := cron.ParseStandard(spec)
		for _, from := range []time.Time{start, start.Add(7 * time.Hour), start.Add(50 * time.Hour)} {
			if got, want := sched.Next(from), want.Next(from); !got.Equal(want) {
				t.Errorf("%s: next run after %v at %v, want cron's %v", spec, from, got, want)
			}
		}
	}
	if _, err := schedule("every second", "shop"); err == nil {
		t.Error("an interval that is no cron spec was accepted")
	}
}

func TestNextAtIsStrictlyAfterAndOnThePhase(t *testing.T) {
	every, phase := 10*time.Second, 3*time.Second
	on := time.Unix(1_800_000_003, 0) // exactly on the phase
	if got := nextAt(on, every, phase); !got.Equal(on.Add(every)) {
		t.Errorf("from an instant on the phase: %v, want one interval later", got)
	}
	if got := nextAt(on.Add(-time.Nanosecond), every, phase); !got.Equal(on) {
		t.Errorf("from just before the phase: %v, want %v", got, on)
	}
	before := time.Unix(-25, 0) // before the epoch, where integer division truncates toward zero
	if got := nextAt(before, every, phase); !got.Equal(time.Unix(-17, 0)) {
		t.Errorf("before the epoch: %v, want %v", got, time.Unix(-17, 0))
	}
}

// countingHeroku answers every formation read with the same formation and records when each app was read.
type countingHeroku struct {
	now func() time.Time

	mu    sync.Mutex
	reads map[string][]time.Time
}

func (h *countingHeroku) ListFormation(_ context.Context, app string) ([]herokuapi.Formation, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads[app] = append(h.reads[app], h.now())
	return []herokuapi.Formation{{Type: "web", Quantity: 2}}, nil
}

func (h *countingHeroku) UpdateFormation(context.Context, string, string, int) (herokuapi.Formation, error) {
	return herokuapi.Formation{}, fmt.Errorf("not in this test")
}

func (h *countingHeroku) BatchUpdateFormation(context.Context, string, []herokuapi.FormationUpdate) ([]herokuapi.Formation, error) {
	return nil, fmt.Errorf("not in this test")
}

func TestFormationRefreshesAreSpreadOverTheRefreshInterval(t *testing.T) {
	start := anInstant()
	const apps, refresh, tick = 500, 15 * time.Minute, 5 * time.Second
	now := start
	clock := func() time.Time { return now }
	h := &countingHeroku{now: clock, reads: map[string][]time.Time{}}
	c := newFormationCache(h, refresh, clock)
	name := func(i int) string { return fmt.Sprintf("app-%04d", i) }
	// Every app's group ticks every 5 seconds for three refresh intervals, all at the same instants (the worst case
	// for the cache: the groups' own phases are left out).
	for ; !now.After(start.Add(3 * refresh)); now = now.Add(tick) {
		for i := range apps {
			if _, err := c.get(context.Background(), name(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	perTick := map[time.Time]int{}
	for i := range apps {
		reads := h.reads[name(i)]
		if len(reads) != 4 || !reads[0].Equal(start) { // at start, then once per interval
			t.Fatalf("%s read at %v, want at start and then once in each of three intervals", name(i), reads)
		}
		for j, at := range reads[1:] {
			perTick[at]++
			if j > 0 && at.Sub(reads[j]) != refresh {
				t.Errorf("%s: %v between two periodic reads, want %v", name(i), at.Sub(reads[j]), refresh)
			}
		}
		if age := reads[1].Sub(reads[0]); age > refresh {
			t.Errorf("%s: first refresh %v after start, want within %v", name(i), age, refresh)
		}
	}
	// 1,500 periodic reads over 540 ticks: about 3 a tick, never the burst of all 500 apps.
	for at, n := range perTick {
		if n > 20 {
			t.Errorf("%d formation reads at %v, want them spread over the interval", n, at)
		}
	}
	if len(perTick) < 100 {
		t.Errorf("refreshes at %d instants of the interval's 180 ticks, want them spread", len(perTick))
	}
}

func TestAFreshReadLeavesThePhaseAndAFailedPatchForcesARead(t *testing.T) {
	start := anInstant()
	const refresh = time.Hour
	now := start
	clock := func() time.Time { return now }
	h := &countingHeroku{now: clock, reads: map[string][]time.Time{}}
	c := newFormationCache(h, refresh, clock)
	ctx := context.Background()
	c.get(ctx, "shop")
	due := c.app("shop").due
	now = now.Add(time.Second)
	c.fresh(ctx, "shop") // before a PATCH
	if got := c.app("shop").due; !got.Equal(due) {
		t.Errorf("a fresh read moved the periodic read from %v to %v", due, got)
	}
	c.get(ctx, "shop")
	if n := len(h.reads["shop"]); n != 2 {
		t.Errorf("%d reads, want the first and the fresh one: the cache answers until the periodic read is due", n)
	}
	if err := c.patch(ctx, "shop", []herokuapi.FormationUpdate{{Type: "web", Quantity: 3}}); err == nil {
		t.Fatal("the PATCH succeeded; this test needs one that fails")
	}
	c.get(ctx, "shop")
	if n := len(h.reads["shop"]); n != 3 {
		t.Errorf("%d reads, want a read after a PATCH whose outcome is unknown", n)
	}
	now = due
	c.get(ctx, "shop")
	if n := len(h.reads["shop"]); n != 4 {
		t.Errorf("%d reads, want the periodic read at its phase", n)
	}
}

func TestNoEvaluationIsAdmittedOnceStopped(t *testing.T) {
	// Evaluations start and end all the time, from many goroutines, while Run stops: every one admitted ends before
	// stop's channel closes, none is admitted after, and under -race the WaitGroup inside is never added to from zero
	// while it is waited on.
	var f inflight
	var active atomic.Int64
	var wg sync.WaitGroup
	quit := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				if f.enter() {
					active.Add(1)
					runtime.Gosched()
					active.Add(-1)
					f.done()
				}
			}
		})
	}
	runtime.Gosched()
	ended := f.stop()
	<-ended
	if n := active.Load(); n != 0 {
		t.Errorf("%d evaluations still running once stop said they had ended", n)
	}
	if f.enter() {
		t.Error("an evaluation was admitted after stop")
	}
	close(quit)
	wg.Wait()
}

func TestTheFirstRoundRunsEachOnceAtMostLimitAtATime(t *testing.T) {
	const n, limit = 200, 8
	now := time.Now()
	release := make(chan struct{})
	var active, most atomic.Int64
	var ran sync.WaitGroup
	counts := make([]atomic.Int64, n)
	var runs []firstRun
	for i := range n {
		at := now.Add(time.Duration(i%5) * 10 * time.Millisecond)
		skip := i%10 == 3 // evaluated by cron already
		if !skip {
			ran.Add(1)
		}
		runs = append(runs, firstRun{at: at, done: func() bool { return skip }, run: func() {
			defer ran.Done()
			if time.Now().Before(at) {
				t.Errorf("run %d started before its instant", i)
			}
			counts[i].Add(1)
			a := active.Add(1)
			for m := most.Load(); a > m && !most.CompareAndSwap(m, a); m = most.Load() {
			}
			<-release
			active.Add(-1)
		}})
	}
	go func() {
		for range n - n/10 {
			release <- struct{}{}
		}
	}()
	firstRound(context.Background(), runs, limit)
	ran.Wait()
	if m := most.Load(); m > limit {
		t.Errorf("%d first evaluations at once, want at most %d", m, limit)
	}
	for i := range n {
		want := int64(1)
		if i%10 == 3 {
			want = 0
		}
		if got := counts[i].Load(); got != want {
			t.Errorf("run %d ran %d times, want %d", i, got, want)
		}
	}
}

func TestTheFirstRoundStopsAtShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int64
	later := time.Now().Add(time.Hour)
	runs := []firstRun{{at: later, done: func() bool { return false }, run: func() { started.Add(1) }}}
	cancel()
	firstRound(ctx, runs, 1) // returns rather than waiting an hour
	if started.Load() != 0 {
		t.Error("a first evaluation started after shutdown")
	}
}
