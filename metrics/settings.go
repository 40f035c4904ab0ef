package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// DefaultTimeout limits one reading when TIMEOUT is unset.
const DefaultTimeout = 10 * time.Second

// Settings are one policy's source settings as caarlos0/env reads them with Prefix "POLICY_<n>_". They are all
// strings so that Parse, not the env library, judges them and can report every problem with its setting's name.
//
// MEASURE has no envDefault on purpose: unset, it is the kind's natural measure (latency where the backend records
// when jobs were enqueued, size for celery, redis and rabbitmq, which do not).
type Settings struct {
	Source  string `env:"SOURCE"`
	URL     string `env:"SOURCE_URL"`
	Query   string `env:"QUERY"`
	Preset  string `env:"PRESET"`
	Queues  string `env:"QUEUES"`
	Measure string `env:"MEASURE"`
	Name    string `env:"NAME"`
	Empty   string `env:"EMPTY" envDefault:"missing"`
	Timeout string `env:"TIMEOUT" envDefault:"10s"`
	// QUANTILE and WINDOW have no envDefault either: they belong to SOURCE=logdrain alone, and only a value the
	// user set can be refused for another kind.
	Quantile string `env:"QUANTILE"`
	Window   string `env:"WINDOW"`
}

// Defaults of the settings of a source that aggregates over time (SOURCE=logdrain), and WINDOW's bounds: at least
// two buckets of the drain's aggregates, at most what it keeps (a longer window would cost every drained app
// memory for a reading no autoscaler needs: HPA, Judoscale and Heroku's own autoscaling look back a minute or less).
const (
	DefaultQuantile = 0.95
	DefaultWindow   = time.Minute
	MinWindow       = 10 * time.Second
	MaxWindow       = 5 * time.Minute
)

// Defaults are the global URLs (PROMETHEUS_URL, REDIS_URL, DATABASE_URL, RABBITMQ_URL) used by policies that set no
// SOURCE_URL, so that an app with one Redis names it once, as Heroku's add-ons already do.
type Defaults struct {
	PrometheusURL string `env:"PROMETHEUS_URL"`
	RedisURL      string `env:"REDIS_URL"`
	DatabaseURL   string `env:"DATABASE_URL"`
	RabbitMQURL   string `env:"RABBITMQ_URL"`
}

// Spec is a validated source configuration; Connections.Open turns it into a Source.
type Spec struct {
	Kind    string        // one of Kinds()
	App     string        // the policy's app: what a log drain source reads the lines of
	Process string        // the policy's process type: whose dynos a log drain source reads
	URL     string        // where to read; may hold a password: show it only through Redact or String
	Query   string        // PromQL (prometheus) or SQL (postgres)
	Preset  string        // postgres job table layout, one of Presets()
	Queues  []string      // queue names (keys for redis); nil means every queue the backend knows
	Measure string        // MeasureLatency or MeasureSize
	Name    string        // the entry of a HireFire payload
	Empty   string        // EmptyMissing or EmptyZero
	Timeout time.Duration // limit on one reading, applied by Instruments.Wrap

	Quantile float64       // logdrain latency and queue-time: the quantile read, in (0, 1)
	Window   time.Duration // logdrain: the span one reading covers

	// Running asks the source for the jobs running now with every reading (the policy's PROTECT_BUSY); only a kind
	// that can see them (RunningJobs) is ever asked.
	Running bool
}

