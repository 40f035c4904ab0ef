package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// clientName is how dynopilot introduces itself to Redis (CLIENT LIST), PostgreSQL (application_name) and RabbitMQ
// (connection_name), so that an operator can tell its connections apart.
const clientName = "dynopilot"

// Connections holds the clients every source reads through, one per URL: a hundred policies reading the same Redis
// share one pool of connections rather than opening a hundred. Nothing connects until the first reading, so an
// unreachable service never stops the daemon from starting; it only makes that source's readings fail.
type Connections struct {
	logger *slog.Logger
	http   *http.Client // Prometheus and HireFire, pooling connections per host (newTransport)

	mu     sync.Mutex
	redis  map[string]*redis.Client
	pg     map[string]*pgxpool.Pool
	amqp   map[string]*amqpConn
	drains Drains // the log drain receiver's aggregates, for SOURCE=logdrain; nil without one
	closed bool
}

// UseDrains gives logdrain sources opened from now on the receiver's aggregates to read.
func (c *Connections) UseDrains(d Drains) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drains = d
}

// NewConnections returns an empty set of shared clients that logs through logger (nil: discard).
func NewConnections(logger *slog.Logger) *Connections {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connections{
		logger: logger,
		http:   &http.Client{Transport: newTransport()},
		redis:  map[string]*redis.Client{},
		pg:     map[string]*pgxpool.Pool{},
		amqp:   map[string]*amqpConn{},
	}
}

// maxConnsPerHost caps the connections open to one host (a Prometheus server, or one HireFire endpoint that
// answers for many apps): readings beyond it wait for a connection rather than dialling one. Without a cap, every
// policy reading the same host at the same instant opened its own connection, and all but the few kept idle were
// closed after their one answer: a thousand policies on one host made about 11,800 connections a minute and
// doubled the daemon's resident memory. 32 at once is more than such a host usually serves in parallel (Prometheus
// runs 20 queries at a time by default).
const maxConnsPerHost = 32

// newTransport is the HTTP transport of Prometheus and HireFire sources: net/http's defaults, with at most
// maxConnsPerHost connections to a host, every one of which is kept for the next reading.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = maxConnsPerHost
	t.MaxIdleConnsPerHost = maxConnsPerHost
	return t
}

// Open returns the Source for spec, sharing the client of any source already opened on the same URL. It does no I/O.
// Every error the Source returns names it (kind and redacted URL) and carries no secret of its URL.
func (c *Connections) Open(spec Spec) (Source, error) {
	k, ok := kindNamed(spec.Kind)
	if !ok {
		return nil, fmt.Errorf("open source: unknown kind %q: expected one of %v", spec.Kind, Kinds())
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("open %s: connections are closed", spec.label())
	}
	src, err := k.open(c, spec)
	if err != nil {
		return nil, &SourceError{Source: spec.label(), msg: setting.Scrub(err.Error(), secretsOf(spec.URL)), cause: err}
	}
	return &named{label: spec.label(), secrets: secretsOf(spec.URL), src: src}, nil
}

// Pools is the number of connection pools open (one per distinct Redis, PostgreSQL or RabbitMQ URL), so that
// `dynopilot check` and tests can see that policies share them.
func (c *Connections) Pools() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.redis) + len(c.pg) + len(c.amqp)
}

// Close closes every pool; sources opened from c fail afterwards.
func (c *Connections) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for key, client := range c.redis {
		if err := client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close redis %s: %w", Redact(key), err))
		}
	}
	for _, pool := range c.pg {
		pool.Close()
	}
	for key, conn := range c.amqp {
		if err := conn.close(); err != nil {
			errs = append(errs, fmt.Errorf("close rabbitmq %s: %w", Redact(key), err))
		}
	}
	c.redis, c.pg, c.amqp = map[string]*redis.Client{}, map[string]*pgxpool.Pool{}, map[string]*amqpConn{}
	c.http.CloseIdleConnections()
	return errors.Join(errs...)
}

// redisClient returns the shared client for a Redis URL (without any namespace parameter), creating it unconnected.
func (c *Connections) redisClient(key string) (*redis.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if client, ok := c.redis[key]; ok {
		return client, nil
	}
	opts, err := redisOptions(key)
	if err != nil {
		return nil, err
	}
	client := redis.NewClient(opts)
	c.redis[key] = client
	return client, nil
}

// pgPool returns the shared pool for a PostgreSQL URL, creating it unconnected.
func (c *Connections) pgPool(rawURL string) (*pgxpool.Pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pool, ok := c.pg[rawURL]; ok {
		return pool, nil
	}
	cfg, err := pgConfig(rawURL)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	c.pg[rawURL] = pool
	return pool, nil
}

// amqpConnection returns the shared, lazily dialled connection for a RabbitMQ URL.
func (c *Connections) amqpConnection(rawURL string) *amqpConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.amqp[rawURL]; ok {
		return conn
	}
	conn := newAMQPConn(rawURL, c.logger)
	c.amqp[rawURL] = conn
	return conn
}
