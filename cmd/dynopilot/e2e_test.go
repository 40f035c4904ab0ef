package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
)

const token = "HRKU-e2e-secret-token-5f3c9a"

var bins struct {
	once                            sync.Once
	dynopilot, fakeAPI, riverworker string
	err                             error
}

// build compiles the programs once for all tests: dynopilot, fakeheroku and the river worker of the busy tests.
func build(t *testing.T) {
	t.Helper()
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "dynopilot-e2e")
		if err != nil {
			bins.err = err
			return
		}
		bins.dynopilot, bins.fakeAPI, bins.riverworker = filepath.Join(dir, "dynopilot"), filepath.Join(dir, "fakeheroku"), filepath.Join(dir, "riverworker")
		for pkg, out := range map[string]string{".": bins.dynopilot, "../fakeheroku": bins.fakeAPI, "../../internal/servicetest/riverworker": bins.riverworker} {
			if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

// proc is a running program with its output collected.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

func (p *proc) Write(b []byte) (int, error) { p.mu.Lock(); defer p.mu.Unlock(); return p.out.Write(b) }

func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.output())
		}
	})
	return p
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var urlRE = regexp.MustCompile(`(?:listening on |url=)(http://[0-9.:]+)`)

func waitURL(t *testing.T, p *proc) string {
	t.Helper()
	var u string
	waitFor(t, "the program's URL", 20*time.Second, func() bool {
		if m := urlRE.FindStringSubmatch(p.output()); m != nil {
			u = m[1]
			return true
		}
		return false
	})
	return u
}

// heroku is a running fakeheroku.
type heroku struct {
	url string
	p   *proc
}

func startHeroku(t *testing.T, args ...string) *heroku {
	t.Helper()
	build(t)
	p := start(t, nil, bins.fakeAPI, append([]string{"-listen", "127.0.0.1:0", "-token", token, "-app", "shop:web=2:Standard-1X,worker=1:Standard-1X"}, args...)...)
	return &heroku{url: waitURL(t, p), p: p}
}

func (h *heroku) quantity(t *testing.T, typ string) int {
	t.Helper()
	return h.quantityOf(t, "shop", typ)
}

// quantityOf is the quantity of app's process type typ in the fake.
func (h *heroku) quantityOf(t *testing.T, app, typ string) int {
	t.Helper()
	var apps []struct {
		Name      string `json:"name"`
		Formation []struct {
			Type     string `json:"type"`
			Quantity int    `json:"quantity"`
		} `json:"formation"`
	}
	getJSON(t, h.url+"/_fake/apps", &apps)
	for _, a := range apps {
		for _, f := range a.Formation {
			if a.Name == app && f.Type == typ {
				return f.Quantity
			}
		}
	}
	t.Fatalf("no %s/%s in the fake", app, typ)
	return 0
}

type request struct {
	Method, Path string
	Status       int
}

func (h *heroku) requests(t *testing.T) []request {
	var rs []request
	getJSON(t, h.url+"/_fake/requests", &rs)
	return rs
}