// Parse validates the settings of the policy for app's process type process, filling defaults (NAME is the process
// type, SOURCE_URL the global default of the kind). It reports every problem at once, each as a *setting.Error
// naming the setting; no error text ever shows a password.
func (s Settings) Parse(app, process string, d Defaults) (Spec, error) {
	var errs setting.List
	spec := Spec{
		Kind:    strings.ToLower(strings.TrimSpace(s.Source)),
		App:     app,
		Process: process,
		Query:   strings.TrimSpace(s.Query),
		Name:    strings.TrimSpace(s.Name),
	}

	spec.Timeout = DefaultTimeout
	if t := strings.TrimSpace(s.Timeout); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			errs.Add(setting.Errorf("TIMEOUT", s.Timeout, "a positive duration such as 10s or 500ms"))
		} else {
			spec.Timeout = d
		}
	}

	spec.Empty = EmptyMissing
	if e := strings.ToLower(strings.TrimSpace(s.Empty)); e != "" {
		if e != EmptyMissing && e != EmptyZero {
			errs.Add(setting.Errorf("EMPTY", s.Empty, "%s or %s", EmptyMissing, EmptyZero))
		} else {
			spec.Empty = e
		}
	}

	measure := strings.ToLower(strings.TrimSpace(s.Measure))
	if measure != "" && !slices.Contains(measures(), measure) {
		errs.Add(setting.Errorf("MEASURE", s.Measure, "one of %s", strings.Join(measures(), ", ")))
		measure = ""
	}

	queues, err := parseQueues(s.Queues)
	errs.Add(err)

	k, ok := kindNamed(spec.Kind)
	if !ok {
		errs.Add(setting.Errorf("SOURCE", s.Source, "one of %s", strings.Join(Kinds(), ", ")))
		return Spec{}, errs.Err()
	}

	spec.Measure = k.measures[0]
	if measure != "" {
		switch {
		case slices.Contains(k.measures, measure):
			spec.Measure = measure
		case k.window:
			errs.Add(setting.Errorf("MEASURE", s.Measure, "%s with SOURCE=%s", strings.Join(k.measures, ", "), k.name))
		default:
			errs.Add(setting.Errorf("MEASURE", s.Measure, "%s with SOURCE=%s, which does not record when jobs were enqueued", strings.Join(k.measures, " or "), k.name))
		}
	}

	spec.URL = strings.TrimSpace(s.URL)
	switch {
	case k.schemes == nil && spec.URL != "":
		errs.Add(setting.Errorf("SOURCE_URL", s.URL, "nothing: SOURCE=%s reads what Heroku sends to dynopilot, not a URL", k.name))
	case k.schemes != nil:
		from := ""
		if spec.URL == "" && k.defaultURL != nil {
			spec.URL, from = strings.TrimSpace(k.defaultURL(d)), " (from "+k.globalURL+")"
		}
		errs.Add(k.validateURL(spec.URL, from))
	}

	parseWindow(s, k, &spec, &errs)

	switch {
	case k.query == required && spec.Query == "":
		errs.Add(setting.Errorf("QUERY", "", "a query for SOURCE=%s", k.name))
	case k.query == unused && spec.Query != "":
		errs.Add(setting.Errorf("QUERY", s.Query, "nothing: QUERY is used only by SOURCE=prometheus and SOURCE=postgres"))
	}

	if p := strings.ToLower(strings.TrimSpace(s.Preset)); p != "" {
		switch {
		case k.preset == unused:
			errs.Add(setting.Errorf("PRESET", s.Preset, "nothing: PRESET is used only by SOURCE=postgres"))
		case !slices.Contains(Presets(), p):
			errs.Add(setting.Errorf("PRESET", s.Preset, "one of %s", strings.Join(Presets(), ", ")))
		default:
			spec.Preset = p
		}
	}

	switch {
	case queues != nil && k.queues == unused:
		errs.Add(setting.Errorf("QUEUES", s.Queues, "nothing: SOURCE=%s reads no queues", k.name))
	case queues == nil && k.queues == required:
		errs.Add(setting.Errorf("QUEUES", "", "the comma-separated %s to read with SOURCE=%s", k.queueNoun, k.name))
	case queues == nil:
		spec.Queues = slices.Clone(k.defQueues)
	default:
		spec.Queues = queues
	}

	switch {
	case k.entryName && spec.Name == "":
		spec.Name = process
	case !k.entryName && spec.Name != "":
		errs.Add(setting.Errorf("NAME", s.Name, "nothing: NAME is used only by SOURCE=hirefire"))
	}

	if k.check != nil {
		k.check(&spec, &errs)
	}
	if err := errs.Err(); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// parseWindow reads QUANTILE and WINDOW for a kind that aggregates over time, and refuses them for any other.
