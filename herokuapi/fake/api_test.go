package fake_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

var formationKeys = []string{"app", "command", "created_at", "dyno_size", "id", "quantity", "size", "type", "updated_at"}

func checkFormationJSON(t *testing.T, f map[string]any, app fake.App, typ string, quantity int, size string) {
	t.Helper()
	if keys := sortedKeys(f); !slices.Equal(keys, formationKeys) {
		t.Errorf("formation keys = %v, want %v", keys, formationKeys)
	}
	if a, _ := f["app"].(map[string]any); a["id"] != app.ID || a["name"] != app.Name || len(a) != 2 {
		t.Errorf("app = %v, want {id:%s name:%s}", f["app"], app.ID, app.Name)
	}
	ds, _ := f["dyno_size"].(map[string]any)
	if ds["name"] != size || !uuidPattern.MatchString(fmt.Sprint(ds["id"])) || len(ds) != 2 {
		t.Errorf("dyno_size = %v, want {id:UUID name:%s}", f["dyno_size"], size)
	}
	if f["size"] != size || f["type"] != typ || f["quantity"] != float64(quantity) {
		t.Errorf("size, type, quantity = %v, %v, %v; want %s, %s, %d", f["size"], f["type"], f["quantity"], size, typ, quantity)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if !timePattern.MatchString(fmt.Sprint(f[k])) {
			t.Errorf("%s = %v, want RFC 3339 UTC with whole seconds", k, f[k])
		}
	}
	if !uuidPattern.MatchString(fmt.Sprint(f["id"])) {
		t.Errorf("id = %v, want a UUID", f["id"])
	}
}

func TestListFormation(t *testing.T) {
	e := newEnv(t, fake.Options{})
	for _, identity := range []string{"shop", e.app.ID, strings.ToUpper(e.app.ID)} {
		r := e.get(t, "/apps/"+identity+"/formation")
		if r.status != http.StatusOK {
			t.Fatalf("GET formation of %s: status %d, body %s", identity, r.status, r.body)
		}
		checkHeaders(t, r)
		list := decode[[]map[string]any](t, r)
		if len(list) != 2 {
			t.Fatalf("got %d formations, want 2: %s", len(list), r.body)
		}
		checkFormationJSON(t, list[0], e.app, "web", 2, "Standard-1X")
		checkFormationJSON(t, list[1], e.app, "worker", 1, "Performance-M")
		if list[0]["command"] != "bundle exec puma -C config/puma.rb" || list[1]["command"] != "bin/worker" {
			t.Errorf("commands = %v, %v", list[0]["command"], list[1]["command"])
		}
		if list[0]["created_at"] != "2026-11-20T09:14:03Z" || list[0]["updated_at"] != "2026-11-20T09:14:03Z" {
			t.Errorf("timestamps = %v, %v; want the clock's time in whole seconds", list[0]["created_at"], list[0]["updated_at"])
		}
	}
}

func TestInfoFormation(t *testing.T) {
	e := newEnv(t, fake.Options{})
	worker, ok := e.srv.Formation("shop", "worker")
	if !ok {
		t.Fatal("Formation(shop, worker) not found")
	}
	for _, identity := range []string{"worker", worker.ID} {
		r := e.get(t, "/apps/"+e.app.ID+"/formation/"+identity)
		if r.status != http.StatusOK {
			t.Fatalf("GET formation/%s: status %d, body %s", identity, r.status, r.body)
		}
		checkHeaders(t, r)
		f := decode[map[string]any](t, r)
		checkFormationJSON(t, f, e.app, "worker", 1, "Performance-M")
		if f["id"] != worker.ID {
			t.Errorf("id = %v, want %s", f["id"], worker.ID)
		}
	}
}

