package logdrain_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/logdrain"
	"github.com/dynopilot/dynopilot/metrics"
)

// nothingCounted fails unless no line of any kind was counted for any app.
func (e *env) nothingCounted(t *testing.T) {
	t.Helper()
	for _, st := range e.store.Stats() {
		for k, n := range st.Lines {
			if n != 0 {
				t.Errorf("%s: %d %s lines counted, want none", st.App, n, k)
			}
		}
		if !st.LastLine.IsZero() {
			t.Errorf("%s: a last line at %v, want none", st.App, st.LastLine)
		}
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	body := frames(routerMsg(t0, "web.1", 10))
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"no auth", func(r *http.Request) { r.Header.Del("Authorization") }},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("logplex", "wrong") }},
		{"the token as user name", func(r *http.Request) { r.SetBasicAuth(token, "") }},
		{"a prefix of the token", func(r *http.Request) { r.SetBasicAuth("u", token[:len(token)-1]) }},
		{"the token and more", func(r *http.Request) { r.SetBasicAuth("u", token+"x") }},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }},
		{"basic without a colon", func(r *http.Request) { r.Header.Set("Authorization", basic(token)) }},
		{"basic not base64", func(r *http.Request) { r.Header.Set("Authorization", "Basic :"+token) }},
		{"in the query", func(r *http.Request) { r.Header.Del("Authorization"); r.URL.RawQuery = "token=" + token }},
		{"as the drain token", func(r *http.Request) { r.Header.Del("Authorization"); r.Header.Set("Logplex-Drain-Token", token) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := drainRequest("shop", body, "")
			tc.set(r)
			w := serve(e.store, r)
			if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%d %q (WWW-Authenticate %q), want 401 asking for basic auth", w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(w.Body.String(), token) {
				t.Error("the answer shows the token")
			}
		})
	}
	// An unknown app without the token is 401 too: which apps are received is not told to strangers.
	r := drainRequest("other", body, "")
	r.Header.Del("Authorization")
	if w := serve(e.store, r); w.Code != http.StatusUnauthorized {
		t.Errorf("unknown app without auth: %d, want 401", w.Code)
	}
	e.nothingCounted(t)
	// Any user name, the right password.
	for _, user := range []string{"", "logplex", "anything at all"} {
		r := drainRequest("shop", body, "")
		r.SetBasicAuth(user, token)
		if w := serve(e.store, r); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Errorf("user %q with the token: %d %q, want 204 and no body", user, w.Code, w.Body)
		}
	}
	if got := e.stats(t, "shop").Lines["router"]; got != 3 {
		t.Errorf("%d router lines after 3 accepted POSTs, want 3", got)
	}
}

func TestUnknownAppMethodAndPath(t *testing.T) {
	e := newEnv(t)
	body := frames(routerMsg(t0, "web.1", 10))
	w := serve(e.store, drainRequest("other", body, ""))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `no drain is received for app "other": only apps with a logdrain policy are (blog, shop)`) {
		t.Errorf("unknown app: %d %q", w.Code, w.Body)
	}
	for _, path := range []string{"/drain/", "/drain/shop/x", "/drain"} {
		r := drainRequest("shop", body, "")
		r.URL.Path = path
		if w := serve(e.store, r); w.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, w.Code)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		r := drainRequest("shop", body, "")
		r.Method = m
		if w := serve(e.store, r); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Errorf("%s: %d Allow %q, want 405 Allow POST", m, w.Code, w.Header().Get("Allow"))
		}
	}
	e.nothingCounted(t)
	if n := testutil.CollectAndCount(e.reg, "dynopilot_drain_lines_total"); n != 2*5 {
		t.Errorf("%d series, want 10: one per configured app and kind, none for others", n)
	}
	// The app is matched in any case, and counted under its configured name; "/drain/shop/" is shop too.
	for _, path := range []string{"/drain/SHOP", "/drain/shop/"} {
		r := drainRequest("shop", body, "")
		r.URL.Path = path
		if w := serve(e.store, r); w.Code != http.StatusNoContent {
			t.Errorf("POST %s: %d, want 204", path, w.Code)
		}
	}
	if got, err := counter(t, e, "shop", "router").value(); err != nil || got != 2 {
		t.Errorf("shop router lines %v (%v), want 2", got, err)
	}
	// Mounted with a pattern that names the app.
	mux := http.NewServeMux()
	mux.Handle("POST /hooks/{app}", e.store)
	r := drainRequest("blog", body, "")
	r.URL.Path = "/hooks/blog"
	if w := serve(mux, r); w.Code != http.StatusNoContent || e.stats(t, "blog").Lines["router"] != 1 {
		t.Errorf("POST /hooks/blog: %d, want 204 and a line for blog", w.Code)
	}
}

