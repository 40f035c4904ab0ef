package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/internal/demo"
	"github.com/dynopilot/dynopilot/logdrain"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/scaler"
)

// demoPolicies are the demo's three policies, written as a user writes them in the environment and read the way
// the daemon reads them, so that every setting left out takes its real default. The interval is added by the flag.
var demoPolicies = []string{
	"POLICY_0_APP=" + demo.App, "POLICY_0_PROCESS=web", "POLICY_0_MAX=10", "POLICY_0_TARGET=250ms",
	"POLICY_0_UP_COOLDOWN=10s", "POLICY_0_DOWN_COOLDOWN=30s", "POLICY_0_DOWN_STABILIZATION=30s", "POLICY_0_MAX_STEP_DOWN=2",
	"POLICY_1_APP=" + demo.App, "POLICY_1_PROCESS=worker", "POLICY_1_MIN=0", "POLICY_1_MAX=8", "POLICY_1_MODE=ratio",
	"POLICY_1_PER_DYNO=150", "POLICY_1_ACTIVATION=10", "POLICY_1_UP_COOLDOWN=5s", "POLICY_1_DOWN_COOLDOWN=30s",
	"POLICY_1_DOWN_STABILIZATION=30s",
	// The drain app is scaled the way the recommended web policy is: the request rate for the level (40 requests/s
	// per dyno, the demo's), a second metric for what the rate cannot see (here the router's p95 latency), the
	// largest wins, and the rate's daily profile learnt (PREDICT: a real day's profile, so the demo's fast days do
	// not make it predict; its metric and status show it learning).
	"POLICY_2_APP=" + demo.DrainApp, "POLICY_2_PROCESS=web", "POLICY_2_MAX=6", "POLICY_2_MODE=ratio", "POLICY_2_PER_DYNO=40",
	"POLICY_2_SAFETY=1", "POLICY_2_METRIC_2_MODE=target", "POLICY_2_METRIC_2_TARGET=250ms", "POLICY_2_PREDICT=true",
	"POLICY_2_UP_COOLDOWN=10s", "POLICY_2_DOWN_COOLDOWN=30s", "POLICY_2_DOWN_STABILIZATION=30s",
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9797", "address for the status page, /api/policies and /metrics")
	duration := fs.Duration("duration", 0, "stop by itself after this long (0: run until interrupted)")
	day := fs.Duration("day", 10*time.Minute, "real time one simulated day of traffic takes")
	load := fs.Float64("load", 1, "multiply the traffic (3 or more pins the web dynos at their maximum)")
	interval := fs.Duration("interval", 5*time.Second, "how often each policy is evaluated")
	pushgateway := fs.String("pushgateway", "", "also push metrics to this Prometheus Pushgateway URL")
	dryRun := fs.Bool("dry-run", false, "decide and publish, never scale")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	log := newLogger(stderr, *level, "auto")

	heroku := fake.New(fake.Options{Token: "demo-token"})
	tokenLife := 90 * 24 * 3600 // the demo token expires in 90 days, so the expiry metric and its panels have data
	heroku.AddAuthorization("demo-authorization", &tokenLife)
	world := demo.New(heroku, demo.Options{Day: *day, Load: *load, Seed: uint64(time.Now().UnixNano())}, time.Now())
	api := httptest.NewServer(heroku)
	defer api.Close()

	g := config.Global{APIKey: "demo-token", APIURL: api.URL, APIRate: 4500, APIReserve: 450, FormationRefresh: 5 * time.Second,
		Listen: *listen, PushgatewayURL: *pushgateway, PushInterval: 5 * time.Second, DryRun: *dryRun,
		AuthorizationID: "demo-authorization"}
	reg := newRegistry()
	client, err := newClient(g, reg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	drainToken := rand.Text()
	drains, err := newDrains(drainToken, []string{demo.DrainApp}, reg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	policies, err := demoSources(world, drains, reg, *interval)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	return serve(ctx, serveOptions{cfg: g, client: client, policies: policies, drains: drains, reg: reg, log: log, stdout: stdout,
		banner: func(url string) {
			fmt.Fprintf(stdout, "dynopilot demo: apps %s and %s (scaled on its log drain) on a fake Heroku at %s\n", demo.App, demo.DrainApp, api.URL)
			fmt.Fprintf(stdout, "status page %s/  ·  decisions %s/api/policies  ·  metrics %s/metrics\n", url, url, url)
			go drainLoop(ctx, world, url+"/drain/"+demo.DrainApp, drainToken, log)
		}})
}

// drainLoop does what Heroku's Logplex does for an app with a drain: every second it POSTs the router and
// runtime-metrics lines of the demo's drain app to dynopilot's /drain/<app>, with the drain's token as the basic-auth
// password.
func drainLoop(ctx context.Context, w *demo.World, url, token string, log *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for frame := 0; ; frame++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		body := w.RouterLog(time.Now())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.SetBasicAuth("dynopilot", token)
		req.Header.Set("Content-Type", "application/logplex-1")
		req.Header.Set("Logplex-Frame-Id", fmt.Sprintf("demo-%d", frame))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("demo drain: POST failed", "err", err)
			}
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func demoSources(w *demo.World, drains *logdrain.Store, reg prometheus.Registerer, every time.Duration) ([]scaler.Managed, error) {
	in, err := metrics.NewInstruments(reg)
	if err != nil {
		return nil, err
	}
	environ := append(slices.Clone(demoPolicies), "POLICY_DEFAULT_INTERVAL="+every.String())
	sources := []struct {
		kind string
		src  metrics.Source
	}{{"prometheus", w.WebLatency()}, {"sidekiq", w.QueueSize()}}
	var out []scaler.Managed
	for i, s := range sources {
		p, interval, err := config.LoadDecision(environ, i)
		if err != nil {
			return nil, fmt.Errorf("demo policy %d: %w", i, err)
		}
		spec := metrics.Spec{Kind: s.kind, Timeout: 2 * time.Second}
		out = append(out, managed(config.PolicyConfig{Index: i, Rules: p, Source: spec, Interval: interval}, []metrics.Source{s.src}, in))
	}
	// The third policy reads the drain app's router lines as the daemon would, through logdrain sources: the rate
	// over 10 s, and the p95 of the router's service time over 30 s.
	p, interval, err := config.LoadDecision(environ, len(sources))
	if err != nil {
		return nil, fmt.Errorf("demo policy %d: %w", len(sources), err)
	}
	rate := metrics.Spec{Kind: metrics.KindLogDrain, App: demo.DrainApp, Process: "web", Measure: metrics.MeasureRate,
		Quantile: metrics.DefaultQuantile, Window: 10 * time.Second, Timeout: 2 * time.Second}
	latency := rate
	latency.Measure, latency.Window = metrics.MeasureLatency, 30*time.Second
	conns := metrics.NewConnections(nil)
	conns.UseDrains(drains)
	var srcs []metrics.Source
	for _, spec := range []metrics.Spec{rate, latency} {
		src, err := conns.Open(spec)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, src)
	}
	pc := config.PolicyConfig{Index: len(sources), Rules: p, Source: rate, Also: []metrics.Spec{latency}, Interval: interval}
	out = append(out, managed(pc, srcs, in))
	return out, nil
}
