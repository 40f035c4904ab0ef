package main_test

// End-to-end tests of issue 11's configuration items on the real binary: secrets in configuration errors (item 7),
// configuration that cannot work (item 9, and TIMEOUT against INTERVAL from item 4), and negative readings (item 3).
// Helpers of their own are prefixed cfg, to keep clear of the other e2e files.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cfgRun runs `dynopilot <cmd>` with env to its end (bounded, in case it starts serving when it should not) and
// returns its exit code and everything it printed.
func cfgRun(t *testing.T, env []string, cmd string) (int, string) {
	t.Helper()
	build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bins.dynopilot, cmd)
	c.Env = env
	out, _ := c.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("dynopilot %s still running after 60s:\n%s", cmd, out)
	}
	return c.ProcessState.ExitCode(), string(out)
}

// cfgEnv is a valid configuration needing no running service (check and run stop at the configuration), with
// extra appended: a later entry wins.
func cfgEnv(extra ...string) []string {
	env := []string{
		"HEROKU_API_KEY=" + token, "HOME=/nonexistent", "PATH=" + os.Getenv("PATH"), "DYNOPILOT_LISTEN=127.0.0.1:0",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=hirefire", "POLICY_0_SOURCE_URL=http://127.0.0.1:1/hirefire/t/info",
		"POLICY_0_TARGET=1", "POLICY_0_MAX=6",
	}
	return append(env, extra...)
}

// TestCfgErrorsNeverShowSecrets: issue 11, item 7. `check` and `run` printed credentials as written when a
// URL-valued setting was malformed. Both must fail naming the variable, and show no password, token or userinfo.
func TestCfgErrorsNeverShowSecrets(t *testing.T) {
	for _, c := range []struct {
		name     string
		set      []string
		variable string
		secrets  []string
	}{
		{"PUSHGATEWAY_URL", []string{"PUSHGATEWAY_URL=http://pushuser:Pu5h-pw@push.example:99:99/x"}, "PUSHGATEWAY_URL", []string{"Pu5h-pw", "pushuser"}},
		{"PROMETHEUS_URL", []string{"PROMETHEUS_URL=http://promuser:Pr0m/pw@prom.example:1:2"}, "PROMETHEUS_URL", []string{"Pr0m/pw", "Pr0m", "promuser"}},
		{"HEROKU_API_URL malformed", []string{"HEROKU_API_URL=http://apiuser:Ap1-pw@host:bad"}, "HEROKU_API_URL", []string{"Ap1-pw", "apiuser"}},
		{"HEROKU_API_URL with credentials", []string{"HEROKU_API_URL=https://apiuser:Ap1-pw@api.example.com"}, "HEROKU_API_URL", []string{"Ap1-pw", "apiuser"}},
		{"misspelt variable", []string{"POLICY_0_SOURCE_URK=redis://redisuser:Red1s-pw@h"}, "POLICY_0_SOURCE_URK", []string{"Red1s-pw", "redisuser"}},
		{"misspelt variable, URL url.Parse cannot read", []string{"POLICY_0_SOURCE_URK=redis://redisuser:Red1s/pw#x@h"}, "POLICY_0_SOURCE_URK", []string{"Red1s", "redisuser"}},
		{"Postgres key=value SOURCE_URL", []string{"POLICY_0_SOURCE=postgres", "POLICY_0_PRESET=que", "POLICY_0_SOURCE_URL=host=db user=app password=Pg-pw sslmode=require"},
			"POLICY_0_SOURCE_URL", []string{"Pg-pw"}},
		{"Postgres key=value DATABASE_URL", []string{"POLICY_0_SOURCE=postgres", "POLICY_0_PRESET=que", "POLICY_0_SOURCE_URL=", "DATABASE_URL=host=db password='Pg pw' user=app"},
			"POLICY_0_SOURCE_URL", []string{"Pg pw"}},
	} {
		for _, cmd := range []string{"check", "run"} {
			t.Run(c.name+"/"+cmd, func(t *testing.T) {
				code, out := cfgRun(t, cfgEnv(c.set...), cmd)
				if code == 0 {
					t.Errorf("exit 0")
				}
				if !strings.Contains(out, c.variable) {
					t.Errorf("the output does not name %s", c.variable)
				}
				for _, s := range append(c.secrets, token) {
					if strings.Contains(out, s) {
						t.Errorf("the output shows %q", s)
					}
				}
				if t.Failed() {
					t.Logf("output:\n%s", out)
				}
			})
		}
	}
}

