package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
)

// sidekiq8Job is a job exactly as Sidekiq 8 pushes it: created_at and enqueued_at are integers of milliseconds
// (Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)).
func sidekiq8Job(queue string, enqueued time.Time) string {
	ms := enqueued.UnixMilli()
	return fmt.Sprintf(`{"retry":true,"queue":%q,"class":"HardJob","args":[1],"jid":"b4a577edbccf1d805744efa9","created_at":%d,"enqueued_at":%d}`, queue, ms, ms)
}

func TestSidekiqRealClient(t *testing.T) {
	ruby := servicetest.Binary(t, servicetest.SidekiqRuby)
	url, _ := redisDB(t, dbSidekiq)

	before := time.Now()
	run(t, ruby, "testdata/sidekiq_push.rb", url, "default:3:300", "mailers:2:60", "empty:0:0")
	all := open(t, metrics.Settings{Source: "sidekiq", URL: url})
	mailersSize := open(t, metrics.Settings{Source: "sidekiq", URL: url, Queues: "mailers", Measure: "size"})
	mailers := open(t, metrics.Settings{Source: "sidekiq", URL: url, Queues: "mailers,empty"})
	allSize := open(t, metrics.Settings{Source: "sidekiq", URL: url, Measure: "size"})

	latency := mustRead(t, all)
	onlyMailers := mustRead(t, mailers)
	slack := time.Since(before).Seconds() // the jobs were stamped after before, and read before now
	between(t, "latency over all queues", latency.Value, 300, 300+slack)
	between(t, "latency of mailers", onlyMailers.Value, 60, 60+slack)
	if got := mustRead(t, allSize).Value; got != 5 {
		t.Errorf("size of all queues = %v, want 5", got)
	}
	if got := mustRead(t, mailersSize).Value; got != 2 {
		t.Errorf("size of mailers = %v, want 2", got)
	}
	if latency.At.Before(before) || latency.At.After(time.Now()) {
		t.Errorf("reading time %v is not between %v and now", latency.At, before)
	}
}

func TestSidekiq8Milliseconds(t *testing.T) {
	url, client := redisDB(t, dbSidekiq)
	ctx := context.Background()
	enqueued := time.Now().Add(-120 * time.Second)
	client.SAdd(ctx, "queues", "critical")
	client.LPush(ctx, "queue:critical", sidekiq8Job("critical", enqueued))
	client.LPush(ctx, "queue:critical", sidekiq8Job("critical", time.Now())) // newer, at the head

	src := open(t, metrics.Settings{Source: "sidekiq", URL: url})
	r := mustRead(t, src)
	want := time.Since(enqueued.Truncate(time.Millisecond)).Seconds()
	between(t, "Sidekiq 8 latency", r.Value, 120-0.001, want)
}

func TestSidekiqNamespace(t *testing.T) {
	url, client := redisDB(t, dbSidekiq)
	ctx := context.Background()
	before := time.Now()
	client.SAdd(ctx, "myapp:queues", "default")
	client.LPush(ctx, "myapp:queue:default", sidekiq8Job("default", before.Add(-30*time.Second)))
	client.LPush(ctx, "myapp:queue:default", sidekiq8Job("default", time.Now()))
	client.SAdd(ctx, "queues", "default") // another app in the same database, without namespace
	client.LPush(ctx, "queue:default", sidekiq8Job("default", time.Now().Add(-900*time.Second)))

	r := mustRead(t, open(t, metrics.Settings{Source: "sidekiq", URL: url + "?namespace=myapp"}))
	between(t, "namespaced latency", r.Value, 30-0.001, 30.001+time.Since(before).Seconds())
	size := mustRead(t, open(t, metrics.Settings{Source: "sidekiq", URL: url + "?namespace=myapp", Measure: "size"}))
	if size.Value != 2 {
		t.Errorf("namespaced size = %v, want 2", size.Value)
	}
}

func TestSidekiqEdgeCases(t *testing.T) {
	url, client := redisDB(t, dbSidekiq)
	ctx := context.Background()
	read1 := func(queue string) (metrics.Reading, error) {
		return read(t, open(t, metrics.Settings{Source: "sidekiq", URL: url, Queues: queue}))
	}

	t.Run("empty queue is latency 0", func(t *testing.T) {
		r, err := read1("nothing-here")
		if err != nil || r.Value != 0 {
			t.Errorf("got %v, %v; want 0, nil", r.Value, err)
		}
	})
	t.Run("no queues at all is latency 0", func(t *testing.T) {
		r, err := read(t, open(t, metrics.Settings{Source: "sidekiq", URL: url + "?namespace=none"}))
		if err != nil || r.Value != 0 {
			t.Errorf("got %v, %v; want 0, nil", r.Value, err)
		}
	})
	t.Run("clock skew gives 0, not a negative latency", func(t *testing.T) {
		client.LPush(ctx, "queue:future", sidekiq8Job("future", time.Now().Add(time.Minute)))
		r, err := read1("future")
		if err != nil || r.Value != 0 {
			t.Errorf("got %v, %v; want 0, nil", r.Value, err)
		}
	})
	t.Run("created_at when enqueued_at is missing", func(t *testing.T) {
		stamp := time.Now()
		ts := float64(stamp.Add(-45*time.Second).UnixMicro()) / 1e6
		client.LPush(ctx, "queue:legacy", fmt.Sprintf(`{"class":"X","args":[],"created_at":%f}`, ts))
		r, err := read1("legacy")
		if err != nil {
			t.Fatal(err)
		}
		between(t, "latency", r.Value, 45-0.001, 45+time.Since(stamp).Seconds())
	})
	for name, payload := range map[string]string{
		"malformed JSON":               `{"class":"X","enqueued_at":`,
		"not an object":                `[1,2,3]`,
		"enqueued_at a string":         `{"class":"X","enqueued_at":"yesterday"}`,
		"enqueued_at nonsense":         `{"class":"X","enqueued_at":42}`,
		"no timestamps":                `{"class":"X","args":[]}`,
		"enqueued_at neither s nor ms": `{"class":"X","enqueued_at":500000000000}`,
	} {
		t.Run(name+" is an error naming the queue", func(t *testing.T) {
			queue := unique("bad")
			client.LPush(ctx, "queue:"+queue, payload)
			r, err := read1(queue)
			wantError(t, err, "sidekiq redis://", "queue:"+queue)
			if r.Value != 0 {
				t.Errorf("a failed reading carries value %v", r.Value)
			}
		})
	}
}
