package metrics_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// benchRedis writes a few jobs of each Redis-backed library under unique names in the shared database and returns
// settings reading them.
func benchRedis(b *testing.B) map[string]metrics.Settings {
	url, client := redisDB(b, dbShared)
	ctx := context.Background()
	ns := unique("bench")
	var keys []string
	for _, q := range []string{"default", "mailers", "low"} {
		client.SAdd(ctx, ns+":queues", q)
		for i := range 5 {
			client.LPush(ctx, ns+":queue:"+q, sidekiq8Job(q, time.Now().Add(-time.Duration(i)*time.Second)))
		}
		rqQueue := "rq:queue:" + ns + q
		for i := range 5 {
			id := fmt.Sprintf("%s-%s-%d", ns, q, i)
			client.RPush(ctx, rqQueue, id)
			client.HSet(ctx, "rq:job:"+id, "enqueued_at", time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))
			keys = append(keys, "rq:job:"+id)
		}
		client.LPush(ctx, ns+q, "{}", "{}")
		keys = append(keys, ns+":queue:"+q, rqQueue, ns+q)
	}
	client.ZAdd(ctx, ns+"zset", redis.Z{Score: 1, Member: "a"})
	keys = append(keys, ns+":queues", ns+"zset")
	b.Cleanup(func() { client.Del(context.Background(), keys...) })
	return map[string]metrics.Settings{
		"sidekiq/all-queues":   {Source: "sidekiq", URL: url + "?namespace=" + ns},
		"sidekiq/three-queues": {Source: "sidekiq", URL: url + "?namespace=" + ns, Queues: "default,mailers,low"},
		"sidekiq/size":         {Source: "sidekiq", URL: url + "?namespace=" + ns, Queues: "default,mailers,low", Measure: "size"},
		"rq/latency":           {Source: "rq", URL: url, Queues: ns + "default," + ns + "mailers," + ns + "low"},
		"rq/size":              {Source: "rq", URL: url, Queues: ns + "default," + ns + "mailers," + ns + "low", Measure: "size"},
		"celery":               {Source: "celery", URL: url, Queues: ns + "default," + ns + "mailers," + ns + "low"},
		"redis":                {Source: "redis", URL: url, Queues: ns + "default," + ns + "zset"},
	}
}

func benchPostgres(b *testing.B) map[string]metrics.Settings {
	pool, url := schema(b)
	ddl(b, pool, "good_job.sql")
	tables := presetTables()["good_job"]
	for i := range 20 {
		tables.waiting(b, pool, []string{"default", "mailers"}[i%2], float64(i))
	}
	return map[string]metrics.Settings{
		"postgres/good_job-latency": {Source: "postgres", URL: url, Preset: "good_job", Queues: "default,mailers"},
		"postgres/good_job-size":    {Source: "postgres", URL: url, Preset: "good_job", Measure: "size"},
		"postgres/query":            {Source: "postgres", URL: url, Query: "SELECT count(*) FROM good_jobs"},
	}
}

func benchRabbitMQ(b *testing.B) map[string]metrics.Settings {
	url := servicetest.Lookup(b, servicetest.RabbitMQURL)
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return map[string]metrics.Settings{
		"rabbitmq": {Source: "rabbitmq", URL: url, Queues: rabbitQueue(b, conn, 10) + "," + rabbitQueue(b, conn, 5)},
	}
}

func benchHTTP(b *testing.B) map[string]metrics.Settings {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"name":"web","value":0.2},{"name":"worker","value":12}]`))
	}))
	b.Cleanup(srv.Close)
	prom := startPrometheus(b, exporter(b))
	return map[string]metrics.Settings{
		"hirefire": {Source: "hirefire", URL: srv.URL + "/hirefire/T/info"},
		"prometheus": {Source: "prometheus", URL: prom, Empty: "zero",
			Query: "histogram_quantile(0.95, sum(rate(test_request_duration_seconds_bucket[30s])) by (le))"},
	}
}

// BenchmarkRead measures one reading of each kind against the local services, through Instruments.Wrap as the
// daemon reads. The goal is well under 5 ms per reading.
func BenchmarkRead(b *testing.B) {
	all := map[string]metrics.Settings{}
	for _, setup := range []func(*testing.B) map[string]metrics.Settings{benchRedis, benchPostgres, benchRabbitMQ, benchHTTP} {
		for name, s := range setup(b) {
			all[name] = s
		}
	}
	ins, err := metrics.NewInstruments(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		b.Run(name, func(b *testing.B) {
			spec := parse(b, all[name])
			src := ins.Wrap("bench/worker", spec, open(b, all[name]))
			if _, err := read(b, src); err != nil { // connect outside the measurement
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if _, err := src.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/read")
		})
	}
}

// BenchmarkHundredPoliciesOneRedis reads 100 Sidekiq policies on one Redis URL concurrently, as 100 policies
// evaluated at the same tick would, and reports the pools and Redis connections they used.
func BenchmarkHundredPoliciesOneRedis(b *testing.B) {
	settings := benchRedis(b)["sidekiq/three-queues"]
	_, client := redisDB(b, dbShared)
	conns := metrics.NewConnections(nil)
	b.Cleanup(func() { _ = conns.Close() })
	var sources []metrics.Source
	for range 100 {
		src, err := conns.Open(parse(b, settings))
		if err != nil {
			b.Fatal(err)
		}
		sources = append(sources, src)
	}
	ctx := context.Background()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, src := range sources {
			wg.Go(func() {
				if _, err := src.Read(ctx); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(conns.Pools()), "pools")
	list, err := client.ClientList(ctx).Result()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name=dynopilot ") && strings.Contains(line, fmt.Sprintf(" db=%d ", dbShared)) {
			n++
		}
	}
	b.ReportMetric(float64(n), "redis-conns")
}
