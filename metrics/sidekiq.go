package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
			return &sidekiq{client: client, prefix: prefix, queues: s.Queues, measure: s.Measure, running: s.Running}, nil
		},
		running: func(Spec) string { return "" },
	}
}

type sidekiq struct {
	client  *redis.Client
	prefix  string   // namespace, "" or "name:"
	queues  []string // nil: every member of the queues set
	measure string
	running bool // read the running jobs too (Spec.Running)
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
	read := s.latency
	if s.measure == MeasureSize {
		read = s.size
	}
	r, err := read(ctx, queues)
	if err == nil && s.running {
		r.Running, r.RunningErr = s.runningJobs(ctx)
	}
	return r, err
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
	return epochTime(field, v)
}

// runningJobs reads what every live Sidekiq process runs, as Sidekiq's WorkSet does: the processes are the set
// `processes`; a process whose hash (kept alive by its heartbeat every 5 s, expiring after 60 s) is gone is dead
// and skipped; its `info` says its hostname, which Sidekiq takes from $DYNO on Heroku; its jobs are the hash
// `<identity>:work` (Sidekiq 7 and later) or `<identity>:workers` (before), each value
// {"queue": …, "payload": the job (a JSON string, or an object before Sidekiq 6), "run_at": seconds (ms in 8)}.
// What Sidekiq records is up to one heartbeat old: a job that began less than 5 s ago may not show yet.
func (s *sidekiq) runningJobs(ctx context.Context) ([]Job, error) {
	procs, err := s.client.SMembers(ctx, s.prefix+"processes").Result()
	if err != nil {
		return nil, fmt.Errorf("read the set %sprocesses: %w", s.prefix, redisError(err))
	}
	slices.Sort(procs)
	type process struct {
		info          *redis.StringCmd
		work, workers *redis.MapStringStringCmd
	}
	cmds := make([]process, len(procs))
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range procs {
			cmds[i] = process{
				info:    p.HGet(ctx, s.prefix+id, "info"),
				work:    p.HGetAll(ctx, s.prefix+id+":work"),
				workers: p.HGetAll(ctx, s.prefix+id+":workers"),
			}
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisError(err)
	}
	var jobs []Job
	for i, c := range cmds {
		info, err := c.info.Result()
		if errors.Is(err, redis.Nil) {
			continue // no heartbeat for 60 s: the process is gone (Sidekiq prunes it later)
		}
		if err != nil {
			return nil, redisError(err)
		}
		var proc struct {
			Hostname string `json:"hostname"`
		}
		if err := json.Unmarshal([]byte(info), &proc); err != nil {
			return nil, fmt.Errorf("the info of Sidekiq process %s%s is not JSON: %w", s.prefix, procs[i], err)
		}
		for _, work := range []*redis.MapStringStringCmd{c.work, c.workers} {
			entries, err := work.Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, redisError(err)
			}
			for tid, raw := range entries {
				j, err := sidekiqWork(raw)
				if err != nil {
					return nil, fmt.Errorf("job %s of Sidekiq process %s%s: %w", tid, s.prefix, procs[i], err)
				}
				j.Worker = proc.Hostname
				if keepRunning(j, s.queues) {
					jobs = append(jobs, j)
				}
			}
		}
	}
	return jobs, nil
}

// sidekiqWork reads one entry of a Sidekiq process's work hash.
func sidekiqWork(raw string) (Job, error) {
	var w struct {
		Queue   string          `json:"queue"`
		Payload json.RawMessage `json:"payload"`
		RunAt   json.Number     `json:"run_at"`
	}
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return Job{}, fmt.Errorf("not JSON with queue, payload and run_at: %w", err)
	}
	runAt, err := w.RunAt.Float64()
	if err != nil {
		return Job{}, fmt.Errorf("run_at is %q: expected a number", w.RunAt)
	}
	started, err := epochTime("run_at", runAt)
	if err != nil {
		return Job{}, err
	}
	payload := []byte(w.Payload)
	var inner string
	if json.Unmarshal(payload, &inner) == nil { // Sidekiq 6.1 and later: the job as a JSON string
		payload = []byte(inner)
	}
	var job struct {
		Class   string `json:"class"`
		Wrapped string `json:"wrapped"` // ActiveJob: the real class inside Sidekiq's JobWrapper
	}
	if err := json.Unmarshal(payload, &job); err != nil {
		return Job{}, fmt.Errorf("payload is not a Sidekiq job: %w", err)
	}
	class := job.Class
	if job.Wrapped != "" {
		class = job.Wrapped
	}
	return Job{Started: started, Class: class, Queue: w.Queue}, nil
}
