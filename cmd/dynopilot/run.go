package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/logdrain"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/pgstate"
	"github.com/dynopilot/dynopilot/scaler"
)

// shutdownGrace bounds everything after SIGTERM; Heroku kills the dyno 30 seconds after it.
const shutdownGrace = 8 * time.Second

func runDaemon(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "dynopilot run: unexpected arguments %q: everything is configured by environment variables\n", args)
		return 2
	}
	cfg, err := config.Load(environ)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	log := newLogger(stderr, cfg.Global.LogLevel, cfg.Global.LogFormat)
	redis.SetLogger(metrics.RedisLogger(log)) // go-redis logs failed dials through one process-wide logger
	reg := newRegistry()
	client, err := newClient(cfg.Global, reg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	acct, err := client.Account(actx)
	cancel()
	switch {
	case errors.Is(err, herokuapi.Unauthorized) || errors.Is(err, herokuapi.Forbidden):
		log.Error("the Heroku API refused the token", "err", err)
		return 1
	case err != nil:
		log.Warn("could not reach the Heroku API yet; carrying on", "err", err)
	default:
		log.Info("authenticated", "account", acct.Email)
	}

	conns := metrics.NewConnections(log)
	defer conns.Close()
	drains, err := newDrains(cfg.Global.DrainToken, cfg.DrainApps(), reg, log)
	if err != nil {
		log.Error("cannot receive log drains", "err", err)
		return 1
	}
	if drains != nil {
		conns.UseDrains(drains)
	}
	policies, err := openSources(cfg, conns, reg)
	if err != nil {
		log.Error("cannot open sources", "err", err)
		return 1
	}
	return serve(ctx, serveOptions{cfg: cfg.Global, client: client, policies: policies, drains: drains, reg: reg, log: log, stdout: stdout})
}

// newDrains makes the log drain receiver for the apps that a policy reads through their drain; nil when there are
// none, and then /drain/ answers 404.
func newDrains(token string, apps []string, reg prometheus.Registerer, log *slog.Logger) (*logdrain.Store, error) {
	if token == "" || len(apps) == 0 {
		return nil, nil
	}
	return logdrain.New(logdrain.Options{Token: token, Apps: apps, Registerer: reg, Logger: log})
}

// printProblems lists every configuration problem, one a line.
func printProblems(w io.Writer, err error) {
	problems := setting.Flatten(err)
	fmt.Fprintf(w, "dynopilot: %d configuration problem(s):\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(w, "  - %v\n", p)
	}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newClient builds the one Heroku client, with the account's one limiter.
func newClient(g config.Global, reg prometheus.Registerer, log *slog.Logger) (*herokuapi.Client, error) {
	tok, src, err := herokuapi.LookupToken(g.APIKey, herokuapi.DefaultNetrcPath())
	if err != nil {
		return nil, err
	}
	log.Info("using the Heroku token from " + src)
	lim, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: g.APIRate, PerHour: float64(g.APIRate), Reserve: g.APIReserve})
	if err != nil {
		return nil, err
	}
	return herokuapi.New(herokuapi.Config{BaseURL: g.APIURL, Token: tok, Version: buildVersion(), Limiter: lim, Registerer: reg, Logger: log})
}

// openSources opens each policy's sources (its own and its further metrics') on the shared connections and wraps
// them with the source instruments.
func openSources(cfg *config.Config, conns *metrics.Connections, reg prometheus.Registerer) ([]scaler.Managed, error) {
	in, err := metrics.NewInstruments(reg)
	if err != nil {
		return nil, err
	}
	var out []scaler.Managed
	for _, p := range cfg.Policies {
		var srcs []metrics.Source
		for i, spec := range p.Sources() {
			src, err := conns.Open(spec)
			if err != nil {
				return nil, fmt.Errorf("%sSOURCE: %w", p.MetricPrefix(i), err)
			}
			srcs = append(srcs, src)
		}
		out = append(out, managed(p, srcs, in))
	}
	return out, nil
}

