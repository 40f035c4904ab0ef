// Command daemon measures the real dynopilot binary at scale with real sources: it builds ./cmd/dynopilot and
// ./cmd/fakeheroku, serves a HireFire-style info endpoint per app from this process (GET /hirefire/<app>/info, one
// host for every app, as metrics/hirefire.go reads it), and runs `dynopilot run` configured by environment
// variables, with a web and a worker policy per app evaluated every 5 seconds, against a fakeheroku process.
//
// For each size (500 apps and 1,000 policies, then 2,000 apps and 4,000 policies) it runs the daemon three times.
// Each run waits for /readyz (every policy evaluated once), lets the daemon settle for a warm-up, then measures a
// window, and prints, per run and then as min/median/max over the runs:
//
//   - resident memory while steady: VmRSS from /proc, sampled every second over the window (the median sample,
//     and the largest), and the peak since start (VmHWM), with the Go heap in use at the window's end;
//   - CPU while steady: utime+stime from /proc/<pid>/stat over the window, in % of one core;
//   - evaluation time: the daemon's dynopilot_evaluation_duration_seconds histogram from /metrics, counting every
//     evaluation after the first round (its count, mean, and the bucket bounds that hold 50% and 99% of the
//     evaluations and the slowest one);
//   - Heroku API requests per hour: measured over the window (from the fake's request log), and planned (every
//     app's formation read once per refresh interval in force, dynopilot_formation_refresh_interval_seconds);
//   - what the HireFire server saw: readings a second, new connections a minute and the most open at once.
//
// The daemon's side only: the fake runs in its own process and the HireFire server in this one.
//
//	go run ./bench/daemon [-apps 500,2000] [-runs 3] [-warmup 1m] [-watch 1m] [-interval 5s] [-env GOGC=50 ...]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynopilot/dynopilot/internal/program"
)

const apiToken = "bench-token"

func main() {
	sizes := flag.String("apps", "500,2000", "comma-separated numbers of apps, each with a web and a worker policy")
	runs := flag.Int("runs", 3, "runs of each size")
	warmup := flag.Duration("warmup", time.Minute, "how long to let the daemon settle once every policy has been evaluated (the runtime returns the memory of the start-up to the system gradually)")
	watch := flag.Duration("watch", 60*time.Second, "the steady-state window measured")
	interval := flag.Duration("interval", 5*time.Second, "every policy's INTERVAL")
	var extra []string
	flag.Func("env", "KEY=VALUE added to the daemon's environment, such as GOGC=50 (repeatable)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("expected KEY=VALUE")
		}
		extra = append(extra, v)
		return nil
	})
	flag.Parse()
	var apps []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "daemon bench: -apps %q: expected numbers such as 500,2000\n", *sizes)
			os.Exit(2)
		}
		apps = append(apps, n)
	}
	if err := run(apps, *runs, *warmup, *watch, *interval, extra); err != nil {
		fmt.Fprintln(os.Stderr, "daemon bench:", err)
		os.Exit(1)
	}
}

func run(sizes []int, runs int, warmup, watch, interval time.Duration, extra []string) error {
	dir, err := os.MkdirTemp("", "bench-daemon")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := program.Build(dir, "dynopilot", "fakeheroku")
	if err != nil {
		return err
	}
	hf, err := startHireFire()
	if err != nil {
		return err
	}
	defer hf.srv.Close()
	for _, apps := range sizes {
		fmt.Printf("\n== %d apps, %d policies reading HireFire over HTTP every %s, %d runs (warm-up %s, window %s) %s\n",
			apps, 2*apps, interval, runs, warmup, watch, strings.Join(extra, " "))
		var results []result
		for i := range runs {
			r, err := measure(bins, hf, apps, interval, warmup, watch, extra)
			if err != nil {
				return fmt.Errorf("%d apps, run %d: %w", apps, i+1, err)
			}
			fmt.Printf("run %d: %s\n", i+1, r)
			results = append(results, r)
		}
		summarize(results)
	}
	return nil
}

// result is what one run measured.
type result struct {
	ready          time.Duration // from start to /readyz answering 200
	rss            float64       // MB: the median of the window's samples
	rssMax, rssEnd float64       // MB: the largest sample, and the last
	hwm            float64       // MB, the peak since start
	cpu            float64       // % of one core over the window
	evals          float64       // evaluations after the first round (warm-up and window)
	evalMean       float64       // seconds
	evalP50        float64       // bucket bound holding half of those evaluations
	evalP99        float64
	evalMax        float64 // bucket bound holding the slowest
	evalsOver1s    float64
	herokuPerHour  float64 // measured over the window
	plannedPerHour float64
	refresh        float64 // seconds, the formation refresh in force
	readsPerSec    float64 // HireFire requests per second
	connsPerMin    float64 // new connections to the HireFire server per minute
	connsMaxOpen   int64
	shutdown       time.Duration
	heap, stacks   float64 // MB: the Go heap in use and goroutine stacks at the window's end
	goroutines     float64
}

