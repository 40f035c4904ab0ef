package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitQueue declares a queue (as the app would), publishes n confirmed messages to it, and deletes it at the end.
func rabbitQueue(t testing.TB, conn *amqp.Connection, n int) string {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	name := unique("dp_metrics_")
	if _, err := ch.QueueDeclare(name, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(name, false, false, false)
			_ = ch.Close()
		}
	})
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		confirm, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", name, false, false, amqp.Publishing{Body: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := confirm.WaitContext(context.Background()); !ok || err != nil {
			t.Fatalf("message %d not confirmed: %v", i, err)
		}
	}
	return name
}

func TestRabbitMQ(t *testing.T) {
	t.Parallel()
	url := servicetest.Lookup(t, servicetest.RabbitMQURL)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	q1 := rabbitQueue(t, conn, 7)
	q2 := rabbitQueue(t, conn, 3)

	if got := mustRead(t, open(t, metrics.Settings{Source: "rabbitmq", URL: url, Queues: q1})).Value; got != 7 {
		t.Errorf("%s: %v messages ready, want 7", q1, got)
	}

	t.Run("delivered but unacknowledged messages are not ready", func(t *testing.T) {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		for range 2 {
			if _, ok, err := ch.Get(q2, false); !ok || err != nil {
				t.Fatalf("get from %s: %v %v", q2, ok, err)
			}
		}
		if got := mustRead(t, open(t, metrics.Settings{Source: "rabbitmq", URL: url, Queues: q1 + "," + q2})).Value; got != 8 {
			t.Errorf("%s,%s: %v messages ready, want 7+1", q1, q2, got)
		}
	})

	t.Run("a missing queue is an error and is not created", func(t *testing.T) {
		missing := unique("dp_metrics_missing_")
		_, err := read(t, open(t, metrics.Settings{Source: "rabbitmq", URL: url, Queues: q1 + "," + missing}))
		wantError(t, err, "rabbitmq amqp://xxxxx@", missing, "does not exist")
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(missing, false, false, false, false, nil)
		var amqpErr *amqp.Error
		if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
			t.Errorf("queue %s exists after the reading (passive declare: %v)", missing, err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		wrong := strings.Replace(url, "guest:guest@", "guest:Wr0ng-Rabbit@", 1)
		if wrong == url {
			t.Skip("the test RabbitMQ URL does not use guest:guest")
		}
		_, err := read(t, open(t, metrics.Settings{Source: "rabbitmq", URL: wrong, Queues: q1}))
		wantError(t, err, "rabbitmq amqp://xxxxx@")
		wantNoSecret(t, err, "Wr0ng-Rabbit")
	})

	t.Run("reconnects after the connection drops", func(t *testing.T) {
		proxy := newProxy(t, rabbitAddr(t, url))
		src := open(t, metrics.Settings{Source: "rabbitmq", URL: strings.Replace(url, rabbitAddr(t, url), proxy.addr, 1), Queues: q1})
		if got := mustRead(t, src).Value; got != 7 {
			t.Fatalf("through the proxy: %v, want 7", got)
		}
		proxy.cut()
		// The first reading may still find the old connection; a later one must succeed on a new one.
		var got metrics.Reading
		for attempt := 1; ; attempt++ {
			got, err = read(t, src)
			if err == nil || attempt == 3 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || got.Value != 7 {
			t.Errorf("after the drop: %v, %v; want 7", got.Value, err)
		}
		if n := proxy.accepted(); n != 2 {
			t.Errorf("%d connections made, want 2 (one redial)", n)
		}
	})
}

func rabbitAddr(t testing.TB, rawURL string) string {
	t.Helper()
	uri, err := amqp.ParseURI(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
}

// proxy forwards TCP connections to a backend and can cut them all, to simulate a dropped connection.
type proxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
	count int
}

func newProxy(t testing.TB, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	go func() {
		for {
			front, err := ln.Accept()
			if err != nil {
				return
			}
			back, err := net.Dial("tcp", backend)
			if err != nil {
				_ = front.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, front, back)
			p.count++
			p.mu.Unlock()
			go func() { _, _ = io.Copy(back, front); _ = back.Close() }()
			go func() { _, _ = io.Copy(front, back); _ = front.Close() }()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}