// counter is the series of dynopilot_drain_lines_total for app and kind, read from the registry.
func counter(t *testing.T, e *env, app, kind string) *seriesValue {
	t.Helper()
	return &seriesValue{e: e, app: app, kind: kind}
}

// seriesValue is one series of dynopilot_drain_lines_total, gathered from the registry when asked.
type seriesValue struct {
	e         *env
	app, kind string
}

func (s *seriesValue) value() (float64, error) {
	mfs, err := s.e.reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != "dynopilot_drain_lines_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["app"] == s.app && labels["kind"] == s.kind {
				return m.GetCounter().GetValue(), nil
			}
		}
	}
	return 0, fmt.Errorf("no series app=%s kind=%s", s.app, s.kind)
}

func TestMetricsCountEveryKind(t *testing.T) {
	e := newEnv(t)
	if w := serve(e.store, drainRequest("shop", readFile(t, "garbage.logplex"), "")); w.Code != http.StatusNoContent {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	e.post(t, "shop", `<172>1 2026-03-11T16:17:54+00:00 host heroku logplex - Error L10 (output buffer overflow): 7 messages dropped since 2026-03-11T16:17:26+00:00.`)
	for kind, want := range map[string]float64{"router": 2, "runtime": 1, "app": 1, "lost": 7, "invalid": 6} {
		if got, err := counter(t, e, "shop", kind).value(); err != nil || got != want {
			t.Errorf("dynopilot_drain_lines_total{app=shop,kind=%s} = %v (%v), want %v", kind, got, err, want)
		}
		if got, err := counter(t, e, "blog", kind).value(); err != nil || got != 0 {
			t.Errorf("dynopilot_drain_lines_total{app=blog,kind=%s} = %v (%v), want a series at 0", kind, got, err)
		}
	}
	st := e.stats(t, "shop")
	if st.Lines["lost"] != 7 || st.Lines["invalid"] != 6 || st.LastLost.IsZero() || !st.LastLine.Equal(t0) {
		t.Errorf("Stats %+v", st)
	}
	// A second Store cannot register the same metric.
	if _, err := logdrain.New(logdrain.Options{Token: "t", Apps: []string{"x"}, Registerer: e.reg}); err == nil {
		t.Error("a second registration succeeded")
	}
}

func TestLinesPerMinute(t *testing.T) {
	e := newEnv(t)
	e.post(t, "shop", appMsg(t0, "web.1", "a"), appMsg(t0, "web.1", "b"), "garbage")
	e.clock.Set(t0.Add(time.Minute))
	if got := e.stats(t, "shop").LinesPerMinute; got != 2 {
		t.Errorf("%v lines per minute after one minute, want 2 (garbage does not count)", got)
	}
	for i := range 10 {
		e.clock.Set(t0.Add(time.Minute + time.Duration(i)*30*time.Second))
		e.post(t, "shop", appMsg(t0, "web.1", "c"))
	}
	e.clock.Set(t0.Add(6 * time.Minute))
	if got := e.stats(t, "shop").LinesPerMinute; got != 10.0/5 {
		t.Errorf("%v lines per minute, want 2: the 10 lines of the last 5 minutes", got)
	}
	if st := e.stats(t, "blog"); st.LinesPerMinute != 0 || st.Lines["router"] != 0 || len(st.Lines) != 5 {
		t.Errorf("blog: %+v", st)
	}
	if apps := e.store.Stats(); len(apps) != 2 || apps[0].App != "blog" || apps[1].App != "shop" {
		t.Errorf("Stats not one per app sorted: %+v", apps)
	}
}

// A retried batch (the same Logplex-Frame-Id) counts once; the ids remembered are bounded.
func TestFrameIDDedupe(t *testing.T) {
	e := newEnv(t)
	e.clock.Set(t0.Add(time.Minute))
	body := frames(routerMsg(t0.Add(10*time.Second), "web.1", 10), routerMsg(t0.Add(10*time.Second), "web.1", 10))
	for i := range 3 {
		if w := serve(e.store, drainRequest("shop", body, "0f3c2a9e5d")); w.Code != http.StatusNoContent {
			t.Fatalf("POST %d: %d, want 204", i, w.Code)
		}
	}
	if got := e.stats(t, "shop").Lines["router"]; got != 2 {
		t.Errorf("%d router lines after a batch and two retries, want 2", got)
	}
	// The id is per app, and another id is another batch.
	serve(e.store, drainRequest("blog", body, "0f3c2a9e5d"))
	serve(e.store, drainRequest("shop", body, "77aa"))
	serve(e.store, drainRequest("shop", body, "")) // no id: always counted
	serve(e.store, drainRequest("shop", body, ""))
	if got := e.stats(t, "shop").Lines["router"]; got != 8 {
		t.Errorf("%d router lines, want 8", got)
	}
	if got := e.stats(t, "blog").Lines["router"]; got != 2 {
		t.Errorf("blog: %d router lines, want 2", got)
	}
	// Past FrameIDs other batches, the first id is forgotten: memory is bounded.
	small := frames(appMsg(t0, "web.1", "x"))
	for i := range logdrain.FrameIDs {
		serve(e.store, drainRequest("shop", small, fmt.Sprintf("id-%d", i)))
		if i%500 == 0 {
			if n := logdrain.HeldFrameIDs(e.store, "shop"); n > logdrain.FrameIDs {
				t.Fatalf("%d ids held, want at most %d", n, logdrain.FrameIDs)
			}
		}
	}
	if n := logdrain.HeldFrameIDs(e.store, "shop"); n != logdrain.FrameIDs {
		t.Errorf("%d ids held, want %d", n, logdrain.FrameIDs)
	}
	serve(e.store, drainRequest("shop", body, "0f3c2a9e5d"))
	if got := e.stats(t, "shop").Lines["router"]; got != 10 {
		t.Errorf("%d router lines, want 10: an id older than the last %d is no longer known", got, logdrain.FrameIDs)
	}
	// The most recent ones are still known.
	serve(e.store, drainRequest("shop", small, fmt.Sprintf("id-%d", logdrain.FrameIDs-1)))
	if got := e.stats(t, "shop").Lines["app"]; got != int64(logdrain.FrameIDs) {
		t.Errorf("%d app lines, want %d", got, logdrain.FrameIDs)
	}
}

// blockingBody is a request body that gives its bytes only once released, then ends with err (nil: EOF).
type blockingBody struct {
	body    io.Reader
	release chan struct{}
	err     error
}

func (b *blockingBody) Read(p []byte) (int, error) {
	<-b.release
	n, err := b.body.Read(p)
	if err == io.EOF && b.err != nil {
		return n, b.err
	}
	return n, err
}

// A retry that comes while its original is still being received gets 429 (Logplex retries it); a body cut short
// gets 503, counts nothing, and its retry counts.
func TestFrameIDInFlightAndCutShort(t *testing.T) {
	e := newEnv(t)
	body := frames(routerMsg(t0, "web.1", 10))
	slow := &blockingBody{body: bytes.NewReader(body), release: make(chan struct{})}
	first := drainRequest("shop", nil, "abc")
	first.Body, first.ContentLength = io.NopCloser(slow), -1
	done := make(chan int)
	go func() { done <- serve(e.store, first).Code }()
	// Wait until the first has claimed the id.
	deadline := time.Now().Add(5 * time.Second)
	for logdrain.HeldFrameIDs(e.store, "shop") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	w := serve(e.store, drainRequest("shop", body, "abc"))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("a retry racing its original: %d (Retry-After %q), want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	close(slow.release)
	if code := <-done; code != http.StatusNoContent {
		t.Errorf("the original: %d, want 204", code)
	}
	if w := serve(e.store, drainRequest("shop", body, "abc")); w.Code != http.StatusNoContent {
		t.Errorf("a retry after: %d, want 204", w.Code)
	}
	if got := e.stats(t, "shop").Lines["router"]; got != 1 {
		t.Errorf("%d router lines, want 1", got)
	}

	cut := &blockingBody{body: bytes.NewReader(body[:20]), release: make(chan struct{}), err: io.ErrUnexpectedEOF}
	close(cut.release)
	r := drainRequest("shop", nil, "def")
	r.Body, r.ContentLength = io.NopCloser(cut), int64(len(body))
	if w := serve(e.store, r); w.Code != http.StatusServiceUnavailable {
		t.Errorf("a body cut short: %d, want 503 so that Logplex retries", w.Code)
	}
	if got := e.stats(t, "shop").Lines; got["router"] != 1 || got["invalid"] != 0 {
		t.Errorf("lines %v after a body cut short, want it to count nothing", got)
	}
	if w := serve(e.store, drainRequest("shop", body, "def")); w.Code != http.StatusNoContent {
		t.Errorf("its retry: %d, want 204", w.Code)
	}
	if got := e.stats(t, "shop").Lines["router"]; got != 2 {
		t.Errorf("%d router lines, want 2: the retry of a batch cut short counts", got)
	}
}

// A body over MaxBody is refused with 413, a 4xx that Logplex does not retry (the batch would be as large again);
// its messages count as lost, nothing else.
func TestOversizeBody(t *testing.T) {
	e := newEnv(t, func(o *logdrain.Options) { o.MaxBody = 1000 })
	var msgs []string
	for range 10 {
		msgs = append(msgs, routerMsg(t0, "web.1", 10))
	}
	big := frames(msgs...)
	r := drainRequest("shop", big, "")
	if w := serve(e.store, r); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("declared %d bytes: %d, want 413", len(big), w.Code)
	}
	r = drainRequest("shop", big, "")
	r.ContentLength = -1 // chunked: found out while reading
	r.Body = io.NopCloser(bytes.NewReader(big))
	if w := serve(e.store, r); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked %d bytes: %d, want 413", len(big), w.Code)
	}
	st := e.stats(t, "shop")
	if st.Lines["lost"] != 20 || st.Lines["router"] != 0 || st.Lines["invalid"] != 0 || st.LastLost.IsZero() {
		t.Errorf("after two refused batches of 10: %v, want 20 lost and nothing else", st.Lines)
	}
	// Just under the limit is fine, and the default is a few MB.
	if w := serve(e.store, drainRequest("shop", frames(msgs[:3]...), "")); w.Code != http.StatusNoContent {
		t.Errorf("a small batch: %d", w.Code)
	}
	if logdrain.DefaultMaxBody < 1<<20 {
		t.Errorf("DefaultMaxBody %d: Logplex batches are about 100 KB, allow a few MB", logdrain.DefaultMaxBody)
	}
}