func TestUpdateFormation(t *testing.T) {
	e := newEnv(t, fake.Options{})
	before, _ := e.srv.Formation("shop", "web")

	e.clock.Advance(90 * time.Second)
	r := e.patch(t, "/apps/shop/formation/web", `{"quantity":5}`)
	if r.status != http.StatusOK {
		t.Fatalf("PATCH quantity: status %d, body %s", r.status, r.body)
	}
	checkHeaders(t, r)
	f := decode[map[string]any](t, r)
	checkFormationJSON(t, f, e.app, "web", 5, "Standard-1X")
	if f["updated_at"] != "2026-11-20T09:15:33Z" {
		t.Errorf("updated_at = %v, want the time of the change, 2026-11-20T09:15:33Z", f["updated_at"])
	}
	after, _ := e.srv.Formation("shop", "web")
	if after.Quantity != 5 || !after.UpdatedAt.Equal(before.UpdatedAt.Add(90*time.Second)) || after.CreatedAt != before.CreatedAt {
		t.Errorf("state after PATCH = %+v, want quantity 5 and updated_at 90s later than %v", after, before.UpdatedAt)
	}

	// The same quantity again changes nothing, updated_at included.
	e.clock.Advance(time.Minute)
	r = e.patch(t, "/apps/shop/formation/web", `{"quantity":5}`)
	if f := decode[map[string]any](t, r); r.status != http.StatusOK || f["updated_at"] != "2026-11-20T09:15:33Z" {
		t.Errorf("PATCH same quantity: status %d, updated_at %v; want 200 and unchanged", r.status, f["updated_at"])
	}

	// A size change, by dyno_size and by the deprecated size, is a change.
	e.clock.Advance(time.Minute)
	r = e.patch(t, "/apps/shop/formation/web", `{"dyno_size":{"name":"standard-2x"}}`)
	if f := decode[map[string]any](t, r); r.status != http.StatusOK || f["size"] != "Standard-2X" || f["quantity"] != 5.0 || f["updated_at"] != "2026-11-20T09:17:33Z" {
		t.Errorf("PATCH dyno_size: status %d, %s", r.status, r.body)
	}
	r = e.patch(t, "/apps/shop/formation/web", `{"quantity":3,"size":"Performance-L"}`)
	if f := decode[map[string]any](t, r); r.status != http.StatusOK || f["size"] != "Performance-L" || f["quantity"] != 3.0 {
		t.Errorf("PATCH size: status %d, %s", r.status, r.body)
	}
	// dyno_size by id, as read from an answer.
	ds := decode[map[string]any](t, e.get(t, "/apps/shop/formation/worker"))["dyno_size"].(map[string]any)
	r = e.patch(t, "/apps/shop/formation/web", fmt.Sprintf(`{"dyno_size":{"id":%q}}`, ds["id"]))
	if f := decode[map[string]any](t, r); r.status != http.StatusOK || f["size"] != "Performance-M" {
		t.Errorf("PATCH dyno_size id: status %d, %s", r.status, r.body)
	}
	if got, _ := e.srv.Formation("shop", "web"); got.Size != "Performance-M" || got.Quantity != 3 {
		t.Errorf("state = %+v, want 3 Performance-M", got)
	}
}

