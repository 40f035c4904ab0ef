package dashboards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/dynopilot/dynopilot/internal/servicetest"
)

// Files under test, relative to this package's directory.
const (
	dashboardFile = "dynopilot.json"
	rulesFile     = "../alerts/dynopilot.rules.yml"
	rulesUnitFile = "testdata/dynopilot.rules.test.yml"
)

// demoPolicies are the policies `dynopilot demo` configures: what the dashboard's policy variable must offer.
var demoPolicies = []string{"demo-api/web", "demo-shop/web", "demo-shop/worker"}

// alertNames are the alerts alerts/dynopilot.rules.yml must define (DynopilotDown twice: scraped and pushed).
var alertNames = []string{"DynopilotDown", "DynopilotNotEvaluating", "DynopilotPinnedAtMax", "DynopilotRateLimitPoolLow",
	"DynopilotReadingsFailing", "DynopilotScaleEventsFailing", "DynopilotTokenExpiringSoon"}

// publishedMetrics are the metric names dynopilot publishes (../shared/SPEC.md plus the four the scaler adds for the
// dashboard and alerts). The dashboard and the rules may use these, and nothing else named dynopilot_.
var publishedMetrics = []string{
	"dynopilot_policy_info", "dynopilot_reading", "dynopilot_target", "dynopilot_quantity",
	"dynopilot_desired_quantity", "dynopilot_min_quantity", "dynopilot_max_quantity", "dynopilot_decisions_total",
	"dynopilot_scale_events_total", "dynopilot_last_scale_timestamp_seconds", "dynopilot_reading_errors_total",
	"dynopilot_reading_duration_seconds", "dynopilot_evaluation_duration_seconds", "dynopilot_heroku_requests_total",
	"dynopilot_heroku_request_duration_seconds", "dynopilot_heroku_ratelimit_remaining",
	"dynopilot_heroku_token_expires_in_seconds", "dynopilot_formation_refresh_interval_seconds",
	"dynopilot_estimated_cost_dollars_per_hour", "dynopilot_dry_run", "dynopilot_build_info",
	"dynopilot_last_evaluation_timestamp_seconds", "dynopilot_evaluation_interval_seconds",
	"dynopilot_cooldown_remaining_seconds", "dynopilot_dyno_price_dollars_per_hour",
	"dynopilot_metric_reading", "dynopilot_predicted_quantity", // only for policies on several metrics, or that predict (the demo's drain app does both)
}

// publishedOnlyWhen lists metrics dynopilot publishes only in some configurations. A dashboard query that needs one
// may come back empty against the demo, but only while the demo does not publish it: once it does, its queries must
// return data like every other.
var publishedOnlyWhen = map[string]string{
	"dynopilot_heroku_token_expires_in_seconds": "HEROKU_AUTHORIZATION_ID is set (the demo sets none)",
	"dynopilot_metric_reading":                  "a policy on several metrics has read one (the demo's drain app, once its drain has delivered a window)",
}

// Grafana's built-in variables, as the test substitutes them. A range query's step in Grafana is at least the
// annotation's or panel's min step; the test uses 1s so the short life of the demo is enough.
var builtinVars = strings.NewReplacer(
	"${__rate_interval}", "15s", "$__rate_interval", "15s",
	"${__interval_ms}", "10000", "$__interval_ms", "10000",
	"${__interval}", "10s", "$__interval", "10s",
	"${__range_ms}", "60000", "$__range_ms", "60000",
	"${__range_s}", "60", "$__range_s", "60",
	"${__range}", "1m", "$__range", "1m",
)

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	ID            *int   `json:"id"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Repeat     string         `json:"repeat"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row's panels
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
	Instant    bool           `json:"instant"`
}

type annotation struct {
	Name       string         `json:"name"`
	BuiltIn    int            `json:"builtIn"`
	Datasource *datasourceRef `json:"datasource"`
	Expr       string         `json:"expr"`
	Target     *target        `json:"target"`
}

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	where string
	expr  string // as written in the dashboard, with Grafana variables
	// overTime: evaluate as a range query over the test's life, as Grafana does for annotations (which keep only
	// moments of change); otherwise as an instant query now.
	overTime bool
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not a dashboard: %v", dashboardFile, err)
	}
	return d
}

