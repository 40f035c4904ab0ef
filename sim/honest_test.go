package sim_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

// Under a sustained overload the router gives up on every request that would wait more than 30 s: those are H12
// errors, counted, and they enter the p95 and p99 at 30 s, the router's answer, however long the backlog grows.
//
// 130 requests per second into 10 dynos that complete 100: the backlog grows by 30 a second, and a request waits
// backlog/100 seconds behind it, so from about 100 s on (3,000 ahead, plus the queue of a busy formation) every
// request waits more than 30 s. Without the timeout the run's p95 would be the wait at the end, about 18 minutes.
func TestSustainedOverloadCountsH12AndCapsTheP95(t *testing.T) {
	const secs = 3600
	tr := &sim.Trace{Name: "overload", Step: 1, Scale: 1, Rates: slices.Repeat([]float64{130}, secs)}
	res, err := sim.Run(context.Background(), tr, sim.DefaultModel(), []sim.Contender{sim.Fixed("fixed", []int{10})}, sim.Options{Series: true})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	// The first H12: the wait (backlog beyond the busy queue, about 40 at 97% utilisation, over 100/s) plus the
	// service reaches 30 s after about (3000 + 40) / 30 = 101 s.
	want := 130.0 * (secs - 101)
	if math.Abs(r.H12-want) > 0.002*want || r.Requests != 130*secs {
		t.Errorf("%.0f H12 errors of %.0f requests, want about %.0f (every request after the first 101 s)", r.H12, r.Requests, want)
	}
	if r.P95 != sim.RouterTimeout.Seconds() || r.P99 != sim.RouterTimeout.Seconds() {
		t.Errorf("p95 %v, p99 %v: want both at the router's timeout, %v", r.P95, r.P99, sim.RouterTimeout)
	}
	if first := r.Series.P95[0]; first >= 30 || first < 5 {
		t.Errorf("first minute's p95 %v, want the backlog's wait, under 30 s", first)
	}
	if h := r.Series.H12; h[0] != 0 || h[1] < 130*19 || h[len(h)-1] != 130*60 {
		t.Errorf("H12 errors per minute %v..%v, want none in the first minute, most of the second, all of the last", h[:3], h[len(h)-1])
	}
	if r.BreachMinutes != 60 {
		t.Errorf("%d breach minutes, want 60", r.BreachMinutes)
	}

	// At 80% load, nobody comes near the timeout.
	tr.Rates = slices.Repeat([]float64{80}, secs)
	res, err = sim.Run(context.Background(), tr, sim.DefaultModel(), []sim.Contender{sim.Fixed("fixed", []int{10})}, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].H12 != 0 || res[0].P99 > 1 {
		t.Errorf("80%% load: %v H12 errors, p99 %v; want none and under a second", res[0].H12, res[0].P99)
	}
}

// Any trace at any load simulates in under 5 s: a week of one-second traffic through a formation far too small for
// it (see BenchmarkWeekSustainedOverload), whose backlog grows for days. Stepping through the future second by
// second for every backlogged second made that run quadratic: it took more than 8 minutes.
func TestWeekOfSustainedOverloadSimulatesInUnder5s(t *testing.T) {
	tr := weekTrace()
	start := time.Now()
	res, err := sim.Run(context.Background(), tr, sim.DefaultModel(), []sim.Contender{sim.Fixed("fixed", []int{overloadFormation})}, sim.Options{})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > 5*time.Second {
		t.Errorf("a week of sustained overload took %v to simulate, want under 5s", took.Round(time.Millisecond))
	}
	if r := res[0]; r.H12 < 0.5*r.Requests || r.P95 != sim.RouterTimeout.Seconds() {
		t.Errorf("%.0f H12 errors of %.0f requests, p95 %v: want most requests past the timeout (the test shows no overload)", r.H12, r.Requests, r.P95)
	}
}

