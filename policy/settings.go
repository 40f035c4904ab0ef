package policy

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// MaxQuantity is the largest quantity the engine ever works with: far above any Heroku limit (100 per process
// type, 255 on Fir, a few hundred when support raises it), and small enough that no arithmetic on quantities can
// overflow. Readings are clamped to it in floating point before they become quantities.
const MaxQuantity = 100_000

// DefaultProtectBusyMax is PROTECT_BUSY_MAX when unset: an hour covers the long jobs of most apps (reports, imports,
// mailings), and a scale-down held longer than that is more likely held by a stuck job or a dead worker's record
// than by work worth waiting for.
const DefaultProtectBusyMax = time.Hour

// DefaultPredictAhead is PREDICT_AHEAD when unset (see Settings.PredictAhead).
const DefaultPredictAhead = 2 * time.Minute

// Settings is one policy's raw settings as read from the environment by caarlos0/env (the loader adds the
// POLICY_<n>_ prefix). Every field is a string so that Parse, not the env library, judges the values and can
// report every problem at once with a precise message. The tags carry the spec's defaults, except UP_COOLDOWN
// (30s; the spec says 1m) and DOWN_STABILIZATION (5m; the spec says 2m): the backtests (package sim, see the
// README) showed each never adds a breach minute on any trace and cuts them on the busy ones, for a few percent
// more dyno-hours.
type Settings struct {
	App     string `env:"APP"`
	Process string `env:"PROCESS"`
	Enabled string `env:"ENABLED" envDefault:"true"`

	Min string `env:"MIN" envDefault:"1"`
	Max string `env:"MAX"`
	// RuleSettings are the first metric's rule; further metrics' are METRIC_<m>_ settings (see ParseMetrics).
	RuleSettings

	// Predict turns on predictive pre-scaling (Policy.Predict).
	Predict string `env:"PREDICT" envDefault:"false"`
	// PredictAhead's default: a web dyno on Heroku serves about a minute after the scale-up (the platform's boot
	// plus the app's), and the profile's slots are 5 minutes wide; 2 minutes covers the boot and one evaluation.
	PredictAhead string `env:"PREDICT_AHEAD" envDefault:"2m"`

	UpCooldown        string `env:"UP_COOLDOWN" envDefault:"30s"`
	DownCooldown      string `env:"DOWN_COOLDOWN" envDefault:"5m"`
	UpStabilization   string `env:"UP_STABILIZATION" envDefault:"0"`
	DownStabilization string `env:"DOWN_STABILIZATION" envDefault:"5m"`
	MaxStepUp         string `env:"MAX_STEP_UP" envDefault:"0"`
	MaxStepDown       string `env:"MAX_STEP_DOWN" envDefault:"0"`

	Schedule string `env:"SCHEDULE"`

	FallbackAfter    string `env:"FALLBACK_AFTER" envDefault:"3"`
	FallbackQuantity string `env:"FALLBACK_QUANTITY"`

	// SizeLimit overrides the dyno size's limit per process type, for accounts whose limit support raised.
	SizeLimit string `env:"SIZE_LIMIT"`

	// ProtectBusy's default depends on the source (whether it can see running jobs), which the policy does not
	// know: unset, Parse leaves it false and the loader decides (config).
	ProtectBusy    string `env:"PROTECT_BUSY"`
	ProtectBusyMax string `env:"PROTECT_BUSY_MAX" envDefault:"1h"`
}

// RuleSettings are one metric's rule as written: MODE and its thresholds. A policy's own are in Settings; a further
// metric's come from METRIC_<m>_ settings (ParseMetrics).
type RuleSettings struct {
	Mode string `env:"MODE" envDefault:"target"`

	Target    string `env:"TARGET"`
	Tolerance string `env:"TOLERANCE" envDefault:"0.1"`

	UpAbove   string `env:"UP_ABOVE"`
	DownBelow string `env:"DOWN_BELOW"`
	UpBy      string `env:"UP_BY" envDefault:"1"`
	DownBy    string `env:"DOWN_BY" envDefault:"1"`

	PerDyno    string `env:"PER_DYNO"`
	Safety     string `env:"SAFETY" envDefault:"0"`
	Activation string `env:"ACTIVATION" envDefault:"0"`
}

// Parse validates the settings and returns the typed policy. It reports every problem at once: the error unwraps
// (setting.Flatten) to one *setting.Error per problem, each naming its setting as written after the prefix ("MIN").
func (s Settings) Parse() (*Policy, error) { return s.ParseMetrics(nil) }

