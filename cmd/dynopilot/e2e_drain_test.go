package main_test

// End-to-end tests of SOURCE=logdrain on the real binary: Logplex frames POSTed to /drain/<app> as Heroku sends
// them, the readings taken from them, scaling, refused frames, a silent drain, the traffic export and `check`.

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

const drainToken = "drain-e2e-secret-7c1d"

// drainBody is a Logplex body (application/logplex-1) of the given syslog messages.
func drainBody(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%d %s", len(l), l)
	}
	return b.String()
}

func drainStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

func routerLine(at time.Time, app, dyno string, service int) string {
	return fmt.Sprintf(`<158>1 %s host heroku router - at=info method=GET path="/cart" host=%s.herokuapp.com request_id=6f1c fwd="203.0.113.9" dyno=%s connect=0ms service=%dms status=200 bytes=1543 protocol=https`,
		drainStamp(at), app, dyno, service)
}

func loadLine(at time.Time, dyno string, load float64) string {
	return fmt.Sprintf(`<45>1 %s host heroku %s - source=%s dyno=heroku.2808254.d97d0ea7 sample#load_avg_1m=%.2f sample#load_avg_5m=1.06 sample#load_avg_15m=0.99`,
		drainStamp(at), dyno, dyno, load)
}

func queueLine(at time.Time, dyno string, ms int) string {
	return fmt.Sprintf(`<190>1 %s host app %s - [hirefire:router] queue=%dms`, drainStamp(at), dyno, ms)
}

