// Command daemon measures the scaler at scale: 1,000 policies over 500 apps (web and worker of each) against a
// fakeheroku process, sharing one Heroku client. It prints the resident memory of this process (the daemon's side
// only: the fake runs apart), the time for one round of every policy, the CPU used while idle between ticks, and
// the Heroku requests per hour in steady state with the 429s received.
//
//	go run ./bench/daemon [-apps 500] [-watch 60s]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/scaler"
)

const token = "bench-token"

func main() {
	apps := flag.Int("apps", 500, "apps, each with a web and a worker policy")
	watch := flag.Duration("watch", 60*time.Second, "how long to run the daemon in steady state")
	flag.Parse()
	if err := run(*apps, *watch); err != nil {
		fmt.Fprintln(os.Stderr, "daemon bench:", err)
		os.Exit(1)
	}
}

// source reads a fixed value: steady load, so that steady state is reached after the first round.
type source struct{ v float64 }

var _ metrics.Source = source{}

func (s source) Read(context.Context) (metrics.Reading, error) {
	return metrics.Reading{Value: s.v, At: time.Now()}, nil
}

func run(apps int, watch time.Duration) error {
	api, stop, err := startFake(apps)
	if err != nil {
		return err
	}
	defer stop()

	const rate, reserve = 4500, 450
	lim, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: rate, PerHour: rate, Reserve: reserve})
	if err != nil {
		return err
	}
	client, err := herokuapi.New(herokuapi.Config{BaseURL: api, Token: token, Limiter: lim})
	if err != nil {
		return err
	}
	var pols []scaler.Policy
	for i := 0; i < apps; i++ {
		app := fmt.Sprintf("app-%03d", i)
		// One web in ten is above its target, so the first round scales it (no up cooldown, though the fake's formations
		// were just created); the readings then stay, so everything holds: steady state.
		web := 1.0
		if i%10 == 0 {
			web = 1.6
		}
		for i, p := range []struct {
			env []string
			v   float64
		}{
			{[]string{"PROCESS=web", "MAX=4", "TARGET=1"}, web}, // an app above target goes 2 -> 4 = MAX, then holds
			{[]string{"PROCESS=worker", "MIN=0", "MAX=10", "MODE=ratio", "PER_DYNO=100"}, 80},
		} {
			environ := []string{"POLICY_0_APP=" + app, "POLICY_0_UP_COOLDOWN=0s"}
			for _, kv := range p.env {
				environ = append(environ, "POLICY_0_"+kv)
			}
			pol, interval, err := config.LoadDecision(environ, 0)
			if err != nil {
				return fmt.Errorf("policy %d of %s: %w", i, app, err)
			}
			pols = append(pols, scaler.Policy{Policy: pol, Source: source{p.v}, SourceKind: "bench", Interval: interval})
		}
	}
	s, err := scaler.New(scaler.Options{Heroku: client, Policies: pols, Refresh: time.Minute, APIBudget: rate - reserve,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		return err
	}

	ctx := context.Background()
	start := time.Now()
	s.EvaluateAll(ctx)
	first := time.Since(start)
	start = time.Now()
	s.EvaluateAll(ctx)
	second := time.Since(start)
	afterRounds, err := requests(api)
	if err != nil {
		return err
	}

	runtime.GC()
	cpu0 := cpuTime()
	ctxRun, cancel := context.WithTimeout(ctx, watch)
	wallStart := time.Now()
	s.Run(ctxRun)
	cancel()
	wall := time.Since(wallStart)
	cpu := cpuTime() - cpu0
	all, err := requests(api)
	if err != nil {
		return err
	}
	steady := all[len(afterRounds):]
	var got429 int
	for _, r := range all {
		if r.Status == 429 {
			got429++
		}
	}
	var steadyPatches int
	for _, r := range steady {
		if r.Method == "PATCH" {
			steadyPatches++
		}
	}
	refresh := s.RefreshInterval()
	planned := float64(apps) * 3600 / refresh.Seconds()

	fmt.Printf("policies                       %d over %d apps, evaluated %s\n", len(pols), apps, pols[0].Interval)
	fmt.Printf("first round (reads formations) %s, %d Heroku requests (%d PATCHes)\n", first.Round(time.Millisecond), len(afterRounds), count(afterRounds, "PATCH"))
	fmt.Printf("one round, formations cached   %s\n", second.Round(time.Millisecond))
	fmt.Printf("resident memory                %.1f MB now, %.1f MB peak (this process: the daemon side)\n", rssMB("VmRSS"), rssMB("VmHWM"))
	fmt.Printf("CPU while running %s     %.2f%% of one core (%s CPU, every policy evaluated %s)\n", wall.Round(time.Second), 100*cpu.Seconds()/wall.Seconds(), cpu.Round(time.Millisecond), pols[0].Interval)
	fmt.Printf("formation refresh              %s (stretched from 1m to fit half of %d tokens/hour)\n", refresh, rate-reserve)
	fmt.Printf("steady state, measured         %d requests in %s (%d PATCHes): %.0f/hour\n", len(steady), wall.Round(time.Second), steadyPatches, float64(len(steady))/wall.Hours())
	fmt.Printf("steady state, planned          %.0f formation reads/hour + PATCHes, budget %d/hour\n", planned, rate-reserve)
	fmt.Printf("429s received from the API     %d\n", got429)
	return nil
}

type request struct {
	Method string `json:"method"`
	Status int    `json:"status"`
}

func requests(api string) ([]request, error) {
	resp, err := http.Get(api + "/_fake/requests")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rs []request
	return rs, json.NewDecoder(resp.Body).Decode(&rs)
}

func count(rs []request, method string) int {
	n := 0
	for _, r := range rs {
		if r.Method == method {
			n++
		}
	}
	return n
}

// startFake builds and starts fakeheroku with the apps, as a process of its own.
func startFake(apps int) (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "bench-daemon")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "fakeheroku")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/fakeheroku").CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("building fakeheroku (run from the repository root): %v\n%s", err, out)
	}
	args := []string{"-listen", "127.0.0.1:0", "-token", token}
	for i := 0; i < apps; i++ {
		args = append(args, "-app", fmt.Sprintf("app-%03d:web=2:Standard-1X,worker=1:Standard-1X", i))
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); os.RemoveAll(dir) }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		stop()
		return "", nil, fmt.Errorf("fakeheroku did not start: %q %v", line, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), stop, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMB reads a memory figure of this process from /proc (Linux).
func rssMB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, field+":")), "%f", &kb)
			return kb / 1024
		}
	}
	return math.NaN()
}