// ParseMetrics is Parse for a policy with further metrics, also[0] being METRIC_2_'s rule, also[1] METRIC_3_'s, …
// Their problems are named with that prefix ("METRIC_2_TARGET").
func (s Settings) ParseMetrics(also []RuleSettings) (*Policy, error) {
	var errs setting.List
	p := &Policy{
		App:     strings.TrimSpace(s.App),
		Process: strings.TrimSpace(s.Process),
	}
	if !appName.MatchString(p.App) && !appID.MatchString(p.App) {
		errs.Add(setting.Errorf("APP", s.App, "the Heroku app's name (lowercase letters, digits and dashes, starting with a letter, as `heroku apps` lists it) or its id (a UUID)"))
	}
	if !processType.MatchString(p.Process) {
		errs.Add(setting.Errorf("PROCESS", s.Process, "the process type to scale, such as web or worker: 1 to 128 ASCII letters, digits, '_' and '-', as in the Procfile"))
	}

	if v, err := strconv.ParseBool(strings.TrimSpace(s.Enabled)); err != nil {
		errs.Add(setting.Errorf("ENABLED", s.Enabled, "true or false"))
	} else {
		p.Enabled = v
	}

	minOK, maxOK := false, false
	if p.Min, minOK = quantity(&errs, "MIN", s.Min, 0); !minOK {
		p.Min = 0
	}
	if strings.TrimSpace(s.Max) == "" {
		errs.Add(setting.Errorf("MAX", s.Max, "a whole number from 1 to %d (required)", MaxQuantity))
	} else if p.Max, maxOK = quantity(&errs, "MAX", s.Max, 1); !maxOK {
		p.Max = 0
	}
	if minOK && maxOK && p.Min > p.Max {
		errs.Add(setting.Errorf("MIN", s.Min, "at most MAX (%d)", p.Max))
	}

	p.Rule = s.RuleSettings.parse(&errs)
	if v, err := strconv.ParseBool(strings.TrimSpace(s.Predict)); strings.TrimSpace(s.Predict) == "" {
		p.Predict = false // Settings built in code have no env defaults
	} else if err != nil {
		errs.Add(setting.Errorf("PREDICT", s.Predict, "true or false: whether to raise the floor ahead of the load's recurring daily and weekly ramps"))
	} else {
		p.Predict = v
	}

	p.UpCooldown = duration(&errs, "UP_COOLDOWN", s.UpCooldown)
	p.DownCooldown = duration(&errs, "DOWN_COOLDOWN", s.DownCooldown)
	p.UpStabilization = duration(&errs, "UP_STABILIZATION", s.UpStabilization)
	p.DownStabilization = duration(&errs, "DOWN_STABILIZATION", s.DownStabilization)
	p.MaxStepUp, _ = quantity(&errs, "MAX_STEP_UP", s.MaxStepUp, 0)
	p.MaxStepDown, _ = quantity(&errs, "MAX_STEP_DOWN", s.MaxStepDown, 0)

	windows, err := ParseSchedule(s.Schedule)
	errs = append(errs, setting.Flatten(err)...)
	p.Schedule = windows

	if n, ok := quantity(&errs, "FALLBACK_AFTER", s.FallbackAfter, 1); ok {
		p.FallbackAfter = n
	} else {
		p.FallbackAfter = 1
	}
	if strings.TrimSpace(s.FallbackQuantity) != "" {
		if n, ok := quantity(&errs, "FALLBACK_QUANTITY", s.FallbackQuantity, 1); ok {
			if maxOK && n > p.Max {
				errs.Add(setting.Errorf("FALLBACK_QUANTITY", s.FallbackQuantity, "at most MAX (%d)", p.Max))
			} else {
				p.FallbackQuantity = n
			}
		}
	}
	if strings.TrimSpace(s.SizeLimit) != "" {
		p.SizeLimit, _ = quantity(&errs, "SIZE_LIMIT", s.SizeLimit, 1)
	}

	if v := strings.TrimSpace(s.ProtectBusy); v != "" {
		if b, err := strconv.ParseBool(v); err != nil {
			errs.Add(setting.Errorf("PROTECT_BUSY", s.ProtectBusy, "true or false: whether a scale-down waits for the dynos it would stop to finish their jobs"))
		} else {
			p.ProtectBusy = b
		}
	}
	p.ProtectBusyMax = DefaultProtectBusyMax // also for Settings built in code, which have no env defaults
	if strings.TrimSpace(s.ProtectBusyMax) != "" {
		p.ProtectBusyMax = duration(&errs, "PROTECT_BUSY_MAX", s.ProtectBusyMax)
	}

	for i, rs := range also {
		var own setting.List
		p.Also = append(p.Also, rs.parse(&own))
		errs = append(errs, setting.Flatten(setting.Prefixed(fmt.Sprintf("METRIC_%d_", i+2), own.Err()))...)
	}
	p.PredictAhead = DefaultPredictAhead // also for Settings built in code, which have no env defaults
	if strings.TrimSpace(s.PredictAhead) != "" {
		p.PredictAhead = duration(&errs, "PREDICT_AHEAD", s.PredictAhead)
	}
	if p.Predict && p.PredictMetric() < 0 {
		errs.Add(setting.Errorf("PREDICT", s.Predict, "false or unset unless a metric is in ratio mode: the prediction learns a load (such as the request rate) and turns it into dynos with PER_DYNO"))
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// parse validates one metric's rule, recording its problems named as written ("TARGET").
func (s RuleSettings) parse(errs *setting.List) Rule {
	var r Rule
	mode := Mode(strings.ToLower(strings.TrimSpace(s.Mode)))
	rules := mode.rules()
	if rules != nil {
		r.Mode = mode
	} else {
		errs.Add(setting.Errorf("MODE", s.Mode, "one of %s", modeNames()))
	}

	// Thresholds are checked for syntax whatever the mode (a typo is a typo, and POLICY_DEFAULT_ may set them for
	// policies of other modes); the mode says which it requires (modeRules.validate).
	var t thresholds
	r.Target, t.target = parseThreshold(errs, "TARGET", s.Target)
	r.UpAbove, t.upAbove = parseThreshold(errs, "UP_ABOVE", s.UpAbove)
	r.DownBelow, t.downBelow = parseThreshold(errs, "DOWN_BELOW", s.DownBelow)
	r.PerDyno, t.perDyno = parseThreshold(errs, "PER_DYNO", s.PerDyno)

	if strings.TrimSpace(s.Safety) == "" {
		r.Safety = 0 // optional: plain ratio
	} else if f, err := strconv.ParseFloat(strings.TrimSpace(s.Safety), 64); err != nil || !(f >= 0 && f <= maxSafety) {
		errs.Add(setting.Errorf("SAFETY", s.Safety, "a number from 0 to %d: the square-root headroom in ratio mode, such as 1 (0 for none)", maxSafety))
	} else {
		r.Safety = f
	}
	if t, ok := fraction(errs, "TOLERANCE", s.Tolerance); ok {
		r.Tolerance = t
	}
	if r.UpBy, _ = quantity(errs, "UP_BY", s.UpBy, 1); r.UpBy < 1 {
		r.UpBy = 1
	}
	if r.DownBy, _ = quantity(errs, "DOWN_BY", s.DownBy, 1); r.DownBy < 1 {
		r.DownBy = 1
	}

	if rules != nil {
		r.Seconds = rules.validate(&r, t, errs)
	}

	if a, ok, _ := amount(errs, "ACTIVATION", s.Activation); ok {
		if a < 0 {
			errs.Add(setting.Errorf("ACTIVATION", s.Activation, "a number >= 0"))
		} else {
			r.Activation = a
		}
	}

	return r
}

// What APP and PROCESS may be. They name the policy (app/process) in logs and in every metric's labels, so nothing
// else may pass: a value that is not valid UTF-8 would make the metrics library panic. PROCESS is the Platform
// API's pattern for a formation's type; RE2's \w is ASCII.
var (
	appName     = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	appID       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	processType = regexp.MustCompile(`^[-\w]{1,128}$`)
)

// maxSafety bounds SAFETY: beyond a few units the headroom exceeds any load it protects (SAFETY 10 at one dyno
// of load asks for eleven), so a larger value is a typo.
const maxSafety = 10

// quantity parses a whole number from lo to MaxQuantity; ok is false (and a problem recorded) otherwise.
func quantity(errs *setting.List, name, raw string, lo int) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < lo || n > MaxQuantity {
		errs.Add(setting.Errorf(name, raw, "a whole number from %d to %d", lo, MaxQuantity))
		return 0, false
	}
	return n, true
}

// amount parses a finite number, or a Go duration read as seconds (so that latencies can be written 250ms). An
// empty value gives ok=false without a problem: the caller decides whether it is required.
func amount(errs *setting.List, name, raw string) (v float64, ok, seconds bool) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return 0, false, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			errs.Add(setting.Errorf(name, raw, "a finite number, or a duration such as 250ms"))
			return 0, false, false
		}
		return f, true, false
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d.Seconds(), true, true
	}
	errs.Add(setting.Errorf(name, raw, "a number, or a duration such as 250ms (read as seconds)"))
	return 0, false, false
}

