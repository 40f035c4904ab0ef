// Command drain measures the log-drain receiver in process: how many router lines per second one core parses and
// aggregates (latency sketch, request count, per-minute traffic) through Store.ServeHTTP, as Logplex would send
// them: batches of about 100 KB, each with its own Logplex-Frame-Id. It also times a reading (a p95 over the
// longest window) while the store is full. The goal is over 100,000 lines a second on one core.
//
//	go run ./bench/drain [-duration 5s] [-batch 100000] [-procs 1]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/dynopilot/dynopilot/logdrain"
)

const token = "bench-token"

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long to send batches")
	batch := flag.Int("batch", 100_000, "bytes per batch (Logplex sends about 100 KB)")
	procs := flag.Int("procs", 1, "GOMAXPROCS: the cores the receiver may use")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	if err := run(*duration, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "drain bench:", err)
		os.Exit(1)
	}
}

// body returns n bytes or so of router lines timed over the MaxWindow before now, to dynos web.1 to web.10, with
// lognormal service times, and how many lines it holds.
func body(rng *rand.Rand, now time.Time, n int) ([]byte, int) {
	var b bytes.Buffer
	lines := 0
	for b.Len() < n {
		at := now.Add(-time.Duration(rng.Int64N(int64(logdrain.MaxWindow)))).UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		ms := math.Min(30000, math.Round(80*math.Exp(1.2*rng.NormFloat64())))
		m := fmt.Sprintf(`<158>1 %s host heroku router - at=info method=GET path="/products/%d" host=shop.herokuapp.com request_id=%016x-%08x fwd="203.0.113.%d" dyno=web.%d connect=0ms service=%gms status=200 bytes=%d protocol=https`,
			at, rng.IntN(10000), rng.Uint64(), rng.Uint32(), rng.IntN(255), rng.IntN(10)+1, ms, rng.IntN(100000))
		fmt.Fprintf(&b, "%d %s", len(m), m)
		lines++
	}
	return b.Bytes(), lines
}

func run(duration time.Duration, size int) error {
	s, err := logdrain.New(logdrain.Options{Token: token, Apps: []string{"shop"}})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, 16)
	perBody := make([]int, len(bodies))
	for i := range bodies {
		bodies[i], perBody[i] = body(rng, time.Now(), size)
	}
	var lines, batches, bytesSent int
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for time.Since(start) < duration {
		i := batches % len(bodies)
		r := httptest.NewRequest(http.MethodPost, "/drain/shop", bytes.NewReader(bodies[i]))
		r.SetBasicAuth("logplex", token)
		r.Header.Set("Content-Type", "application/logplex-1")
		r.Header.Set("Logplex-Frame-Id", strconv.Itoa(batches))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			return fmt.Errorf("POST: %d %s", w.Code, w.Body)
		}
		lines += perBody[i]
		bytesSent += len(bodies[i])
		batches++
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)

	readStart := time.Now()
	const reads = 200
	var p95 float64
	for range reads {
		if p95, _, err = s.Read("shop", "web", "latency", 0.95, logdrain.MaxWindow); err != nil {
			return err
		}
	}
	readTime := time.Since(readStart) / reads
	st := s.Stats()[0]
	if st.Lines["router"] != int64(lines) || st.Lines["invalid"] != 0 {
		return fmt.Errorf("counted %v, sent %d router lines", st.Lines, lines)
	}
	fmt.Printf("GOMAXPROCS               %d\n", runtime.GOMAXPROCS(0))
	fmt.Printf("batches                  %d of %d KB, %d lines each on average\n", batches, size/1000, lines/batches)
	fmt.Printf("router lines             %d in %s\n", lines, elapsed.Round(time.Millisecond))
	fmt.Printf("lines/s (parse+aggregate) %.0f\n", float64(lines)/elapsed.Seconds())
	fmt.Printf("MB/s                     %.1f\n", float64(bytesSent)/elapsed.Seconds()/1e6)
	fmt.Printf("ns/line                  %.0f\n", float64(elapsed.Nanoseconds())/float64(lines))
	fmt.Printf("allocs/line              %.2f\n", float64(after.Mallocs-before.Mallocs)/float64(lines))
	fmt.Printf("p95 over %s           %.3fs (read in %s)\n", logdrain.MaxWindow, p95, readTime.Round(time.Microsecond))
	if rate := float64(lines) / elapsed.Seconds(); rate < 100_000 {
		return fmt.Errorf("%.0f lines/s: under the goal of 100,000", rate)
	}
	return nil
}
