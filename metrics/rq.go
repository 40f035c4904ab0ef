package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// rqScan is how many job ids at the head of an RQ queue are looked at to find the oldest job still stored: a job
// enqueued with a ttl loses its hash when the ttl passes but its id stays in the queue until a worker skips it.
const rqScan = 10

// rqKind reads RQ (python-rq) queues as RQ stores them: the queue is the list rq:queue:<name>, job ids pushed at its
// tail (RPUSH) and taken from its head, each job the hash rq:job:<id> whose enqueued_at is UTC in RQ's format
// (2006-01-02T15:04:05.000000Z, or without fraction before RQ 1.0); the queues are the set rq:queues.
func rqKind() kind {
	return kind{
		name:      KindRQ,
		backend:   redisBackend(),
		measures:  []string{MeasureLatency, MeasureSize},
		queues:    optional,
		queueNoun: "queues",
		open: func(c *Connections, s Spec) (Source, error) {
			client, err := c.redisClient(s.URL)
			if err != nil {
				return nil, err
			}
			var keys []string
			for _, q := range s.Queues {
				keys = append(keys, "rq:queue:"+q)
			}
			return &rq{client: client, keys: keys, measure: s.Measure}, nil
		},
	}
}

type rq struct {
	client  *redis.Client
	keys    []string // rq:queue:<name>; nil: the members of rq:queues
	measure string
}

// Read takes one round trip for size and two for latency (the head ids, then their enqueued_at), plus one to list
// the queues when QUEUES is unset.
func (s *rq) Read(ctx context.Context) (Reading, error) {
	keys := s.keys
	if len(keys) == 0 {
		members, err := s.client.SMembers(ctx, "rq:queues").Result()
		if err != nil {
			return Reading{}, fmt.Errorf("read the set rq:queues: %w", redisError(err))
		}
		slices.Sort(members)
		keys = members
	}
	if s.measure == MeasureSize {
		return listLengths(ctx, s.client, keys)
	}
	return s.latency(ctx, keys)
}

func (s *rq) latency(ctx context.Context, keys []string) (Reading, error) {
	heads := make([]*redis.StringSliceCmd, len(keys))
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			heads[i] = p.LRange(ctx, k, 0, rqScan-1)
		}
		return nil
	}); err != nil {
		return Reading{}, redisError(err)
	}
	stamps := make([][]*redis.StringCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range heads {
			for _, id := range h.Val() {
				stamps[i] = append(stamps[i], p.HGet(ctx, "rq:job:"+id, "enqueued_at"))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Reading{}, redisError(err)
	}
	now := time.Now()
	var latency float64
	for i, cmds := range stamps {
		if len(cmds) == 0 {
			continue // empty queue
		}
		enqueued, err := rqOldest(heads[i].Val(), cmds)
		if err != nil {
			return Reading{}, fmt.Errorf("%s: %w", keys[i], err)
		}
		latency = max(latency, latencySince(now, enqueued))
	}
	return Reading{Value: latency, At: now}, nil
}

// rqOldest is the enqueued_at of the first job at the head whose hash still exists.
func rqOldest(ids []string, cmds []*redis.StringCmd) (time.Time, error) {
	for j, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue // expired or deleted job: RQ skips it too
		}
		if err != nil {
			return time.Time{}, redisError(err)
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
		if err != nil {
			return time.Time{}, fmt.Errorf("rq:job:%s has enqueued_at %.40q: expected RQ's UTC format 2006-01-02T15:04:05.000000Z", ids[j], v)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("none of the %d jobs at the head has a job hash with enqueued_at (expired or deleted jobs?)", len(cmds))
}
