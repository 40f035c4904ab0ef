package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/internal/dynosize"
	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/logdrain"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/pgstate"
	"github.com/dynopilot/dynopilot/scaler"
)

// checkReport is what `dynopilot check` finds; --json prints it as is.
type checkReport struct {
	OK       bool          `json:"ok"`
	Problems []string      `json:"problems"`
	Account  string        `json:"account,omitempty"`
	DryRun   bool          `json:"dry_run"`
	Policies []checkPolicy `json:"policies"`
	Drains   []checkDrain  `json:"drains,omitempty"`
	State    string        `json:"state,omitempty"` // DYNOPILOT_STATE_URL: what pgstate.Store.Check found
	Notes    []string      `json:"notes,omitempty"`
}

// checkDrain is one app's log drain as the running daemon sees it: only the process that receives the drain knows
// what came, so `check` asks it (Global.StatusURL).
type checkDrain struct {
	logdrain.Stats
	Problem string `json:"problem,omitempty"`
}

// daemonView is what `check` reads from the running daemon's /api/policies.
type daemonView struct {
	Policies []daemonPolicy   `json:"policies"`
	Drains   []logdrain.Stats `json:"drains"`
}

type daemonPolicy struct {
	Policy       string   `json:"policy"`
	Reading      *float64 `json:"reading"`
	ReadingError string   `json:"reading_error"`
	Metrics      []struct {
		Value *float64 `json:"value"`
		Error string   `json:"error"`
	} `json:"metrics"`
}

