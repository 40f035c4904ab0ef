package fake_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

func TestFail(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 10})
	e.srv.Fail(503, 2)
	for range 2 {
		r := e.get(t, "/apps/shop/formation")
		checkError(t, r, 503, "service_unavailable", "")
		if remaining(t, r) != 10 {
			t.Errorf("injected failure: RateLimit-Remaining %d, want 10 (no token taken)", remaining(t, r))
		}
	}
	if r := e.get(t, "/apps/shop/formation"); r.status != http.StatusOK {
		t.Errorf("third request: status %d, want 200 once the faults are spent", r.status)
	}
	// Every status gets its Heroku id; a later Fail replaces an earlier one; ClearFaults cancels.
	for status, id := range map[int]string{500: "internal_server_error", 429: "rate_limit", 403: "forbidden", 422: "invalid_params"} {
		e.srv.Fail(status, 1)
		checkError(t, e.get(t, "/account"), status, id, "")
	}
	e.srv.Fail(500, 5)
	e.srv.Fail(502, 1)
	checkError(t, e.get(t, "/account"), 502, "bad_gateway", "")
	if r := e.get(t, "/account"); r.status != http.StatusOK {
		t.Errorf("after the replacing fault was spent: status %d, want 200", r.status)
	}
	e.srv.Fail(500, 5)
	e.srv.ClearFaults()
	if r := e.get(t, "/account"); r.status != http.StatusOK {
		t.Errorf("after ClearFaults: status %d, want 200", r.status)
	}
	// A failed PATCH changes nothing.
	e.srv.Fail(503, 1)
	e.patch(t, "/apps/shop/formation/web", `{"quantity":9}`)
	if web, _ := e.srv.Formation("shop", "web"); web.Quantity != 2 {
		t.Errorf("a failed PATCH scaled web to %d", web.Quantity)
	}
}

func TestDelay(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.srv.Delay(20*time.Millisecond, 1)
	start := time.Now()
	if r := e.patch(t, "/apps/shop/formation/web", `{"quantity":3}`); r.status != http.StatusOK {
		t.Fatalf("delayed PATCH: status %d, %s", r.status, r.body)
	}
	if elapsed := time.Since(start); elapsed < 20*time.Millisecond {
		t.Errorf("delayed request answered after %v, before the 20ms latency", elapsed)
	}
	if web, _ := e.srv.Formation("shop", "web"); web.Quantity != 3 {
		t.Errorf("a delayed PATCH was not applied: web = %d", web.Quantity)
	}
}

func TestDelayHonoursClientContext(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 10})
	e.srv.Delay(time.Hour, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, e.url+"/apps/shop/formation/web", strings.NewReader(`{"quantity":7}`))
	req.Header.Set("Accept", acceptV3)
	req.Header.Set("Authorization", "Bearer "+token)
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client with a 50ms timeout against a 1h latency: err = %v, want a deadline", err)
	}
	// The server notices the client went away and records the request with status 0 (bounded wait, not a timing
	// assertion: only a server that ignored the context would take the full hour).
	deadline := time.Now().Add(10 * time.Second)
	for len(e.srv.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	reqs := e.srv.Requests()
	if len(reqs) != 1 || reqs[0].Status != 0 || reqs[0].Body != `{"quantity":7}` {
		t.Fatalf("requests = %+v, want the abandoned PATCH with status 0", reqs)
	}
	if web, _ := e.srv.Formation("shop", "web"); web.Quantity != 2 || e.srv.Pool() != 10 {
		t.Errorf("an abandoned request changed state: web %d, pool %d", web.Quantity, e.srv.Pool())
	}
	if r := e.get(t, "/apps/shop/formation"); r.status != http.StatusOK {
		t.Errorf("next request: status %d, want 200 (the delay was for one request)", r.status)
	}
}