// managed is the one path from a configured policy to one the scaler runs, for run, demo and check alike: its
// opened sources (srcs[i] for p.Sources()[i]: its own, then its further metrics') each wrapped with the source
// instruments (the timeout, the metrics, refusing negative readings).
func managed(p config.PolicyConfig, srcs []metrics.Source, in *metrics.Instruments) scaler.Managed {
	name := p.Rules.Name()
	m := scaler.Managed{Rules: p.Rules, Source: in.Wrap(name, p.Source, srcs[0]), SourceKind: p.Source.Kind, Measure: p.Source.Measure,
		Interval: p.Interval, Timeout: p.Source.Timeout}
	for i, spec := range p.Also {
		m.Also = append(m.Also, scaler.Metric{Source: in.Wrap(name, spec, srcs[i+1]), SourceKind: spec.Kind, Measure: spec.Measure, Timeout: spec.Timeout})
	}
	return m
}

type serveOptions struct {
	cfg      config.Global
	client   *herokuapi.Client
	policies []scaler.Managed
	drains   *logdrain.Store // nil: no log drain endpoint
	reg      *prometheus.Registry
	log      *slog.Logger
	stdout   io.Writer
	banner   func(url string) // called once HTTP listens (demo prints its URL)
}

// serve runs the scaler, HTTP, the Pushgateway loop and the token-expiry check until ctx ends, then shuts down
// within shutdownGrace.
func serve(ctx context.Context, o serveOptions) int {
	lim := o.client.Limiter().Config()
	events, err := newEventPath(o.cfg, o.reg, o.log)
	if err != nil {
		o.log.Error("cannot start", "err", err)
		return 1
	}
	so := scaler.Options{
		Heroku: o.client, Policies: o.policies, DryRun: o.cfg.DryRun, Refresh: o.cfg.FormationRefresh,
		APIBudget: float64(lim.PerHour) - float64(lim.Reserve), Registerer: o.reg, Logger: o.log, Version: buildVersion(),
		PatchTimeout: 5 * time.Second, Events: events.sink, History: events.history,
	}
	lead := &leadership{path: events, started: time.Now()}
	if o.drains != nil {
		so.Drains = o.drains.Stats
	}
	// Several instances: one leads, through PostgreSQL, and each policy's state is kept there.
	var s *scaler.Scaler
	var state *pgstate.Store
	if o.cfg.StateURL != "" {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := pgstate.Open(octx, pgstate.Options{URL: o.cfg.StateURL, Logger: o.log,
			OnChange: func(leading bool) { // Run calls it, after s is set
				s.LeadershipChanged(leading)
				lead.changed(ctx, leading)
				if leading { // a new leader shows the history its predecessor recorded
					go loadHistory(ctx, events.history, state, o.policies, o.log)
				}
			}})
		cancel()
		if err != nil {
			o.log.Error("cannot use DYNOPILOT_STATE_URL", "err", err)
			return 1
		}
		defer st.Close()
		state, so.Leader, so.State = st, st, st
	}
	s, err = scaler.New(so)
	if err != nil {
		o.log.Error("cannot start", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", o.cfg.ListenAddr())
	if err != nil {
		o.log.Error("cannot listen for HTTP", "addr", o.cfg.ListenAddr(), "err", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler(o.reg))
	if o.drains != nil {
		mux.Handle("/drain/", o.drains)
		mux.Handle("/api/traffic/", o.drains.TrafficHandler())
	}
	// Logplex gives a drain POST 5 s; a body that takes longer than 30 s to arrive is not a drain's.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go srv.Serve(ln)
	url := "http://" + displayAddr(ln.Addr())
	o.log.Info("serving HTTP", "url", url)
	if o.banner != nil {
		o.banner(url)
	}

	done := make(chan struct{})
	var background []chan struct{}
	if o.cfg.PushgatewayURL != "" {
		p, err := scaler.NewPusher(o.cfg.PushgatewayURL, o.reg, o.cfg.PushInterval, o.log)
		if err != nil {
			o.log.Error("cannot push metrics", "err", err)
			return 1
		}
		ch := make(chan struct{})
		background = append(background, ch)
		go func() { defer close(ch); p.Run(ctx) }()
	}
	// The lock is released only once the scaler has stopped, so that a PATCH still finishing after SIGTERM is never
	// beside the next leader's.
	stateCtx, stopState := context.WithCancel(context.WithoutCancel(ctx))
	defer stopState()
	if state != nil {
		ch := make(chan struct{})
		background = append(background, ch)
		go func() { defer close(ch); state.Run(stateCtx) }()
		go saveEveryMinute(ctx, state, kept(events.history, state, s), o.log)
	}
	if o.cfg.AuthorizationID != "" {
		go watchTokenExpiry(ctx, o.client, o.cfg.AuthorizationID, &tokenExpiring{path: events}, o.log)
	}
	go func() { defer close(done); s.Run(ctx) }()

	<-ctx.Done()
	o.log.Info("shutting down")
	deadline := time.After(shutdownGrace)
	select {
	case <-done:
	case <-deadline:
		o.log.Warn("evaluations still running at the shutdown deadline")
	}
	if state != nil && state.Leading() { // the next leader (or this app's next process) goes on from here
		hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for _, k := range kept(events.history, state, s) {
			if err := k.save(hctx); err != nil {
				o.log.Warn("cannot save the "+k.what+" at shutdown", "err", err)
			}
		}
		cancel()
	}
	stopState() // now the other instance may lead: within seconds
	bctx, cancelBus := context.WithTimeout(context.Background(), 3*time.Second)
	if err := events.bus.Close(bctx); err != nil { // what notifiers could not send in time is counted as dropped
		o.log.Warn("notifications still queued at shutdown", "err", err)
	}
	cancelBus()
	for _, ch := range background {
		select {
		case <-ch:
		case <-deadline:
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	o.log.Info("stopped")
	return 0
}

// watchTokenExpiry publishes the token's expiry hourly, and warns when it is near.
func watchTokenExpiry(ctx context.Context, c *herokuapi.Client, id string, expiring *tokenExpiring, log *slog.Logger) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		a, err := c.Authorization(cctx, id)
		cancel()
		switch {
		case err != nil:
			log.Warn("cannot read the token's authorization", "authorization", id, "err", err)
		case a.ExpiresIn != nil && *a.ExpiresIn < 14*24*time.Hour:
			log.Warn("the Heroku API token expires soon; create a new one with `heroku authorizations:create -d dynopilot`", "expires_in", a.ExpiresIn.Round(time.Hour))
			expiring.check(ctx, *a.ExpiresIn, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}

// keptState is something the leader keeps in the state database beside the policies' decision state, which the
// scaler saves as it decides: what changes with every reading is saved every minute and as the leader stops.
type keptState struct {
	what string // for a person: "status history"
	save func(ctx context.Context) error
}

// kept lists what the leader saves every minute: the status history, and the learned load profiles of the
// policies that predict (PREDICT).
func kept(h *scaler.History, st *pgstate.Store, s *scaler.Scaler) []keptState {
	return []keptState{
		{"status history", func(ctx context.Context) error { return h.Save(ctx, st) }},
		{"learned load profiles", s.SavePredictions},
	}
}

// saveEveryMinute saves what the leader keeps every minute, while this instance leads (the store's writes are
// fenced: a standby's are refused, and it records nothing anyway).
func saveEveryMinute(ctx context.Context, st *pgstate.Store, ks []keptState, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
		if !st.Leading() {
			continue
		}
		for _, k := range ks {
			if err := k.save(ctx); err != nil && ctx.Err() == nil {
				log.Warn("cannot save the "+k.what+"; trying again in a minute", "err", err)
			}
		}
	}
}

// loadHistory reads the history saved by an earlier leader, for the status page.
func loadHistory(ctx context.Context, h *scaler.History, st *pgstate.Store, policies []scaler.Managed, log *slog.Logger) {
	names := make([]string, len(policies))
	for i, p := range policies {
		names[i] = p.Rules.Name()
	}
	if err := h.Load(ctx, st, names); err != nil && ctx.Err() == nil {
		log.Warn("cannot read the saved status history; the page shows what this instance records", "err", err)
	}
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if host == "::" || host == "0.0.0.0" || host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