func TestBatchUpdateFormation(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.clock.Advance(time.Hour)
	r := e.patch(t, "/apps/shop/formation",
		`{"updates":[{"type":"worker","quantity":4},{"type":"web","quantity":2,"dyno_size":{"name":"Standard-2X"}}]}`)
	if r.status != http.StatusOK {
		t.Fatalf("batch: status %d, body %s", r.status, r.body)
	}
	checkHeaders(t, r)
	list := decode[[]map[string]any](t, r)
	if len(list) != 2 {
		t.Fatalf("batch answered %d formations, want the 2 updated: %s", len(list), r.body)
	}
	checkFormationJSON(t, list[0], e.app, "worker", 4, "Performance-M")
	checkFormationJSON(t, list[1], e.app, "web", 2, "Standard-2X")
	if list[0]["updated_at"] != "2026-11-20T10:14:03Z" || list[1]["updated_at"] != "2026-11-20T10:14:03Z" {
		t.Errorf("updated_at = %v, %v; want both changed", list[0]["updated_at"], list[1]["updated_at"])
	}

	// Only quantity unchanged: updated_at stays.
	e.clock.Advance(time.Hour)
	r = e.patch(t, "/apps/shop/formation", `{"updates":[{"type":"web","quantity":2}]}`)
	if list := decode[[]map[string]any](t, r); r.status != http.StatusOK || len(list) != 1 || list[0]["updated_at"] != "2026-11-20T10:14:03Z" {
		t.Errorf("batch with no change: status %d, %s", r.status, r.body)
	}

	// All or nothing: one bad update leaves every formation as it was.
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"updates":[{"type":"web","quantity":7},{"type":"worker","quantity":11}]}`, http.StatusUnprocessableEntity},
		{`{"updates":[{"type":"web","quantity":7},{"type":"nope","quantity":1}]}`, http.StatusNotFound},
		{`{"updates":[{"type":"web","quantity":7},{"type":"worker","quantity":-1}]}`, http.StatusUnprocessableEntity},
		{`{"updates":[{"type":"web","quantity":95},{"type":"worker","quantity":6}]}`, http.StatusUnprocessableEntity},
	} {
		r := e.patch(t, "/apps/shop/formation", tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.body, r.status, tc.status, r.body)
		}
		web, _ := e.srv.Formation("shop", "web")
		worker, _ := e.srv.Formation("shop", "worker")
		if web.Quantity != 2 || worker.Quantity != 4 {
			t.Errorf("%s changed state: web %d, worker %d; want 2 and 4", tc.body, web.Quantity, worker.Quantity)
		}
	}
}

func TestErrors(t *testing.T) {
	const (
		noApp       = "Couldn't find that app."
		noFormation = "Couldn't find that formation."
	)
	for _, tc := range []struct {
		name    string
		req     request
		status  int
		id      string
		message string
		costs   bool // takes a token
	}{
		{"no Accept", request{method: "GET", path: "/apps/shop/formation", noAccept: true}, 406, "not_acceptable", "", false},
		{"Accept json", request{method: "GET", path: "/apps/shop/formation", accept: "application/json"}, 406, "not_acceptable", "", false},
		{"Accept version 2", request{method: "GET", path: "/account", accept: "application/vnd.heroku+json; version=2"}, 406, "not_acceptable", "", false},
		{"no token", request{method: "GET", path: "/apps/shop/formation", token: ptr("")}, 401, "unauthorized", "Invalid credentials provided.", false},
		{"wrong token", request{method: "GET", path: "/apps/shop/formation", token: ptr("nope")}, 401, "unauthorized", "Invalid credentials provided.", false},
		{"unknown app", request{method: "GET", path: "/apps/nope/formation"}, 404, "not_found", noApp, true},
		{"unknown app info", request{method: "GET", path: "/apps/nope/formation/web"}, 404, "not_found", noApp, true},
		{"unknown app patch", request{method: "PATCH", path: "/apps/nope/formation/web", body: `{"quantity":1}`}, 404, "not_found", noApp, true},
		{"unknown app batch", request{method: "PATCH", path: "/apps/nope/formation", body: `{"updates":[]}`}, 404, "not_found", noApp, true},
		{"unknown type", request{method: "GET", path: "/apps/shop/formation/clock"}, 404, "not_found", noFormation, true},
		{"unknown type patch", request{method: "PATCH", path: "/apps/shop/formation/clock", body: `{"quantity":1}`}, 404, "not_found", noFormation, true},
		{"type not matching the pattern", request{method: "GET", path: "/apps/shop/formation/we%21b"}, 404, "not_found", noFormation, true},
		{"unknown type before bad quantity", request{method: "PATCH", path: "/apps/shop/formation/clock", body: `{"quantity":-1}`}, 404, "not_found", noFormation, true},
		{"invalid JSON", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"quantity":`}, 400, "bad_request", "", true},
		{"invalid JSON batch", request{method: "PATCH", path: "/apps/shop/formation", body: `{updates}`}, 400, "bad_request", "", true},
		{"empty body", request{method: "PATCH", path: "/apps/shop/formation/web"}, 400, "bad_request", "", true},
		{"negative quantity", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"quantity":-1}`}, 422, "invalid_params", "", true},
		{"fractional quantity", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"quantity":1.5}`}, 422, "invalid_params", "", true},
		{"string quantity", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"quantity":"3"}`}, 422, "invalid_params", "", true},
		{"null quantity", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"quantity":null}`}, 422, "invalid_params", "", true},
		{"body not an object", request{method: "PATCH", path: "/apps/shop/formation/web", body: `[1]`}, 422, "invalid_params", "", true},
		{"past Performance-M limit", request{method: "PATCH", path: "/apps/shop/formation/worker", body: `{"quantity":11}`}, 422, "invalid_params",
			"Cannot scale to more than 10 Performance-M size dynos per process type.", true},
		{"past Eco limit by size change", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"dyno_size":{"name":"eco"}}`}, 422, "invalid_params",
			"Cannot scale to more than 1 Eco size dynos per process type.", true},
		{"past Standard limit", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"quantity":101}`}, 422, "invalid_params",
			"Cannot scale to more than 100 Standard-1X size dynos per process type.", true},
		{"past the app limit", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"quantity":100}`}, 422, "invalid_params",
			"Cannot scale to more than 100 dynos per app (this update would make 101).", true},
		{"past a limit in a batch", request{method: "PATCH", path: "/apps/shop/formation", body: `{"updates":[{"type":"worker","quantity":12}]}`}, 422, "invalid_params",
			"Cannot scale to more than 10 Performance-M size dynos per process type.", true},
		{"unknown size", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"size":"Huge-9X"}`}, 422, "invalid_params", "", true},
		{"unknown size id", request{method: "PATCH", path: "/apps/shop/formation/web", body: `{"dyno_size":{"id":"00000000-0000-0000-0000-000000000000"}}`}, 422, "invalid_params", "", true},
		{"batch without updates", request{method: "PATCH", path: "/apps/shop/formation", body: `{}`}, 422, "invalid_params", "Missing required params: updates.", true},
		{"batch update without type", request{method: "PATCH", path: "/apps/shop/formation", body: `{"updates":[{"quantity":1}]}`}, 422, "invalid_params", "", true},
		{"unknown route", request{method: "GET", path: "/apps/shop/releases"}, 404, "not_found", "", true},
		{"wrong method", request{method: "DELETE", path: "/apps/shop/formation"}, 404, "not_found", "", true},
		{"trailing slash", request{method: "GET", path: "/apps/shop/formation/"}, 404, "not_found", "", true},
		{"unknown authorization", request{method: "GET", path: "/oauth/authorizations/nope"}, 404, "not_found", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fake.Options{Pool: 100})
			r := e.do(t, tc.req)
			checkError(t, r, tc.status, tc.id, tc.message)
			want := 100
			if tc.costs {
				want = 99
			}
			if got := remaining(t, r); got != want || e.srv.Pool() != want {
				t.Errorf("RateLimit-Remaining = %d, Pool() = %d; want %d", got, e.srv.Pool(), want)
			}
			web, _ := e.srv.Formation("shop", "web")
			worker, _ := e.srv.Formation("shop", "worker")
			if web.Quantity != 2 || web.Size != "Standard-1X" || worker.Quantity != 1 {
				t.Errorf("a failed request changed state: web %+v, worker %+v", web, worker)
			}
		})
	}
}

