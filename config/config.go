// Package config reads dynopilot's whole configuration from environment variables: the global settings with
// caarlos0/env, and every POLICY_<n>_… policy from the same env and envDefault tags (readPolicy), with
// POLICY_DEFAULT_… filling what a policy leaves unset. Load reports
// every problem at once, each naming its variable, the value and what was expected, because a user fixing one
// problem per deploy is a user who gives up.
//
// A policy may scale on further metrics, POLICY_<n>_METRIC_<m>_… (m = 2 to MaxMetrics), each a source and a rule
// of its own (readMetrics says which settings a further metric takes from its policy).
//
// caarlos0/env alone would silently stop an indexed list at the first gap and at the first bad element, and
// ignore misspelt variables; Load checks the numbering and every POLICY_ name itself.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/notify"
	"github.com/dynopilot/dynopilot/policy"
)

// DefaultListen is where HTTP is served when neither DYNOPILOT_LISTEN nor PORT is set.
const DefaultListen = ":9797"

// Global holds the settings that are not per policy.
type Global struct {
	APIKey           string        `env:"HEROKU_API_KEY"`
	APIURL           string        `env:"HEROKU_API_URL" envDefault:"https://api.heroku.com"`
	AuthorizationID  string        `env:"HEROKU_AUTHORIZATION_ID"`
	DryRun           bool          `env:"DYNOPILOT_DRY_RUN" envDefault:"false"`
	APIRate          int           `env:"DYNOPILOT_API_RATE" envDefault:"4500"`
	APIReserve       int           `env:"DYNOPILOT_API_RESERVE" envDefault:"450"`
	FormationRefresh time.Duration `env:"DYNOPILOT_FORMATION_REFRESH" envDefault:"1m"`
	Listen           string        `env:"DYNOPILOT_LISTEN"`
	Port             string        `env:"PORT"`
	PushgatewayURL   string        `env:"PUSHGATEWAY_URL"`
	PushInterval     time.Duration `env:"DYNOPILOT_PUSH_INTERVAL" envDefault:"15s"`
	DrainToken       string        `env:"DYNOPILOT_DRAIN_TOKEN"` // basic-auth password of /drain/<app>; unset: no drain endpoint
	// DaemonURL is the running daemon's public URL, where `check` (another process) reads what only the daemon
	// knows: what its log drains delivered. AppDomain is set by Heroku with runtime-dyno-metadata enabled.
	DaemonURL string `env:"DYNOPILOT_URL"`
	AppDomain string `env:"HEROKU_APP_DEFAULT_DOMAIN_NAME"`
	// StateURL is PostgreSQL for durable state and leader election among several instances; unset: one instance,
	// state in memory.
	StateURL  string           `env:"DYNOPILOT_STATE_URL"`
	Sources   metrics.Defaults // PROMETHEUS_URL, REDIS_URL, DATABASE_URL, RABBITMQ_URL
	Notify    notify.Settings  // DYNOPILOT_WEBHOOK_*, DYNOPILOT_SLACK_*
	LogLevel  string           `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string           `env:"LOG_FORMAT" envDefault:"auto"`
}

// ListenAddr returns the HTTP address: DYNOPILOT_LISTEN, else :$PORT, else DefaultListen.
func (g Global) ListenAddr() string {
	switch {
	case g.Listen != "":
		return g.Listen
	case g.Port != "":
		return ":" + g.Port
	}
	return DefaultListen
}

// Defaults returns the global source URLs that policies without SOURCE_URL use.
func (g Global) Defaults() metrics.Defaults { return g.Sources }

// PolicyConfig is one POLICY_<n>_… block, validated: the engine's rules, the source to read and the schedule. The
// program turns it into a scaler.Managed by opening its source.
type PolicyConfig struct {
	Index  int
	Rules  *policy.Policy
	Source metrics.Spec
	// Also are the sources of the policy's further metrics (METRIC_2_, METRIC_3_, …), in order: Rules.Also[i]'s
	// readings come from Also[i].
	Also     []metrics.Spec
	Interval string // a cron spec robfig/cron accepts, e.g. "@every 15s"
}

// Sources returns every source the policy reads, its own first, then its further metrics'.
func (p PolicyConfig) Sources() []metrics.Spec {
	return append([]metrics.Spec{p.Source}, p.Also...)
}

// MetricPrefix returns the variable prefix of the policy's metric i (0: the policy's own, "POLICY_0_"; 1:
// "POLICY_0_METRIC_2_", …).
func (p PolicyConfig) MetricPrefix(i int) string {
	if i == 0 {
		return p.Prefix()
	}
	return fmt.Sprintf("%sMETRIC_%d_", p.Prefix(), i+1)
}

// DrainApps returns the apps that a policy reads through a log drain (SOURCE=logdrain, its own or a further
// metric's), once each, in the order of the policies: the apps whose drains /drain/<app> accepts.
func (c *Config) DrainApps() []string {
	var apps []string
	for _, p := range c.Policies {
		drained := slices.ContainsFunc(p.Sources(), func(s metrics.Spec) bool { return s.Kind == metrics.KindLogDrain })
		if drained && !slices.ContainsFunc(apps, func(a string) bool { return strings.EqualFold(a, p.Rules.App) }) {
			apps = append(apps, p.Rules.App)
		}
	}
	return apps
}

// Prefix returns the policy's variable prefix, e.g. "POLICY_0_".
func (p PolicyConfig) Prefix() string { return fmt.Sprintf("POLICY_%d_", p.Index) }

// Config is the whole configuration.
type Config struct {
	Global   Global
	Policies []PolicyConfig
}

// policyVars is the part of a policy block that is neither the decision (policy.Settings) nor the source
// (metrics.Settings): how often to evaluate. The default is 10s (the spec says 15s): the backtests (package sim,
// see the README) showed it never adds a breach minute on any trace and cuts them on the busy ones, for a few
// percent more dyno-hours.
type policyVars struct {
	Interval string `env:"INTERVAL" envDefault:"10s"`
}

// policyBlock is everything read under one POLICY_<n>_ prefix; readPolicy walks the nested structs.
type policyBlock struct {
	Decision policy.Settings
	Source   metrics.Settings
	Timing   policyVars
}

// globalNames returns every global variable, in declaration order (for the tests that check the documentation).
func globalNames() []string {
	var names []string
	collectTags(reflect.TypeOf(Global{}), func(tag string, _ reflect.StructField) { names = append(names, tag) })
	return names
}

// SettingNames returns every setting a POLICY_<n>_ block may have, sorted.
func SettingNames() []string {
	var names []string
	collectTags(reflect.TypeOf(policyBlock{}), func(tag string, _ reflect.StructField) { names = append(names, tag) })
	sort.Strings(names)
	return names
}

// Load reads the configuration from environ (as os.Environ returns it). The error, when not nil, unwraps
// (setting.Flatten) to one error per problem.
//
// Its cost is linear in the number of variables: environ becomes one map, and each policy is read from its own
// variables and the POLICY_DEFAULT_ ones alone (see readPolicy). caarlos0/env reads only the global settings:
// every call of it converts the whole process environment to a map again, which per policy made loading 4,000
// policies take 21 s and 16 GB.
func Load(environ []string) (*Config, error) {
	fields, err := policyFields()
	if err != nil {
		return &Config{}, err
	}
	mfields, err := metricFields()
	if err != nil {
		return &Config{}, err
	}
	vars := toMap(environ)
	var problems setting.List
	cfg := &Config{}

	if err := env.ParseWithOptions(&cfg.Global, env.Options{Environment: vars}); err != nil {
		problems = append(problems, named(err, reflect.TypeOf(cfg.Global), "", vars)...)
	}
	unparsed := map[string]bool{} // a value that did not parse is reported once, not again by checkGlobal
	for _, p := range problems {
		var se *setting.Error
		if errors.As(p, &se) {
			unparsed[se.Name] = true
		}
	}
	for _, p := range checkGlobal(cfg.Global, vars) {
		var se *setting.Error
		if !errors.As(p, &se) || !unparsed[se.Name] {
			problems.Add(p)
		}
	}

	lay, nameProblems := policyIndices(vars)
	problems = append(problems, nameProblems...)

	gaps := map[string]time.Duration{} // interval -> shortestGap: policies share a few intervals
	seen := map[string]string{}        // app/process in lower case -> the first policy for it, e.g. "POLICY_0_ (shop/web)"
	for _, n := range lay.indices {
		prefix := fmt.Sprintf("POLICY_%d_", n)
		local, block := readPolicy(vars, prefix, fields)
		ms := readMetrics(vars, prefix, lay.metrics[n], mfields, block.Source)
		p, errs := loadPolicy(n, vars, local, block, ms, cfg.Global.Defaults(), gaps)
		problems = append(problems, errs...)
		// Compared on the values as written, so that a duplicate is reported even beside the policy's other
		// problems; ignoring case, since the daemon finds a policy's formation entry ignoring case (as check does):
		// WORKER and worker are one.
		app, process := strings.TrimSpace(local[prefix+"APP"]), strings.TrimSpace(local[prefix+"PROCESS"])
		key := strings.ToLower(app + "/" + process)
		first, dup := seen[key]
		switch {
		case app == "" || process == "":
		case dup:
			problems.Add(setting.Errorf(prefix+"PROCESS", process,
				"a process type not already scaled by %s; apps and process types are compared ignoring case: two policies for one process type would fight", first))
			continue
		default:
			seen[key] = fmt.Sprintf("%s (%s/%s)", prefix, app, process)
		}
		if p != nil && cfg.Global.DrainToken == "" {
			if drainless := drainsWithoutToken(*p); len(drainless) > 0 {
				problems = append(problems, drainless...)
				continue
			}
		}
		if p != nil {
			cfg.Policies = append(cfg.Policies, *p)
		}
	}
	if len(lay.indices) == 0 {
		problems.Add(&setting.Error{Name: "POLICY_0_APP", Expected: "at least one policy: POLICY_0_APP, POLICY_0_PROCESS, POLICY_0_MAX and POLICY_0_SOURCE"})
	}
	return cfg, problems.Err()
}

// loadPolicy validates policy n, read (readPolicy) as block from local, its variables with POLICY_DEFAULT_ applied,
// and its further metrics ms (readMetrics). gaps caches shortestGap by interval across the policies of one Load.
func loadPolicy(n int, vars, local map[string]string, block policyBlock, ms []metricRead, d metrics.Defaults, gaps map[string]time.Duration) (*PolicyConfig, []error) {
	prefix := fmt.Sprintf("POLICY_%d_", n)
	pc := PolicyConfig{Index: n}
	pol, interval, _, errs := loadDecision(prefix, block, ms)
	app, process := local[prefix+"APP"], local[prefix+"PROCESS"]
	spec, err := block.Source.Parse(app, process, d)
	sourceProblems := setting.Flatten(setting.Prefixed(prefix, err))
	errs = append(errs, sourceProblems...)
	var gap time.Duration
	if interval != "" {
		var ok bool
		if gap, ok = gaps[interval]; !ok {
			gap = shortestGap(interval, time.Now())
			gaps[interval] = gap
		}
	}
	if err == nil && interval != "" {
		errs = append(errs, fitTimeout(&spec, prefix, prefix, "POLICY_DEFAULT_", interval, gap, vars, local)...)
	}
	if len(ms) > 0 {
		also, problems := loadMetrics(ms, app, process, prefix, interval, gap, d, vars, problemNames(sourceProblems, prefix))
		pc.Also, errs = also, append(errs, problems...)
	}
	if err == nil && pol != nil {
		errs = append(errs, protectBusy(pol, &spec, prefix, vars, local)...) // the running jobs are metric 1's source's
	}
	if len(errs) > 0 {
		return nil, errs
	}
	pc.Rules, pc.Source, pc.Interval = pol, spec, interval
	return &pc, nil
}

// drainsWithoutToken reports each source of the policy that reads a log drain, when DYNOPILOT_DRAIN_TOKEN is unset:
// no drain could deliver to it. A further metric that takes SOURCE=logdrain from the policy is the policy's problem.
func drainsWithoutToken(p PolicyConfig) []error {
	var errs []error
	for i, s := range p.Sources() {
		if s.Kind != metrics.KindLogDrain || (i > 0 && p.Source.Kind == metrics.KindLogDrain) {
			continue
		}
		errs = append(errs, setting.Errorf(p.MetricPrefix(i)+"SOURCE", metrics.KindLogDrain,
			"DYNOPILOT_DRAIN_TOKEN to be set as well: it is the password every log drain sends to /drain/%s", p.Rules.App))
	}
	return errs
}

// fitTimeout holds the TIMEOUT of a source (prefix: the policy's, or one of its further metrics') to the policy's
// interval, whose shortest gap between two runs is gap: a reading that may outlast the gap until the next
// evaluation would have the evaluations overlap (the scaler skips a tick while the last one runs, so the policy
// would silently be evaluated less often than INTERVAL says). A TIMEOUT that is set (under prefix, or under shared,
// its POLICY_DEFAULT_ prefix) and longer is a problem; one that is not (the default, metrics.DefaultTimeout, or for
// a further metric the policy's) is shortened to the interval instead.
func fitTimeout(spec *metrics.Spec, policyPrefix, prefix, shared, interval string, gap time.Duration, vars, local map[string]string) []error {
	if gap <= 0 || spec.Timeout <= gap {
		return nil
	}
	raw, set := local[prefix+"TIMEOUT"]
	if !set {
		spec.Timeout = gap
		return nil
	}
	from := ""
	if _, own := vars[prefix+"TIMEOUT"]; !own {
		from = " (the value comes from " + shared + "TIMEOUT)"
	}
	return []error{setting.Errorf(prefix+"TIMEOUT", raw, "a duration of at most the policy's interval, %s (%sINTERVAL is %q)%s: a reading must end before the next evaluation is due",
		gap, policyPrefix, interval, from)}
}

// protectBusy settles PROTECT_BUSY, whose default depends on the source: on where the source can see running jobs,
// off where it cannot, and an error when it is set on for a source that cannot. The source then reads the running
// jobs with every reading.
func protectBusy(pol *policy.Policy, spec *metrics.Spec, prefix string, vars, local map[string]string) []error {
	can, why := metrics.RunningJobs(*spec)
	raw, set := local[prefix+"PROTECT_BUSY"]
	switch {
	case !set || strings.TrimSpace(raw) == "":
		pol.ProtectBusy = can
	case pol.ProtectBusy && !can:
		from := ""
		if _, own := vars[prefix+"PROTECT_BUSY"]; !own {
			from = " (the value comes from POLICY_DEFAULT_PROTECT_BUSY)"
		}
		return []error{setting.Errorf(prefix+"PROTECT_BUSY", raw, "false or unset with SOURCE=%s: %s, so no scale-down could ever be told it would stop one%s", spec.Kind, why, from)}
	}
	spec.Running = pol.ProtectBusy
	return nil
}

// LoadDecision reads what decides policy n (its policy settings, its further metrics' rules and INTERVAL) exactly
// as Load does, with POLICY_DEFAULT_ applied, every POLICY_ name checked and every problem reported at once, but not
// its sources or the global settings. It is for tools that replay readings instead of taking them, such as `dynopilot simulate`,
// so that they can never read a policy differently from the daemon.
func LoadDecision(environ []string, n int) (pol *policy.Policy, interval string, err error) {
	fields, err := policyFields()
	if err != nil {
		return nil, "", err
	}
	mfields, err := metricFields()
	if err != nil {
		return nil, "", err
	}
	vars := toMap(environ)
	prefix := fmt.Sprintf("POLICY_%d_", n)
	var problems setting.List
	lay, nameProblems := policyIndices(vars)
	for _, p := range nameProblems { // only this policy's names and the defaults concern it
		var se *setting.Error
		if errors.As(p, &se) && (strings.HasPrefix(se.Name, prefix) || strings.HasPrefix(se.Name, "POLICY_DEFAULT_")) {
			problems.Add(p)
		}
	}
	_, block := readPolicy(vars, prefix, fields)
	pol, interval, _, errs := loadDecision(prefix, block, readMetrics(vars, prefix, lay.metrics[n], mfields, block.Source))
	problems = append(problems, errs...)
	if err := problems.Err(); err != nil {
		return nil, "", err
	}
	return pol, interval, nil
}

// loadDecision validates the deciding part of the policy under prefix: its own settings, its further metrics'
// rules and its interval.
func loadDecision(prefix string, b policyBlock, ms []metricRead) (*policy.Policy, string, time.Duration, []error) {
	var errs []error
	pol, err := b.Decision.ParseMetrics(metricRules(ms))
	errs = append(errs, setting.Flatten(setting.Prefixed(prefix, err))...)
	interval, every, err := ParseInterval(b.Timing.Interval)
	if err != nil {
		errs = append(errs, setting.Errorf(prefix+"INTERVAL", b.Timing.Interval, "%s", err.Error()))
	}
	return pol, interval, every, errs
}

// ParseInterval accepts a Go duration ("15s", at least 1s) or a cron spec robfig/cron understands ("@every 10s",
// "*/1 * * * *"), and returns the cron spec to schedule, plus the duration when one was given. An @every of less
// than 1s (robfig/cron would quietly run 0s or -5s every second) and a spec that never fires ("0 0 31 2 *") are
// errors.
func ParseInterval(v string) (spec string, every time.Duration, err error) {
	v = strings.TrimSpace(v)
	if d, derr := time.ParseDuration(v); derr == nil {
		if d < time.Second {
			return "", 0, fmt.Errorf("an interval of at least 1s")
		}
		return "@every " + d.String(), d, nil
	}
	schedule, perr := cron.ParseStandard(v)
	if perr != nil {
		return "", 0, fmt.Errorf("a duration such as 15s or a cron spec such as \"@every 10s\" or \"*/1 * * * *\" (%w)", perr)
	}
	body := v // without a CRON_TZ= or TZ= prefix, which robfig/cron also accepts before @every
	if strings.HasPrefix(v, "CRON_TZ=") || strings.HasPrefix(v, "TZ=") {
		_, body, _ = strings.Cut(v, " ")
		body = strings.TrimSpace(body)
	}
	if rest, ok := strings.CutPrefix(body, "@every "); ok {
		d, derr := time.ParseDuration(strings.TrimSpace(rest))
		if derr != nil || d < time.Second {
			return "", 0, fmt.Errorf("an @every of at least 1s, such as \"@every 10s\"")
		}
		return v, d, nil
	}
	if schedule.Next(time.Now()).IsZero() {
		return "", 0, fmt.Errorf("a cron spec that fires: this one matches no time in the next five years")
	}
	return v, 0, nil
}

// shortestGap is the shortest time between two runs of the cron spec over its next hundred runs from now (for
// "0 9 * * MON-FRI", a day), or 0 when it runs at most once or does not parse.
func shortestGap(spec string, now time.Time) time.Duration {
	schedule, err := cron.ParseStandard(spec)
	if err != nil {
		return 0
	}
	var gap time.Duration
	prev := schedule.Next(now)
	for i := 0; i < 100 && !prev.IsZero(); i++ {
		next := schedule.Next(prev)
		if next.IsZero() {
			break
		}
		if d := next.Sub(prev); gap == 0 || d < gap {
			gap = d
		}
		prev = next
	}
	return gap
}