func (h *heroku) scale(t *testing.T, typ string, q int) {
	t.Helper()
	body := fmt.Sprintf(`{"app":"shop","type":%q,"quantity":%d}`, typ, q)
	resp, err := http.Post(h.url+"/_fake/scale", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("manual scale: %v %v", err, resp)
	}
	resp.Body.Close()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// reading is a HireFire-style endpoint whose value the test sets; delay makes it slow, fail makes it answer 500.
type reading struct {
	mu    sync.Mutex
	value float64
	delay time.Duration
	fail  bool
	srv   *httptest.Server
}

func newReading(t *testing.T, v float64) *reading {
	r := &reading{value: v}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		v, d, fail := r.value, r.delay, r.fail
		r.mu.Unlock()
		select {
		case <-time.After(d):
		case <-req.Context().Done():
			return
		}
		if fail {
			http.Error(w, "boom", 500)
			return
		}
		fmt.Fprintf(w, `[{"name":"web","value":%g},{"name":"worker","value":%g}]`, v, v)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *reading) set(v float64) { r.mu.Lock(); r.value = v; r.mu.Unlock() }
func (r *reading) setFail(f bool) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

// daemon is a running `dynopilot run`.
type daemon struct {
	url string
	p   *proc
}

func baseEnv(h *heroku, r *reading, extra ...string) []string {
	env := []string{
		"HEROKU_API_KEY=" + token, "HEROKU_API_URL=" + h.url, "DYNOPILOT_LISTEN=127.0.0.1:0", "LOG_LEVEL=debug", "HOME=/nonexistent",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=hirefire", "POLICY_0_SOURCE_URL=" + r.srv.URL + "/hirefire/t/info",
		"POLICY_0_MODE=target", "POLICY_0_TARGET=1", "POLICY_0_MAX=6", "POLICY_0_INTERVAL=1s",
		"POLICY_0_UP_COOLDOWN=0s", "POLICY_0_DOWN_COOLDOWN=0s", "POLICY_0_DOWN_STABILIZATION=0s",
		"PATH=" + os.Getenv("PATH"),
	}
	return append(env, extra...)
}

func startDaemon(t *testing.T, env []string) *daemon {
	t.Helper()
	build(t)
	p := start(t, env, bins.dynopilot, "run")
	return &daemon{url: waitURL(t, p), p: p}
}

type policyStatus struct {
	Policy, Reason, Action string
	Current, Desired       int
	Evaluated              bool
}

func (d *daemon) status(t *testing.T, name string) policyStatus {
	t.Helper()
	var body struct{ Policies []policyStatus }
	getJSON(t, d.url+"/api/policies", &body)
	for _, p := range body.Policies {
		if p.Policy == name {
			return p
		}
	}
	t.Fatalf("no policy %s in /api/policies", name)
	return policyStatus{}
}

func (d *daemon) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (d *daemon) noToken(t *testing.T) {
	t.Helper()
	if strings.Contains(d.p.output(), token) {
		t.Errorf("the token appears in dynopilot's output")
	}
	if strings.Contains(d.metrics(t), token) {
		t.Errorf("the token appears in /metrics")
	}
}

func TestScalesUpPastTargetAndRespectsMax(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 4) // ratio mode, one dyno per unit: 2 -> 4
	d := startDaemon(t, baseEnv(h, r, "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1"))
	waitFor(t, "web scaled to 4", 20*time.Second, func() bool { return h.quantity(t, "web") == 4 })
	r.set(10) // 10 dynos wanted, MAX 6
	waitFor(t, "web at MAX 6", 20*time.Second, func() bool { return h.quantity(t, "web") == 6 })
	waitFor(t, "reason at_max", 10*time.Second, func() bool { return d.status(t, "shop/web").Reason == "at_max" })
	time.Sleep(2 * time.Second) // a few more ticks at 10x the target
	if q := h.quantity(t, "web"); q != 6 {
		t.Errorf("web = %d, past MAX 6", q)
	}
	m := d.metrics(t)
	for _, want := range []string{`dynopilot_scale_events_total{direction="up",policy="shop/web",result="ok"} 2`, `dynopilot_max_quantity{policy="shop/web"} 6`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(d.p.output(), `msg=scaled policy=shop/web from=2 to=4 reason=ratio`) {
		t.Errorf("the scale event is not logged at info with policy, from, to and reason")
	}
	d.noToken(t)
}

func TestRespectsCooldownsAndAManualChange(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 0.2) // far below target: wants to scale down
	env := baseEnv(h, r, "POLICY_0_UP_COOLDOWN=1h", "POLICY_0_DOWN_COOLDOWN=1h", "DYNOPILOT_FORMATION_REFRESH=5s")
	// The formation was just created (updated_at = now): both cooldowns hold from the start.
	d := startDaemon(t, env)
	waitFor(t, "a down_cooldown decision", 20*time.Second, func() bool { return d.status(t, "shop/web").Reason == "down_cooldown" })
	h.scale(t, "web", 5) // a person scales up by hand
	r.set(5)             // and load rises: the up cooldown counts from their change
	waitFor(t, "an up_cooldown decision", 20*time.Second, func() bool {
		s := d.status(t, "shop/web")
		return s.Reason == "up_cooldown" && s.Current == 5
	})
	for _, req := range h.requests(t) {
		if req.Method == "PATCH" {
			t.Fatalf("dynopilot sent %s %s inside a cooldown", req.Method, req.Path)
		}
	}
	if q := h.quantity(t, "web"); q != 5 {
		t.Errorf("web = %d, want the person's 5", q)
	}
	d.noToken(t)
}