// TestCfgRunningDaemonHidesCredentials: valid URLs with credentials whose services fail: the failures
// are logged and published, the credentials never.
func TestCfgRunningDaemonHidesCredentials(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 1)
	dead := "127.0.0.1:1" // nothing listens
	d := startDaemon(t, baseEnv(h, r,
		"PUSHGATEWAY_URL=http://pushuser:Pu5h-pw@"+dead, "DYNOPILOT_PUSH_INTERVAL=1s",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_SOURCE=prometheus", "POLICY_1_QUERY=up",
		"POLICY_1_SOURCE_URL=http://promuser:Pr0m-pw@"+dead, "POLICY_1_TARGET=1", "POLICY_1_MAX=3", "POLICY_1_INTERVAL=1s"))
	waitFor(t, "a failed push and a failed prometheus reading", 30*time.Second, func() bool {
		out := d.p.output()
		return strings.Contains(out, "Pushgateway failed") && strings.Contains(out, "prometheus http://xxxxx@"+dead)
	})
	out, m := d.p.output(), d.metrics(t)
	for _, s := range []string{"Pu5h-pw", "pushuser", "Pr0m-pw", "promuser", token} {
		if strings.Contains(out, s) || strings.Contains(m, s) {
			t.Errorf("%q in the log or /metrics", s)
		}
	}
}

// TestCfgUnworkableConfigRefused: issue 11, item 9 (and TIMEOUT against INTERVAL, item 4). Each was accepted by
// check (or panicked with a stack trace in check and run): each is refused, exit 1, naming the variable.
func TestCfgUnworkableConfigRefused(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 1)
	second := func(process string) []string {
		return []string{"POLICY_1_APP=shop", "POLICY_1_PROCESS=" + process, "POLICY_1_SOURCE=hirefire", "POLICY_1_SOURCE_URL=" + r.srv.URL + "/hirefire/t/info",
			"POLICY_1_TARGET=1", "POLICY_1_MAX=6"}
	}
	for _, c := range []struct {
		name     string
		set      []string
		variable string // the problem line starts with it
		expected string
	}{
		{"APP not UTF-8", []string{"POLICY_0_APP=sh\xffop"}, `POLICY_0_APP="sh\xffop"`, "app's name"},
		{"PROCESS differing only in case", append([]string{"POLICY_0_PROCESS=worker"}, second("WORKER")...), `POLICY_1_PROCESS="WORKER"`, "not already scaled by POLICY_0_"},
		{"PROCESS with a space", []string{"POLICY_0_PROCESS=web worker"}, `POLICY_0_PROCESS="web worker"`, "ASCII letters"},
		{"PROCESS with a slash", []string{"POLICY_0_PROCESS=web/1"}, `POLICY_0_PROCESS="web/1"`, "ASCII letters"},
		{"INTERVAL never fires", []string{"POLICY_0_INTERVAL=0 0 31 2 *"}, `POLICY_0_INTERVAL="0 0 31 2 *"`, "fires"},
		{"INTERVAL @every 0s", []string{"POLICY_0_INTERVAL=@every 0s"}, `POLICY_0_INTERVAL="@every 0s"`, "at least 1s"},
		{"INTERVAL @every -5s", []string{"POLICY_0_INTERVAL=@every -5s"}, `POLICY_0_INTERVAL="@every -5s"`, "at least 1s"},
		{"FORMATION_REFRESH 0", []string{"DYNOPILOT_FORMATION_REFRESH=0"}, `DYNOPILOT_FORMATION_REFRESH="0"`, "at least 5s"},
		{"TIMEOUT past INTERVAL", []string{"POLICY_0_TIMEOUT=50s"}, `POLICY_0_TIMEOUT="50s"`, "at most the policy's interval, 1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := baseEnv(h, r, c.set...)
			cmds := []string{"check"}
			if c.name == "APP not UTF-8" { // it panicked in run too
				cmds = append(cmds, "run")
			}
			for _, cmd := range cmds {
				code, out := cfgRun(t, env, cmd)
				if code != 1 {
					t.Errorf("%s: exit %d, want 1", cmd, code)
				}
				if !strings.Contains(out, c.variable+": expected ") || !strings.Contains(out, c.expected) {
					t.Errorf("%s: the output lacks %s: expected …%s…", cmd, c.variable, c.expected)
				}
				if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
					t.Errorf("%s panicked", cmd)
				}
				if t.Failed() {
					t.Logf("%s output:\n%s", cmd, out)
				}
			}
		})
	}
	for _, req := range h.requests(t) {
		if req.Method != "GET" {
			t.Errorf("%s %s sent", req.Method, req.Path)
		}
	}
}

