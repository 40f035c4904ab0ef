package logdrain_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/logdrain"
)

// routerBatch is about size bytes of router lines over the span before now, to web.1 to web.10, with lognormal
// service times: a batch as Logplex sends it. It returns the body and its number of lines.
func routerBatch(rng *rand.Rand, now time.Time, span time.Duration, size int) ([]byte, int) {
	var msgs []string
	n := 0
	for n < size {
		at := now.Add(-time.Duration(rng.Int64N(int64(span))))
		ms := math.Min(30000, math.Round(80*math.Exp(1.2*rng.NormFloat64())))
		m := fmt.Sprintf(`<158>1 %s host heroku router - at=info method=GET path="/products/%d" host=shop.herokuapp.com request_id=%016x fwd="203.0.113.%d" dyno=web.%d connect=0ms service=%gms status=200 bytes=%d protocol=https`,
			stamp(at), rng.IntN(10000), rng.Uint64(), rng.IntN(255), rng.IntN(10)+1, ms, rng.IntN(100000))
		msgs = append(msgs, m)
		n += len(m) + 5
	}
	return frames(msgs...), len(msgs)
}

// BenchmarkReceive is parse and aggregate: 100 KB batches of router lines through ServeHTTP. Run it on one core:
// go test -bench Receive -cpu 1 ./logdrain
func BenchmarkReceive(b *testing.B) {
	e := newEnv(b)
	now := t0.Add(time.Hour)
	e.clock.Set(now)
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, 8)
	lines := 0
	for i := range bodies {
		var n int
		bodies[i], n = routerBatch(rng, now, logdrain.MaxWindow, 100_000)
		lines += n
	}
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w := serve(e.store, drainRequest("shop", bodies[i%len(bodies)], strconv.Itoa(i)))
		if w.Code != http.StatusNoContent {
			b.Fatal(w.Code)
		}
	}
	b.ReportMetric(float64(lines)/float64(len(bodies))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkRead is a p95 over the longest window with every bucket full: what a policy's evaluation waits for.
func BenchmarkRead(b *testing.B) {
	e := newEnv(b)
	now := t0.Add(time.Hour)
	rng := rand.New(rand.NewPCG(3, 4))
	for at := now.Add(-logdrain.MaxWindow - time.Minute); at.Before(now); at = at.Add(10 * time.Second) {
		e.clock.Set(at)
		body, _ := routerBatch(rng, at, 10*time.Second, 20_000)
		if w := serve(e.store, drainRequest("shop", body, "")); w.Code != http.StatusNoContent {
			b.Fatal(w.Code)
		}
	}
	e.clock.Set(now)
	for _, window := range []time.Duration{time.Minute, logdrain.MaxWindow} {
		b.Run(window.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := e.store.Read("shop", "web", "latency", 0.95, window); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
