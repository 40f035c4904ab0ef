package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// redisKind reads the size of any Redis keys (QUEUES names them): the length of a list, set, sorted set or stream,
// summed. A key that does not exist counts 0, as an empty list does in Redis.
func redisKind() kind {
	return kind{
		name:      KindRedis,
		backend:   redisBackend(),
		measures:  []string{MeasureSize},
		queues:    required,
		queueNoun: "keys",
		open: func(c *Connections, s Spec) (Source, error) {
			client, err := c.redisClient(s.URL)
			if err != nil {
				return nil, err
			}
			return &redisKeys{client: client, keys: s.Queues}, nil
		},
	}
}

type redisKeys struct {
	client *redis.Client
	keys   []string
}

// Read takes two round trips: the TYPE of every key, then the matching length commands.
func (s *redisKeys) Read(ctx context.Context) (Reading, error) {
	types := make([]*redis.StatusCmd, len(s.keys))
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range s.keys {
			types[i] = p.Type(ctx, k)
		}
		return nil
	}); err != nil {
		return Reading{}, redisError(err)
	}
	at := time.Now()
	lengths := make([]*redis.IntCmd, 0, len(s.keys))
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range s.keys {
			switch t := types[i].Val(); t {
			case "none":
			case "list":
				lengths = append(lengths, p.LLen(ctx, k))
			case "set":
				lengths = append(lengths, p.SCard(ctx, k))
			case "zset":
				lengths = append(lengths, p.ZCard(ctx, k))
			case "stream":
				lengths = append(lengths, p.XLen(ctx, k))
			default:
				return fmt.Errorf("key %q is a %s: expected a list, set, sorted set or stream", k, t)
			}
		}
		return nil
	}); err != nil {
		return Reading{}, redisError(err)
	}
	var sum int64
	for _, n := range lengths {
		sum += n.Val()
	}
	return Reading{Value: float64(sum), At: at}, nil
}

// maxConnsPerURL bounds the connections dynopilot opens to one Redis or PostgreSQL URL unless the URL says
// otherwise (pool_size=, pool_max_conns=): small Heroku plans allow 20 connections for the whole app, and a reading
// holds a connection for well under a millisecond.
const maxConnsPerURL = 4

// redisSchemes are the URL schemes go-redis understands.
func redisSchemes() []string { return []string{"redis", "rediss", "unix"} }

// redisBackend is Redis as the sidekiq, rq, celery and redis kinds read it: REDIS_URL by default.
func redisBackend() backend {
	return backend{
		globalURL:  "REDIS_URL",
		defaultURL: func(d Defaults) string { return d.RedisURL },
		schemes:    redisSchemes(),
		checkURL:   func(raw string) error { _, err := redisOptions(raw); return err },
	}
}

// redisOptions parses a Redis URL (any query parameter go-redis knows, e.g. skip_verify=true for Heroku Redis's
// self-signed certificate) and sets what every dynopilot client needs: reads bounded by the context's deadline,
// a client name, no maintenance-notification handshake, and few retries: one retry covers a pooled connection the
// server closed while idle, and a source that is down should fail its reading quickly (the next one comes soon).
func redisOptions(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	if opts.MaxRetries == 0 { // not set by max_retries in the URL
		opts.MaxRetries = 1
	}
	opts.DialerRetries = 2
	if opts.PoolSize == 0 { // not set by pool_size in the URL
		opts.PoolSize = maxConnsPerURL
	}
	if opts.MaxActiveConns == 0 { // a ceiling, not a base that bursts may exceed
		opts.MaxActiveConns = opts.PoolSize
	}
	opts.PipelinePoolSize = -1 // every reading is a pipeline: no second pool beside the first
	if opts.ClientName == "" {
		opts.ClientName = clientName
	}
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opts, nil
}

// splitNamespace removes the `namespace` query parameter (the redis-namespace prefix Sidekiq apps may use) from a
// Redis URL, returning the URL the client connects to and the prefix of every key ("" or "name:").
func splitNamespace(raw string) (clientURL, prefix string, err error) {
	if !strings.Contains(raw, "namespace=") {
		return raw, "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("cannot parse the URL")
	}
	q := u.Query()
	ns := q.Get("namespace")
	q.Del("namespace")
	u.RawQuery = q.Encode()
	if ns == "" {
		return u.String(), "", nil
	}
	return u.String(), ns + ":", nil
}

// RedisLogger adapts logger for go-redis, whose internal messages (such as failed dials, which the failed reading
// reports anyway) otherwise go to standard error. go-redis's logger is process-wide, so the program installs it
// once: redis.SetLogger(metrics.RedisLogger(logger)). Messages are logged at debug level.
func RedisLogger(logger *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return redisLogger{logger}
}

type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// redisError adds a hint to TLS failures: Heroku Redis serves a self-signed certificate.
func redisError(err error) error {
	if strings.Contains(err.Error(), "certificate") {
		return fmt.Errorf("%w (Heroku Redis uses a self-signed certificate: add ?skip_verify=true to the rediss:// URL)", err)
	}
	return err
}

// listLengths is the total length of the lists at keys, in one round trip: the size of a Sidekiq, RQ or Celery
// queue set.
func listLengths(ctx context.Context, client redis.Cmdable, keys []string) (Reading, error) {
	cmds := make([]*redis.IntCmd, len(keys))
	if _, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.LLen(ctx, k)
		}
		return nil
	}); err != nil {
		return Reading{}, redisError(err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return Reading{Value: float64(n), At: time.Now()}, nil
}
