package logdrain_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/logdrain"
)

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// feed delivers d of busy traffic from the clock on, every 10 s: requests to 10 web dynos, queue times, load
// samples, and one-off dynos that come and go.
func (e *env) feed(t *testing.T, rng *rand.Rand, d time.Duration, perBatch int) {
	t.Helper()
	end := e.clock.Now().Add(d)
	n := 0
	for at := e.clock.Now(); at.Before(end); at = at.Add(10 * time.Second) {
		e.clock.Set(at)
		var msgs []string
		for range perBatch {
			ms := math.Min(30000, math.Round(80*math.Exp(1.2*rng.NormFloat64())))
			dyno := fmt.Sprintf("web.%d", rng.IntN(10)+1)
			msgs = append(msgs, routerMsg(at.Add(-time.Duration(rng.Int64N(int64(10*time.Second)))), dyno, ms), queueMsg(at, dyno, ms/10))
		}
		for i := range 10 {
			msgs = append(msgs, loadMsg(at, fmt.Sprintf("web.%d", i+1), rng.Float64()))
		}
		n++
		msgs = append(msgs, loadMsg(at, fmt.Sprintf("run.%d", n), 1)) // a new one-off dyno every batch
		e.post(t, "shop", msgs...)
	}
}

// Memory per app does not grow with traffic or time: after the 6 minutes kept are full, twice as long again adds
// nothing but noise.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds an hour of traffic")
	}
	before := heap()
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(5, 6))
	empty := heap()
	e.feed(t, rng, 20*time.Minute, 200) // 20 requests/s
	full := heap()
	e.feed(t, rng, 40*time.Minute, 200)
	later := heap()
	t.Logf("a Store of 2 apps: %d KiB empty; shop after 20 min at 20 requests/s: +%d KiB; after 60 min: +%d KiB",
		(empty-before)/1024, (full-empty)/1024, (later-empty)/1024)
	if later > full+full/10+256<<10 {
		t.Errorf("heap grew from %d KiB to %d KiB between 20 and 60 minutes of the same traffic", full/1024, later/1024)
	}
	if got := e.read(t, "shop", "web", "load", 0, time.Minute); got <= 0 || got >= 1 {
		t.Errorf("load %v", got)
	}
	runtime.KeepAlive(e)
}

// Process types and dynos past the caps are counted but not tracked, and a reading says so.
func TestCaps(t *testing.T) {
	e := newEnv(t)
	e.clock.Set(t0.Add(time.Minute))
	var msgs []string
	for i := range 20 {
		msgs = append(msgs, queueMsg(t0.Add(10*time.Second), fmt.Sprintf("proc%02d.1", i), 5))
	}
	e.post(t, "shop", msgs...)
	if n := logdrain.Processes(e.store, "shop"); n != 16 {
		t.Errorf("%d process types tracked, want 16", n)
	}
	if st := e.stats(t, "shop"); st.Lines["app"] != 20 {
		t.Errorf("%d app lines counted, want 20", st.Lines["app"])
	}
	e.read(t, "shop", "proc15", "queue-time", 0.5, time.Minute)
	e.wantNoData(t, "shop", "proc16", "queue-time", time.Minute, "process type proc16 of shop is not tracked")

	msgs = msgs[:0]
	for i := range 300 {
		load := 1.0
		if i >= 256 {
			load = 0
		}
		msgs = append(msgs, loadMsg(t0.Add(10*time.Second), fmt.Sprintf("proc00.%d", i+1), load))
	}
	e.post(t, "shop", msgs...)
	if got := e.read(t, "shop", "proc00", "load", 0, time.Minute); got != 1 {
		t.Errorf("load %v, want 1: the mean over the first 256 dynos, the others untracked", got)
	}
	if st := e.stats(t, "shop"); st.Lines["runtime"] != 300 {
		t.Errorf("%d runtime lines counted, want 300", st.Lines["runtime"])
	}
}
