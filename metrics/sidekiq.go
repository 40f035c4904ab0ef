package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// sidekiqKind reads Sidekiq's queues the way Sidekiq's own API (Sidekiq::Queue#latency, #size) and Judoscale do:
// each queue is the list queue:<name>, jobs pushed at its head (LPUSH) and taken from its tail, so the oldest job
// is LINDEX queue:<name> -1; the queues are the members of the set `queues`. A `namespace` query parameter on the
// URL (redis://host:6379/0?namespace=myapp) prefixes every key with "myapp:", as the redis-namespace gem does.
func sidekiqKind() kind {
	return kind{
		name: KindSidekiq,
		backend: redisBackend().checking(func(raw string) error { // ?namespace= is Sidekiq's, not Redis's
			clientURL, _, err := splitNamespace(raw)
			if err != nil {
				return err
			}
			_, err = redisOptions(clientURL)
			return err
		}),
		measures:  []string{MeasureLatency, MeasureSize},
		queues:    optional,
		queueNoun: "queues",
		open: func(c *Connections, s Spec) (Source, error) {
			clientURL, prefix, err := splitNamespace(s.URL)
			if err != nil {
				return nil, err
			}
			client, err := c.redisClient(clientURL)
			if err != nil {
				return nil, err
			}
			return &sidekiq{client: client, prefix: prefix, queues: s.Queues, measure: s.Measure}, nil
		},
	}
}

type sidekiq struct {
	client  *redis.Client
	prefix  string   // namespace, "" or "name:"
	queues  []string // nil: every member of the queues set
	measure string
}

// Read takes one round trip when QUEUES names the queues (a pipeline over all of them), two otherwise (SMEMBERS
// queues first). Latency is the largest age over the queues, 0 when they are all empty.
func (s *sidekiq) Read(ctx context.Context) (Reading, error) {
	queues := s.queues
	if len(queues) == 0 {
		members, err := s.client.SMembers(ctx, s.prefix+"queues").Result()
		if err != nil {
			return Reading{}, fmt.Errorf("read the set %squeues: %w", s.prefix, redisError(err))
		}
		slices.Sort(members)
		queues = members
	}
	if s.measure == MeasureSize {
		return s.size(ctx, queues)
	}
	return s.latency(ctx, queues)
}

func (s *sidekiq) size(ctx context.Context, queues []string) (Reading, error) {
	keys := make([]string, len(queues))
	for i, q := range queues {
		keys[i] = s.prefix + "queue:" + q
	}
	return listLengths(ctx, s.client, keys)
}

func (s *sidekiq) latency(ctx context.Context, queues []string) (Reading, error) {
	cmds := make([]*redis.StringCmd, len(queues))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range queues {
			cmds[i] = p.LIndex(ctx, s.prefix+"queue:"+q, -1)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Reading{}, redisError(err)
	}
	now := time.Now()
	var latency float64
	for i, c := range cmds {
		payload, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue // empty queue
		}
		if err != nil {
			return Reading{}, redisError(err)
		}
		enqueued, err := sidekiqEnqueuedAt(payload)
		if err != nil {
			return Reading{}, fmt.Errorf("oldest job of %squeue:%s: %w", s.prefix, queues[i], err)
		}
		latency = max(latency, latencySince(now, enqueued))
	}
	return Reading{Value: latency, At: now}, nil
}

// sidekiqEnqueuedAt reads when a Sidekiq job was enqueued. Sidekiq up to 7 writes enqueued_at as a float of seconds
// since 1970, Sidekiq 8 as an integer of milliseconds; the magnitude tells them apart for any date between 2001 and
// 5138, which also covers other clients that write whole seconds. A job without enqueued_at falls back to created_at
// (same units); a job with neither, or with anything else in them, is an error rather than a guess.
func sidekiqEnqueuedAt(payload string) (time.Time, error) {
	var job struct {
		EnqueuedAt json.RawMessage `json:"enqueued_at"`
		CreatedAt  json.RawMessage `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(payload), &job); err != nil {
		return time.Time{}, fmt.Errorf("not a Sidekiq job (JSON object expected): %w", err)
	}
	field, raw := "enqueued_at", job.EnqueuedAt
	if len(raw) == 0 || string(raw) == "null" {
		field, raw = "created_at", job.CreatedAt
	}
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("job has neither enqueued_at nor created_at")
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is %.40s: expected a number", field, raw)
	}
	switch {
	case v >= 1e9 && v < 1e11: // seconds: 2001-09-09 to 5138
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
	case v >= 1e12 && v < 1e14: // milliseconds: 2001-09-09 to 5138
		ms, frac := math.Modf(v)
		return time.UnixMilli(int64(ms)).Add(time.Duration(math.Round(frac * 1e6))), nil
	}
	return time.Time{}, fmt.Errorf("%s is %s: expected seconds (Sidekiq up to 7) or milliseconds (Sidekiq 8) since 1970", field, raw)
}