func TestNeverScalesDownWhenTheSourceFails(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 0)
	r.setFail(true)
	d := startDaemon(t, baseEnv(h, r, "POLICY_0_MIN=1"))
	waitFor(t, "three failed readings", 20*time.Second, func() bool {
		return strings.Count(d.p.output(), "reason=reading_failed") >= 3
	})
	if q := h.quantity(t, "web"); q != 2 {
		t.Fatalf("web = %d after failed readings, want 2", q)
	}
	if !strings.Contains(d.metrics(t), `dynopilot_reading_errors_total{policy="shop/web",source="hirefire"}`) {
		t.Errorf("reading errors are not counted")
	}
	r.setFail(false) // the source comes back reading 0: now it may scale down, to MIN
	waitFor(t, "web down to MIN 1", 20*time.Second, func() bool { return h.quantity(t, "web") == 1 })
	d.noToken(t)
}

func TestDryRunChangesNothing(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 3)
	d := startDaemon(t, baseEnv(h, r, "DYNOPILOT_DRY_RUN=true"))
	waitFor(t, "a dry-run scale event", 20*time.Second, func() bool {
		return strings.Contains(d.metrics(t), `dynopilot_scale_events_total{direction="up",policy="shop/web",result="dry_run"} 1`)
	})
	time.Sleep(1500 * time.Millisecond)
	for _, req := range h.requests(t) {
		if req.Method == "PATCH" {
			t.Fatalf("dry run sent %s %s", req.Method, req.Path)
		}
	}
	if q := h.quantity(t, "web"); q != 2 {
		t.Errorf("web = %d in dry run", q)
	}
	if !strings.Contains(d.metrics(t), "dynopilot_dry_run 1") {
		t.Errorf("dynopilot_dry_run is not 1")
	}
	d.noToken(t)
}

func TestAppliesAScheduleWindow(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 1) // exactly on target: only the schedule moves it
	d := startDaemon(t, baseEnv(h, r, "POLICY_0_SCHEDULE=CRON_TZ=Europe/Berlin * * * * * for 1h min=4"))
	waitFor(t, "web raised to the window's min 4", 20*time.Second, func() bool { return h.quantity(t, "web") == 4 })
	if !strings.Contains(d.p.output(), "reason=schedule") {
		t.Errorf("the raise is not attributed to the schedule")
	}
	if !strings.Contains(d.metrics(t), `dynopilot_min_quantity{policy="shop/web"} 4`) {
		t.Errorf("effective min not published")
	}
}