// Loss notices are logged as warnings; nothing logged, at any level, shows the token.
func TestLogs(t *testing.T) {
	var logs servicetest.Buffer
	e := newEnv(t, func(o *logdrain.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.MaxBody = 2000
	})
	serve(e.store, drainRequest("shop", readFile(t, "l10.logplex"), "id1"))
	// More notices within the minute are logged with the next one after it, with their count.
	l10 := func(n int) string {
		return fmt.Sprintf("<172>1 2026-03-11T16:17:54+00:00 host heroku logplex - Error L10 (output buffer overflow): %d messages dropped since 2026-03-11T16:17:26+00:00.", n)
	}
	e.clock.Advance(30 * time.Second)
	e.post(t, "shop", l10(1))
	if strings.Contains(logs.String(), "messages=1 ") {
		t.Error("a second notice within the minute was logged at once")
	}
	e.clock.Advance(30 * time.Second)
	e.post(t, "shop", l10(20))
	serve(e.store, drainRequest("shop", readFile(t, "garbage.logplex"), "id2"))
	serve(e.store, drainRequest("shop", readFile(t, "split.logplex"), "")) // too large
	r := drainRequest("shop", nil, "")
	r.SetBasicAuth(token, "wrong")
	serve(e.store, r)
	r = drainRequest("shop", frames(appMsg(t0, "web.1", token)), "") // even if an app logs it, it is not echoed in our logs
	serve(e.store, r)
	out := logs.String()
	for _, want := range []string{
		`level=WARN msg="drain: Logplex dropped messages before they reached dynopilot" app=shop messages=514 batches_with_notices=1 last_notice="Error L10 (output buffer overflow): drain 'd.cfcd3264-7259-4b12-ac5b-016032978174' dropped 1 messages since 2026-03-11T16:17:37.307999+00:00."`,
		`level=WARN msg="drain: Logplex dropped messages before they reached dynopilot" app=shop messages=21 batches_with_notices=2 last_notice="Error L10 (output buffer overflow): 20 messages dropped`,
		`level=WARN msg="drain: batch refused for its size; its messages are lost" app=shop`,
		`level=DEBUG msg="drain: batch received" app=shop`,
		`invalid=6 first_invalid=`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) {
		t.Errorf("the logs show the token:\n%s", out)
	}
}

