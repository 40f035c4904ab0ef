package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The test Prometheus requires basic auth (testdata/prometheus-web.yml).
const (
	promUser     = "dynopilot"
	promPassword = "pr0m-Secret"
)

// exporter serves a request-latency histogram that gains ten observations of 0.2 s before every scrape, so that
// its rate is never zero and histogram_quantile(0.95, …) over buckets 0.1 and 0.25 is exactly 0.1 + 0.95 × 0.15, and
// a gauge with three series.
func exporter(t testing.TB) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "test_request_duration_seconds",
		Help:    "Request latency.",
		Buckets: []float64{0.1, 0.25, 0.5, 1},
	})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_queue_depth", Help: "Depth."}, []string{"queue"})
	reg.MustRegister(latency, depth)
	for i, q := range []string{"a", "b", "c"} {
		depth.WithLabelValues(q).Set(float64(i + 1))
	}
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			latency.Observe(0.2)
		}
		metricsHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// startPrometheus runs the real Prometheus scraping target every second and returns its URL with credentials.
func startPrometheus(t testing.TB, target string) string {
	t.Helper()
	bin := servicetest.Binary(t, servicetest.PrometheusBin)
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	webConfig, err := filepath.Abs("testdata/prometheus-web.yml")
	if err != nil {
		t.Fatal(err)
	}
	addr := closedPort(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.config.file="+webConfig,
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	// Wait until it is ready (TSDB open); the data is waited for by the caller.
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/-/ready", nil)
		req.SetBasicAuth(promUser, promPassword)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("prometheus on %s not ready within 30s:\n%s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("http://%s:%s@%s", promUser, promPassword, addr)
}

func TestPrometheus(t *testing.T) {
	t.Parallel()
	url := startPrometheus(t, exporter(t))
	quantile := "histogram_quantile(0.95, sum(rate(test_request_duration_seconds_bucket[30s])) by (le))"
	src := open(t, metrics.Settings{Source: "prometheus", URL: url, Query: quantile})

	// Wait until Prometheus has scraped enough for a rate (two samples), polling with a deadline.
	deadline := time.Now().Add(60 * time.Second)
	var r metrics.Reading
	var err error
	for {
		r, err = read(t, src)
		if err == nil {
			break
		}
		if !errors.Is(err, metrics.ErrNoData) || time.Now().After(deadline) {
			t.Fatalf("no histogram_quantile after 60s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("histogram_quantile", func(t *testing.T) {
		if want := 0.1 + 0.95*0.15; math.Abs(r.Value-want) > 1e-9 {
			t.Errorf("p95 = %v, want %v", r.Value, want)
		}
		if time.Since(r.At) > time.Minute || time.Until(r.At) > time.Second {
			t.Errorf("reading time %v is not the query's evaluation time", r.At)
		}
	})
	t.Run("scalar", func(t *testing.T) {
		got := mustRead(t, open(t, metrics.Settings{Source: "prometheus", URL: url, Query: "scalar(sum(test_queue_depth))", Measure: "size"}))
		if got.Value != 6 {
			t.Errorf("got %v, want 6", got.Value)
		}
	})
	t.Run("a negative result is a failed reading", func(t *testing.T) {
		for _, s := range []metrics.Settings{
			{Source: "prometheus", URL: url, Query: "vector(-5)"},
			{Source: "prometheus", URL: url, Query: "scalar(vector(-0.001))", Measure: "size"},
			{Source: "prometheus", URL: url, Query: "vector(-5)", Empty: "zero"},
		} {
			_, err := read(t, withTimeout(parse(t, s), open(t, s)))
			wantError(t, err, "prometheus http://xxxxx@", "read -", "of 0 or more")
			wantNoSecret(t, err, promPassword)
		}
	})
	t.Run("several series", func(t *testing.T) {
		_, err := read(t, open(t, metrics.Settings{Source: "prometheus", URL: url, Query: "test_queue_depth"}))
		wantError(t, err, "prometheus http://xxxxx@", "returned 3 series", `queue="a"`, "sum(")
		wantNoSecret(t, err, promPassword)
	})
	for _, c := range []struct{ name, query string }{
		{"empty result", `test_queue_depth{queue="nope"}`},
		{"NaN", "scalar(test_queue_depth)"}, // scalar() of several series is NaN
	} {
		t.Run(c.name+" is missing under EMPTY=missing", func(t *testing.T) {
			_, err := read(t, open(t, metrics.Settings{Source: "prometheus", URL: url, Query: c.query}))
			if !errors.Is(err, metrics.ErrNoData) {
				t.Errorf("got %v, want ErrNoData", err)
			}
		})
		t.Run(c.name+" is 0 under EMPTY=zero", func(t *testing.T) {
			got, err := read(t, open(t, metrics.Settings{Source: "prometheus", URL: url, Query: c.query, Empty: "zero"}))
			if err != nil || got.Value != 0 {
				t.Errorf("got %v, %v; want 0, nil", got.Value, err)
			}
		})
	}
	for _, c := range []struct{ name, query, want string }{
		{"infinity", "vector(1) / 0", "+Inf"},
		{"range vector", "test_queue_depth[1m]", "matrix"},
		{"syntax error", "sum(", "bad_data"},
	} {
		t.Run(c.name+" is an error", func(t *testing.T) {
			_, err := read(t, open(t, metrics.Settings{Source: "prometheus", URL: url, Query: c.query}))
			wantError(t, err, "prometheus http://", c.want)
			if errors.Is(err, metrics.ErrNoData) {
				t.Errorf("%v is not missing data", err)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		wrong := "http://dynopilot:Wr0ng-Passw0rd@" + url[len("http://dynopilot:"+promPassword+"@"):]
		_, err := read(t, open(t, metrics.Settings{Source: "prometheus", URL: wrong, Query: "vector(1)"}))
		wantError(t, err, "prometheus http://xxxxx@", "401")
		wantNoSecret(t, err, "Wr0ng-Passw0rd")
	})
	t.Run("timeout", func(t *testing.T) {
		spec := parse(t, metrics.Settings{Source: "prometheus", URL: "http://u:S3cret-Slow@" + silentServer(t), Query: "vector(1)", Timeout: "200ms"})
		conns := metrics.NewConnections(nil)
		defer conns.Close()
		src, err := conns.Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		_, err = withTimeout(spec, src).Read(context.Background())
		wantError(t, err, "prometheus http://xxxxx@", "TIMEOUT=200ms")
		wantNoSecret(t, err, "S3cret-Slow")
		if !isTimeout(err) {
			t.Errorf("%v is not a timeout", err)
		}
	})
}

// promAPI is a Prometheus-API-compatible server answering every instant query with body (the "data" object), and
// recording the Authorization header of every request.
type promAPI struct {
	srv  *httptest.Server
	mu   sync.Mutex
	auth []string
}

func newPromAPI(t *testing.T, data string) *promAPI {
	t.Helper()
	p := &promAPI{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.auth = append(p.auth, r.Header.Get("Authorization"))
		p.mu.Unlock()
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":%s}`, data)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *promAPI) authorizations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auth...)
}

// TestPrometheusNegativeResults: issue 11, item 3. A query answering -5 or -0.001 scaled three policies (latency,
// MEASURE=size, EMPTY=zero) 4 -> 1 in one PATCH: latencies read as 0, sizes as they were. Each is a failed reading
// whose error names the source and the value.
func TestPrometheusNegativeResults(t *testing.T) {
	t.Parallel()
	for _, value := range []string{"-5", "-0.001"} {
		for shape, data := range map[string]string{
			"vector": `{"resultType":"vector","result":[{"metric":{},"value":[1767225600.5,"` + value + `"]}]}`,
			"scalar": `{"resultType":"scalar","result":[1767225600.5,"` + value + `"]}`,
		} {
			api := newPromAPI(t, data)
			for _, s := range []metrics.Settings{
				{Source: "prometheus", URL: "http://u:Pr0m-pw@" + api.srv.Listener.Addr().String(), Query: "q"},
				{Source: "prometheus", URL: api.srv.URL, Query: "q", Measure: "size"},
				{Source: "prometheus", URL: api.srv.URL, Query: "q", Empty: "zero"},
			} {
				t.Run(shape+" "+value+" "+s.Measure+s.Empty, func(t *testing.T) {
					spec := parse(t, s)
					_, err := read(t, withTimeout(spec, open(t, s)))
					wantError(t, err, "prometheus http://", "read "+value+":", "expected a "+spec.Measure+" of 0 or more")
					wantNoSecret(t, err, "Pr0m-pw")
					if errors.Is(err, metrics.ErrNoData) {
						t.Errorf("%v is a missing reading, not a failed one", err)
					}
				})
			}
		}
	}
	t.Run("zero and a positive value pass", func(t *testing.T) {
		for value, want := range map[string]float64{"0": 0, "-0": 0, "0.25": 0.25} {
			api := newPromAPI(t, `{"resultType":"scalar","result":[1767225600.5,"`+value+`"]}`)
			s := metrics.Settings{Source: "prometheus", URL: api.srv.URL, Query: "q"}
			if r := mustRead(t, withTimeout(parse(t, s), open(t, s))); r.Value != want {
				t.Errorf("%s read as %v", value, r.Value)
			}
		}
	})
}

// TestPrometheusCredentialsStayHome: issue 11, item 8. The URL's basic auth was sent to wherever the server
// redirected; it goes only to the configured scheme and host, including after a redirect back home.
func TestPrometheusCredentialsStayHome(t *testing.T) {
	t.Parallel()
	const data = `{"resultType":"scalar","result":[1767225600.5,"3"]}`
	elsewhere := newPromAPI(t, data)
	home := &promAPI{}
	home.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		home.mu.Lock()
		home.auth = append(home.auth, r.Header.Get("Authorization"))
		home.mu.Unlock()
		switch r.URL.Path {
		case "/away/api/v1/query":
			http.Redirect(w, r, elsewhere.srv.URL+"/api/v1/query", http.StatusTemporaryRedirect)
		case "/moved/api/v1/query":
			http.Redirect(w, r, "/api/v1/query", http.StatusTemporaryRedirect)
		case "/api/v1/query":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"status":"success","data":%s}`, data)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(home.srv.Close)
	addr := home.srv.Listener.Addr().String()

	s := metrics.Settings{Source: "prometheus", URL: "http://dynopilot:Pr0m-Secret@" + addr + "/away", Query: "q"}
	if r := mustRead(t, open(t, s)); r.Value != 3 {
		t.Fatalf("read %v through the redirect, want 3", r.Value)
	}
	for _, a := range elsewhere.authorizations() {
		if a != "" {
			t.Errorf("the other host received Authorization %q", a)
		}
	}
	if len(elsewhere.authorizations()) == 0 {
		t.Errorf("the redirect was not followed")
	}

	s.URL = "http://dynopilot:Pr0m-Secret@" + addr + "/moved"
	if r := mustRead(t, open(t, s)); r.Value != 3 {
		t.Fatalf("read %v through a redirect home, want 3", r.Value)
	}
	auths := home.authorizations()
	for _, a := range auths {
		if a == "" {
			t.Errorf("a request to the configured host went without credentials: %q", auths)
		}
	}
}