func TestStaysWithinASmallAPIPool(t *testing.T) {
	// A pool of 40 tokens refilling at 1 a minute, 10 of them kept for people; two policies evaluated every second.
	h := startHeroku(t, "-rate", "40", "-refill", "1")
	r := newReading(t, 1.5)
	env := baseEnv(h, r, "DYNOPILOT_API_RATE=40", "DYNOPILOT_API_RESERVE=10", "DYNOPILOT_FORMATION_REFRESH=5s",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_SOURCE=hirefire", "POLICY_1_SOURCE_URL="+r.srv.URL+"/hirefire/t/info",
		"POLICY_1_TARGET=1", "POLICY_1_MAX=6", "POLICY_1_INTERVAL=1s", "POLICY_1_UP_COOLDOWN=0s")
	d := startDaemon(t, env)
	time.Sleep(8 * time.Second)
	reqs := h.requests(t)
	for _, req := range reqs {
		if req.Status == 429 {
			t.Fatalf("the API answered 429 to %s %s", req.Method, req.Path)
		}
	}
	if len(reqs) > 40-10 {
		t.Errorf("%d API requests: more than the pool less the reserve", len(reqs))
	}
	// 1 app, (40-10) tokens an hour, half of them for reads: one read every 240s, not every 5s.
	if !strings.Contains(d.metrics(t), "dynopilot_formation_refresh_interval_seconds 240") {
		t.Errorf("formation refresh not stretched to 240s:\n%s", grep(d.metrics(t), "refresh"))
	}
	// Every PATCH is preceded by a fresh read of the formation (a decision is never taken from a stale one); the
	// other reads are the periodic refresh.
	var gets, patches int
	for _, req := range reqs {
		switch {
		case req.Method == "GET" && strings.HasSuffix(req.Path, "/formation"):
			gets++
		case req.Method == "PATCH":
			patches++
		}
	}
	if gets-patches > 2 {
		t.Errorf("%d formation reads for %d PATCHes in 8s with a 240s refresh", gets, patches)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestExitsPromptlyOnSIGTERMWithASlowSource(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 1)
	r.mu.Lock()
	r.delay = time.Minute
	r.mu.Unlock()
	d := startDaemon(t, baseEnv(h, r, "POLICY_0_TIMEOUT=50s", "POLICY_0_INTERVAL=1m"))
	time.Sleep(1500 * time.Millisecond) // an evaluation is waiting on the slow source
	sent := time.Now()
	d.p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
	if code := d.p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	t.Logf("exited %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	if strings.Contains(d.p.output(), token) {
		t.Errorf("token in output")
	}
}

func TestMetricsPassPromtool(t *testing.T) {
	promtool := servicetest.Binary(t, servicetest.PromtoolBin)
	h := startHeroku(t)
	r := newReading(t, 2)
	d := startDaemon(t, baseEnv(h, r))
	waitFor(t, "a decision", 20*time.Second, func() bool { return d.status(t, "shop/web").Evaluated })
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(d.metrics(t))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestCheck(t *testing.T) {
	build(t)
	t.Run("broken configuration lists every problem", func(t *testing.T) {
		cmd := exec.Command(bins.dynopilot, "check")
		cmd.Env = []string{"HEROKU_API_KEY=" + token, "DYNOPILOT_API_RATE=lots", "POLICY_0_APP=shop", "POLICY_0_MIN=-1",
			"POLICY_0_TARGTE=1", "POLICY_0_SOURCE=nope", "POLICY_2_APP=x"}
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
			t.Fatalf("exit %d: %v", code, err)
		}
		for _, want := range []string{"DYNOPILOT_API_RATE", "POLICY_0_MIN", "did you mean POLICY_0_TARGET", "POLICY_0_SOURCE", "POLICY_0_PROCESS", "POLICY_0_MAX", "POLICY_1_"} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("check output lacks %q:\n%s", want, out)
			}
		}
		if bytes.Contains(out, []byte(token)) {
			t.Errorf("token in check output")
		}
	})
	t.Run("good configuration shows the decision and never scales", func(t *testing.T) {
		h := startHeroku(t)
		r := newReading(t, 3)
		cmd := exec.Command(bins.dynopilot, "check", "--json")
		cmd.Env = baseEnv(h, r)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("check: %v\n%s", err, out)
		}
		var rep struct {
			OK       bool
			Policies []struct {
				Policy, Reason, Action string
				Current, Desired       *int
				Reading                *float64
			}
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatal(err)
		}
		if !rep.OK || len(rep.Policies) != 1 {
			t.Fatalf("report %s", out)
		}
		p := rep.Policies[0]
		if *p.Current != 2 || *p.Desired != 6 || *p.Reading != 3 || p.Action != "up" {
			t.Errorf("check policy %s", out)
		}
		for _, req := range h.requests(t) {
			if req.Method != "GET" {
				t.Errorf("check sent %s %s", req.Method, req.Path)
			}
		}
	})
	t.Run("MAX past the dyno size's limit fails", func(t *testing.T) {
		h := startHeroku(t, "-app", "big:web=1:Performance-M")
		r := newReading(t, 1)
		cmd := exec.Command(bins.dynopilot, "check")
		cmd.Env = baseEnv(h, r, "POLICY_0_APP=big", "POLICY_0_MAX=20")
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !bytes.Contains(out, []byte("limited to 10")) {
			t.Errorf("exit %d:\n%s", cmd.ProcessState.ExitCode(), out)
		}
	})
}

func TestDemoDecidesWithinThirtySeconds(t *testing.T) {
	build(t)
	p := start(t, []string{"PATH=" + os.Getenv("PATH")}, bins.dynopilot, "demo", "--listen", "127.0.0.1:0", "--duration", "40s", "--interval", "2s")
	url := waitURL(t, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(p.output(), "msg=scaled") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scale event within 30s of starting the demo")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var body struct{ Ready bool }
	getJSON(t, url+"/api/policies", &body)
	if !body.Ready {
		t.Errorf("demo not ready after a scale event")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop on SIGTERM")
	}
	_ = context.Background
	_ = bufio.NewScanner
}
