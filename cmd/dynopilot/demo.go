package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/demo"
	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/scaler"
)

// demoPolicies are the demo's two policies, written as a user would write them in the environment.
var demoPolicies = []policy.Settings{
	{App: demo.App, Process: "web", Enabled: "true", Min: "1", Max: "10", Mode: "target", Target: "250ms", Tolerance: "0.1",
		UpBy: "1", DownBy: "1", Activation: "0", UpCooldown: "10s", DownCooldown: "30s", UpStabilization: "0",
		DownStabilization: "30s", MaxStepUp: "0", MaxStepDown: "2", FallbackAfter: "3"},
	{App: demo.App, Process: "worker", Enabled: "true", Min: "0", Max: "8", Mode: "ratio", PerDyno: "150", Tolerance: "0.1",
		UpBy: "1", DownBy: "1", Activation: "10", UpCooldown: "5s", DownCooldown: "30s", UpStabilization: "0",
		DownStabilization: "30s", MaxStepUp: "0", MaxStepDown: "0", FallbackAfter: "3"},
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

	g := config.Global{APIURL: api.URL, APIRate: 4500, APIReserve: 450, FormationRefresh: 5 * time.Second,
		Listen: *listen, PushgatewayURL: *pushgateway, PushInterval: 5 * time.Second, DryRun: *dryRun,
		AuthorizationID: "demo-authorization"}
	reg := newRegistry()
	lim, _ := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: g.APIRate, PerHour: float64(g.APIRate), Reserve: g.APIReserve})
	client, err := herokuapi.New(herokuapi.Config{BaseURL: api.URL, Token: "demo-token", Version: buildVersion(), Limiter: lim, Registerer: reg, Logger: log})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	policies, err := demoSources(world, reg, *interval)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	return serve(ctx, serveOptions{cfg: g, client: client, policies: policies, reg: reg, log: log, stdout: stdout,
		banner: func(url string) {
			fmt.Fprintf(stdout, "dynopilot demo: app %s on a fake Heroku at %s\n", demo.App, api.URL)
			fmt.Fprintf(stdout, "status page %s/  ·  decisions %s/api/policies  ·  metrics %s/metrics\n", url, url, url)
		}})
}

func demoSources(w *demo.World, reg prometheus.Registerer, every time.Duration) ([]scaler.Policy, error) {
	in, err := metrics.NewInstruments(reg)
	if err != nil {
		return nil, err
	}
	interval := "@every " + every.String()
	sources := []struct {
		kind string
		src  metrics.Source
	}{{"prometheus", w.WebLatency()}, {"sidekiq", w.QueueSize()}}
	var out []scaler.Policy
	for i, s := range demoPolicies {
		p, err := s.Parse()
		if err != nil {
			return nil, fmt.Errorf("demo policy %d: %w", i, err)
		}
		spec := metrics.Spec{Kind: sources[i].kind, Timeout: 2 * time.Second}
		out = append(out, scaler.Policy{Policy: p, Source: in.Wrap(p.Name(), spec, sources[i].src), SourceKind: sources[i].kind, Interval: interval})
	}
	return out, nil
}