// allPanels returns every panel, the panels of collapsed rows included.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// queries returns every expression of every panel and annotation of d.
func (d dashboard) queries() []query {
	var qs []query
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs = append(qs, query{where: fmt.Sprintf("panel %d %q query %s", p.ID, p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 {
			continue
		}
		qs = append(qs, query{where: fmt.Sprintf("annotation %q", a.Name), expr: a.Expr, overTime: true})
		if a.Target != nil && a.Target.Expr != a.Expr {
			qs = append(qs, query{where: fmt.Sprintf("annotation %q target", a.Name), expr: a.Target.Expr, overTime: true})
		}
	}
	return qs
}

func (d dashboard) variable(name string) (variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return variable{}, false
}

var metricName = regexp.MustCompile(`\bdynopilot_[a-z0-9_]+`)

// metricsIn returns the dynopilot_ metric names expr uses, histogram series mapped to their family.
func metricsIn(expr string) []string {
	var out []string
	for _, m := range metricName.FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(publishedMetrics, base) {
				m = base
			}
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// TestDashboardIsImportable checks, without any service, what Grafana needs to import the dashboard as is and what
// the dashboard promises: current schema, the datasource and policy variables, every query on the datasource
// variable, and only published metric names.
func TestDashboardIsImportable(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion = %d, expected 39 or later (Grafana 10.4+)", d.SchemaVersion)
	}
	if d.ID != nil {
		t.Errorf("id = %d, expected null so that importing creates the dashboard instead of overwriting another", *d.ID)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: expected both set", d.UID, d.Title)
	}
	ds := datasourceRef{Type: "prometheus", UID: "${datasource}"}

	v, ok := d.variable("datasource")
	if !ok || v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("datasource variable = %+v, expected type datasource with query \"prometheus\"", v)
	}
	v, ok = d.variable("policy")
	switch {
	case !ok:
		t.Error("no policy variable")
	case v.Type != "query" || v.Definition != "label_values(dynopilot_policy_info, policy)" || !v.Multi || !v.IncludeAll:
		t.Errorf("policy variable = %+v, expected a multi-value query variable with All, label_values(dynopilot_policy_info, policy)", v)
	case v.Datasource == nil || *v.Datasource != ds:
		t.Errorf("policy variable datasource = %+v, expected %+v", v.Datasource, ds)
	case !strings.Contains(string(v.Query), v.Definition):
		t.Errorf("policy variable query %s does not match its definition %q", v.Query, v.Definition)
	}

	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", p.Title, other, p.ID)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			if p.Repeat != "" && p.Repeat != "policy" {
				t.Errorf("row %q repeats over %q, expected policy", p.Title, p.Repeat)
			}
			continue
		}
		if p.Datasource == nil || *p.Datasource != ds {
			t.Errorf("panel %q datasource = %+v, expected %+v", p.Title, p.Datasource, ds)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || *tg.Datasource != ds {
				t.Errorf("panel %q query %s datasource = %+v, expected %+v", p.Title, tg.RefID, tg.Datasource, ds)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: query refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	annotations := 0
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 {
			continue
		}
		annotations++
		if a.Datasource == nil || *a.Datasource != ds {
			t.Errorf("annotation %q datasource = %+v, expected %+v", a.Name, a.Datasource, ds)
		}
		if a.Target == nil || a.Target.Expr != a.Expr {
			t.Errorf("annotation %q: target.expr differs from expr %q (Grafana versions read one or the other)", a.Name, a.Expr)
		}
	}
	if annotations == 0 {
		t.Error("no annotation: scale events must be shown as annotations")
	}

	qs := d.queries()
	used := map[string]bool{}
	for _, q := range qs {
		if strings.TrimSpace(q.expr) == "" {
			t.Errorf("%s: empty expression", q.where)
		}
		for _, m := range metricsIn(q.expr) {
			used[m] = true
			if !slices.Contains(publishedMetrics, m) {
				t.Errorf("%s uses %s, which dynopilot does not publish", q.where, m)
			}
		}
		if s := builtinVars.Replace(strings.NewReplacer("${policy}", "x", "$policy", "x").Replace(q.expr)); strings.Contains(s, "$") {
			t.Errorf("%s: variable the tests do not know in %q", q.where, q.expr)
		}
	}
	// The dashboard shows everything dynopilot publishes.
	for _, m := range publishedMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
	t.Logf("%d panels, %d queries (%d of them annotations)", len(ids), len(qs), annotations)
}