type checkPolicy struct {
	Policy       string   `json:"policy"`
	Source       string   `json:"source"`
	Size         string   `json:"size,omitempty"`
	Generation   string   `json:"generation,omitempty"` // the app's: cedar or fir
	Current      *int     `json:"current"`
	Min          int      `json:"min"`
	Max          int      `json:"max"`
	SizeLimit    int      `json:"size_limit"`
	Reading      *float64 `json:"reading"`
	ReadingError string   `json:"reading_error,omitempty"`
	// Metrics are the policy's metrics, its own first (Reading is its own's), then its further ones (METRIC_2_, …).
	Metrics     []checkMetric `json:"metrics"`
	Action      string        `json:"action,omitempty"`
	Desired     *int          `json:"desired,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	Explanation string        `json:"explanation,omitempty"`
	Problems    []string      `json:"problems"`
}

// checkMetric is one metric of a policy as check read it.
type checkMetric struct {
	Metric       int      `json:"metric"` // 1 for the policy's own, 2 for METRIC_2_, …
	Source       string   `json:"source"`
	Mode         string   `json:"mode"`
	Reading      *float64 `json:"reading"`
	ReadingError string   `json:"reading_error,omitempty"`
}

func runCheck(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	quiet := slog.New(slog.DiscardHandler)
	redis.SetLogger(metrics.RedisLogger(quiet)) // errors reach the report; go-redis must not print them too
	rep := check(ctx, environ, quiet)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printCheck(stdout, rep)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// check validates the configuration and, read-only, everything it points at. It never scales.
func check(ctx context.Context, environ []string, log *slog.Logger) checkReport {
	rep := checkReport{Problems: []string{}, Policies: []checkPolicy{}}
	cfg, err := config.Load(environ)
	if err != nil {
		for _, p := range setting.Flatten(err) {
			rep.Problems = append(rep.Problems, p.Error())
		}
		return rep
	}
	rep.DryRun = cfg.Global.DryRun
	client, err := newClient(cfg.Global, prometheus.NewRegistry(), log)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
		return rep
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	acct, err := client.Account(cctx)
	if err != nil {
		rep.Problems = append(rep.Problems, "token: "+err.Error())
		return rep
	}
	rep.Account = acct.Email
	if cfg.Global.StateURL != "" {
		if msg, err := checkState(cctx, cfg.Global.StateURL, log); err != nil {
			rep.Problems = append(rep.Problems, "DYNOPILOT_STATE_URL: "+err.Error())
		} else {
			rep.State = msg
		}
	}

	// Formations (one read per app) and sources (one reading per policy) are read concurrently, checkConcurrency
	// at a time: a check of 200 sources that hang takes a few TIMEOUTs, not 200.
	apps := map[string]*appFormation{}
	var order []*appFormation
	for _, p := range cfg.Policies {
		if apps[p.Rules.App] == nil {
			apps[p.Rules.App] = &appFormation{app: p.Rules.App}
			order = append(order, apps[p.Rules.App])
		}
	}
	each(len(order), checkConcurrency, func(i int) {
		a := order[i]
		if info, err := client.App(cctx, a.app); err == nil {
			a.generation = info.Generation
		}
		fs, err := client.ListFormation(cctx, a.app)
		if err != nil {
			a.err = err
			return
		}
		a.byType = map[string]herokuapi.Formation{}
		for _, f := range fs {
			a.byType[strings.ToLower(f.Type)] = f
		}
	})
	conns := metrics.NewConnections(log)
	defer conns.Close()
	in, _ := metrics.NewInstruments(nil)
	view, viewProblem := readDaemon(cctx, cfg, &rep)
	if viewProblem != "" {
		rep.Problems = append(rep.Problems, viewProblem)
	}

	// The decisions are the daemon's own: a scaler with scaling off, over the formations just read and the
	// policies' sources, evaluated once. A logdrain policy's reading comes from the running daemon, the only
	// process its drain reaches.
	policies := make([]scaler.Managed, 0, len(cfg.Policies))
	for _, p := range cfg.Policies {
		var srcs []metrics.Source
		for i, spec := range p.Sources() {
			var src metrics.Source = daemonReading{view: view, policy: p.Rules.Name(), metric: i}
			if spec.Kind != metrics.KindLogDrain {
				opened, err := conns.Open(spec)
				if err != nil {
					opened = failing{err}
				}
				src = opened
			}
			srcs = append(srcs, src)
		}
		policies = append(policies, managed(p, srcs, in))
	}
	sc, err := scaler.New(scaler.Options{Heroku: formationsRead(apps), Policies: policies, Preview: true,
		Registerer: prometheus.NewRegistry(), Logger: log, Concurrency: checkConcurrency})
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
		return rep
	}
	sc.EvaluateAll(cctx)
	now := time.Now()
	statuses := map[string]scaler.Status{}
	for _, st := range sc.Statuses() {
		statuses[st.Policy] = st
	}

	for _, p := range cfg.Policies {
		a := apps[p.Rules.App]
		st := statuses[p.Rules.Name()]
		cp := checkPolicy{Policy: p.Rules.Name(), Source: p.Source.String(), Generation: a.generation, Problems: []string{}}
		f, found := a.byType[strings.ToLower(p.Rules.Process)]
		switch {
		case a.err != nil:
			cp.Problems = append(cp.Problems, fmt.Sprintf("%sAPP=%s: %v", p.Prefix(), a.app, a.err))
		case !found:
			cp.Problems = append(cp.Problems, fmt.Sprintf("%sPROCESS=%s: app %s has no such process type (it has %s)", p.Prefix(), p.Rules.Process, a.app, typeList(a.byType)))
		default:
			q := f.Quantity
			cp.Current, cp.Size = &q, f.SizeName()
		}
		cp.Min, cp.Max, cp.SizeLimit, _ = p.Rules.Bounds(now, cp.Size)
		if found && p.Rules.SizeLimit == 0 && dynosize.Limit(cp.Size) < p.Rules.Max {
			cp.Problems = append(cp.Problems, fmt.Sprintf("%sMAX=%d: %s dynos are limited to %d per process type (set %sSIZE_LIMIT if Heroku support raised it)",
				p.Prefix(), p.Rules.Max, cp.Size, dynosize.Limit(cp.Size), p.Prefix()))
		}
		cp.Reading, cp.ReadingError = st.Reading, st.ReadingError
		for i, spec := range p.Sources() {
			m := checkMetric{Metric: i + 1, Source: spec.String()}
			if i < len(st.Metrics) {
				m.Mode, m.Reading, m.ReadingError = st.Metrics[i].Mode, st.Metrics[i].Value, st.Metrics[i].Error
			}
			cp.Metrics = append(cp.Metrics, m)
			switch {
			case !p.Rules.Enabled:
			case m.ReadingError != "" && spec.Kind == metrics.KindLogDrain && view == nil:
				// nobody to ask: a note says how, not a problem
			case m.ReadingError != "":
				cp.Problems = append(cp.Problems, fmt.Sprintf("%sSOURCE: %s", p.MetricPrefix(i), m.ReadingError))
			}
		}
		if st.RunningError != "" {
			cp.Problems = append(cp.Problems, fmt.Sprintf("%sPROTECT_BUSY: %s", p.Prefix(), st.RunningError))
		}
		if cp.Current != nil && (st.Evaluated || !p.Rules.Enabled) {
			desired := st.Desired
			cp.Action, cp.Desired, cp.Reason, cp.Explanation = st.Action, &desired, st.Reason, st.Explanation
			if p.Rules.Enabled {
				cp.Min, cp.Max = st.Min, st.Max
			} else {
				desired = *cp.Current
			}
		}
		rep.Policies = append(rep.Policies, cp)
	}
	rep.OK = len(rep.Problems) == 0
	for _, p := range rep.Policies {
		rep.OK = rep.OK && len(p.Problems) == 0
	}
	for _, d := range rep.Drains {
		rep.OK = rep.OK && d.Problem == ""
	}
	return rep
}

// checkState opens the state database as `run` would (refusing a transaction pooler, migrating the schema) and
// checks that the leader lock can be had, or is held by a running instance; it never keeps the lock.
func checkState(ctx context.Context, url string, log *slog.Logger) (string, error) {
	st, err := pgstate.Open(ctx, pgstate.Options{URL: url, Logger: log})
	if err != nil {
		return "", err
	}
	defer st.Close()
	return st.Check(ctx)
}

// readDaemon asks the running daemon what only it knows when a policy reads a log drain: each drain's activity and
// those policies' readings. Without a URL to ask, it says how to give one in a note; a daemon that cannot be read
// is a problem.
func readDaemon(ctx context.Context, cfg *config.Config, rep *checkReport) (*daemonView, string) {
	apps := cfg.DrainApps()
	if len(apps) == 0 {
		return nil, ""
	}
	base := cfg.Global.StatusURL()
	if base == "" {
		rep.Notes = append(rep.Notes, "log drains are received by the running daemon: set DYNOPILOT_URL to its URL (or enable runtime-dyno-metadata) to see here what they delivered and the readings taken from them")
		return nil, ""
	}
	view, err := fetchDaemon(ctx, base+"/api/policies")
	if err != nil {
		return nil, fmt.Sprintf("DYNOPILOT_URL: reading the running daemon's drains: %v", err)
	}
	for _, app := range apps {
		d := checkDrain{Stats: logdrain.Stats{App: app}}
		if i := slices.IndexFunc(view.Drains, func(s logdrain.Stats) bool { return strings.EqualFold(s.App, app) }); i >= 0 {
			d.Stats = view.Drains[i]
		}
		if d.LastLine.IsZero() {
			d.Problem = fmt.Sprintf("nothing received from the drain of %s: add it with heroku drains:add \"https://dynopilot:$DYNOPILOT_DRAIN_TOKEN@HOST/drain/%s\" -a %s", app, app, app)
		}
		rep.Drains = append(rep.Drains, d)
	}
	return view, ""
}

func fetchDaemon(ctx context.Context, url string) (*daemonView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", setting.Redact("", url), resp.Status)
	}
	var v daemonView
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&v); err != nil {
		return nil, fmt.Errorf("GET %s: expected dynopilot's /api/policies JSON: %w", setting.Redact("", url), err)
	}
	return &v, nil
}

// daemonReading is the source of a logdrain metric in `check`: what the running daemon last read for the policy's
// metric (0: its own, 1: METRIC_2_, …).
type daemonReading struct {
	view   *daemonView
	policy string
	metric int
}

func (d daemonReading) Read(context.Context) (metrics.Reading, error) {
	return d.view.reading(d.policy, d.metric)
}

// failing is the source of a policy whose source could not be opened: every reading is that error.
type failing struct{ err error }

func (f failing) Read(context.Context) (metrics.Reading, error) { return metrics.Reading{}, f.err }

// formationsRead gives the scaler of `check` the formations already read, and refuses every change: `check` never
// scales (the scaler runs with Preview besides).
type formationsRead map[string]*appFormation

func (f formationsRead) ListFormation(_ context.Context, app string) ([]herokuapi.Formation, error) {
	a := f[app]
	if a == nil {
		return nil, fmt.Errorf("app %s was not read", app)
	}
	if a.err != nil {
		return nil, a.err
	}
	out := make([]herokuapi.Formation, 0, len(a.byType))
	for _, fm := range a.byType {
		out = append(out, fm)
	}
	return out, nil
}

func (formationsRead) UpdateFormation(context.Context, string, string, int) (herokuapi.Formation, error) {
	return herokuapi.Formation{}, errors.New("check never scales")
}

func (formationsRead) BatchUpdateFormation(context.Context, string, []herokuapi.FormationUpdate) ([]herokuapi.Formation, error) {
	return nil, errors.New("check never scales")
}

var _ scaler.Heroku = formationsRead(nil)

// reading is the daemon's last reading of a policy's metric (0: its own), as check shows it.
func (v *daemonView) reading(policy string, metric int) (metrics.Reading, error) {
	if v == nil {
		return metrics.Reading{}, errors.New("read by the running daemon from its log drain (set DYNOPILOT_URL to see it here)")
	}
	i := slices.IndexFunc(v.Policies, func(p daemonPolicy) bool { return p.Policy == policy })
	if i < 0 {
		return metrics.Reading{}, fmt.Errorf("the running daemon has no policy %s: is it running this configuration?", policy)
	}
	p := v.Policies[i]
	value, failed := p.Reading, p.ReadingError // a daemon from before several metrics: its own only
	switch {
	case metric < len(p.Metrics):
		value, failed = p.Metrics[metric].Value, p.Metrics[metric].Error
	case metric > 0:
		return metrics.Reading{}, fmt.Errorf("the running daemon has no metric %d for %s: is it running this configuration?", metric+1, policy)
	}
	switch {
	case failed != "":
		return metrics.Reading{}, errors.New("the running daemon's last reading failed: " + failed)
	case value == nil:
		return metrics.Reading{}, errors.New("the running daemon has not read it yet")
	}
	return metrics.Reading{Value: *value}, nil
}

// checkConcurrency is how many formation reads, and how many source readings, `check` has in flight at once: enough
// that a configuration of hundreds of policies is checked in a few TIMEOUTs, few enough not to open hundreds of
// connections to one database or Redis at once.
const checkConcurrency = 16

// appFormation is one app's formation as check read it.
type appFormation struct {
	app        string
	generation string // from GET /apps/{app}; "" when it could not be read (the formation's read says why)
	byType     map[string]herokuapi.Formation
	err        error
}

// each calls fn(0) … fn(n-1), at most limit at a time, and returns when all have returned.
func each(n, limit int, fn func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

func typeList(m map[string]herokuapi.Formation) string {
	var names []string
	for _, f := range m {
		names = append(names, f.Type)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func printCheck(w io.Writer, rep checkReport) {
	if len(rep.Problems) > 0 {
		fmt.Fprintf(w, "%d problem(s):\n", len(rep.Problems))
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	if rep.Account != "" {
		fmt.Fprintf(w, "token ok: account %s\n", rep.Account)
	}
	if rep.State != "" {
		fmt.Fprintf(w, "state ok: %s\n", rep.State)
	}
	if len(rep.Policies) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POLICY\tGENERATION\tSIZE\tNOW\tMIN\tMAX\tREADING\tDECISION\tREASON")
		for _, p := range rep.Policies {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", p.Policy, orDash(p.Generation), orDash(p.Size), intOrDash(p.Current), p.Min, p.Max, floatOrDash(p.Reading), decision(p), orDash(p.Reason))
		}
		tw.Flush()
		for _, p := range rep.Policies {
			for _, m := range p.Metrics {
				if len(p.Metrics) > 1 {
					fmt.Fprintf(w, "%s: metric %d (%s, %s): %s\n", p.Policy, m.Metric, m.Source, m.Mode, floatOrDash(m.Reading))
				}
			}
			if p.Explanation != "" {
				fmt.Fprintf(w, "%s: %s\n", p.Policy, p.Explanation)
			}
			for _, pr := range p.Problems {
				fmt.Fprintf(w, "%s: problem: %s\n", p.Policy, pr)
			}
		}
	}
	if len(rep.Drains) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DRAIN\tLAST LINE\tLINES/MIN\tROUTER\tRUNTIME\tAPP\tLOST\tINVALID")
		for _, d := range rep.Drains {
			last := "never"
			if !d.LastLine.IsZero() {
				last = time.Since(d.LastLine).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%d\t%d\t%d\t%d\n", d.App, last, d.LinesPerMinute, d.Lines["router"], d.Lines["runtime"],
				d.Lines["app"], d.Lines["lost"], d.Lines["invalid"])
		}
		tw.Flush()
		for _, d := range rep.Drains {
			if d.Problem != "" {
				fmt.Fprintf(w, "drain %s: problem: %s\n", d.App, d.Problem)
			}
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if rep.OK {
		fmt.Fprintln(w, "everything is fine")
	} else {
		fmt.Fprintln(w, "check failed")
	}
}

func decision(p checkPolicy) string {
	if p.Desired == nil || p.Current == nil {
		return orDash(p.Action)
	}
	return fmt.Sprintf("%s %d -> %d", p.Action, *p.Current, *p.Desired)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func intOrDash(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func floatOrDash(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.4g", *p)
}