func TestBasicAuthWithToken(t *testing.T) {
	e := newEnv(t, fake.Options{})
	req, _ := http.NewRequest(http.MethodGet, e.url+"/account", nil)
	req.Header.Set("Accept", acceptV3)
	req.SetBasicAuth("dev@example.com", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("basic auth with the token as password: status %d, want 200", resp.StatusCode)
	}
}

func TestAnyTokenWhenNoneConfigured(t *testing.T) {
	srv := fake.New(fake.Options{})
	e := &env{srv: srv}
	ts := newTestServer(t, srv)
	e.url = ts
	if r := e.do(t, request{method: "GET", path: "/account", token: ptr("whatever")}); r.status != http.StatusOK {
		t.Errorf("any token: status %d, want 200", r.status)
	}
	checkError(t, e.do(t, request{method: "GET", path: "/account", token: ptr("")}), 401, "unauthorized", "")
}

func TestPrecedence(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.srv.SetPool(0)
	// 406 before 401.
	checkError(t, e.do(t, request{method: "GET", path: "/apps/nope/formation", noAccept: true, token: ptr("")}), 406, "not_acceptable", "")
	// 401 before 429.
	checkError(t, e.do(t, request{method: "GET", path: "/apps/nope/formation", token: ptr("bad")}), 401, "unauthorized", "")
	// 429 before 404, 400 and 422.
	checkError(t, e.get(t, "/apps/nope/formation"), 429, "rate_limit", "")
	checkError(t, e.get(t, "/no/such/route"), 429, "rate_limit", "")
	checkError(t, e.patch(t, "/apps/shop/formation/web", `{`), 429, "rate_limit", "")
	checkError(t, e.patch(t, "/apps/shop/formation/web", `{"quantity":-1}`), 429, "rate_limit", "")
	// An injected failure comes first of all, and takes no token.
	e.srv.SetPool(5)
	e.srv.Fail(503, 1)
	checkError(t, e.do(t, request{method: "GET", path: "/apps/nope/formation", noAccept: true, token: ptr("")}), 503, "service_unavailable", "")
	if e.srv.Pool() != 5 {
		t.Errorf("Pool() = %d after an injected failure, want 5", e.srv.Pool())
	}
	// 400 (not JSON) before 404 (unknown app).
	checkError(t, e.patch(t, "/apps/nope/formation/web", `{`), 400, "bad_request", "")
}