func (r result) String() string {
	return fmt.Sprintf("ready in %s; RSS %.1f MB (median over the window; max %.1f, %.1f at its end), peak %.1f MB; CPU %.2f%%; "+
		"%.0f evaluations, mean %.3fs, p50 ≤%gs, p99 ≤%gs, slowest ≤%gs, %.0f over 1s; Heroku %.0f req/h measured, %.0f planned (refresh %s); "+
		"HireFire %.0f reads/s, %.0f new conns/min, %d open at most; Go heap in use %.1f MB, stacks %.1f MB, %.0f goroutines; stopped in %s",
		r.ready.Round(100*time.Millisecond), r.rss, r.rssMax, r.rssEnd, r.hwm, r.cpu, r.evals, r.evalMean, r.evalP50, r.evalP99, r.evalMax, r.evalsOver1s,
		r.herokuPerHour, r.plannedPerHour, time.Duration(r.refresh*float64(time.Second)), r.readsPerSec, r.connsPerMin, r.connsMaxOpen,
		r.heap, r.stacks, r.goroutines, r.shutdown.Round(10*time.Millisecond))
}

func summarize(rs []result) {
	row := func(name, unit string, f func(result) float64) {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		slices.Sort(vs)
		fmt.Printf("  %-36s min %10.3f  median %10.3f  max %10.3f %s\n", name, vs[0], vs[len(vs)/2], vs[len(vs)-1], unit)
	}
	fmt.Println("summary (min / median / max):")
	row("resident memory while steady", "MB", func(r result) float64 { return r.rss })
	row("resident memory, largest sample", "MB", func(r result) float64 { return r.rssMax })
	row("peak resident memory (VmHWM)", "MB", func(r result) float64 { return r.hwm })
	row("Go heap in use at the window's end", "MB", func(r result) float64 { return r.heap })
	row("CPU while steady", "% of a core", func(r result) float64 { return r.cpu })
	row("evaluation time, mean", "s", func(r result) float64 { return r.evalMean })
	row("evaluation time, p99 (bucket bound)", "s", func(r result) float64 { return r.evalP99 })
	row("evaluation time, slowest (bucket)", "s", func(r result) float64 { return r.evalMax })
	row("evaluations over 1s", "", func(r result) float64 { return r.evalsOver1s })
	row("Heroku requests per hour, measured", "", func(r result) float64 { return r.herokuPerHour })
	row("Heroku requests per hour, planned", "", func(r result) float64 { return r.plannedPerHour })
	row("new HireFire connections per minute", "", func(r result) float64 { return r.connsPerMin })
	row("HireFire connections open at most", "", func(r result) float64 { return float64(r.connsMaxOpen) })
	row("start to ready", "s", func(r result) float64 { return r.ready.Seconds() })
}