// TestAlertRulesUnit checks the rules with promtool, and drives every rule into firing, and near misses into
// silence, with synthetic series (testdata/dynopilot.rules.test.yml).
func TestAlertRulesUnit(t *testing.T) {
	promtool := servicetest.Binary(t, servicetest.PromtoolBin)
	if out, err := runWith(t, nil, promtool, "check", "rules", rulesFile); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range alertNames {
		if !strings.Contains(string(rules), "alert: "+name+"\n") {
			t.Errorf("%s defines no alert %s", rulesFile, name)
		}
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "dynopilot.rules.yml"), withoutAnnotations(string(rules)))
	unit, err := os.ReadFile(rulesUnitFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "dynopilot.rules.test.yml"), string(unit))
	if out, err := runWith(t, nil, promtool, "test", "rules", filepath.Join(dir, "dynopilot.rules.test.yml")); err != nil {
		t.Fatalf("promtool test rules %s: %v\n%s", rulesUnitFile, err, out)
	}
}

// withoutAnnotations drops every `annotations:` block from rules (a block is the key's line and the lines indented
// deeper), so that promtool's unit tests, which compare annotations verbatim, check labels only.
func withoutAnnotations(rules string) string {
	var out []string
	skipDeeperThan := -1
	for _, line := range strings.Split(rules, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if skipDeeperThan >= 0 {
			if strings.TrimSpace(line) == "" || indent > skipDeeperThan {
				continue
			}
			skipDeeperThan = -1
		}
		if strings.TrimSpace(line) == "annotations:" {
			skipDeeperThan = indent
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

var forLine = regexp.MustCompile(`(?m)^(\s+for:\s*)\S+[ \t]*$`)

// shortenedRules is the rules file with every `for:` cut to 2s, so that a test lasting a minute can see alerts
// fire whose real delay is minutes (DynopilotPinnedAtMax waits 15m). Everything else is the file as shipped.
func shortenedRules(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(forLine.FindAllIndex(b, -1)) == 0 {
		t.Fatalf("%s: found no `for:` line to shorten", rulesFile)
	}
	path := filepath.Join(dir, "dynopilot.rules.yml")
	writeFile(t, path, forLine.ReplaceAllString(string(b), "${1}2s"))
	return path
}

// TestAgainstPrometheus runs the dashboard's every query and the alert rules against a real Prometheus watching
// `dynopilot demo`: scraped directly, and pushed through a real Pushgateway.
func TestAgainstPrometheus(t *testing.T) {
	prometheus := servicetest.Binary(t, servicetest.PrometheusBin)
	promtool := servicetest.Binary(t, servicetest.PromtoolBin)
	bin := buildDynopilot(t)
	d := loadDashboard(t)
	rules := shortenedRules(t, t.TempDir())

	t.Run("scraped", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		// A demo as it comes, one loaded past what MAX serves, and a target where nothing listens.
		demo := startDemo(t, bin, dir, "demo", nil)
		pinned := startDemo(t, bin, dir, "pinned", nil, "--load", "6")
		gone := "127.0.0.1:" + freePort(t)

		body := demo.metrics(t)
		if out, err := runWith(t, strings.NewReader(body), promtool, "check", "metrics"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("promtool check metrics on the demo's /metrics: err %v, expected no findings, got:\n%s", err, out)
		}
		published := families(t, body)

		prom := startPrometheus(t, prometheus, dir, rules, fmt.Sprintf(`
  - job_name: dynopilot
    static_configs:
      - targets: [%q, %q]
  - job_name: dynopilot-gone
    static_configs:
      - targets: [%q]
`, demo.addr, pinned.addr, gone))

		checkQueries(t, prom, d, published)
		checkRules(t, prom)
		// The loaded demo holds web at MAX with latency far above target: PinnedAtMax fires for it. The target
		// nobody answers on makes DynopilotDown fire for that instance only.
		waitAlerts(t, prom, map[string]func(v1.Alert) bool{
			"DynopilotPinnedAtMax": func(a v1.Alert) bool {
				return a.Labels["policy"] == "demo-shop/web" && string(a.Labels["instance"]) == pinned.addr
			},
			"DynopilotDown": func(a v1.Alert) bool {
				return string(a.Labels["instance"]) == gone && a.Labels["via"] == "scrape"
			},
		})
		// Nothing else is wrong with the demos: every other alert stays quiet.
		assertOnlyAlerts(t, prom, map[string]func(v1.Alert) bool{
			"DynopilotPinnedAtMax": func(v1.Alert) bool { return true },
			"DynopilotDown":        func(a v1.Alert) bool { return string(a.Labels["instance"]) == gone },
		})
	})

	t.Run("pushgateway", func(t *testing.T) {
		t.Parallel()
		pushgateway := servicetest.Binary(t, servicetest.PushgatewayBin)
		dir := t.TempDir()
		gwAddr := "127.0.0.1:" + freePort(t)
		// Debian's Pushgateway persists to /var/lib/prometheus/pushgateway.data unless told otherwise: keep it in
		// memory, so that no test sees another's groups.
		gw := startProcess(t, dir, "pushgateway", nil, pushgateway, "--web.listen-address="+gwAddr, "--persistence.file=")
		waitHTTP(t, gw, "http://"+gwAddr+"/-/ready")
		// As on a worker dyno: Heroku sets DYNO, which becomes the group's instance label.
		// Loaded, so that the worker keeps scaling: the first push comes after the first decisions, and the
		// annotations need a scale event Prometheus sees happen.
		demo := startDemo(t, bin, dir, "demo", []string{"DYNO=worker.1"}, "--pushgateway", "http://"+gwAddr, "--load", "6")
		published := families(t, demo.metrics(t))

		prom := startPrometheus(t, prometheus, dir, rules, fmt.Sprintf(`
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: [%q]
`, gwAddr))

		pushed := waitData(t, prom, `dynopilot_policy_info{job="dynopilot", instance="worker.1"}`)
		if len(pushed) != len(demoPolicies) {
			t.Errorf("pushed dynopilot_policy_info = %v, expected one series per demo policy with job=dynopilot, instance=worker.1", pushed)
		}
		checkQueries(t, prom, d, published)
		checkRules(t, prom)
		// Pushes arrive every 5s: DynopilotDown (either rule) must stay quiet.
		assertOnlyAlerts(t, prom, map[string]func(v1.Alert) bool{
			"DynopilotPinnedAtMax": func(v1.Alert) bool { return true },
		})
	})
}

// checkQueries runs the dashboard's policy variable, then every panel and annotation query with the variables
// substituted, until each returns data or a deadline passes.
func checkQueries(t *testing.T, prom *promServer, d dashboard, published map[string]bool) {
	t.Helper()
	v, _ := d.variable("policy")
	m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(v.Definition)
	if m == nil {
		t.Fatalf("policy variable definition %q: expected label_values(metric, label)", v.Definition)
	}
	var policies []string
	poll(t, 60*time.Second, "the policy variable's values", func() (bool, string) {
		vals, _, _, err := prom.api.LabelValues(context.Background(), m[2], []string{m[1]}, time.Now().Add(-time.Hour), time.Now())
		if err != nil {
			return false, err.Error()
		}
		policies = policies[:0]
		for _, val := range vals {
			policies = append(policies, string(val))
		}
		return slices.Equal(policies, demoPolicies), fmt.Sprintf("got %v, expected %v", policies, demoPolicies)
	})
	// Grafana's regex format of a multi-value variable with All selected.
	sub := strings.NewReplacer("${policy}", "("+strings.Join(policies, "|")+")", "$policy", "("+strings.Join(policies, "|")+")")

	qs := d.queries()
	optional := map[string]string{} // where -> why it may be empty
	for _, q := range qs {
		for _, name := range metricsIn(q.expr) {
			if !published[name] {
				why, ok := publishedOnlyWhen[name]
				if !ok {
					t.Errorf("%s uses %s, which the demo does not publish", q.where, name)
					continue
				}
				optional[q.where] = name + " is published only when " + why
			}
		}
	}
	if t.Failed() {
		t.FailNow() // waiting for data that cannot come would only delay the report
	}
	began := time.Now()
	start := began.Add(-5 * time.Minute)
	var empty []string
	poll(t, 90*time.Second, "data for every dashboard query", func() (bool, string) {
		empty = empty[:0]
		for _, q := range qs {
			expr := builtinVars.Replace(sub.Replace(q.expr))
			n, err := prom.count(expr, q.overTime, start)
			if err != nil {
				t.Fatalf("%s: %s: %v", q.where, expr, err)
			}
			if n == 0 && optional[q.where] == "" {
				empty = append(empty, q.where+": "+expr)
			}
		}
		return len(empty) == 0, fmt.Sprintf("%d of %d queries without data:\n%s", len(empty), len(qs), strings.Join(empty, "\n"))
	})
	for where, why := range optional {
		t.Logf("%s may be empty: %s", where, why)
	}
	t.Logf("%d dashboard queries returned data (%d allowed empty), after %v", len(qs)-len(optional), len(optional), time.Since(began).Round(time.Second))
}

// checkRules checks that Prometheus loaded every alert with its annotations, that each has been evaluated without
// error, and that each expression also runs through the query API.
func checkRules(t *testing.T, prom *promServer) {
	t.Helper()
	var alerting []v1.AlertingRule
	poll(t, 30*time.Second, "every rule evaluated", func() (bool, string) {
		res, err := prom.api.Rules(context.Background(), nil)
		if err != nil {
			return false, err.Error()
		}
		alerting = alerting[:0]
		for _, g := range res.Groups {
			for _, r := range g.Rules {
				if a, ok := r.(v1.AlertingRule); ok {
					alerting = append(alerting, a)
				}
			}
		}
		for _, a := range alerting {
			if a.Health == v1.RuleHealthUnknown {
				return false, a.Name + " not evaluated yet"
			}
		}
		return len(alerting) > 0, fmt.Sprintf("%d alerting rules", len(alerting))
	})
	var names []string
	for _, a := range alerting {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
		if a.Health != v1.RuleHealthGood || a.LastError != "" {
			t.Errorf("alert %s: health %s, error %q", a.Name, a.Health, a.LastError)
		}
		if a.Duration > 2 {
			t.Errorf("alert %s: for %vs, expected the test's shortened 2s", a.Name, a.Duration)
		}
		for _, k := range []model.LabelName{"summary", "description", "runbook"} {
			if strings.TrimSpace(string(a.Annotations[k])) == "" {
				t.Errorf("alert %s has no %s annotation", a.Name, k)
			}
		}
		if _, _, _, err := prom.api.Query(context.Background(), a.Query, time.Now()); err != nil {
			t.Errorf("alert %s: query %q: %v", a.Name, a.Query, err)
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, alertNames) {
		t.Errorf("alerts loaded: %v, expected %v", names, alertNames)
	}
}

// waitAlerts waits until, for each alert name, a firing alert matches; then checks its rendered annotations.
func waitAlerts(t *testing.T, prom *promServer, want map[string]func(v1.Alert) bool) {
	t.Helper()
	found := map[string]v1.Alert{}
	poll(t, 60*time.Second, "alerts firing", func() (bool, string) {
		res, err := prom.api.Alerts(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, a := range res.Alerts {
			name := string(a.Labels["alertname"])
			if match, ok := want[name]; ok && a.State == v1.AlertStateFiring && match(a) {
				found[name] = a
			}
		}
		var missing []string
		for name := range want {
			if _, ok := found[name]; !ok {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("not firing yet: %v; alerts: %v", missing, res.Alerts)
	})
	for name, a := range found {
		t.Logf("%s firing: %s", name, a.Annotations["summary"])
		for k, v := range a.Annotations {
			if strings.Contains(string(v), "<no value>") || strings.Contains(string(v), "error expanding") || strings.Contains(string(v), "{{") {
				t.Errorf("alert %s: annotation %s badly rendered: %q", name, k, v)
			}
		}
		if p := a.Labels["policy"]; p != "" && !strings.Contains(string(a.Annotations["summary"]), string(p)) {
			t.Errorf("alert %s: summary %q does not name policy %s", name, a.Annotations["summary"], p)
		}
	}
}

// assertOnlyAlerts fails for any pending or firing alert that allowed does not accept.
func assertOnlyAlerts(t *testing.T, prom *promServer, allowed map[string]func(v1.Alert) bool) {
	t.Helper()
	res, err := prom.api.Alerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Alerts {
		if ok := allowed[string(a.Labels["alertname"])]; ok == nil || !ok(a) {
			t.Errorf("unexpected alert %s (%s): %v: %s", a.Labels["alertname"], a.State, a.Labels, a.Annotations["summary"])
		}
	}
}

// waitData waits until expr returns data and returns it.
func waitData(t *testing.T, prom *promServer, expr string) model.Vector {
	t.Helper()
	var vec model.Vector
	poll(t, 60*time.Second, expr, func() (bool, string) {
		v, _, _, err := prom.api.Query(context.Background(), expr, time.Now())
		if err != nil {
			return false, err.Error()
		}
		vec, _ = v.(model.Vector)
		return len(vec) > 0, "no data"
	})
	return vec
}