func TestAccount(t *testing.T) {
	e := newEnv(t, fake.Options{Email: "ops@shop.example"})
	r := e.get(t, "/account")
	if r.status != http.StatusOK {
		t.Fatalf("GET /account: status %d, %s", r.status, r.body)
	}
	checkHeaders(t, r)
	a := decode[map[string]any](t, r)
	if a["email"] != "ops@shop.example" || !uuidPattern.MatchString(fmt.Sprint(a["id"])) || !timePattern.MatchString(fmt.Sprint(a["created_at"])) {
		t.Errorf("account = %s", r.body)
	}
	if remaining(t, r) != 4499 {
		t.Errorf("GET /account: RateLimit-Remaining = %d, want 4499 (it takes a token)", remaining(t, r))
	}
}

func TestRateLimitsTakesNoToken(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 50})
	e.srv.SetPool(7)
	for range 3 {
		r := e.get(t, "/account/rate-limits")
		if r.status != http.StatusOK {
			t.Fatalf("GET /account/rate-limits: status %d, %s", r.status, r.body)
		}
		checkHeaders(t, r)
		if body := decode[map[string]int](t, r); body["remaining"] != 7 || len(body) != 1 || remaining(t, r) != 7 {
			t.Errorf("rate limits = %s, header %d; want {\"remaining\":7} and 7", r.body, remaining(t, r))
		}
	}
	// Even with an empty pool it answers.
	e.srv.SetPool(0)
	if r := e.get(t, "/account/rate-limits"); r.status != http.StatusOK || decode[map[string]int](t, r)["remaining"] != 0 {
		t.Errorf("empty pool: status %d, %s; want 200 and 0", r.status, r.body)
	}
	// But it still needs the token.
	checkError(t, e.do(t, request{method: "GET", path: "/account/rate-limits", token: ptr("")}), 401, "unauthorized", "")
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.srv.AddAuthorization("01234567-89ab-cdef-0123-456789abcdef", ptr(3600))
	e.srv.AddAuthorization("forever", nil)

	r := e.get(t, "/oauth/authorizations/01234567-89ab-cdef-0123-456789abcdef")
	if r.status != http.StatusOK {
		t.Fatalf("status %d, %s", r.status, r.body)
	}
	checkHeaders(t, r)
	a := decode[map[string]any](t, r)
	at, _ := a["access_token"].(map[string]any)
	if a["id"] != "01234567-89ab-cdef-0123-456789abcdef" || at["expires_in"] != 3600.0 {
		t.Errorf("authorization = %s; want expires_in 3600", r.body)
	}
	if strings.Contains(string(r.body), token) {
		t.Errorf("authorization answer contains the token: %s", r.body)
	}

	e.clock.Advance(10 * time.Minute)
	at = decode[map[string]any](t, e.get(t, "/oauth/authorizations/01234567-89ab-cdef-0123-456789abcdef"))["access_token"].(map[string]any)
	if at["expires_in"] != 3000.0 {
		t.Errorf("expires_in after 10 minutes = %v, want 3000", at["expires_in"])
	}
	e.clock.Advance(2 * time.Hour)
	at = decode[map[string]any](t, e.get(t, "/oauth/authorizations/01234567-89ab-cdef-0123-456789abcdef"))["access_token"].(map[string]any)
	if at["expires_in"] != 0.0 {
		t.Errorf("expires_in after expiry = %v, want 0", at["expires_in"])
	}

	r = e.get(t, "/oauth/authorizations/forever")
	at = decode[map[string]any](t, r)["access_token"].(map[string]any)
	if v, present := at["expires_in"]; !present || v != nil {
		t.Errorf("never-expiring authorization: expires_in = %v (present %v), want null: %s", v, present, r.body)
	}
}

