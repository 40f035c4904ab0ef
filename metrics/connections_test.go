package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
)

func TestConnectionsShareOnePoolPerURL(t *testing.T) {
	t.Parallel()
	url, client := redisDB(t, dbShared)
	ns := unique("share")
	url += "?client_name=" + ns // to count this test's connections
	ctx := context.Background()
	client.SAdd(ctx, ns+":queues", "q")
	client.LPush(ctx, ns+":queue:q", sidekiq8Job("q", time.Now()))
	t.Cleanup(func() { client.Del(context.Background(), ns+":queues", ns+":queue:q") })

	conns := metrics.NewConnections(nil)
	defer conns.Close()
	var sources []metrics.Source
	for i := range 100 {
		s := metrics.Settings{Source: "sidekiq", URL: url + "&namespace=" + ns, Queues: fmt.Sprintf("q,other%d", i)}
		if i%4 == 1 {
			s = metrics.Settings{Source: "rq", URL: url, Queues: ns}
		}
		if i%4 == 2 {
			s = metrics.Settings{Source: "sidekiq", URL: url + "&namespace=" + ns, Measure: "size"}
		}
		src, err := conns.Open(parse(t, s))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, src)
	}
	if n := conns.Pools(); n != 1 {
		t.Errorf("100 policies on one Redis URL: %d pools, want 1", n)
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(sources))
	for _, src := range sources {
		wg.Go(func() {
			if _, err := read(t, src); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := client.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(list, " name="+ns+" "); n < 1 || n > 4 {
		t.Errorf("100 concurrent readings used %d Redis connections, want 1 to 4", n)
	}

	// Another database is another pool; so is another kind of service. HTTP sources share net/http's pool.
	other := strings.Replace(url, fmt.Sprintf("/%d?", dbShared), "/3?", 1)
	for _, s := range []metrics.Settings{
		{Source: "celery", URL: other},
		{Source: "postgres", URL: "postgres://db.invalid/app", Query: "SELECT 1"},
		{Source: "rabbitmq", URL: "amqp://mq.invalid/", Queues: "q"},
		{Source: "prometheus", URL: "http://prom.invalid", Query: "up"},
		{Source: "hirefire", URL: "https://app.invalid/hirefire/T/info"},
	} {
		if _, err := conns.Open(parse(t, s)); err != nil {
			t.Fatalf("Open(%s) must not do I/O: %v", s.Source, err)
		}
	}
	if n := conns.Pools(); n != 4 {
		t.Errorf("%d pools, want 4 (two Redis databases, one PostgreSQL, one RabbitMQ)", n)
	}
}

func TestConnectionsClose(t *testing.T) {
	t.Parallel()
	rabbit := servicetest.Lookup(t, servicetest.RabbitMQURL)
	db := servicetest.Lookup(t, servicetest.DatabaseURL)
	url, _ := redisDB(t, dbShared)
	conns := metrics.NewConnections(nil)
	var sources []metrics.Source
	for _, s := range []metrics.Settings{
		{Source: "celery", URL: url, Queues: unique("none")},
		{Source: "postgres", URL: db, Query: "SELECT 1"},
		{Source: "rabbitmq", URL: rabbit, Queues: "amq.rabbitmq.reply-to-never"},
	} {
		src, err := conns.Open(parse(t, s))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = read(t, src) // connect
		sources = append(sources, src)
	}
	if err := conns.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, src := range sources {
		if _, err := read(t, src); err == nil {
			t.Errorf("%v still reads after Close", src)
		}
	}
	if _, err := conns.Open(parse(t, metrics.Settings{Source: "celery", URL: url})); err == nil {
		t.Error("Open after Close: no error")
	}
}