// cfgPrometheus is a Prometheus-API-compatible server: an instant query "vector(V)" answers a vector of one sample
// of V, "scalar(V)" a scalar of V.
func cfgPrometheus(t *testing.T) *httptest.Server {
	t.Helper()
	query := regexp.MustCompile(`^(vector|scalar)\(([-0-9.e]+)\)$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := query.FindStringSubmatch(r.FormValue("query"))
		if r.URL.Path != "/api/v1/query" || m == nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"unknown query %q"}`, r.FormValue("query"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		now := float64(time.Now().UnixMilli()) / 1000
		if m[1] == "scalar" {
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"scalar","result":[%.3f,%q]}}`, now, m[2])
			return
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%.3f,%q]}]}}`, now, m[2])
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCfgNegativeReadingsNeverScaleDown: issue 11, item 3. A Prometheus query answering -5 or -0.001 scaled three
// policies (latency, MEASURE=size, EMPTY=zero) 4 -> 1 in one PATCH. Each reading fails instead: no PATCH, the
// quantity stays 4, the reason is reading_failed, and the log shows the value.
func TestCfgNegativeReadingsNeverScaleDown(t *testing.T) {
	for _, c := range []struct{ shape, value string }{{"vector", "-5"}, {"scalar", "-0.001"}} {
		t.Run(c.shape+" "+c.value, func(t *testing.T) {
			prom := cfgPrometheus(t)
			h := startHeroku(t, "-app", "neg:web=4:Standard-1X,worker=4:Standard-1X,clock=4:Standard-1X")
			query := c.shape + "(" + c.value + ")"
			env := []string{
				"HEROKU_API_KEY=" + token, "HEROKU_API_URL=" + h.url, "DYNOPILOT_LISTEN=127.0.0.1:0", "LOG_LEVEL=debug", "HOME=/nonexistent",
				"PATH=" + os.Getenv("PATH"), "PROMETHEUS_URL=" + prom.URL,
				"POLICY_DEFAULT_APP=neg", "POLICY_DEFAULT_SOURCE=prometheus", "POLICY_DEFAULT_QUERY=" + query, "POLICY_DEFAULT_MAX=10",
				"POLICY_DEFAULT_INTERVAL=1s", "POLICY_DEFAULT_UP_COOLDOWN=0s", "POLICY_DEFAULT_DOWN_COOLDOWN=0s", "POLICY_DEFAULT_DOWN_STABILIZATION=0s",
				"POLICY_0_PROCESS=web", "POLICY_0_TARGET=250ms", // latency
				"POLICY_1_PROCESS=worker", "POLICY_1_MEASURE=size", "POLICY_1_TARGET=10",
				"POLICY_2_PROCESS=clock", "POLICY_2_EMPTY=zero", "POLICY_2_TARGET=1",
			}
			d := startDaemon(t, env)
			policies := []string{"neg/web", "neg/worker", "neg/clock"}
			waitFor(t, "three failed readings of every policy", 30*time.Second, func() bool {
				for _, req := range h.requests(t) {
					if req.Method == "PATCH" {
						t.Fatalf("dynopilot sent %s %s on negative readings (web %d, worker %d, clock %d)", req.Method, req.Path,
							h.quantityOf(t, "neg", "web"), h.quantityOf(t, "neg", "worker"), h.quantityOf(t, "neg", "clock"))
					}
				}
				out := d.p.output()
				for _, p := range policies {
					if strings.Count(out, "policy="+p+" ") < 3 || d.status(t, p).Reason != "reading_failed" {
						return false
					}
				}
				return true
			})
			for _, p := range policies {
				if s := d.status(t, p); s.Reason != "reading_failed" || s.Current != 4 || s.Desired != 4 {
					t.Errorf("%s: %+v, want 4 -> 4 reading_failed", p, s)
				}
				typ := strings.TrimPrefix(p, "neg/")
				if q := h.quantityOf(t, "neg", typ); q != 4 {
					t.Errorf("%s: quantity %d, want 4", p, q)
				}
			}
			for _, req := range h.requests(t) {
				if req.Method == "PATCH" {
					t.Errorf("dynopilot sent %s %s", req.Method, req.Path)
				}
			}
			out := d.p.output()
			for _, want := range []string{"read " + c.value + ": expected a latency of 0 or more", "read " + c.value + ": expected a size of 0 or more", "reason=reading_failed"} {
				if !strings.Contains(out, want) {
					t.Errorf("the log lacks %q", want)
				}
			}
			if m := d.metrics(t); !strings.Contains(m, `dynopilot_reading_errors_total{policy="neg/worker",source="prometheus"}`) ||
				strings.Contains(m, `dynopilot_reading_errors_total{policy="neg/worker",source="prometheus"} 0`) {
				t.Errorf("negative readings are not counted as reading errors:\n%s", grep(m, "reading_errors"))
			}
		})
	}
}