// drainPost sends one body to the daemon's drain endpoint for app and returns the status.
func drainPost(t *testing.T, d *daemon, app, password, frameID, body string) int {
	t.Helper()
	req, err := http.NewRequest("POST", d.url+"/drain/"+app, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if password != "" {
		req.SetBasicAuth("dynopilot", password)
	}
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Frame-Id", frameID)
	req.Header.Set("User-Agent", "Logplex/v123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// drainDaemon starts fakeheroku with the given apps and dynopilot with the policies, the drain token set.
func drainDaemon(t *testing.T, apps []string, policies ...string) (*heroku, *daemon) {
	t.Helper()
	h := startHerokuApps(t, apps...)
	env := append([]string{"HEROKU_API_KEY=" + token, "HEROKU_API_URL=" + h.url, "DYNOPILOT_LISTEN=127.0.0.1:0", "LOG_LEVEL=debug",
		"HOME=/nonexistent", "DYNOPILOT_DRAIN_TOKEN=" + drainToken, "POLICY_DEFAULT_SOURCE=logdrain", "POLICY_DEFAULT_INTERVAL=1s",
		"POLICY_DEFAULT_UP_COOLDOWN=0s", "POLICY_DEFAULT_DOWN_COOLDOWN=0s", "POLICY_DEFAULT_DOWN_STABILIZATION=0s"}, policies...)
	return h, startDaemon(t, env)
}

type drainStatus struct {
	Policies []struct {
		Policy       string
		Reading      *float64
		ReadingError string `json:"reading_error"`
		Reason       string
	}
	Drains []struct {
		App            string
		LastLine       time.Time `json:"last_line"`
		LinesPerMinute float64   `json:"lines_per_minute"`
		Lines          map[string]int64
	}
}

func (d *daemon) drainStatus(t *testing.T) drainStatus {
	t.Helper()
	var s drainStatus
	getJSON(t, d.url+"/api/policies", &s)
	return s
}

// reading is the policy's last reading, or NaN while it has none.
func (s drainStatus) reading(policy string) float64 {
	for _, p := range s.Policies {
		if p.Policy == policy && p.Reading != nil && p.ReadingError == "" {
			return *p.Reading
		}
	}
	return math.NaN()
}

func TestDrainReadingsAreWhatWasSent(t *testing.T) {
	h, d := drainDaemon(t, []string{"shop:web=2:Standard-1X,worker=2:Standard-1X", "api:web=1:Standard-1X", "que:web=1:Standard-1X"},
		"DYNOPILOT_DRY_RUN=true",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_MEASURE=latency", "POLICY_0_QUANTILE=0.95", "POLICY_0_WINDOW=30s", "POLICY_0_TARGET=10s", "POLICY_0_MAX=4",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_MEASURE=load", "POLICY_1_WINDOW=30s", "POLICY_1_TARGET=100", "POLICY_1_MAX=4",
		"POLICY_2_APP=api", "POLICY_2_PROCESS=web", "POLICY_2_MEASURE=rate", "POLICY_2_WINDOW=30s", "POLICY_2_TARGET=1000", "POLICY_2_MAX=4",
		"POLICY_3_APP=que", "POLICY_3_PROCESS=web", "POLICY_3_MEASURE=queue-time", "POLICY_3_QUANTILE=0.5", "POLICY_3_WINDOW=30s", "POLICY_3_TARGET=10s", "POLICY_3_MAX=4")
	at := time.Now().Add(-12 * time.Second) // inside the window, in a bucket that is complete
	var shop, api, que []string
	for i := 1; i <= 200; i++ { // shop's web: 1..200 ms; its worker dynos are not web's and must not count
		shop = append(shop, routerLine(at, "shop", fmt.Sprintf("web.%d", 1+i%2), i))
	}
	shop = append(shop, routerLine(at, "shop", "worker.1", 5000), loadLine(at, "worker.1", 1.5), loadLine(at, "worker.2", 2.5), loadLine(at, "web.1", 9))
	// api's traffic, for the export: 60 requests three minutes ago and 120 two minutes ago (complete minutes).
	for i := range 180 {
		ago := 3 * time.Minute
		if i >= 60 {
			ago = 2 * time.Minute
		}
		api = append(api, routerLine(time.Now().Truncate(time.Minute).Add(-ago+time.Second), "api", "web.1", 20))
	}
	for i := 1; i <= 99; i++ {
		que = append(que, queueLine(at, "web.1", 10*i))
	}
	// A retried frame (same Logplex-Frame-Id) counts once; a wrong or missing password counts for nothing.
	for _, post := range []struct{ app, password, id, body string }{
		{"shop", drainToken, "f-shop", drainBody(shop...)},
		{"shop", drainToken, "f-shop", drainBody(shop...)},
		{"api", drainToken, "f-api", drainBody(api...)},
		{"que", drainToken, "f-que", drainBody(que...)},
	} {
		if code := drainPost(t, d, post.app, post.password, post.id, post.body); code/100 != 2 {
			t.Fatalf("POST /drain/%s: %d", post.app, code)
		}
	}
	for _, bad := range []string{"", "wrong-password"} {
		if code := drainPost(t, d, "api", bad, "f-bad-"+bad, drainBody(api...)); code != 401 {
			t.Errorf("POST with password %q: %d, want 401", bad, code)
		}
	}
	if code := drainPost(t, d, "unknown", drainToken, "f-unknown", drainBody(api...)); code != 404 {
		t.Errorf("POST for an app no policy reads: %d, want 404", code)
	}

	var s drainStatus
	waitFor(t, "a reading of every policy", 20*time.Second, func() bool {
		s = d.drainStatus(t)
		return !math.IsNaN(s.reading("shop/web")) && !math.IsNaN(s.reading("shop/worker")) && !math.IsNaN(s.reading("que/web"))
	})
	within := func(name string, got, want, rel float64) {
		if math.Abs(got-want) > rel*want {
			t.Errorf("%s reads %v, want %v within %.0f%%", name, got, want, rel*100)
		}
	}
	within("shop/web p95 latency", s.reading("shop/web"), 0.190, 0.01) // the 190th of 200 (k = floor(0.95*199))
	within("shop/worker load", s.reading("shop/worker"), 2.0, 1e-9)
	within("que/web p50 queue time", s.reading("que/web"), 0.500, 0.01) // the 50th of 99 (k = floor(0.5*98))

	m := d.metrics(t)
	for _, want := range []string{`dynopilot_drain_lines_total{app="shop",kind="router"} 201`, `dynopilot_drain_lines_total{app="shop",kind="runtime"} 3`,
		`dynopilot_drain_lines_total{app="api",kind="router"} 180`, `dynopilot_drain_lines_total{app="que",kind="app"} 99`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grep(m, "drain_lines"))
		}
	}
	if all, _ := h.patchCount(t, 0); all != 0 {
		t.Errorf("%d PATCHes in dry run", all)
	}
	if strings.Contains(d.p.output(), drainToken) || strings.Contains(m, drainToken) {
		t.Errorf("the drain token appears in the output or the metrics")
	}

	// The traffic export is a trace `dynopilot simulate` reads, with the requests of every app's router lines.
	resp, err := http.Get(d.url + "/api/traffic/api.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/traffic/api.csv: %d %s", resp.StatusCode, body)
	}
	tr, err := sim.ReadTrace(strings.NewReader(string(body)), "api.csv")
	if err != nil {
		t.Fatalf("the traffic export is not a trace: %v\n%s", err, body)
	}
	var requests float64
	for _, r := range tr.Rates {
		requests += r
	}
	if math.Abs(requests-180) > 1e-6 { // Rates holds a rate per second for every second
		t.Errorf("the trace holds %v requests, want the 180 sent\n%s", requests, body)
	}
}