// Cancelling the context stops a run within a few milliseconds of simulated work: every contender that is running
// stops within checkEvery seconds of the trace, the ones still waiting for a processor (the oracle and static
// build their schedules first) do not start, and Run says why it stopped. The first contender to reach the second
// day cancels: the run had taken `reached` to get there, and the other six days would take six times that;
// stopping takes far less.
func TestRunStopsPromptlyWhenCancelled(t *testing.T) {
	tr := weekTrace()
	pc, err := sim.LoadPolicy([]string{"POLICY_0_MAX=100", "POLICY_0_TARGET=400ms"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := sim.DefaultModel()
	cs, err := sim.Contenders(pc, m, sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	const day = 86400
	var (
		once      sync.Once
		cancelled time.Time
		last      = make([]atomic.Int64, len(cs)) // the last evaluation of each engine contender, -1 before one
		atCancel  = make([]int64, len(cs))
	)
	start := time.Now()
	for i := range cs {
		last[i].Store(-1)
		if cs[i].Kind != "dynopilot" && cs[i].Kind != "anchor" {
			continue // static and oracle run schedules, which have no evaluations to observe
		}
		cs[i].Observe = func(e sim.Evaluation) {
			last[i].Store(int64(e.Second))
			if e.Second >= day {
				once.Do(func() {
					for j := range last {
						atCancel[j] = last[j].Load()
					}
					cancelled = time.Now()
					cancel(errors.New("interrupt signal received"))
				})
			}
		}
	}
	res, err := sim.Run(ctx, tr, m, cs, sim.Options{})
	took, reached := time.Since(cancelled), cancelled.Sub(start)
	if cancelled.IsZero() {
		t.Fatal("no contender reached the second at which the test cancels")
	}
	var stop *sim.StoppedError
	if !errors.As(err, &stop) || !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("Run after a cancel: %v results, error %v; want none and a *StoppedError", len(res), err)
	}
	if want := "stopped before the run finished: interrupt signal received"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	for i := range cs {
		// A contender evaluates every 10 to 60 s: its last evaluation is within 4096 s and an interval of where it
		// was (-1: it had not started, and must not have gone far either).
		if got, was := last[i].Load(), atCancel[i]; got > max(was, 0)+4096+60 {
			t.Errorf("%s went on from second %d to %d after the cancel, want it stopped within 4096 seconds", cs[i].Name, was, got)
		}
	}
	if took > reached {
		t.Errorf("stopping took %v, more than the %v the run had taken to get there: it went on instead", took, reached)
	}
	t.Logf("stopped %v after the cancel; the run had taken %v to get there", took.Round(time.Microsecond), reached.Round(time.Millisecond))
}

// `dynopilot simulate` cancelled mid-run (its context is signal.NotifyContext's: SIGTERM, Ctrl-C) says it stopped
// and why, exits 1, and writes neither the report nor the chart. Had it not stopped, it would have finished with
// exit 0 and a report.
func TestCommandStopsWhenCancelled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "week.csv")
	var b strings.Builder
	b.WriteString(sim.TraceHeader + "\n")
	for i, r := range weekTrace().Rates {
		b.WriteString(strconv.Itoa(i) + "," + strconv.FormatFloat(r, 'f', -1, 64) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(dir, "week.svg")
	ctx, cancel := context.WithCancelCause(context.Background())
	timer := time.AfterFunc(300*time.Millisecond, func() { cancel(errors.New("terminated signal received")) })
	defer timer.Stop()
	var out, errb strings.Builder
	code := sim.Command(ctx, []string{"--environment", "--trace", path, "--chart", chart}, webEnv, &out, &errb)
	if code != 1 || out.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q: want 1 and no report", code, out.String(), errb.String())
	}
	if want := "simulate: stopped before the run finished: terminated signal received; no report written\n"; errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
	if _, err := os.Stat(chart); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a stopped run wrote its chart: %v", err)
	}
}

