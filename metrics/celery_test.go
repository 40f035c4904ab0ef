package metrics_test

import (
	"context"
	"testing"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
)

func TestCeleryRealClient(t *testing.T) {
	python := servicetest.Binary(t, servicetest.Python)
	url, client := redisDB(t, dbCelery)

	// 2 on the default queue, 3 on q1 plus 2 with priority 9 (kombu puts those in the list "q1\x06\x169").
	run(t, python, "testdata/celery_send.py", url, "-:2", "q1:3", "q1:2:9", "q2:1")
	if n, err := client.LLen(context.Background(), "q1\x06\x169").Result(); err != nil || n != 2 {
		t.Fatalf("kombu's priority list q1\\x06\\x169 holds %d messages (%v): the test no longer covers priorities", n, err)
	}

	for _, c := range []struct {
		queues string
		want   float64
	}{
		{"", 2}, // default: celery
		{"q1", 5},
		{"q1,q2,celery", 8},
		{"nothing", 0},
	} {
		got := mustRead(t, open(t, metrics.Settings{Source: "celery", URL: url, Queues: c.queues}))
		if got.Value != c.want {
			t.Errorf("QUEUES=%q: size %v, want %v", c.queues, got.Value, c.want)
		}
	}
}

func TestCeleryWrongType(t *testing.T) {
	url, client := redisDB(t, dbCelery)
	client.Set(context.Background(), "weird", "a string", 0)
	_, err := read(t, open(t, metrics.Settings{Source: "celery", URL: url, Queues: "weird"}))
	wantError(t, err, "celery redis://", "WRONGTYPE")
}