// measure runs the fake and the daemon once with apps apps, and measures the daemon's steady state.
func measure(bins map[string]string, hf *hirefire, apps int, interval, warmup, watch time.Duration, extra []string) (result, error) {
	var r result
	fakeArgs := []string{"-listen", "127.0.0.1:0", "-token", apiToken}
	for i := range apps {
		fakeArgs = append(fakeArgs, "-app", appName(i)+":web=2:Standard-1X,worker=1:Standard-1X")
	}
	fake, err := program.Start(bins["fakeheroku"], fakeArgs, nil)
	if err != nil {
		return r, err
	}
	defer fake.Stop()

	// Both policies of an app read the app's one endpoint; one web in ten is above its target, so the first round
	// scales it 2 -> 4 (its MAX; no up cooldown), and every policy then holds: steady state.
	env := []string{"HEROKU_API_KEY=" + apiToken, "HEROKU_API_URL=" + fake.URL, "DYNOPILOT_LISTEN=127.0.0.1:0",
		"LOG_LEVEL=info", "LOG_FORMAT=text", "HOME=/nonexistent",
		"POLICY_DEFAULT_SOURCE=hirefire", "POLICY_DEFAULT_MEASURE=size", "POLICY_DEFAULT_INTERVAL=" + interval.String(),
		"POLICY_DEFAULT_UP_COOLDOWN=0s"}
	for i := range apps {
		url := hf.url + "/hirefire/" + appName(i) + "/info"
		web, worker := 2*i, 2*i+1
		env = append(env,
			fmt.Sprintf("POLICY_%d_APP=%s", web, appName(i)), fmt.Sprintf("POLICY_%d_PROCESS=web", web),
			fmt.Sprintf("POLICY_%d_SOURCE_URL=%s", web, url), fmt.Sprintf("POLICY_%d_MAX=4", web), fmt.Sprintf("POLICY_%d_TARGET=1", web),
			fmt.Sprintf("POLICY_%d_APP=%s", worker, appName(i)), fmt.Sprintf("POLICY_%d_PROCESS=worker", worker),
			fmt.Sprintf("POLICY_%d_SOURCE_URL=%s", worker, url), fmt.Sprintf("POLICY_%d_MIN=0", worker), fmt.Sprintf("POLICY_%d_MAX=10", worker),
			fmt.Sprintf("POLICY_%d_MODE=ratio", worker), fmt.Sprintf("POLICY_%d_PER_DYNO=100", worker))
	}
	env = append(env, extra...)
	start := time.Now()
	// Loading a configuration of thousands of policies can take a while: wait as long as it takes.
	daemon, err := program.StartWithin(bins["dynopilot"], []string{"run"}, env, 10*time.Minute)
	if err != nil {
		return r, err
	}
	stopped := false
	defer func() {
		if !stopped {
			daemon.Stop()
		}
	}()
	if err := waitReady(daemon, 10*time.Minute); err != nil {
		return r, err
	}
	r.ready = time.Since(start)
	// The evaluations counted are those after the first round, which /readyz waited for. They are read before the
	// warm-up rather than at the window's start, so that gathering /metrics (every series, whatever name[] keeps)
	// is not inside the window: the garbage of a gather of 80,000 series would be measured as resident memory.
	h0, err := scrape(daemon.URL)
	if err != nil {
		return r, err
	}
	time.Sleep(warmup)

	// The window: resident memory sampled every second, CPU and traffic counted from its start to its end.
	cpu0, err := cpuSeconds(daemon)
	if err != nil {
		return r, err
	}
	reads0, conns0 := hf.reads.Load(), hf.opened.Load()
	hf.maxOpen.Store(hf.open.Load())
	began := time.Now()
	var samples []float64
	for time.Since(began) < watch {
		time.Sleep(time.Second)
		rss := daemon.MemoryMB("VmRSS")
		if rss < 0 {
			return r, fmt.Errorf("the daemon exited:\n%s", tail(daemon.Output()))
		}
		samples = append(samples, rss)
	}
	took := time.Since(began)
	slices.Sort(samples)
	r.rss, r.rssMax = samples[len(samples)/2], samples[len(samples)-1]
	r.rssEnd, r.hwm = daemon.MemoryMB("VmRSS"), daemon.MemoryMB("VmHWM")
	cpu1, err := cpuSeconds(daemon)
	if err != nil {
		return r, err
	}
	r.cpu = 100 * (cpu1 - cpu0) / took.Seconds()
	r.readsPerSec = float64(hf.reads.Load()-reads0) / took.Seconds()
	r.connsPerMin = float64(hf.opened.Load()-conns0) / took.Minutes()
	r.connsMaxOpen = hf.maxOpen.Load()
	h1, err := scrape(daemon.URL)
	if err != nil {
		return r, err
	}
	h1.since(h0, &r)
	r.refresh = h1.refresh
	r.heap, r.stacks, r.goroutines = h1.heapInUse/(1<<20), h1.stackInUse/(1<<20), h1.goroutines
	r.plannedPerHour = float64(apps) * 3600 / h1.refresh
	reqs, err := herokuRequests(fake.URL)
	if err != nil {
		return r, err
	}
	var inWindow int
	for _, q := range reqs {
		if !q.Time.Before(began) && q.Time.Before(began.Add(took)) {
			inWindow++
		}
	}
	r.herokuPerHour = float64(inWindow) / took.Hours()

	stopAt := time.Now()
	daemon.Stop()
	stopped = true
	r.shutdown = time.Since(stopAt)
	if !strings.Contains(daemon.Output(), "msg=stopped") {
		return r, fmt.Errorf("the daemon did not stop cleanly:\n%s", tail(daemon.Output()))
	}
	return r, nil
}

func appName(i int) string { return fmt.Sprintf("app-%04d", i) }

// hirefire is the apps' HireFire info endpoints, served from this process on one host.
type hirefire struct {
	srv *http.Server
	url string

	reads   atomic.Int64
	opened  atomic.Int64 // connections accepted
	open    atomic.Int64 // connections open now
	maxOpen atomic.Int64 // the most open at once since it was last reset
}