// The oracle keeps to the policy's SCHEDULE windows as dynopilot must: a window's min raises its floor (a night
// window at 20 dynos, where the load needs 2 to 6) and a window's max caps it (an afternoon hour at 2, where the
// load needs 4 to 10, so it breaches there, as dynopilot would). Outside the windows it is the oracle of MIN and
// MAX.
func TestOracleHonoursScheduleWindows(t *testing.T) {
	tr := loadTestTrace(t, "nasa_jul1995_day2_1min.csv", 50)
	m := sim.DefaultModel()
	boot := int(m.Boot.Seconds())
	r := sim.Reading{Kind: sim.ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second}
	oracle := func(env ...string) sim.Result {
		t.Helper()
		cs, err := sim.Contenders(policyFrom(t, env...), m, r)
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Run(context.Background(), tr, m, cs[len(cs)-1:], sim.Options{PerSecond: true, Series: true})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Name != "oracle" {
			t.Fatalf("last contender %s, want the oracle", res[0].Name)
		}
		return res[0]
	}
	base := []string{"POLICY_0_MIN=1", "POLICY_0_MAX=60", "POLICY_0_TARGET=400ms"}
	free := oracle(base...)
	// The windows are read on the run's virtual clock, which starts on a Monday at midnight UTC.
	held := oracle(append(base, "POLICY_0_SCHEDULE=0 3 * * * for 2h min=20; 0 16 * * 1 for 1h max=2")...)
	if held.Settings["SCHEDULE"] == "" {
		t.Errorf("oracle settings %v: want the schedule shown", held.Settings)
	}
	fs, hs := free.Series.ServingPerSecond, held.Series.ServingPerSecond
	night, afternoon := [2]int{3 * 3600, 5 * 3600}, [2]int{16 * 3600, 17 * 3600}
	// The windows change something: without them the oracle serves fewer than 20 at night, more than 2 in the
	// afternoon.
	if slices.Max(fs[night[0]:night[1]]) >= 20 || slices.Min(fs[afternoon[0]:afternoon[1]]) <= 2 {
		t.Fatalf("without windows the oracle serves %d-%d at night and %d-%d in the afternoon: the windows would change nothing",
			slices.Min(fs[night[0]:night[1]]), slices.Max(fs[night[0]:night[1]]), slices.Min(fs[afternoon[0]:afternoon[1]]), slices.Max(fs[afternoon[0]:afternoon[1]]))
	}
	// min=20 from 03:00: the 20 are started at 03:00 (not before: a floor is no need) and serve once booted.
	if got := slices.Min(hs[night[0]+boot : night[1]]); got < 20 {
		t.Errorf("03:00-05:00 window min=20: the oracle serves %d at some second, want at least 20", got)
	}
	if got := hs[night[0]+boot-1]; got >= 20 {
		t.Errorf("03:00 plus the boot time less a second: %d serving, want fewer than 20 (they started at 03:00)", got)
	}
	// max=2 from 16:00 to 17:00 on Mondays (the trace's day): at most 2 serve at any second of it.
	if got := slices.Max(hs[afternoon[0]:afternoon[1]]); got > 2 {
		t.Errorf("16:00-17:00 window max=2: the oracle serves %d at some second, want at most 2", got)
	}
	// The formation (booting dynos too, as Heroku counts and bills them) keeps to the bounds at every minute's end
	// of the windows, the last one too, when dynos for 17:00 would be booting.
	for m := night[0] / 60; m < night[1]/60; m++ {
		if n := held.Series.Serving[m] + held.Series.Booting[m]; n < 20 {
			t.Fatalf("minute %d, in the min=20 window: formation %v, want at least 20", m, n)
		}
	}
	for m := afternoon[0] / 60; m < afternoon[1]/60; m++ {
		if n := held.Series.Serving[m] + held.Series.Booting[m]; n > 2 {
			t.Fatalf("minute %d, in the max=2 window: formation %v, want at most 2", m, n)
		}
	}
	if held.BreachMinutes < 60 || free.BreachMinutes != 0 {
		t.Errorf("breach minutes %d with the windows, %d without: want every minute under max=2, none without", held.BreachMinutes, free.BreachMinutes)
	}
	if held.DynoHours <= free.DynoHours {
		t.Errorf("%.1f dyno-hours with a night floor of 20, %.1f without: want more", held.DynoHours, free.DynoHours)
	}
	// Outside the windows and the minutes their queues reach, the two oracles are the same.
	for _, span := range [][2]int{{0, night[0] - boot - 60}, {night[1] + 600, afternoon[0] - boot - 60}} {
		if !slices.Equal(fs[span[0]:span[1]], hs[span[0]:span[1]]) {
			t.Errorf("seconds %d-%d, outside the windows: the oracle differs with them", span[0], span[1])
		}
	}
}
