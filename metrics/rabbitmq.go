package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitmqKind reads the messages ready (not yet delivered) in RabbitMQ queues, summed, with a passive queue.declare
// on a fresh channel: the broker answers with the count, and a queue that does not exist is an error rather than
// being created. Only size can be read: AMQP does not tell how old the oldest message is.
func rabbitmqKind() kind {
	return kind{
		name: KindRabbitMQ,
		backend: backend{
			globalURL:  "RABBITMQ_URL",
			defaultURL: func(d Defaults) string { return d.RabbitMQURL },
			schemes:    []string{"amqp", "amqps"},
			checkURL:   func(raw string) error { _, err := amqp.ParseURI(raw); return err },
		},
		measures:  []string{MeasureSize},
		queues:    required,
		queueNoun: "queues",
		open: func(c *Connections, s Spec) (Source, error) {
			if _, err := amqp.ParseURI(s.URL); err != nil {
				return nil, err
			}
			return &rabbitmq{conn: c.amqpConnection(s.URL), queues: s.Queues}, nil
		},
	}
}

type rabbitmq struct {
	conn   *amqpConn
	queues []string
}

// Read takes 2 + len(queues) round trips: open a channel, declare each queue passively, close the channel. The amqp
// client takes no context, so when ctx ends first the shared connection is dropped (which unblocks the call) and the
// next reading dials a new one.
func (s *rabbitmq) Read(ctx context.Context) (Reading, error) {
	type result struct {
		n   int
		err error
	}
	conn, err := s.conn.get(ctx)
	if err != nil {
		return Reading{}, err
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.count(conn)
		if errors.Is(err, amqp.ErrClosed) {
			// The connection dropped since the last reading: dial again once.
			s.conn.drop(conn)
			if conn, err = s.conn.get(ctx); err == nil {
				n, err = s.count(conn)
			}
		}
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return Reading{}, r.err
		}
		return Reading{Value: float64(r.n), At: time.Now()}, nil
	case <-ctx.Done():
		s.conn.drop(conn)
		return Reading{}, ctx.Err()
	}
}

func (s *rabbitmq) count(conn *amqp.Connection) (int, error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open a channel: %w", err)
	}
	defer func() { _ = ch.Close() }()
	n := 0
	for _, q := range s.queues {
		info, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
		if err != nil {
			var amqpErr *amqp.Error
			if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
				return 0, fmt.Errorf("queue %q does not exist (it is never created by dynopilot)", q)
			}
			return 0, fmt.Errorf("queue %q: %w", q, err)
		}
		n += info.Messages
	}
	return n, nil
}

// amqpConn is one RabbitMQ connection shared by every source on its URL, dialled on first use and again after it
// drops.
type amqpConn struct {
	url    string
	logger *slog.Logger

	dialing chan struct{} // one dial at a time (capacity 1); a channel so that waiting for it honours a context
	mu      sync.Mutex    // guards conn
	conn    *amqp.Connection
	closed  bool
}

func newAMQPConn(rawURL string, logger *slog.Logger) *amqpConn {
	return &amqpConn{url: rawURL, logger: logger, dialing: make(chan struct{}, 1)}
}

func (a *amqpConn) current() (*amqp.Connection, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil && !a.conn.IsClosed() {
		return a.conn, a.closed
	}
	return nil, a.closed
}

// get returns the open connection, dialling one within ctx when there is none.
func (a *amqpConn) get(ctx context.Context) (*amqp.Connection, error) {
	conn, closed := a.current()
	if closed {
		return nil, errors.New("connections are closed")
	}
	if conn != nil {
		return conn, nil
	}
	select {
	case a.dialing <- struct{}{}:
		defer func() { <-a.dialing }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if conn, _ := a.current(); conn != nil {
		return conn, nil // dialled by another reading meanwhile
	}
	conn, err := amqp.DialConfig(a.url, amqp.Config{
		Properties: amqp.Table{"connection_name": clientName},
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the TLS and AMQP handshakes; the client clears it once the connection is open.
			deadline, ok := ctx.Deadline()
			if !ok {
				deadline = time.Now().Add(30 * time.Second)
			}
			_ = c.SetDeadline(deadline)
			return c, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		_ = conn.Close()
		return nil, errors.New("connections are closed")
	}
	a.conn = conn
	a.logger.Debug("connected to rabbitmq", "url", Redact(a.url))
	return conn, nil
}

// drop forgets conn and closes it in the background, bounded, so that calls stuck on it return.
func (a *amqpConn) drop(conn *amqp.Connection) {
	a.mu.Lock()
	if a.conn == conn {
		a.conn = nil
	}
	a.mu.Unlock()
	go func() { _ = conn.CloseDeadline(time.Now().Add(time.Second)) }()
}

func (a *amqpConn) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.conn == nil || a.conn.IsClosed() {
		return nil
	}
	err := a.conn.CloseDeadline(time.Now().Add(2 * time.Second))
	a.conn = nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