func startHireFire() (*hirefire, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hirefire{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hirefire/{app}/info", func(w http.ResponseWriter, r *http.Request) {
		h.reads.Add(1)
		var i int
		if _, err := fmt.Sscanf(r.PathValue("app"), "app-%d", &i); err != nil {
			http.NotFound(w, r)
			return
		}
		web := 1.0 // at target: hold
		if i%10 == 0 {
			web = 1.6 // above: 2 -> 4 on the first round, then at MAX
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"name":"web","value":%g},{"name":"worker","value":80}]`, web)
	})
	h.srv = &http.Server{Handler: mux, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			h.opened.Add(1)
			n := h.open.Add(1)
			for {
				m := h.maxOpen.Load()
				if n <= m || h.maxOpen.CompareAndSwap(m, n) {
					break
				}
			}
		case http.StateClosed, http.StateHijacked:
			h.open.Add(-1)
		}
	}}
	go h.srv.Serve(ln)
	return h, nil
}

// waitReady polls /readyz until every policy has been evaluated once.
func waitReady(p *program.Process, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return fmt.Errorf("the daemon exited:\n%s", tail(p.Output()))
		default:
		}
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s:\n%s", within, tail(p.Output()))
}

// histogram is the daemon's evaluation-duration histogram, its formation refresh and the Go runtime's memory, from
// /metrics.
type histogram struct {
	buckets      map[float64]float64 // upper bound: cumulative count
	count, sum   float64
	refresh      float64
	bucketBounds []float64

	heapInUse, stackInUse, goroutines float64
}

// scrape reads only the families it needs (name[] filters what is written; the daemon still gathers everything,
// as it does for any scrape).
func scrape(url string) (histogram, error) {
	h := histogram{buckets: map[float64]float64{}}
	resp, err := http.Get(url + "/metrics?name[]=dynopilot_evaluation_duration_seconds&name[]=dynopilot_formation_refresh_interval_seconds" +
		"&name[]=go_memstats_heap_inuse_bytes&name[]=go_memstats_stack_inuse_bytes&name[]=go_goroutines")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "dynopilot_evaluation_duration_seconds_bucket{le=\""):
			le := strings.TrimSuffix(strings.TrimPrefix(name, "dynopilot_evaluation_duration_seconds_bucket{le=\""), "\"}")
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			h.buckets[bound] = v
			h.bucketBounds = append(h.bucketBounds, bound)
		case name == "dynopilot_evaluation_duration_seconds_count":
			h.count = v
		case name == "dynopilot_evaluation_duration_seconds_sum":
			h.sum = v
		case name == "dynopilot_formation_refresh_interval_seconds":
			h.refresh = v
		case name == "go_memstats_heap_inuse_bytes":
			h.heapInUse = v
		case name == "go_memstats_stack_inuse_bytes":
			h.stackInUse = v
		case name == "go_goroutines":
			h.goroutines = v
		}
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	if len(h.bucketBounds) == 0 || h.refresh == 0 {
		return h, errors.New("no dynopilot_evaluation_duration_seconds or dynopilot_formation_refresh_interval_seconds in /metrics")
	}
	slices.Sort(h.bucketBounds)
	return h, nil
}

// since fills r's evaluation figures with what h counted after before.
func (h histogram) since(before histogram, r *result) {
	n := h.count - before.count
	r.evals = n
	if n == 0 {
		return
	}
	r.evalMean = (h.sum - before.sum) / n
	quantile := func(q float64) float64 {
		for _, b := range h.bucketBounds {
			if h.buckets[b]-before.buckets[b] >= q*n {
				return b
			}
		}
		return math.Inf(1)
	}
	r.evalP50, r.evalP99, r.evalMax = quantile(0.5), quantile(0.99), quantile(1)
	r.evalsOver1s = n - (h.buckets[1] - before.buckets[1])
}

type herokuRequest struct {
	Time time.Time `json:"time"`
}

func herokuRequests(url string) ([]herokuRequest, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/_fake/requests", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rs []herokuRequest
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		return nil, fmt.Errorf("the fake's request log: %w", err)
	}
	return rs, nil
}

// cpuSeconds is the CPU time the process has used (utime + stime from /proc/<pid>/stat, in clock ticks of
// 1/100 s, USER_HZ on Linux).
func cpuSeconds(p *program.Process) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading the daemon's CPU time: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces: count fields after its closing one.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", p.Cmd.Process.Pid, s)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(fields[12], 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %w", p.Cmd.Process.Pid, err)
	}
	return (utime + stime) / 100, nil
}

// tail is the last lines of a program's output, for an error.
func tail(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
