package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/setting"
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
}

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
	URL     string        // where to read; may hold a password: show it only through Redact or String
	Query   string        // PromQL (prometheus) or SQL (postgres)
	Preset  string        // postgres job table layout, one of Presets()
	Queues  []string      // queue names (keys for redis); nil means every queue the backend knows
	Measure string        // MeasureLatency or MeasureSize
	Name    string        // the entry of a HireFire payload
	Empty   string        // EmptyMissing or EmptyZero
	Timeout time.Duration // limit on one reading, applied by Instruments.Wrap
}

// Parse validates the settings of the policy for process type process, filling defaults (NAME is the process type,
// SOURCE_URL the global default of the kind). It reports every problem at once, each as a *setting.Error naming the
// setting; no error text ever shows a password.
func (s Settings) Parse(process string, d Defaults) (Spec, error) {
	var errs setting.List
	spec := Spec{
		Kind:  strings.ToLower(strings.TrimSpace(s.Source)),
		Query: strings.TrimSpace(s.Query),
		Name:  strings.TrimSpace(s.Name),
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
	if measure != "" && measure != MeasureLatency && measure != MeasureSize {
		errs.Add(setting.Errorf("MEASURE", s.Measure, "%s or %s", MeasureLatency, MeasureSize))
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
		if !slices.Contains(k.measures, measure) {
			errs.Add(setting.Errorf("MEASURE", s.Measure, "%s with SOURCE=%s, which does not record when jobs were enqueued", strings.Join(k.measures, " or "), k.name))
		} else {
			spec.Measure = measure
		}
	}

	spec.URL = strings.TrimSpace(s.URL)
	from := ""
	if spec.URL == "" && k.defaultURL != nil {
		spec.URL, from = strings.TrimSpace(k.defaultURL(d)), " (from "+k.globalURL+")"
	}
	errs.Add(k.validateURL(spec.URL, from))

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
	return b.String()
}

// label names the source in errors: its kind and redacted URL.
func (s Spec) label() string { return s.Kind + " " + Redact(s.URL) }
