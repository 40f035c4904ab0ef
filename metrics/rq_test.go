package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
)

func TestRQRealClient(t *testing.T) {
	python := servicetest.Binary(t, servicetest.Python)
	url, client := redisDB(t, dbRQ)
	ctx := context.Background()

	before := time.Now()
	run(t, python, "testdata/rq_enqueue.py", url, "default:3:300", "high:2:60")
	// A job whose hash expired (enqueued with a ttl) leaves its id at the head; RQ skips it, and so must the reading.
	client.LPush(ctx, "rq:queue:high", "expired-job-id")

	latency := mustRead(t, open(t, metrics.Settings{Source: "rq", URL: url}))
	high := mustRead(t, open(t, metrics.Settings{Source: "rq", URL: url, Queues: "high"}))
	slack := time.Since(before).Seconds()
	between(t, "latency over all queues", latency.Value, 300, 300+slack)
	between(t, "latency of high", high.Value, 60, 60+slack)

	if got := mustRead(t, open(t, metrics.Settings{Source: "rq", URL: url, Measure: "size"})).Value; got != 6 {
		t.Errorf("size of all queues = %v, want 6 (5 jobs and the expired id, which RQ also counts)", got)
	}
	if got := mustRead(t, open(t, metrics.Settings{Source: "rq", URL: url, Queues: "default", Measure: "size"})).Value; got != 3 {
		t.Errorf("size of default = %v, want 3", got)
	}
}

func TestRQEdgeCases(t *testing.T) {
	url, client := redisDB(t, dbRQ)
	ctx := context.Background()
	read1 := func(queue string) (metrics.Reading, error) {
		return read(t, open(t, metrics.Settings{Source: "rq", URL: url, Queues: queue}))
	}

	t.Run("empty queue is latency 0", func(t *testing.T) {
		r, err := read1("idle")
		if err != nil || r.Value != 0 {
			t.Errorf("got %v, %v; want 0, nil", r.Value, err)
		}
	})
	t.Run("old RQ timestamps without fraction", func(t *testing.T) {
		stamp := time.Now().UTC().Add(-90 * time.Second).Truncate(time.Second)
		client.RPush(ctx, "rq:queue:old", "j1")
		client.HSet(ctx, "rq:job:j1", "enqueued_at", stamp.Format("2006-01-02T15:04:05Z"))
		r, err := read1("old")
		if err != nil {
			t.Fatal(err)
		}
		between(t, "latency", r.Value, 90, time.Since(stamp).Seconds())
	})
	t.Run("garbage enqueued_at is an error", func(t *testing.T) {
		client.RPush(ctx, "rq:queue:bad", "j2")
		client.HSet(ctx, "rq:job:j2", "enqueued_at", "last tuesday")
		_, err := read1("bad")
		wantError(t, err, "rq redis://", "rq:queue:bad", "rq:job:j2")
	})
	t.Run("only expired ids is an error, not a guess", func(t *testing.T) {
		client.RPush(ctx, "rq:queue:ghosts", "g1", "g2")
		_, err := read1("ghosts")
		wantError(t, err, "rq:queue:ghosts", "job hash")
	})
}