func TestETag(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 10})
	r := e.get(t, "/apps/shop/formation")
	etag := r.header.Get("ETag")
	if r.status != http.StatusOK || etag == "" {
		t.Fatalf("first GET: status %d, ETag %q", r.status, etag)
	}
	r = e.do(t, request{method: "GET", path: "/apps/shop/formation", header: map[string]string{"If-None-Match": etag}})
	if r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Errorf("GET with If-None-Match: status %d, body %q; want 304 and empty", r.status, r.body)
	}
	if remaining(t, r) != 8 {
		t.Errorf("RateLimit-Remaining after a 304 = %d, want 8 (a 304 takes a token)", remaining(t, r))
	}
	if _, err := e.srv.Scale("shop", "web", 3); err != nil {
		t.Fatal(err)
	}
	r = e.do(t, request{method: "GET", path: "/apps/shop/formation", header: map[string]string{"If-None-Match": etag}})
	if r.status != http.StatusOK || r.header.Get("ETag") == etag {
		t.Errorf("GET after a change: status %d, ETag %q; want 200 and a new ETag", r.status, r.header.Get("ETag"))
	}
}

func TestPoolDrainsAndRefills(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 100, RefillPerMinute: 60})
	e.srv.SetPool(3)
	for want := 2; want >= 0; want-- {
		r := e.get(t, "/apps/shop/formation")
		if r.status != http.StatusOK || remaining(t, r) != want {
			t.Fatalf("status %d, RateLimit-Remaining %d; want 200 and %d", r.status, remaining(t, r), want)
		}
	}
	for range 3 {
		r := e.get(t, "/apps/shop/formation")
		checkError(t, r, 429, "rate_limit", "")
		if remaining(t, r) != 0 || e.srv.Pool() != 0 {
			t.Errorf("after 429: RateLimit-Remaining %d, Pool() %d; want 0 (a 429 takes no token)", remaining(t, r), e.srv.Pool())
		}
	}
	// 60 per minute is one a second, refilled continuously: 0.6 s gives none yet, 1.2 s gives one.
	e.clock.Advance(600 * time.Millisecond)
	checkError(t, e.get(t, "/apps/shop/formation"), 429, "rate_limit", "")
	e.clock.Advance(600 * time.Millisecond)
	if r := e.get(t, "/apps/shop/formation"); r.status != http.StatusOK || remaining(t, r) != 0 {
		t.Errorf("after 1.2 s: status %d, remaining %d; want 200 and 0", r.status, remaining(t, r))
	}
	e.clock.Advance(30 * time.Second)
	if got := e.srv.Pool(); got != 30 {
		t.Errorf("Pool() after 30 s more = %d, want 30", got)
	}
	// Never above the pool size.
	e.clock.Advance(time.Hour)
	if got := e.srv.Pool(); got != 100 {
		t.Errorf("Pool() after an hour = %d, want 100 (the pool size)", got)
	}
	e.srv.SetPool(1000)
	if got := e.srv.Pool(); got != 100 {
		t.Errorf("SetPool(1000) gave %d, want it clamped to 100", got)
	}
	e.srv.SetPool(-5)
	if got := e.srv.Pool(); got != 0 {
		t.Errorf("SetPool(-5) gave %d, want 0", got)
	}
}

// TestTooManyRequestsCounts: every 429 the API answers is counted, for an empty pool or injected, and the count
// survives what the request log does not (ClearRequests, KeepRequests).
func TestTooManyRequestsCounts(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 100, RefillPerMinute: 60, KeepRequests: 2})
	e.srv.SetPool(1)
	e.get(t, "/apps/shop/formation") // the last token
	for range 3 {
		checkError(t, e.get(t, "/apps/shop/formation"), 429, "rate_limit", "")
	}
	e.get(t, "/account/rate-limits") // takes no token, never a 429
	e.srv.ClearRequests()
	e.srv.SetPool(5)
	e.srv.Fail(429, 1)
	checkError(t, e.get(t, "/apps/shop/formation"), 429, "rate_limit", "")
	e.get(t, "/apps/shop/formation")
	if got := e.srv.TooManyRequests(); got != 4 {
		t.Errorf("TooManyRequests() = %d, want 4 (3 for the empty pool, 1 injected)", got)
	}
}

func TestDefaultPool(t *testing.T) {
	srv := fake.New(fake.Options{Now: newClock().Now})
	if got := srv.Pool(); got != fake.DefaultPool {
		t.Errorf("Pool() of a new server = %d, want %d", got, fake.DefaultPool)
	}
}