func parseWindow(s Settings, k kind, spec *Spec, errs *setting.List) {
	q, w := strings.TrimSpace(s.Quantile), strings.TrimSpace(s.Window)
	if !k.window {
		if q != "" {
			errs.Add(setting.Errorf("QUANTILE", s.Quantile, "nothing: QUANTILE is used only by SOURCE=%s", KindLogDrain))
		}
		if w != "" {
			errs.Add(setting.Errorf("WINDOW", s.Window, "nothing: WINDOW is used only by SOURCE=%s", KindLogDrain))
		}
		return
	}
	spec.Quantile, spec.Window = DefaultQuantile, DefaultWindow
	if q != "" {
		v, err := strconv.ParseFloat(q, 64)
		if err != nil || !(v > 0 && v < 1) {
			errs.Add(setting.Errorf("QUANTILE", s.Quantile, "a number between 0 and 1, such as 0.95 for the 95th percentile"))
		} else {
			spec.Quantile = v
		}
	}
	if w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d < MinWindow || d > MaxWindow {
			errs.Add(setting.Errorf("WINDOW", s.Window, "a duration from %s to %s, such as 1m", short(MinWindow), short(MaxWindow)))
		} else {
			spec.Window = d
		}
	}
	if q != "" && spec.Measure != MeasureLatency && spec.Measure != MeasureQueueTime {
		errs.Add(setting.Errorf("QUANTILE", s.Quantile, "nothing with MEASURE=%s: only latency and queue-time are quantiles", spec.Measure))
	}
}

// short writes a whole number of minutes as "15m" rather than time.Duration's "15m0s".
func short(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// validateURL checks a URL's scheme and, through the kind's client library, its form, without any I/O. from says
// where a default URL came from. setting.Error redacts the value it shows, and scrubs the value's secrets from the
// library's message.
func (k kind) validateURL(raw, from string) error {
	if raw == "" {
		if k.globalURL == "" {
			return setting.Errorf("SOURCE_URL", "", "a %s:// URL for SOURCE=%s", k.schemes[0], k.name)
		}
		return setting.Errorf("SOURCE_URL", "", "a %s:// URL for SOURCE=%s (or set %s)", k.schemes[0], k.name, k.globalURL)
	}
	scheme, _, _ := strings.Cut(raw, "://")
	if !slices.Contains(k.schemes, strings.ToLower(scheme)) || !strings.Contains(raw, "://") {
		return setting.Errorf("SOURCE_URL", raw, "a URL starting with %s://%s", strings.Join(k.schemes, ":// or "), from)
	}
	if k.checkURL != nil {
		if err := k.checkURL(raw); err != nil {
			return setting.Errorf("SOURCE_URL", raw, "a valid %s URL%s: %s", k.name, from, err.Error())
		}
	}
	return nil
}

// parseQueues splits a comma-separated list, trimming spaces and dropping duplicates; "" gives nil.
func parseQueues(raw string) ([]string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var out []string
	for _, q := range strings.Split(raw, ",") {
		q = strings.TrimSpace(q)
		if q == "" {
			return nil, setting.Errorf("QUEUES", raw, "comma-separated names without empty ones")
		}
		if !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out, nil
}

// String describes the spec for logs and `dynopilot check`, with secrets redacted, e.g.
// "sidekiq redis://:xxxxx@host:6379/0 queues=default,mailers latency".
func (s Spec) String() string {
	var b strings.Builder
	b.WriteString(s.label())
	k, _ := kindNamed(s.Kind)
	if s.Preset != "" {
		fmt.Fprintf(&b, " preset=%s", s.Preset)
	}
	if s.Query != "" {
		fmt.Fprintf(&b, " query=%s", strconv.Quote(s.Query))
	}
	if k.queues != unused && (s.Query == "" || s.Kind != KindPostgres) {
		noun := k.queueNoun
		if len(s.Queues) == 0 {
			fmt.Fprintf(&b, " %s=all", noun)
		} else {
			fmt.Fprintf(&b, " %s=%s", noun, strings.Join(s.Queues, ","))
		}
	}
	if k.entryName {
		fmt.Fprintf(&b, " name=%s", s.Name)
	}
	if s.Kind == KindPrometheus {
		fmt.Fprintf(&b, " empty=%s", s.Empty)
	}
	fmt.Fprintf(&b, " %s", s.Measure)
	if k.window {
		if s.Measure == MeasureLatency || s.Measure == MeasureQueueTime {
			fmt.Fprintf(&b, " quantile=%g", s.Quantile)
		}
		fmt.Fprintf(&b, " window=%s", s.Window)
	}
	return b.String()
}

// label names the source in errors: its kind and redacted URL, or for a kind without a URL what it reads.
func (s Spec) label() string {
	if k, _ := kindNamed(s.Kind); k.schemes == nil && k.name != "" {
		return s.Kind + " " + s.App + "/" + s.Process
	}
	return s.Kind + " " + Redact(s.URL)
}
