package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dynopilot/dynopilot/metrics"
)

// hirefireApp answers like an app running a hirefire-resource gem or package: GET /hirefire/TOKEN/info, or
// GET /hirefire with the HireFire-Token header; body is what it answers. It records the headers it saw.
type hirefireApp struct {
	token string

	mu          sync.Mutex
	status      int
	body        string
	authHeaders []string
}

func (a *hirefireApp) answer(status int, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.body = status, body
}

func (a *hirefireApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.authHeaders = append(a.authHeaders, r.Header.Get("Authorization"))
	status, body := a.status, a.body
	a.mu.Unlock()
	ok := r.URL.Path == "/hirefire/"+a.token+"/info" ||
		(r.URL.Path == "/hirefire" && r.Header.Get("HireFire-Token") == a.token)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.WriteHeader(status)
	}
	_, _ = w.Write([]byte(body))
}

func TestHireFire(t *testing.T) {
	t.Parallel()
	const token = "f0e1d2c3b4a5-TOKEN"
	app := &hirefireApp{token: token}
	srv := httptest.NewServer(app)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	pathURL := srv.URL + "/hirefire/" + token + "/info"
	headerURL := "http://:" + token + "@" + host + "/hirefire"

	readEntry := func(url, name string) (metrics.Reading, error) {
		t.Helper()
		spec, err := metrics.Settings{Source: "hirefire", URL: url, Name: name}.Parse("shop", "worker", metrics.Defaults{})
		if err != nil {
			t.Fatal(err)
		}
		conns := metrics.NewConnections(nil)
		defer conns.Close()
		src, err := conns.Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		return src.Read(context.Background())
	}

	for _, c := range []struct {
		name, body string
		entry      string
		want       float64
	}{
		{"current format", `[{"name":"web","value":0.8},{"name":"worker","value":12}]`, "", 12},
		{"current format, NAME", `[{"name":"web","value":0.8},{"name":"worker","value":12}]`, "web", 0.8},
		{"pre-2021 quantity", `[{"name":"worker","quantity":7},{"name":"mailer","quantity":0}]`, "mailer", 0},
	} {
		app.answer(0, c.body)
		for _, url := range []string{pathURL, headerURL} {
			r, err := readEntry(url, c.entry)
			if err != nil || r.Value != c.want {
				t.Errorf("%s via %s: got %v, %v; want %v", c.name, metrics.Redact(url), r.Value, err, c.want)
			}
		}
	}
	app.mu.Lock()
	headers := app.authHeaders
	app.mu.Unlock()
	for _, h := range headers {
		if h != "" {
			t.Errorf("the token was sent as basic auth (%q): it belongs in the HireFire-Token header only", h)
		}
	}

	for _, c := range []struct {
		name   string
		status int
		body   string
		want   []string
	}{
		{"entry missing", 200, `[{"name":"web","value":1}]`, []string{`no entry named "worker"`, `"web"`}},
		{"malformed JSON", 200, `[{"name":"worker","value":`, []string{"not a HireFire info payload"}},
		{"not a list", 200, `{"worker": 3}`, []string{"not a HireFire info payload"}},
		{"value not a number", 200, `[{"name":"worker","value":"12"}]`, []string{"expected a number"}},
		{"value null", 200, `[{"name":"worker","value":null}]`, []string{"expected a number"}},
		{"negative value", 200, `[{"name":"worker","value":-4}]`, []string{"expected a number ≥ 0"}},
		{"no value", 200, `[{"name":"worker"}]`, []string{"neither value nor quantity"}},
		{"twice", 200, `[{"name":"worker","value":1},{"name":"worker","value":2}]`, []string{"2 entries"}},
		{"server error", 503, `Application Error`, []string{"HTTP 503", "expected 200"}},
	} {
		app.answer(c.status, c.body)
		for _, url := range []string{pathURL, headerURL} {
			_, err := readEntry(url, "")
			wantError(t, err, append([]string{"hirefire http://"}, c.want...)...)
			wantNoSecret(t, err, token)
		}
	}

	t.Run("the token header never follows a redirect to another host", func(t *testing.T) {
		var mu sync.Mutex
		var leaked []string
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			leaked = append(leaked, r.Header.Get("HireFire-Token"))
			mu.Unlock()
			_, _ = w.Write([]byte(`[{"name":"worker","value":5}]`))
		}))
		defer elsewhere.Close()
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/hirefire", http.StatusFound)
		}))
		defer redirector.Close()
		r, err := readEntry("http://:"+token+"@"+strings.TrimPrefix(redirector.URL, "http://")+"/hirefire", "")
		if err != nil || r.Value != 5 {
			t.Fatalf("got %v, %v; want 5 from the redirect target", r.Value, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(leaked) != 1 || leaked[0] != "" {
			t.Errorf("the other host received HireFire-Token %q", leaked)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		app.answer(0, `[{"name":"worker","value":1}]`)
		_, err := readEntry(srv.URL+"/hirefire/Wr0ng-T0ken/info", "")
		wantError(t, err, "hirefire http://", "/hirefire/xxxxx/info", "HTTP 404")
		wantNoSecret(t, err, "Wr0ng-T0ken")
	})
	t.Run("unreachable, token still hidden", func(t *testing.T) {
		_, err := readEntry("http://"+closedPort(t)+"/hirefire/Hidden-T0ken/info", "")
		wantError(t, err, "hirefire http://", "connection refused")
		wantNoSecret(t, err, "Hidden-T0ken")
	})
}