func TestScaleByHand(t *testing.T) {
	e := newEnv(t, fake.Options{Pool: 10})
	e.clock.Advance(5 * time.Minute)
	f, err := e.srv.Scale("shop", "web", 4)
	if err != nil {
		t.Fatal(err)
	}
	if f.Quantity != 4 || f.UpdatedAt != time.Date(2026, 11, 20, 9, 19, 3, 0, time.UTC) {
		t.Errorf("Scale = %+v, want quantity 4, updated_at 09:19:03", f)
	}
	if got := decode[map[string]any](t, e.get(t, "/apps/shop/formation/web")); got["quantity"] != 4.0 || got["updated_at"] != "2026-11-20T09:19:03Z" {
		t.Errorf("API after Scale = %v", got)
	}
	if len(e.srv.Requests()) != 1 || e.srv.Pool() != 9 {
		t.Errorf("Scale was recorded or took a token: %d requests, pool %d", len(e.srv.Requests()), e.srv.Pool())
	}

	var fe *fake.Error
	if _, err := e.srv.Scale("nope", "web", 1); !errors.As(err, &fe) || fe.Status != 404 || fe.Message != "Couldn't find that app." {
		t.Errorf("Scale of an unknown app: %v", err)
	}
	if _, err := e.srv.Scale("shop", "clock", 1); !errors.As(err, &fe) || fe.Status != 404 || fe.Message != "Couldn't find that formation." {
		t.Errorf("Scale of an unknown type: %v", err)
	}
	if _, err := e.srv.Scale("shop", "worker", 11); !errors.As(err, &fe) || fe.Status != 422 || fe.ID != "invalid_params" {
		t.Errorf("Scale past the limit: %v", err)
	}
	if _, err := e.srv.Scale("shop", "worker", -1); !errors.As(err, &fe) || fe.Status != 422 {
		t.Errorf("Scale to -1: %v", err)
	}
	if w, _ := e.srv.Formation("shop", "worker"); w.Quantity != 1 {
		t.Errorf("failed Scale changed the worker to %d", w.Quantity)
	}
}

func TestAddApp(t *testing.T) {
	srv := fake.New(fake.Options{Now: newClock().Now})
	app := srv.AddApp("shop", fake.Process{Type: "web", Quantity: 1})
	if !uuidPattern.MatchString(app.ID) || app.Name != "shop" {
		t.Errorf("AddApp = %+v", app)
	}
	web, _ := srv.Formation("shop", "web")
	if web.Size != fake.DefaultSize || web.Command != "bin/web" {
		t.Errorf("defaults: %+v", web)
	}
	// Again: the app keeps its id, web is replaced (keeping its id), worker is added.
	again := srv.AddApp("shop", fake.Process{Type: "web", Quantity: 1, Size: "basic"}, fake.Process{Type: "worker", Quantity: 2})
	web2, _ := srv.Formation(app.ID, "web")
	if again != app || web2.ID != web.ID || web2.Quantity != 1 || web2.Size != "Basic" {
		t.Errorf("AddApp again: app %+v, web %+v", again, web2)
	}
	fs, _ := srv.Formations("shop")
	if len(fs) != 2 || fs[0].Type != "web" || fs[1].Type != "worker" {
		t.Errorf("Formations = %+v", fs)
	}
}

func TestAddAppPanicsOnInvalidInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		procs []fake.Process
		want  string
	}{
		{"bad type", []fake.Process{{Type: "we b", Quantity: 1}}, `process type "we b"`},
		{"negative", []fake.Process{{Type: "web", Quantity: -1}}, "quantity -1"},
		{"unknown size", []fake.Process{{Type: "web", Quantity: 1, Size: "Huge"}}, `dyno size "Huge"`},
		{"past the size limit", []fake.Process{{Type: "web", Quantity: 2, Size: "Eco"}}, "at most 1 Eco"},
		{"past the app limit", []fake.Process{{Type: "web", Quantity: 60}, {Type: "worker", Quantity: 41}}, "101 dynos"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fake.New(fake.Options{Now: newClock().Now})
			func() {
				defer func() {
					r := recover()
					if r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
						t.Errorf("AddApp panicked with %v, want a message containing %q", r, tc.want)
					}
				}()
				srv.AddApp("shop", tc.procs...)
			}()
			if _, ok := srv.Formations("shop"); ok {
				t.Error("a refused AddApp still added the app")
			}
		})
	}
}
