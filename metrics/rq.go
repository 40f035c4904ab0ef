package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
			return &rq{client: client, keys: keys, queues: s.Queues, measure: s.Measure, running: s.Running}, nil
		},
		running: func(Spec) string { return "" },
	}
}

type rq struct {
	client  *redis.Client
	keys    []string // rq:queue:<name>; nil: the members of rq:queues
	queues  []string // the queues' names, for running jobs
	measure string
	running bool // read the running jobs too (Spec.Running)
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
	var r Reading
	var err error
	if s.measure == MeasureSize {
		r, err = listLengths(ctx, s.client, keys)
	} else {
		r, err = s.latency(ctx, keys)
	}
	if err == nil && s.running {
		r.Running, r.RunningErr = s.runningJobs(ctx)
	}
	return r, err
}

// runningJobs reads what every RQ worker runs: the workers are the set rq:workers (of keys rq:worker:<name>), each
// hash's current_job the id of the job it runs, whose hash has started_at (RQ's UTC format), origin (the queue) and
// description. The worker's name is the dyno's only when the app starts it as `rq worker --name $DYNO`; otherwise
// (a random name by default) the job's dyno is unknown. A worker that died without unregistering keeps its key
// until its ttl passes, and its job holds scale-downs that long: the safe side.
func (s *rq) runningJobs(ctx context.Context) ([]Job, error) {
	workers, err := s.client.SMembers(ctx, "rq:workers").Result()
	if err != nil {
		return nil, fmt.Errorf("read the set rq:workers: %w", redisError(err))
	}
	slices.Sort(workers)
	current := make([]*redis.StringCmd, len(workers))
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range workers {
			current[i] = p.HGet(ctx, w, "current_job")
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisError(err)
	}
	type busy struct {
		worker, id string
		job        *redis.SliceCmd
	}
	var all []busy
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range current {
			if id, err := c.Result(); err == nil && id != "" {
				all = append(all, busy{strings.TrimPrefix(workers[i], "rq:worker:"), id, p.HMGet(ctx, "rq:job:"+id, "started_at", "origin", "description")})
			}
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisError(err)
	}
	var jobs []Job
	for _, b := range all {
		vals, err := b.job.Result()
		if err != nil {
			return nil, redisError(err)
		}
		j, ok, err := rqRunningJob(b.worker, b.id, vals)
		if err != nil {
			return nil, err
		}
		if ok && keepRunning(j, s.queues) {
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

// rqRunningJob reads the job a worker runs from its hash's started_at, origin and description (an HMGET's values);
// ok is false when the job ended (or its hash expired) between the two reads.
func rqRunningJob(worker, id string, vals []any) (j Job, ok bool, err error) {
	started, origin, description := rqField(vals, 0), rqField(vals, 1), rqField(vals, 2)
	if started == "" {
		return Job{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, started)
	if err != nil {
		return Job{}, false, fmt.Errorf("rq:job:%s (run by worker %s) has started_at %.40q: expected RQ's UTC format 2006-01-02T15:04:05.000000Z", id, worker, started)
	}
	// The description is the call with its arguments, which may be anything (an address, a token): only the
	// function's name is kept.
	function, _, _ := strings.Cut(description, "(")
	return Job{Worker: worker, Started: t, Class: truncate(function, 80), Queue: origin}, true, nil
}

// rqField is the i-th value of an HMGET as a string ("" for a missing field).
func rqField(vals []any, i int) string {
	if i >= len(vals) {
		return ""
	}
	v, _ := vals[i].(string)
	return strings.TrimSpace(v)
}

// truncate shortens s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
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