func TestDrainRateIsRequestsPerSecond(t *testing.T) {
	_, d := drainDaemon(t, []string{"api:web=1:Standard-1X"}, "DYNOPILOT_DRY_RUN=true",
		"POLICY_0_APP=api", "POLICY_0_PROCESS=web", "POLICY_0_MEASURE=rate", "POLICY_0_WINDOW=30s", "POLICY_0_TARGET=1000", "POLICY_0_MAX=4")
	// Five requests stamped at every second, as a steady 5 requests a second would be logged, sent as they happen.
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		next := time.Now().Truncate(time.Second)
		for frame := 0; ; frame++ {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var lines []string
			for ; !next.After(time.Now()); next = next.Add(time.Second) {
				for range 5 {
					lines = append(lines, routerLine(next, "api", "web.1", 20))
				}
			}
			if len(lines) > 0 {
				drainPost(t, d, "api", drainToken, fmt.Sprintf("rate-%d", frame), drainBody(lines...))
			}
		}
	}()
	defer func() { close(done); <-stopped }()
	var rate float64
	// rate waits for a whole WINDOW of delivery since the drain's first line: a rate over less would be too low.
	waitFor(t, "a rate reading", 60*time.Second, func() bool { rate = d.drainStatus(t).reading("api/web"); return !math.IsNaN(rate) })
	// Exactly 5 a second, but for the window's last second, which may be read a moment before it is sent.
	if rate > 5+1e-9 || rate < 5-5.0/30-1e-9 {
		t.Errorf("rate %v, want 5 requests a second", rate)
	}
}

func TestDrainLatencyScalesAndASilentDrainNeverScalesDown(t *testing.T) {
	h, d := drainDaemon(t, []string{"shop:web=2:Standard-1X,worker=4:Standard-1X", "api:web=3:Standard-1X"},
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_WINDOW=10s", "POLICY_0_TARGET=300ms", "POLICY_0_MAX=6",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_MEASURE=load", "POLICY_1_WINDOW=10s", "POLICY_1_TARGET=2", "POLICY_1_MAX=6",
		// api's rate: 10 requests a second for 3.4 a dyno holds its 3 dynos; a rate of 0 would take it to MIN.
		"POLICY_2_APP=api", "POLICY_2_PROCESS=web", "POLICY_2_MEASURE=rate", "POLICY_2_WINDOW=10s", "POLICY_2_MODE=ratio", "POLICY_2_PER_DYNO=3.4",
		"POLICY_2_TARGET=", "POLICY_2_MAX=6")
	// Slow requests and busy workers, and api's steady traffic, for a whole window: web goes up (900 ms is 3x the
	// target: 2 -> 6) and api holds.
	next := time.Now().Truncate(time.Second)
	sawRate := 0.0
	for i := range 22 {
		var shop, api []string
		for ; !next.After(time.Now()); next = next.Add(time.Second) {
			for range 10 {
				api = append(api, routerLine(next, "api", "web.1", 20))
			}
			for range 50 {
				shop = append(shop, routerLine(next, "shop", "web.1", 900))
			}
			shop = append(shop, loadLine(next, "worker.1", 2), loadLine(next, "worker.2", 2))
		}
		drainPost(t, d, "shop", drainToken, fmt.Sprintf("slow-%d", i), drainBody(shop...))
		drainPost(t, d, "api", drainToken, fmt.Sprintf("api-%d", i), drainBody(api...))
		time.Sleep(time.Second)
		if rate := d.drainStatus(t).reading("api/web"); !math.IsNaN(rate) {
			sawRate = max(sawRate, rate)
		}
	}
	if sawRate < 9 {
		t.Fatalf("api's rate read at most %v while 10 requests a second were sent for a whole window", sawRate)
	}
	waitFor(t, "web scaled up on its router's latency", 20*time.Second, func() bool { return h.quantity(t, "web") == 6 })

	// Then the drain falls silent: nothing arrives. Readings must go missing, and nothing be scaled down, though
	// the last latency and load seen would have allowed it.
	waitFor(t, "two silent windows", 40*time.Second, func() bool { return strings.Contains(d.p.output(), "silence is not zero traffic") })
	time.Sleep(3 * time.Second)
	for _, p := range d.drainStatus(t).Policies {
		if p.Reason != "reading_failed" {
			t.Errorf("%s: reason %s while its drain is silent, want reading_failed", p.Policy, p.Reason)
		}
	}
	if web, worker := h.quantity(t, "web"), h.quantity(t, "worker"); web != 6 || worker != 4 {
		t.Errorf("web %d worker %d after the drain fell silent, want 6 and 4", web, worker)
	}
	if q := h.quantityOf(t, "api", "web"); q != 3 {
		t.Errorf("api's web = %d after its drain fell silent: silence was read as no traffic", q)
	}
}