// Concurrent POSTs, Reads, Stats and traces, for the race detector; every line is counted once.
func TestConcurrentPostsAndReads(t *testing.T) {
	e := newEnv(t)
	now := t0.Add(10 * time.Minute)
	e.clock.Set(now)
	srv := httptest.NewServer(mux(e.store))
	defer srv.Close()
	const posters, posts, perPost = 4, 25, 40
	var wg sync.WaitGroup
	errs := make(chan error, posters*posts+100)
	for p := range posters {
		wg.Go(func() {
			for i := range posts {
				var msgs []string
				for j := range perPost {
					at := now.Add(-time.Duration((i*perPost+j)%600) * time.Second)
					msgs = append(msgs, routerMsg(at, fmt.Sprintf("web.%d", j%3+1), float64(j)), loadMsg(at, "web.1", 1))
				}
				app := []string{"shop", "blog"}[p%2]
				r, _ := http.NewRequest(http.MethodPost, srv.URL+"/drain/"+app, bytes.NewReader(frames(msgs...)))
				r.SetBasicAuth("u", token)
				r.Header.Set("Logplex-Frame-Id", fmt.Sprintf("%d-%d", p, i))
				resp, err := srv.Client().Do(r)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs <- fmt.Errorf("POST: %d", resp.StatusCode)
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, m := range logdrain.Measures() {
				if _, _, err := e.store.Read("shop", "web", m, 0.95, logdrain.MaxWindow); err != nil && !errors.Is(err, metrics.ErrNoData) {
					errs <- err
				}
			}
			e.store.Stats()
			serve(e.store.TrafficHandler(), httptest.NewRequest(http.MethodGet, "/api/traffic/shop.csv", nil))
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, app := range []string{"shop", "blog"} {
		st := e.stats(t, app)
		if want := int64(posters / 2 * posts * perPost); st.Lines["router"] != want || st.Lines["runtime"] != want {
			t.Errorf("%s: %v, want %d router and runtime lines", app, st.Lines, want)
		}
	}
}

// mux mounts the Store as the daemon does.
func mux(s *logdrain.Store) http.Handler {
	m := http.NewServeMux()
	m.Handle("/drain/", s)
	m.Handle("/api/traffic/", s.TrafficHandler())
	return m
}
