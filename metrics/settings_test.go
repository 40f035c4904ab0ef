package metrics_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/metrics"
)

var defaults = metrics.Defaults{
	PrometheusURL: "http://prometheus:9090",
	RedisURL:      "redis://:R3disPass@redis:6379/0",
	DatabaseURL:   "postgres://app:PgPass@db:5432/app",
	RabbitMQURL:   "amqp://app:RabbitPass@rabbit:5672/",
}

// problems returns the *setting.Error inside err keyed by setting name.
func problems(t testing.TB, err error) map[string]*setting.Error {
	t.Helper()
	out := map[string]*setting.Error{}
	for _, e := range setting.Flatten(err) {
		var se *setting.Error
		if !errors.As(e, &se) {
			t.Errorf("problem %v is not a *setting.Error", e)
			continue
		}
		out[se.Name] = se
	}
	return out
}

func TestParseValid(t *testing.T) {
	for _, c := range []struct {
		name     string
		settings metrics.Settings
		want     metrics.Spec
	}{
		{"sidekiq from REDIS_URL", metrics.Settings{Source: "sidekiq"},
			metrics.Spec{Kind: "sidekiq", URL: defaults.RedisURL, Measure: "latency", Empty: "missing", Timeout: 10 * time.Second}},
		{"case and spaces", metrics.Settings{Source: " Sidekiq ", Queues: " default , mailers,default", Measure: "SIZE", Timeout: "2s"},
			metrics.Spec{Kind: "sidekiq", URL: defaults.RedisURL, Queues: []string{"default", "mailers"}, Measure: "size", Empty: "missing", Timeout: 2 * time.Second}},
		{"rq", metrics.Settings{Source: "rq", URL: "rediss://:x@other:6380/2?skip_verify=true"},
			metrics.Spec{Kind: "rq", URL: "rediss://:x@other:6380/2?skip_verify=true", Measure: "latency", Empty: "missing", Timeout: 10 * time.Second}},
		{"celery defaults to its queue and to size", metrics.Settings{Source: "celery"},
			metrics.Spec{Kind: "celery", URL: defaults.RedisURL, Queues: []string{"celery"}, Measure: "size", Empty: "missing", Timeout: 10 * time.Second}},
		{"redis keys", metrics.Settings{Source: "redis", Queues: "jobs,stream"},
			metrics.Spec{Kind: "redis", URL: defaults.RedisURL, Queues: []string{"jobs", "stream"}, Measure: "size", Empty: "missing", Timeout: 10 * time.Second}},
		{"postgres preset", metrics.Settings{Source: "postgres", Preset: "good_job", Queues: "default"},
			metrics.Spec{Kind: "postgres", URL: defaults.DatabaseURL, Preset: "good_job", Queues: []string{"default"}, Measure: "latency", Empty: "missing", Timeout: 10 * time.Second}},
		{"postgres query", metrics.Settings{Source: "postgres", Query: "SELECT 1", Measure: "size"},
			metrics.Spec{Kind: "postgres", URL: defaults.DatabaseURL, Query: "SELECT 1", Measure: "size", Empty: "missing", Timeout: 10 * time.Second}},
		{"prometheus", metrics.Settings{Source: "prometheus", Query: "up", Empty: "zero", Timeout: "500ms"},
			metrics.Spec{Kind: "prometheus", URL: defaults.PrometheusURL, Query: "up", Measure: "latency", Empty: "zero", Timeout: 500 * time.Millisecond}},
		{"hirefire NAME defaults to the process", metrics.Settings{Source: "hirefire", URL: "https://app.example.com/hirefire/T/info", Measure: "size"},
			metrics.Spec{Kind: "hirefire", URL: "https://app.example.com/hirefire/T/info", Name: "worker", Measure: "size", Empty: "missing", Timeout: 10 * time.Second}},
		{"rabbitmq", metrics.Settings{Source: "rabbitmq", Queues: "emails"},
			metrics.Spec{Kind: "rabbitmq", URL: defaults.RabbitMQURL, Queues: []string{"emails"}, Measure: "size", Empty: "missing", Timeout: 10 * time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.settings.Parse("shop", "worker", defaults)
			if err != nil {
				t.Fatal(err)
			}
			c.want.App, c.want.Process = "shop", "worker"
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %#v\nwant %#v", got, c.want)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := metrics.Settings{
		Source:  "sidekiq",
		URL:     "http://:Hunter2@redis:6379",
		Query:   "up",
		Preset:  "good_job",
		Measure: "speed",
		Name:    "web",
		Empty:   "maybe",
		Timeout: "soon",
	}.Parse("shop", "worker", defaults)
	got := problems(t, err)
	for _, name := range []string{"SOURCE_URL", "QUERY", "PRESET", "MEASURE", "NAME", "EMPTY", "TIMEOUT"} {
		if got[name] == nil {
			t.Errorf("no problem reported for %s in:\n%v", name, err)
		}
	}
	if len(got) != 7 {
		t.Errorf("%d problems, want 7:\n%v", len(got), err)
	}
	wantNoSecret(t, err, "Hunter2")
	wantError(t, err, `SOURCE_URL="http://xxxxx@redis:6379": expected a URL starting with redis:// or rediss:// or unix://`,
		`MEASURE="speed": expected one of latency, size, queue-time, rate, load`, `EMPTY="maybe": expected missing or zero`, `TIMEOUT="soon"`)
}

func TestParseProblems(t *testing.T) {
	for _, c := range []struct {
		name     string
		settings metrics.Settings
		defaults metrics.Defaults
		setting  string
		want     []string
	}{
		{"no SOURCE", metrics.Settings{}, defaults, "SOURCE", []string{"prometheus, sidekiq, rq, celery, redis, postgres, hirefire, rabbitmq"}},
		{"unknown SOURCE", metrics.Settings{Source: "kafka"}, defaults, "SOURCE", []string{`"kafka"`, "one of prometheus"}},
		{"no URL and no global", metrics.Settings{Source: "sidekiq"}, metrics.Defaults{}, "SOURCE_URL", []string{"redis://", "or set REDIS_URL"}},
		{"hirefire has no global URL", metrics.Settings{Source: "hirefire"}, defaults, "SOURCE_URL", []string{"https://"}},
		{"bad global URL", metrics.Settings{Source: "postgres", Preset: "que"}, metrics.Defaults{DatabaseURL: "mysql://u:DbSecret@db/app"}, "SOURCE_URL", []string{"(from DATABASE_URL)", "://xxxxx@"}},
		{"go-redis rejects an option", metrics.Settings{Source: "rq", URL: "redis://:RqSecret@host:6379/0?bogus=1"}, defaults, "SOURCE_URL", []string{"bogus"}},
		{"namespace is Sidekiq's only", metrics.Settings{Source: "rq", URL: "redis://host:6379/0?namespace=x"}, defaults, "SOURCE_URL", []string{"namespace"}},
		{"pgx rejects the URL", metrics.Settings{Source: "postgres", Preset: "que", URL: "postgres://u:PgSecret@db:notaport/app"}, defaults, "SOURCE_URL", []string{"://xxxxx@"}},
		{"amqp rejects the URL", metrics.Settings{Source: "rabbitmq", Queues: "q", URL: "amqp://u:MqSecret@rabbit:port/"}, defaults, "SOURCE_URL", []string{"://xxxxx@"}},
		{"hirefire token as user", metrics.Settings{Source: "hirefire", URL: "https://HfSecret@app.example.com/hirefire"}, defaults, "SOURCE_URL", []string{"password"}},
		// Issue 11: a PostgreSQL key=value connection string is no URL, and its password=… was shown.
		{"key=value DSN", metrics.Settings{Source: "postgres", Preset: "que", URL: "host=db user=app password=PgSecret"}, defaults, "SOURCE_URL", []string{"password=xxxxx", "postgres://"}},
		{"key=value DSN from DATABASE_URL", metrics.Settings{Source: "postgres", Preset: "que"}, metrics.Defaults{DatabaseURL: "host=db password='DbSecret x'"}, "SOURCE_URL", []string{"password=xxxxx", "(from DATABASE_URL)"}},
		{"user name of a URL url.Parse rejects", metrics.Settings{Source: "sidekiq", URL: "redis://R3disUser:R3disPass@host:port/0"}, defaults, "SOURCE_URL", []string{"redis://xxxxx@host:port/0"}},
		{"prometheus needs QUERY", metrics.Settings{Source: "prometheus"}, defaults, "QUERY", []string{"a query"}},
		{"QUERY where unused", metrics.Settings{Source: "rq", Query: "x"}, defaults, "QUERY", []string{"prometheus", "postgres"}},
		{"postgres needs QUERY or PRESET", metrics.Settings{Source: "postgres"}, defaults, "PRESET", []string{"delayed_job, good_job, que, river, solid_queue", "or a QUERY"}},
		{"postgres with both", metrics.Settings{Source: "postgres", Query: "SELECT 1", Preset: "que"}, defaults, "QUERY", []string{"not both"}},
		{"postgres QUEUES with QUERY", metrics.Settings{Source: "postgres", Query: "SELECT 1", Queues: "a"}, defaults, "QUEUES", []string{"PRESET"}},
		{"unknown PRESET", metrics.Settings{Source: "postgres", Preset: "sidekiq"}, defaults, "PRESET", []string{"delayed_job, good_job, que, river, solid_queue"}},
		{"PRESET where unused", metrics.Settings{Source: "sidekiq", Preset: "que"}, defaults, "PRESET", []string{"postgres"}},
		{"celery cannot measure latency", metrics.Settings{Source: "celery", Measure: "latency"}, defaults, "MEASURE", []string{"size with SOURCE=celery"}},
		{"rabbitmq cannot measure latency", metrics.Settings{Source: "rabbitmq", Queues: "q", Measure: "latency"}, defaults, "MEASURE", []string{"size"}},
		{"rabbitmq needs QUEUES", metrics.Settings{Source: "rabbitmq"}, defaults, "QUEUES", []string{"queues"}},
		{"redis needs keys", metrics.Settings{Source: "redis"}, defaults, "QUEUES", []string{"keys"}},
		{"empty queue name", metrics.Settings{Source: "sidekiq", Queues: "a,,b"}, defaults, "QUEUES", []string{"empty"}},
		{"QUEUES where unused", metrics.Settings{Source: "prometheus", Query: "up", Queues: "a"}, defaults, "QUEUES", []string{"reads no queues"}},
		{"NAME where unused", metrics.Settings{Source: "sidekiq", Name: "worker"}, defaults, "NAME", []string{"hirefire"}},
		{"zero TIMEOUT", metrics.Settings{Source: "sidekiq", Timeout: "0s"}, defaults, "TIMEOUT", []string{"positive duration"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.settings.Parse("shop", "worker", c.defaults)
			got := problems(t, err)
			p := got[c.setting]
			if p == nil {
				t.Fatalf("no problem for %s in %v", c.setting, err)
			}
			wantError(t, p, c.want...)
			for _, secret := range []string{"DbSecret", "RqSecret", "PgSecret", "MqSecret", "HfSecret", "R3disPass", "R3disUser"} {
				wantNoSecret(t, err, secret)
			}
		})
	}
}

func TestParseFromEnvironment(t *testing.T) {
	var s metrics.Settings
	err := env.ParseWithOptions(&s, env.Options{Prefix: "POLICY_3_", Environment: map[string]string{
		"POLICY_3_SOURCE": "celery",
		"POLICY_3_QUEUES": "default,low",
	}})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := s.Parse("shop", "worker", defaults)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Measure != "size" || spec.Empty != "missing" || spec.Timeout != 10*time.Second || !slices.Equal(spec.Queues, []string{"default", "low"}) {
		t.Errorf("env defaults: %+v", spec)
	}
}

func TestSpecString(t *testing.T) {
	for _, c := range []struct {
		settings metrics.Settings
		want     string
	}{
		{metrics.Settings{Source: "sidekiq", URL: "redis://:Secret1@host:6379/0", Queues: "default,mailers"},
			"sidekiq redis://xxxxx@host:6379/0 queues=default,mailers latency"},
		{metrics.Settings{Source: "rq", Measure: "size"}, "rq redis://xxxxx@redis:6379/0 queues=all size"},
		{metrics.Settings{Source: "redis", Queues: "a,b"}, "redis redis://xxxxx@redis:6379/0 keys=a,b size"},
		{metrics.Settings{Source: "postgres", Preset: "river"}, "postgres postgres://xxxxx@db:5432/app preset=river queues=all latency"},
		{metrics.Settings{Source: "postgres", Query: "SELECT 1", Measure: "size"}, `postgres postgres://xxxxx@db:5432/app query="SELECT 1" size`},
		{metrics.Settings{Source: "prometheus", Query: `max(x{a="b"})`}, `prometheus http://prometheus:9090 query="max(x{a=\"b\"})" empty=missing latency`},
		{metrics.Settings{Source: "hirefire", URL: "https://app.example.com/hirefire/Secret2/info"}, "hirefire https://app.example.com/hirefire/xxxxx/info name=worker latency"},
		{metrics.Settings{Source: "rabbitmq", Queues: "q"}, "rabbitmq amqp://xxxxx@rabbit:5672/ queues=q size"},
	} {
		spec, err := c.settings.Parse("shop", "worker", defaults)
		if err != nil {
			t.Fatal(err)
		}
		if got := spec.String(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
		if strings.Contains(spec.String(), "Secret") || strings.Contains(spec.String(), "Pass") {
			t.Errorf("String shows a secret: %s", spec)
		}
	}
}
