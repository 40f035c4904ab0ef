// Command drainflood measures the real dynopilot binary under a log-drain flood: 50 apps, each with a logdrain
// policy, receive Logplex batches of router and runtime-metrics lines from 4 connections as fast as the daemon
// takes them, for 10 minutes. It prints the lines accepted per second, the answers, and the daemon's resident
// memory (VmRSS, and VmHWM, the peak) along the way and at the end. The goal is under 100 MB.
//
//	go run ./bench/drainflood [-apps 50] [-conns 4] [-duration 10m] [-batch 500]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynopilot/dynopilot/internal/program"
)

const (
	apiToken   = "bench-token"
	drainToken = "bench-drain-token"
)

func main() {
	apps := flag.Int("apps", 50, "apps, each with a web policy on its drain")
	conns := flag.Int("conns", 4, "connections posting at once")
	duration := flag.Duration("duration", 10*time.Minute, "how long to flood")
	batch := flag.Int("batch", 500, "lines per POST (Logplex sends batches of up to about 100 KB)")
	flag.Parse()
	if err := run(*apps, *conns, *duration, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "drainflood:", err)
		os.Exit(1)
	}
}

func run(apps, conns int, duration time.Duration, batch int) error {
	dir, err := os.MkdirTemp("", "drainflood")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := program.Build(dir, "dynopilot", "fakeheroku")
	if err != nil {
		return err
	}
	names := make([]string, apps)
	fakeArgs := []string{"-listen", "127.0.0.1:0", "-token", apiToken}
	env := []string{"HEROKU_API_KEY=" + apiToken, "DYNOPILOT_DRAIN_TOKEN=" + drainToken, "DYNOPILOT_LISTEN=127.0.0.1:0",
		"DYNOPILOT_DRY_RUN=true", "LOG_LEVEL=info", "LOG_FORMAT=text", "HOME=/nonexistent",
		"POLICY_DEFAULT_PROCESS=web", "POLICY_DEFAULT_SOURCE=logdrain", "POLICY_DEFAULT_TARGET=300ms", "POLICY_DEFAULT_MAX=10"}
	for i := range names {
		names[i] = fmt.Sprintf("app-%03d", i)
		fakeArgs = append(fakeArgs, "-app", names[i]+":web=2:Standard-1X")
		env = append(env, fmt.Sprintf("POLICY_%d_APP=%s", i, names[i]))
	}
	fake, err := program.Start(bins["fakeheroku"], fakeArgs, nil)
	if err != nil {
		return err
	}
	defer fake.Stop()
	daemon, err := program.Start(bins["dynopilot"], []string{"run"}, append(env, "HEROKU_API_URL="+fake.URL))
	if err != nil {
		return err
	}
	defer daemon.Stop()
	url := daemon.URL
	fmt.Printf("dynopilot %d apps, %d connections, %d lines a POST, %v; RSS at start %.1f MB\n", apps, conns, batch, duration, daemon.MemoryMB("VmRSS"))

	var lines, posts, failed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for seq := 0; ctx.Err() == nil; seq++ {
				app := names[rng.IntN(len(names))]
				body := frames(rng, app, batch, time.Now())
				req, _ := http.NewRequestWithContext(ctx, "POST", url+"/drain/"+app, bytes.NewReader(body))
				req.SetBasicAuth("dynopilot", drainToken)
				req.Header.Set("Content-Type", "application/logplex-1")
				req.Header.Set("Logplex-Msg-Count", fmt.Sprint(batch))
				req.Header.Set("Logplex-Frame-Id", fmt.Sprintf("bench-%d-%d", c, seq))
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					failed.Add(1)
					continue
				}
				posts.Add(1)
				lines.Add(int64(batch))
			}
		})
	}
	began := time.Now()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	go func() {
		for range tick.C {
			fmt.Printf("  %4.0fs: %d lines, VmRSS %.1f MB, VmHWM %.1f MB, Go heap in use %.1f MB\n", time.Since(began).Seconds(), lines.Load(),
				daemon.MemoryMB("VmRSS"), daemon.MemoryMB("VmHWM"), heapInUseMB(url))
		}
	}()
	wg.Wait()
	took := time.Since(began)
	fmt.Printf("accepted %d lines in %d POSTs (%.0f lines/s), %d failed; daemon VmRSS %.1f MB, VmHWM %.1f MB\n",
		lines.Load(), posts.Load(), float64(lines.Load())/took.Seconds(), failed.Load(), daemon.MemoryMB("VmRSS"), daemon.MemoryMB("VmHWM"))
	resp, err := http.Get(url + "/api/policies")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("readings after the flood: %d policies with a reading\n", strings.Count(string(b), `"reading":`)-strings.Count(string(b), `"reading":null`))
	}
	return nil
}

// frames is one Logplex body for app: n router lines of its web dynos, the last one a runtime-metrics line.
func frames(rng *rand.Rand, app string, n int, now time.Time) []byte {
	var b bytes.Buffer
	ts := now.UTC().Format(time.RFC3339Nano)
	for i := range n {
		var line string
		if i == n-1 {
			line = fmt.Sprintf("<45>1 %s host heroku web.1 - source=web.1 dyno=heroku.1.bench sample#load_avg_1m=%.2f sample#load_avg_5m=0.5 sample#load_avg_15m=0.4", ts, rng.Float64()*2)
		} else {
			line = fmt.Sprintf(`<158>1 %s host heroku router - at=info method=GET path="/items/%d" host=%s.herokuapp.com request_id=%x fwd="203.0.113.9" dyno=web.%d connect=0ms service=%dms status=200 bytes=%d protocol=https`,
				ts, rng.IntN(1000), app, rng.Uint64(), 1+rng.IntN(4), 1+rng.IntN(800), 200+rng.IntN(5000))
		}
		fmt.Fprintf(&b, "%d %s", len(line), line)
	}
	return b.Bytes()
}

// heapInUseMB reads go_memstats_heap_inuse_bytes from the daemon's /metrics: what the Go heap holds, as against
// what the process holds (VmRSS), to tell a growing heap from memory the runtime has not returned yet.
func heapInUseMB(url string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_inuse_bytes "); ok {
			var n float64
			fmt.Sscanf(v, "%g", &n)
			return n / (1 << 20)
		}
	}
	return -1
}