// parseThreshold parses a threshold setting with amount and says how it was written.
func parseThreshold(errs *setting.List, name, raw string) (float64, threshold) {
	v, ok, seconds := amount(errs, name, raw)
	return v, threshold{raw: raw, set: strings.TrimSpace(raw) != "", ok: ok, seconds: seconds}
}

// fraction parses a number in [0, 1).
func fraction(errs *setting.List, name, raw string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || !(f >= 0 && f < 1) {
		errs.Add(setting.Errorf(name, raw, "a number from 0 up to (not including) 1, such as 0.1 for ±10%%"))
		return 0, false
	}
	return f, true
}

// duration parses a Go duration >= 0.
func duration(errs *setting.List, name, raw string) time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil || d < 0 {
		errs.Add(setting.Errorf(name, raw, "a duration >= 0 such as 90s or 5m"))
		return 0
	}
	return d
}

// Name is the policy's name in logs and metrics: "app/process".
func (p *Policy) Name() string { return p.App + "/" + p.Process }

// String is Name, so that a *Policy prints usefully.
func (p *Policy) String() string { return p.Name() }

// formatAmount prints a setting's value the way a person would write it back.
func formatAmount(v float64, seconds bool) string {
	s := strconv.FormatFloat(v, 'g', 4, 64)
	if seconds {
		return s + "s"
	}
	return s
}