func TestRequestLog(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.get(t, "/apps/shop/formation")
	e.patch(t, "/apps/shop/formation/web", `{"quantity":3}`)
	e.do(t, request{method: "GET", path: "/account", token: ptr("bad")})
	e.control(t, http.MethodGet, "/_fake/apps", "")

	reqs := e.srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("Requests() = %+v, want the 3 API requests (control requests are not recorded)", reqs)
	}
	want := []fake.Request{
		{Method: "GET", Path: "/apps/shop/formation", Status: 200},
		{Method: "PATCH", Path: "/apps/shop/formation/web", Status: 200, Body: `{"quantity":3}`},
		{Method: "GET", Path: "/account", Status: 401},
	}
	for i, w := range want {
		got := reqs[i]
		if got.Method != w.Method || got.Path != w.Path || got.Status != w.Status || got.Body != w.Body ||
			!got.Time.Equal(e.clock.Now()) || !uuidPattern.MatchString(got.RequestID) {
			t.Errorf("request %d = %+v, want %+v at the clock's time with a request id", i, got, w)
		}
	}

	// The same over the control API.
	r := e.control(t, http.MethodGet, "/_fake/requests", "")
	list := decode[[]map[string]any](t, r)
	if r.status != 200 || len(list) != 3 || list[1]["method"] != "PATCH" || list[1]["body"] != `{"quantity":3}` || list[2]["status"] != 401.0 {
		t.Errorf("GET /_fake/requests = %d %s", r.status, r.body)
	}
	if list[0]["request_id"] != reqs[0].RequestID || list[0]["time"] != "2026-11-20T09:14:03.25Z" {
		t.Errorf("GET /_fake/requests first entry = %v", list[0])
	}
	if r := e.control(t, http.MethodDelete, "/_fake/requests", ""); r.status != http.StatusNoContent || len(e.srv.Requests()) != 0 {
		t.Errorf("DELETE /_fake/requests: status %d, %d left", r.status, len(e.srv.Requests()))
	}
	if r := e.control(t, http.MethodGet, "/_fake/requests", ""); string(r.body) != "[]" {
		t.Errorf("empty log = %s, want []", r.body)
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	e := newEnv(t, fake.Options{KeepRequests: 5})
	for i := range 8 {
		e.get(t, fmt.Sprintf("/apps/app-%d/formation", i))
	}
	reqs := e.srv.Requests()
	if len(reqs) != 5 {
		t.Fatalf("kept %d requests, want 5", len(reqs))
	}
	for i, r := range reqs {
		if want := fmt.Sprintf("/apps/app-%d/formation", i+3); r.Path != want {
			t.Errorf("request %d path = %s, want %s (the newest kept)", i, r.Path, want)
		}
	}
}

func TestControlFaults(t *testing.T) {
	e := newEnv(t, fake.Options{})
	r := e.control(t, http.MethodPost, "/_fake/faults", `{"status":503,"count":2}`)
	if got := decode[map[string]any](t, r); r.status != 200 || got["status"] != 503.0 || got["status_count"] != 2.0 {
		t.Fatalf("POST status fault: %d %s", r.status, r.body)
	}
	checkError(t, e.get(t, "/account"), 503, "service_unavailable", "")
	r = e.control(t, http.MethodGet, "/_fake/faults", "")
	if got := decode[map[string]any](t, r); got["status_count"] != 1.0 {
		t.Errorf("GET /_fake/faults after one failure = %s, want status_count 1", r.body)
	}
	r = e.control(t, http.MethodPost, "/_fake/faults", `{"reset":true}`)
	if got := decode[map[string]any](t, r); r.status != 200 || got["status"] != 0.0 || got["status_count"] != 0.0 {
		t.Errorf("reset: %d %s", r.status, r.body)
	}
	if r := e.get(t, "/account"); r.status != 200 {
		t.Errorf("after reset: status %d, want 200", r.status)
	}

	r = e.control(t, http.MethodPost, "/_fake/faults", `{"latency":"15ms","count":1}`)
	if got := decode[map[string]any](t, r); r.status != 200 || got["latency"] != "15ms" || got["latency_count"] != 1.0 {
		t.Fatalf("POST latency fault: %d %s", r.status, r.body)
	}
	start := time.Now()
	if r := e.get(t, "/account"); r.status != 200 || time.Since(start) < 15*time.Millisecond {
		t.Errorf("delayed request: status %d after %v; want 200 after at least 15ms", r.status, time.Since(start))
	}

	for _, tc := range []struct{ body, want string }{
		{``, "empty body"},
		{`nonsense`, "invalid character"},
		{`{"statsu":503,"count":1}`, `unknown field "statsu"`},
		{`{"status":503}`, "count must be given"},
		{`{"status":503,"count":0}`, "count must be given"},
		{`{"status":200,"count":1}`, "not an error status"},
		{`{"latency":"soon","count":1}`, `latency "soon"`},
		{`{"latency":"-1s","count":1}`, `latency "-1s"`},
		{`{"count":1}`, "no status, latency or reset"},
		{`{"reset":true,"status":503}`, "takes no other field"},
		{`{"status":503,"count":1}{}`, "more than one JSON value"},
	} {
		r := e.control(t, http.MethodPost, "/_fake/faults", tc.body)
		checkError(t, r, 400, "bad_request", "")
		if msg := decode[map[string]any](t, r)["message"].(string); !strings.Contains(msg, tc.want) || !strings.Contains(msg, `{"status":503,"count":3}`) {
			t.Errorf("POST /_fake/faults %s: message %q, want it to contain %q and the expected form", tc.body, msg, tc.want)
		}
	}
	if r := e.control(t, http.MethodGet, "/_fake/faults", ""); decode[map[string]any](t, r)["status_count"] != 0.0 {
		t.Errorf("a refused fault was set: %s", r.body)
	}
}