func TestDrainEndpointNeedsTheToken(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 1)
	d := startDaemon(t, baseEnv(h, r))
	if code := drainPost(t, d, "shop", "anything", "f-1", drainBody(routerLine(time.Now(), "shop", "web.1", 10))); code != 404 {
		t.Errorf("POST /drain/shop without DYNOPILOT_DRAIN_TOKEN: %d, want 404", code)
	}
	build(t)
	cmd := exec.Command(bins.dynopilot, "check")
	cmd.Env = []string{"HEROKU_API_KEY=" + token, "HOME=/nonexistent", "POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=logdrain",
		"POLICY_0_TARGET=300ms", "POLICY_0_MAX=4"}
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "DYNOPILOT_DRAIN_TOKEN") {
		t.Errorf("SOURCE=logdrain without DYNOPILOT_DRAIN_TOKEN: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

func TestCheckShowsTheDaemonsDrains(t *testing.T) {
	h, d := drainDaemon(t, []string{"shop:web=2:Standard-1X"},
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_WINDOW=30s", "POLICY_0_TARGET=300ms", "POLICY_0_MAX=6")
	at := time.Now().Add(-8 * time.Second)
	var lines []string
	for range 30 {
		lines = append(lines, routerLine(at, "shop", "web.1", 280))
	}
	drainPost(t, d, "shop", drainToken, "f-1", drainBody(lines...))
	waitFor(t, "a reading", 20*time.Second, func() bool { return !math.IsNaN(d.drainStatus(t).reading("shop/web")) })

	env := []string{"HEROKU_API_KEY=" + token, "HEROKU_API_URL=" + h.url, "HOME=/nonexistent", "DYNOPILOT_DRAIN_TOKEN=" + drainToken,
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=logdrain", "POLICY_0_WINDOW=30s", "POLICY_0_TARGET=300ms", "POLICY_0_MAX=6"}
	cmd := exec.Command(bins.dynopilot, "check", "--json")
	cmd.Env = append(slices.Clone(env), "DYNOPILOT_URL="+d.url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("check with DYNOPILOT_URL: %v\n%s", err, out)
	}
	var rep struct {
		OK       bool
		Policies []struct{ Reading *float64 }
		Drains   []struct {
			App            string
			LastLine       time.Time `json:"last_line"`
			LinesPerMinute float64   `json:"lines_per_minute"`
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Drains) != 1 || rep.Drains[0].App != "shop" || rep.Drains[0].LastLine.IsZero() || rep.Drains[0].LinesPerMinute <= 0 {
		t.Errorf("check's drains: %s", out)
	}
	if len(rep.Policies) != 1 || rep.Policies[0].Reading == nil || math.Abs(*rep.Policies[0].Reading-0.28) > 0.01*0.28 {
		t.Errorf("check's reading of the drain policy: %s", out)
	}

	// Without a daemon to ask, check says how to give one and does not fail for it.
	cmd = exec.Command(bins.dynopilot, "check")
	cmd.Env = env
	text, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 0 || !strings.Contains(string(text), "set DYNOPILOT_URL") {
		t.Errorf("check without DYNOPILOT_URL: exit %d\n%s", cmd.ProcessState.ExitCode(), text)
	}
	if strings.Contains(string(text)+string(out), drainToken) {
		t.Errorf("check shows the drain token")
	}
}
