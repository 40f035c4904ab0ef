package metrics

import (
	"slices"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// The kinds of source, as users write them in SOURCE.
const (
	KindPrometheus = "prometheus"
	KindSidekiq    = "sidekiq"
	KindRQ         = "rq"
	KindCelery     = "celery"
	KindRedis      = "redis"
	KindPostgres   = "postgres"
	KindHireFire   = "hirefire"
	KindRabbitMQ   = "rabbitmq"
	KindLogDrain   = "logdrain"
)

// What a source measures (MEASURE): the policy reads a latency target as seconds and a size target as a count.
const (
	MeasureLatency   = "latency"    // seconds the oldest waiting job has waited; logdrain: a quantile of the router's service time
	MeasureSize      = "size"       // jobs or messages waiting
	MeasureQueueTime = "queue-time" // logdrain: a quantile of the queue times the app logs in HireFire's format
	MeasureRate      = "rate"       // logdrain: requests per second
	MeasureLoad      = "load"       // logdrain: mean load_avg_1m per dyno, from Heroku's runtime metrics
)

// measures returns every valid value of MEASURE, in the order the kinds first list them.
func measures() []string {
	var out []string
	for _, k := range kinds() {
		for _, m := range k.measures {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// What an empty Prometheus result means (EMPTY).
const (
	EmptyMissing = "missing" // no reading: never scales down
	EmptyZero    = "zero"    // a reading of 0 (for queries that are empty when there is no traffic)
)

// use says whether a kind takes an optional setting.
type use int

const (
	unused use = iota
	optional
	required
)

// kind is everything the package knows about one kind of source: which settings it takes, where its URL comes from
// by default, how to check that URL without I/O, and how to open it. Each kind's file (sidekiq.go, …) defines one;
// kinds lists them all, and nothing else needs to change to add one.
type kind struct {
	name string
	backend
	measures  []string                          // the measures the kind can read; the first is its default
	query     use                               // QUERY
	preset    use                               // PRESET
	queues    use                               // QUEUES
	queueNoun string                            // what QUEUES names for this kind, in messages and Spec.String ("queues", "keys")
	defQueues []string                          // QUEUES when unset ("" = all the backend knows)
	entryName bool                              // whether NAME is used
	window    bool                              // whether QUANTILE and WINDOW are used (a source that aggregates over time)
	check     func(s *Spec, errs *setting.List) // settings that depend on each other (postgres: QUERY or PRESET)
	// running is set for a kind that can see running jobs (Spec.Running); it returns why a spec of the kind cannot
	// (postgres with a QUERY or Que), "" when it can.
	running func(s Spec) string
	open    func(c *Connections, s Spec) (Source, error)
}

// backend is where a kind's URL comes from and what it must look like: the same for every kind that reads one
// service (sidekiq, rq, celery and redis all read Redis).
type backend struct {
	globalURL  string                // the global variable that gives the default URL ("" when there is none)
	defaultURL func(Defaults) string // reads that variable's value from Defaults
	schemes    []string              // accepted URL schemes, the first shown in messages
	checkURL   func(raw string) error
}

// checking returns b with another URL check, for a kind that accepts more in its URL than the service does.
func (b backend) checking(check func(raw string) error) backend {
	b.checkURL = check
	return b
}

// kinds is the one registry of source kinds, in the order SOURCE's documentation lists them.
func kinds() []kind {
	return []kind{
		prometheusKind(),
		sidekiqKind(),
		rqKind(),
		celeryKind(),
		redisKind(),
		postgresKind(),
		hirefireKind(),
		rabbitmqKind(),
		logdrainKind(),
	}
}

// Kinds returns the valid values of SOURCE.
func Kinds() []string {
	var names []string
	for _, k := range kinds() {
		names = append(names, k.name)
	}
	return names
}

func kindNamed(name string) (kind, bool) {
	all := kinds()
	i := slices.IndexFunc(all, func(k kind) bool { return k.name == name })
	if i < 0 {
		return kind{}, false
	}
	return all[i], true
}