func TestControlPool(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 200})
	r := e.control(t, http.MethodPost, "/_fake/pool", `{"remaining":2}`)
	if got := decode[map[string]int](t, r); r.status != 200 || got["remaining"] != 2 || got["pool"] != 200 {
		t.Fatalf("POST /_fake/pool: %d %s", r.status, r.body)
	}
	e.get(t, "/account")
	e.get(t, "/account")
	checkError(t, e.get(t, "/account"), 429, "rate_limit", "")
	if got := decode[map[string]int](t, e.control(t, http.MethodGet, "/_fake/pool", "")); got["remaining"] != 0 {
		t.Errorf("GET /_fake/pool = %v, want remaining 0", got)
	}
	for _, body := range []string{`{}`, `{"remaining":-1}`, `{"remaining":201}`, `{"remaining":"5"}`, `{"left":5}`} {
		r := e.control(t, http.MethodPost, "/_fake/pool", body)
		checkError(t, r, 400, "bad_request", "")
		if msg := decode[map[string]any](t, r)["message"].(string); !strings.Contains(msg, "from 0 to 200") {
			t.Errorf("POST /_fake/pool %s: message %q, want the expected range", body, msg)
		}
	}
}

func TestControlScaleAndApps(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 10})
	e.clock.Advance(time.Minute)
	r := e.control(t, http.MethodPost, "/_fake/scale", `{"app":"shop","type":"worker","quantity":3}`)
	if r.status != 200 {
		t.Fatalf("POST /_fake/scale: %d %s", r.status, r.body)
	}
	checkFormationJSON(t, decode[map[string]any](t, r), e.app, "worker", 3, "Performance-M")
	if w, _ := e.srv.Formation("shop", "worker"); w.Quantity != 3 || w.UpdatedAt != time.Date(2026, 11, 20, 9, 15, 3, 0, time.UTC) {
		t.Errorf("after /_fake/scale: %+v", w)
	}
	checkError(t, e.control(t, http.MethodPost, "/_fake/scale", `{"app":"nope","type":"web","quantity":1}`), 404, "not_found", "Couldn't find that app.")
	checkError(t, e.control(t, http.MethodPost, "/_fake/scale", `{"app":"shop","type":"nope","quantity":1}`), 404, "not_found", "Couldn't find that formation.")
	checkError(t, e.control(t, http.MethodPost, "/_fake/scale", `{"app":"shop","type":"worker","quantity":11}`), 422, "invalid_params",
		"Cannot scale to more than 10 Performance-M size dynos per process type.")
	checkError(t, e.control(t, http.MethodPost, "/_fake/scale", `{"app":"shop","type":"worker"}`), 400, "bad_request", "")

	r = e.control(t, http.MethodGet, "/_fake/apps", "")
	apps := decode[[]map[string]any](t, r)
	if r.status != 200 || len(apps) != 1 || apps[0]["name"] != "shop" || apps[0]["id"] != e.app.ID {
		t.Fatalf("GET /_fake/apps = %d %s", r.status, r.body)
	}
	fs := apps[0]["formation"].([]any)
	if len(fs) != 2 {
		t.Fatalf("GET /_fake/apps formation = %v", fs)
	}
	checkFormationJSON(t, fs[1].(map[string]any), e.app, "worker", 3, "Performance-M")

	// Control requests take no token, are not recorded, need no token or Accept header.
	if e.srv.Pool() != 10 || len(e.srv.Requests()) != 0 {
		t.Errorf("control requests took tokens or were recorded: pool %d, %d requests", e.srv.Pool(), len(e.srv.Requests()))
	}
	checkError(t, e.control(t, http.MethodGet, "/_fake/nothing", ""), 404, "not_found", "")
	r = e.control(t, http.MethodPut, "/_fake/pool", `{}`)
	checkError(t, r, 405, "method_not_allowed", "")
	if r.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q, want GET, POST", r.header.Get("Allow"))
	}
}

