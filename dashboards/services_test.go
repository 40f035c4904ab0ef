package dashboards_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// process is a program the test started in its own process group, stopped with the group at cleanup.
type process struct {
	name string
	args []string
	log  string // path of its combined stdout and stderr
	done chan struct{}
	err  error // set when done is closed
}

// startProcess starts path with args (and env added to the test's environment), logging to dir/name.log.
// Cleanup stops its whole process group (SIGTERM, then SIGKILL after 10s) and, if the test failed, logs the tail of
// its output.
func startProcess(t *testing.T, dir, name string, env []string, path string, args ...string) *process {
	t.Helper()
	p := &process{name: name, args: args, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %s output (end):\n%s", name, strings.Join(args, " "), p.tail())
		}
	})
	return p
}

// tail returns the last few kilobytes of the process's output.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// exited reports, without waiting, whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// waitHTTP waits until url answers 200, failing at once if p ends first.
func waitHTTP(t *testing.T, p *process, url string) {
	t.Helper()
	poll(t, 30*time.Second, p.name+" at "+url, func() (bool, string) {
		if ended, err := p.exited(); ended {
			t.Fatalf("%s ended before answering (%v):\n%s", p.name, err, p.tail())
		}
		res, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK, res.Status
	})
}

// poll calls check until it reports done, failing the test with check's last explanation after timeout.
func poll(t *testing.T, timeout time.Duration, what string, check func() (done bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, why := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %s", timeout, what, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// runWith runs a short command with stdin and returns its combined output.
func runWith(t *testing.T, stdin io.Reader, path string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildDynopilot builds cmd/dynopilot into a temporary directory.
func buildDynopilot(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "dynopilot")
	if out, err := runWith(t, nil, goBin, "build", "-o", bin, "github.com/dynopilot/dynopilot/cmd/dynopilot"); err != nil {
		t.Fatalf("building cmd/dynopilot: %v\n%s", err, out)
	}
	return bin
}

// demoProcess is a running `dynopilot demo`.
type demoProcess struct {
	*process
	addr string // host:port of its HTTP server
}

// startDemo starts `dynopilot demo` on a free port, a simulated day lasting 2 minutes and evaluations every 2s,
// with extra flags, and waits for its /metrics.
func startDemo(t *testing.T, bin, dir, name string, env []string, extra ...string) demoProcess {
	t.Helper()
	addr := "127.0.0.1:" + freePort(t)
	args := append([]string{"demo", "--listen", addr, "--day", "2m", "--interval", "2s", "--duration", "10m", "--log-level", "warn"}, extra...)
	d := demoProcess{process: startProcess(t, dir, name, env, bin, args...), addr: addr}
	// Ready: Heroku has answered and every policy has been decided once, so every family it publishes is there.
	waitHTTP(t, d.process, "http://"+addr+"/readyz")
	return d
}

// metrics returns the demo's /metrics exposition.
func (d demoProcess) metrics(t *testing.T) string {
	t.Helper()
	res, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s, %v", d.addr, res.Status, err)
	}
	return string(b)
}

// families returns the names of the metric families in a text exposition.
func families(t *testing.T, exposition string) map[string]bool {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(exposition))
	if err != nil {
		t.Fatalf("parsing the demo's /metrics: %v", err)
	}
	names := map[string]bool{}
	for name := range fams {
		names[name] = true
	}
	return names
}

// promServer is a running Prometheus and a client of its HTTP API.
type promServer struct {
	*process
	url string
	api v1.API
}

// startPrometheus starts Prometheus scraping and evaluating rules every second, with its storage in dir, the rule
// file rules and scrapeConfigs (YAML list items under scrape_configs), and waits until it is ready.
func startPrometheus(t *testing.T, bin, dir, rules, scrapeConfigs string) *promServer {
	t.Helper()
	config := filepath.Join(dir, "prometheus.yml")
	writeFile(t, config, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:%s`, rules, scrapeConfigs))
	addr := "127.0.0.1:" + freePort(t)
	p := startProcess(t, dir, "prometheus", nil, bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	url := "http://" + addr
	waitHTTP(t, p, url+"/-/ready")
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	return &promServer{process: p, url: url, api: v1.NewAPI(c)}
}

// count runs expr, now or (overTime) as a range query from start to now at a 1s step, and returns how many series
// (or scalars) it returned.
func (s *promServer) count(expr string, overTime bool, start time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v model.Value
	var err error
	if overTime {
		v, _, _, err = s.api.QueryRange(ctx, expr, v1.Range{Start: start, End: time.Now(), Step: time.Second})
	} else {
		v, _, _, err = s.api.Query(ctx, expr, time.Now())
	}
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case model.Vector:
		return len(v), nil
	case model.Matrix:
		return len(v), nil
	case *model.Scalar, *model.String:
		return 1, nil
	}
	return 0, errors.New("unexpected result type " + v.Type().String())
}
