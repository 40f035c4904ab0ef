package fake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

const (
	token    = "test-token-0123"
	acceptV3 = "application/vnd.heroku+json; version=3"
)

var (
	uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	timePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

// clock is an injectable Options.Now that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 20, 9, 14, 3, 250_000_000, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one fake behind an httptest server, with the app "shop" (web=2 Standard-1X, worker=1 Performance-M).
type env struct {
	srv   *fake.Server
	url   string
	clock *clock
	app   fake.App
}

func newEnv(t *testing.T, opts fake.Options) *env {
	t.Helper()
	c := newClock()
	if opts.Token == "" {
		opts.Token = token
	}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	srv := fake.New(opts)
	app := srv.AddApp("shop",
		fake.Process{Type: "web", Quantity: 2, Size: "Standard-1X", Command: "bundle exec puma -C config/puma.rb"},
		fake.Process{Type: "worker", Quantity: 1, Size: "performance-m"})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{srv: srv, url: ts.URL, clock: c, app: app}
}

// reply is an answer read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// request describes one call; zero fields mean: the right Accept header and token, no body.
type request struct {
	method   string
	path     string
	body     string
	noAccept bool
	accept   string
	token    *string // nil: the right token; "" no Authorization header
	header   map[string]string
}

func (e *env) do(t *testing.T, r request) reply {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, e.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case r.accept != "":
		req.Header.Set("Accept", r.accept)
	case !r.noAccept:
		req.Header.Set("Accept", acceptV3)
	}
	tok := token
	if r.token != nil {
		tok = *r.token
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, data}
}

func (e *env) get(t *testing.T, path string) reply {
	t.Helper()
	return e.do(t, request{method: http.MethodGet, path: path})
}

func (e *env) patch(t *testing.T, path, body string) reply {
	t.Helper()
	return e.do(t, request{method: http.MethodPatch, path: path, body: body})
}

func (e *env) control(t *testing.T, method, path, body string) reply {
	t.Helper()
	return e.do(t, request{method: method, path: path, body: body, noAccept: true, token: ptr("")})
}

func ptr[T any](v T) *T { return &v }

// decode unmarshals a reply's body, failing the test on error.
func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// checkHeaders checks what every API answer carries.
func checkHeaders(t *testing.T, r reply) {
	t.Helper()
	if got := r.header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", got)
	}
	if id := r.header.Get("Request-Id"); !uuidPattern.MatchString(id) {
		t.Errorf("Request-Id = %q, want a UUID", id)
	}
	if _, err := strconv.Atoi(r.header.Get("RateLimit-Remaining")); err != nil {
		t.Errorf("RateLimit-Remaining = %q, want a number", r.header.Get("RateLimit-Remaining"))
	}
}

// checkError checks an error answer: status, headers, and a body of exactly id, message and url.
func checkError(t *testing.T, r reply, status int, id, message string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	checkHeaders(t, r)
	body := decode[map[string]any](t, r)
	if keys := sortedKeys(body); !slices.Equal(keys, []string{"id", "message", "url"}) {
		t.Errorf("error body keys = %v, want [id message url]", keys)
	}
	if body["id"] != id {
		t.Errorf("error id = %v, want %q", body["id"], id)
	}
	if message != "" && body["message"] != message {
		t.Errorf("error message = %q, want %q", body["message"], message)
	}
	if _, ok := body["url"].(string); !ok {
		t.Errorf("error url = %v, want a string", body["url"])
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func remaining(t *testing.T, r reply) int {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get("RateLimit-Remaining"))
	if err != nil {
		t.Fatalf("RateLimit-Remaining = %q: %v", r.header.Get("RateLimit-Remaining"), err)
	}
	return n
}

// newTestServer serves h and returns its URL.
func newTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