// TestConcurrency hammers every kind of request at once; run with -race. With the clock standing still, every
// API request but the rate-limit reads takes exactly one token.
func TestConcurrency(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 4500})
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				switch i % 5 {
				case 0:
					e.get(t, "/apps/shop/formation")
				case 1:
					e.patch(t, "/apps/shop/formation/web", fmt.Sprintf(`{"quantity":%d}`, (w+i)%10))
				case 2:
					e.patch(t, "/apps/shop/formation", fmt.Sprintf(`{"updates":[{"type":"worker","quantity":%d}]}`, i%10))
				case 3:
					e.get(t, "/account/rate-limits")
				case 4:
					if _, err := e.srv.Scale("shop", "web", i%7); err != nil {
						t.Error(err)
					}
					e.control(t, http.MethodGet, "/_fake/requests", "")
					e.srv.Pool()
				}
			}
		})
	}
	wg.Wait()
	apiRequests := workers * each * 4 / 5
	rateLimitReads := workers * each / 5
	if got := len(e.srv.Requests()); got != apiRequests {
		t.Errorf("recorded %d requests, want %d", got, apiRequests)
	}
	if got, want := e.srv.Pool(), 4500-(apiRequests-rateLimitReads); got != want {
		t.Errorf("Pool() = %d, want %d", got, want)
	}
	for _, r := range e.srv.Requests() {
		if r.Status != 200 {
			t.Errorf("%s %s answered %d", r.Method, r.Path, r.Status)
		}
	}
}

// An injected 429 looks like Heroku's (id rate_limit) but, unlike an exhausted pool, leaves the pool as it was and
// says so in RateLimit-Remaining; it hits GET /account/rate-limits too, so a client's read after a 429 can be made
// to fail. dynopilot's tests of its limiter rely on both.
func TestInjected429(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.get(t, "/account")
	if r := e.control(t, http.MethodPost, "/_fake/faults", `{"status":429,"count":2}`); r.status != http.StatusOK {
		t.Fatalf("POST /_fake/faults: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/apps/shop/formation", "/account/rate-limits"} {
		r := e.get(t, path)
		checkError(t, r, 429, "rate_limit", "")
		if got := remaining(t, r); got != 4499 {
			t.Errorf("injected 429 on %s: RateLimit-Remaining %d, want the pool's 4499", path, got)
		}
	}
	r := e.get(t, "/account/rate-limits")
	if got := decode[map[string]int](t, r)["remaining"]; r.status != http.StatusOK || got != 4499 {
		t.Errorf("GET /account/rate-limits after the faults: %d, remaining %d; want 200 and 4499", r.status, got)
	}
	// A pool really exhausted answers 429 with RateLimit-Remaining 0, and the rate-limits read says 0.
	e.srv.SetPool(0)
	r = e.get(t, "/apps/shop/formation")
	checkError(t, r, 429, "rate_limit", "")
	if got := remaining(t, r); got != 0 {
		t.Errorf("exhausted pool: RateLimit-Remaining %d, want 0", got)
	}
	if r := e.get(t, "/account/rate-limits"); r.status != http.StatusOK || decode[map[string]int](t, r)["remaining"] != 0 {
		t.Errorf("exhausted pool: GET /account/rate-limits %d %s, want 200 and 0", r.status, r.body)
	}
}

func TestDeployWindow(t *testing.T) {
	e := newEnv(t, fake.Options{})
	if r := e.control(t, "POST", "/_fake/deploy", `{"app":"shop","deploying":true}`); r.status != http.StatusOK {
		t.Fatalf("POST /_fake/deploy: %d", r.status)
	}
	const preboot = "Cannot change formation for a preboot app until release phase and preboot complete."
	checkError(t, e.patch(t, "/apps/shop/formation/web", `{"quantity":5}`), 422, "invalid_params", preboot)
	checkError(t, e.patch(t, "/apps/shop/formation", `{"updates":[{"type":"web","quantity":5}]}`), 422, "invalid_params", preboot)
	if _, err := e.srv.Scale("shop", "web", 5); err == nil {
		t.Errorf("a person's scale went through during a deploy")
	}
	if r := e.get(t, "/apps/shop/formation"); r.status != http.StatusOK {
		t.Errorf("reading the formation during a deploy: %d", r.status)
	}
	e.control(t, "POST", "/_fake/deploy", `{"app":"shop","deploying":false}`)
	if r := e.patch(t, "/apps/shop/formation/web", `{"quantity":5}`); r.status != http.StatusOK {
		t.Errorf("PATCH after the deploy: %d", r.status)
	}
	for _, bad := range []string{`{"app":"shop"}`, `{"deploying":true}`, `{"app":"nope","deploying":true}`} {
		if r := e.control(t, "POST", "/_fake/deploy", bad); r.status/100 != 4 {
			t.Errorf("POST /_fake/deploy %s: %d, want a 4xx", bad, r.status)
		}
	}
}
