package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"

	"github.com/dynopilot/dynopilot/metrics"
)

// dbRunning is the Redis database of the running-jobs tests (Sidekiq and RQ in turn, never in parallel): FLUSHDB'd
// by redisDB at the start of each.
const dbRunning = 7

// openRunning opens s as a policy with PROTECT_BUSY does: config sets Spec.Running after Parse, and the source
// reads the jobs running now along with its value.
func openRunning(t testing.TB, s metrics.Settings) metrics.Source {
	t.Helper()
	spec := parse(t, s)
	spec.Running = true
	conns := metrics.NewConnections(nil)
	t.Cleanup(func() { _ = conns.Close() })
	src, err := conns.Open(spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return src
}

// jobKey writes a job on one line, its start in UTC to the nanosecond, so that two jobs compare equal exactly when
// every field does.
func jobKey(j metrics.Job) string {
	return fmt.Sprintf("%s | %s | %s | %s", j.Worker, j.Class, j.Queue, j.Started.UTC().Format(time.RFC3339Nano))
}

// wantJobs fails unless got holds exactly the jobs of want, in any order (a hash or a table has none).
func wantJobs(t testing.TB, what string, got []metrics.Job, want ...metrics.Job) {
	t.Helper()
	var g, w []string
	for _, j := range got {
		g = append(g, jobKey(j))
	}
	for _, j := range want {
		w = append(w, jobKey(j))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s: running jobs\n got: %s\nwant: %s", what, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}

// readRunning reads src, which must give its value and the running jobs without error.
func readRunning(t testing.TB, src metrics.Source) metrics.Reading {
	t.Helper()
	r := mustRead(t, src)
	if r.RunningErr != nil {
		t.Fatalf("RunningErr: %v", r.RunningErr)
	}
	return r
}

func TestDynoName(t *testing.T) {
	for _, c := range []struct {
		worker  string
		process string
		number  int
	}{
		{"worker.2", "worker", 2},
		{"worker.2:4711:abc", "worker", 2}, // a Sidekiq identity: hostname ($DYNO), pid, nonce
		{"worker.2@host", "worker", 2},
		{"worker.2 host:x pid:1", "worker", 2}, // Delayed Job's locked_by with the prefix "$DYNO "
		{"urgent_worker.10", "urgent_worker", 10},
		{"Worker.3", "Worker", 3},
	} {
		process, number, ok := metrics.DynoName(c.worker)
		if !ok || process != c.process || number != c.number {
			t.Errorf("DynoName(%q) = %q, %d, %v; want %q, %d, true", c.worker, process, number, ok, c.process, c.number)
		}
	}
	for _, worker := range []string{
		"", "worker", "worker.0", "worker.x",
		"5f3c9a0b1c2d",   // a container's hostname: Sidekiq off Heroku, or GoodJob's host
		"host:abc pid:1", // Delayed Job's locked_by without a prefix
		"a.b.2",
	} {
		if process, number, ok := metrics.DynoName(worker); ok {
			t.Errorf("DynoName(%q) = %q, %d, true; want no dyno", worker, process, number)
		}
	}
}

func TestRunningJobsBySource(t *testing.T) {
	can := []metrics.Settings{
		{Source: "sidekiq", URL: "redis://127.0.0.1:6379/0"},
		{Source: "rq", URL: "redis://127.0.0.1:6379/0"},
		{Source: "postgres", URL: "postgres://db.example/app", Preset: "good_job"},
		{Source: "postgres", URL: "postgres://db.example/app", Preset: "solid_queue"},
		{Source: "postgres", URL: "postgres://db.example/app", Preset: "delayed_job"},
		{Source: "postgres", URL: "postgres://db.example/app", Preset: "river"},
	}
	for _, s := range can {
		if ok, why := metrics.RunningJobs(parse(t, s)); !ok || why != "" {
			t.Errorf("RunningJobs(%s %s) = %v, %q; want true, \"\"", s.Source, s.Preset, ok, why)
		}
	}
	cannot := []struct {
		settings metrics.Settings
		because  string // what the reason must say
	}{
		{metrics.Settings{Source: "celery", URL: "redis://127.0.0.1:6379/0"}, "SOURCE=celery"},
		{metrics.Settings{Source: "redis", URL: "redis://127.0.0.1:6379/0", Queues: "jobs"}, "SOURCE=redis"},
		{metrics.Settings{Source: "rabbitmq", URL: "amqp://mq.example/", Queues: "jobs"}, "SOURCE=rabbitmq"},
		{metrics.Settings{Source: "prometheus", URL: "http://prom.example:9090", Query: "up"}, "SOURCE=prometheus"},
		{metrics.Settings{Source: "hirefire", URL: "https://shop.example/hirefire/t/info"}, "SOURCE=hirefire"},
		{metrics.Settings{Source: "logdrain"}, "SOURCE=logdrain"},
		{metrics.Settings{Source: "postgres", URL: "postgres://db.example/app", Query: "SELECT 1"}, "QUERY"},
		{metrics.Settings{Source: "postgres", URL: "postgres://db.example/app", Preset: "que"}, "PRESET=que"},
	}
	for _, c := range cannot {
		ok, why := metrics.RunningJobs(parse(t, c.settings))
		if ok || !strings.Contains(why, c.because) {
			t.Errorf("RunningJobs(%s %s%s) = %v, %q; want false and a reason naming %s", c.settings.Source, c.settings.Preset, c.settings.Query, ok, why, c.because)
		}
	}
	if ok, why := metrics.RunningJobs(metrics.Spec{Kind: "nonesuch"}); ok || why == "" {
		t.Errorf("RunningJobs of an unknown kind = %v, %q; want false with a reason", ok, why)
	}
}

// sidekiqProcess is one Sidekiq process as its launcher's heartbeat (launcher.rb, ❤) writes it every 5 s.
type sidekiqProcess struct {
	prefix   string            // redis-namespace: "" or "myapp:"
	version  int               // 6: the jobs are the hash <identity>:workers; 7 and later: <identity>:work
	hostname string            // Sidekiq's hostname: ENV["DYNO"] || Socket.gethostname
	work     map[string]string // tid -> the JSON the heartbeat stores (sidekiqWorkEntry)
	info     string            // the info field when not the JSON Sidekiq writes (a malformed process)
	dead     bool              // the process hash expired (no heartbeat for 60 s); its identity is still in processes
}

// beat writes p as Sidekiq 6.4 (lib/sidekiq/launcher.rb ❤) and 7 do, in two MULTIs: the work hash replaced
// (UNLINK, HSET per thread, EXPIRE 60), then SADD processes, the process hash (info, busy, beat, rtt_us, quiet,
// rss) and its EXPIRE 60. It returns the process's identity, "hostname:pid:nonce".
func (p sidekiqProcess) beat(t testing.TB, client *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	pid := 4711
	identity := fmt.Sprintf("%s:%d:%s", p.hostname, pid, unique("")) // Sidekiq's nonce is SecureRandom.hex(6)
	key := p.prefix + identity
	workKey := key + ":work"
	if p.version < 7 {
		workKey = key + ":workers"
	}
	now := time.Now()
	info := p.info
	if info == "" {
		data := map[string]any{ // Launcher#to_data
			"hostname": p.hostname, "started_at": float64(now.Add(-time.Hour).UnixMicro()) / 1e6, "pid": pid, "tag": "shop",
			"concurrency": 5, "queues": []string{"critical", "default", "mailers"}, "labels": []string{}, "identity": identity,
		}
		if p.version >= 7 {
			data["weights"] = []map[string]int{{"critical": 0, "default": 0, "mailers": 0}}
			data["version"] = fmt.Sprintf("%d.0.0", p.version)
			data["embedded"] = false
		}
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		info = string(b)
	}
	if _, err := client.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.Unlink(ctx, workKey)
		for tid, entry := range p.work {
			tx.HSet(ctx, workKey, tid, entry)
		}
		tx.Expire(ctx, workKey, time.Minute)
		return nil
	}); err != nil {
		t.Fatalf("heartbeat of %s: %v", identity, err)
	}
	if _, err := client.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.SAdd(ctx, p.prefix+"processes", identity)
		tx.Exists(ctx, key)
		tx.HSet(ctx, key, "info", info, "busy", len(p.work), "beat", float64(now.UnixMicro())/1e6, "rtt_us", 120, "quiet", "false", "rss", 210344)
		tx.Expire(ctx, key, time.Minute)
		tx.RPop(ctx, key+"-signals")
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) { // RPOP of no signal
		t.Fatalf("heartbeat of %s: %v", identity, err)
	}
	if p.dead {
		client.Del(ctx, key) // as EXPIRE does 60 s after the last heartbeat; the work hash may outlive it by a beat
	}
	return identity
}

// sidekiqWorkEntry is one thread's entry of a process's work hash as Processor#stats records it:
// {queue:, payload:, run_at:}. payload is the job as the JSON string it was fetched as (Sidekiq 6.1 and later: a
// Go string) or the job's hash (before 6.1: a json.RawMessage); run_at is Time.now.to_i, or milliseconds since
// Sidekiq 8.
func sidekiqWorkEntry(queue string, payload any, runAt int64) string {
	b, err := json.Marshal(struct {
		Queue   string `json:"queue"`
		Payload any    `json:"payload"`
		RunAt   int64  `json:"run_at"`
	}{queue, payload, runAt})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// sidekiqJobJSON is a job as Sidekiq's client pushes it.
func sidekiqJobJSON(class, queue string, enqueued time.Time) string {
	ts := float64(enqueued.UnixMicro()) / 1e6
	return fmt.Sprintf(`{"retry":true,"queue":%q,"class":%q,"args":[1,"secret-arg"],"jid":"%s","created_at":%f,"enqueued_at":%f}`,
		queue, class, unique("")+unique("")[:12], ts, ts)
}

// activeJobJSON is an ActiveJob job as Sidekiq's adapter pushes it: the class is Sidekiq's wrapper, the job's own
// class is "wrapped".
func activeJobJSON(wrapped, queue string, enqueued time.Time) string {
	ts := float64(enqueued.UnixMicro()) / 1e6
	return fmt.Sprintf(`{"class":"Sidekiq::ActiveJob::Wrapper","wrapped":%q,"queue":%q,"args":[{"job_class":%q,"job_id":"0b3c9d6e-1f2a-4b5c-8d7e-9f0a1b2c3d4e","provider_job_id":null,"queue_name":%q,"priority":null,"arguments":[42],"executions":0,"exception_executions":{},"locale":"en","timezone":"UTC","enqueued_at":"%s"}],"retry":true,"jid":"5d1c6f0e2a3b4c5d6e7f8a9b","created_at":%f,"enqueued_at":%f}`,
		wrapped, queue, wrapped, queue, enqueued.UTC().Format("2006-01-02T15:04:05.000000000Z"), ts, ts)
}

// sidekiqWaiting pushes a job enqueued ago, so that a reading's value shows it was read along with the running jobs.
func sidekiqWaiting(t testing.TB, client *redis.Client, prefix string, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	client.SAdd(ctx, prefix+"queues", "default")
	if err := client.LPush(ctx, prefix+"queue:default", sidekiq8Job("default", time.Now().Add(-ago))).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestSidekiqRunningJobs(t *testing.T) {
	url, client := redisDB(t, dbRunning)
	before := time.Now()
	sidekiqWaiting(t, client, "", 30*time.Second)

	s1 := time.Unix(before.Unix()-120, 0) // run_at in whole seconds (Time.now.to_i) up to Sidekiq 7
	s2 := time.Unix(before.Unix()-45, 0)
	s3 := time.Unix(before.Unix()-600, 0)
	s4 := time.UnixMilli(before.UnixMilli() - 5500) // Sidekiq 8: milliseconds
	s5 := time.Unix(before.Unix()-3600, 0)
	s6 := time.Unix(before.Unix()-40, 0)
	s7 := time.Unix(before.Unix()-50, 0)
	for _, p := range []sidekiqProcess{
		{version: 6, hostname: "worker.1", work: map[string]string{ // Sidekiq 6.4: <identity>:workers, payload a string
			"ouy7z76mx": sidekiqWorkEntry("default", sidekiqJobJSON("HardJob", "default", s1), s1.Unix()),
			"ouy7z7a3p": sidekiqWorkEntry("reports", activeJobJSON("ReportJob", "reports", s2), s2.Unix()),
		}},
		{version: 7, hostname: "worker.2", work: map[string]string{ // Sidekiq 7: <identity>:work
			"2ntl4mq5d": sidekiqWorkEntry("mailers", sidekiqJobJSON("MailJob", "mailers", s3), s3.Unix()),
		}},
		{version: 8, hostname: "worker.3", work: map[string]string{
			"1x0m8w4kz": sidekiqWorkEntry("critical", sidekiqJobJSON("ChargeJob", "critical", s4), s4.UnixMilli()),
		}},
		{version: 6, hostname: "worker.4", work: map[string]string{ // before Sidekiq 6.1: payload the job's hash
			"3kd8e0q1b": sidekiqWorkEntry("default", json.RawMessage(sidekiqJobJSON("OldJob", "default", s5)), s5.Unix()),
		}},
		{version: 7, hostname: "worker.5", dead: true, work: map[string]string{
			"9zz9zz9zz": sidekiqWorkEntry("default", sidekiqJobJSON("GhostJob", "default", s1), s1.Unix()),
		}},
		{version: 7, hostname: "5f3c9a0b1c2d", work: map[string]string{ // not named after $DYNO: the dyno is unknown
			"7a7a7a7a7": sidekiqWorkEntry("other", sidekiqJobJSON("OtherJob", "other", s6), s6.Unix()),
			"8b8b8b8b8": sidekiqWorkEntry("default", sidekiqJobJSON("HardJob", "default", s7), s7.Unix()),
		}},
		{version: 7, hostname: "worker.6"}, // idle
	} {
		p.beat(t, client)
	}

	hard := metrics.Job{Worker: "worker.1", Started: s1, Class: "HardJob", Queue: "default"}
	report := metrics.Job{Worker: "worker.1", Started: s2, Class: "ReportJob", Queue: "reports"}
	mail := metrics.Job{Worker: "worker.2", Started: s3, Class: "MailJob", Queue: "mailers"}
	charge := metrics.Job{Worker: "worker.3", Started: s4, Class: "ChargeJob", Queue: "critical"}
	old := metrics.Job{Worker: "worker.4", Started: s5, Class: "OldJob", Queue: "default"}
	other := metrics.Job{Worker: "5f3c9a0b1c2d", Started: s6, Class: "OtherJob", Queue: "other"}
	unknownHard := metrics.Job{Worker: "5f3c9a0b1c2d", Started: s7, Class: "HardJob", Queue: "default"}

	all := readRunning(t, openRunning(t, metrics.Settings{Source: "sidekiq", URL: url}))
	between(t, "latency read along with the running jobs", all.Value, 30-0.001, 30.001+time.Since(before).Seconds())
	wantJobs(t, "all queues", all.Running, hard, report, mail, charge, old, other, unknownHard)

	// QUEUES: a job on a named dyno is kept whatever its queue (stopping the dyno stops it); one whose dyno is
	// unknown only when it comes from the policy's queues.
	some := readRunning(t, openRunning(t, metrics.Settings{Source: "sidekiq", URL: url, Queues: "default,mailers"}))
	wantJobs(t, "QUEUES=default,mailers", some.Running, hard, report, mail, charge, old, unknownHard)

	plain := mustRead(t, open(t, metrics.Settings{Source: "sidekiq", URL: url}))
	if plain.Running != nil || plain.RunningErr != nil {
		t.Errorf("a source not asked for running jobs read %v, %v", plain.Running, plain.RunningErr)
	}
}

func TestSidekiqRunningJobsNamespace(t *testing.T) {
	url, client := redisDB(t, dbRunning)
	started := time.Unix(time.Now().Unix()-90, 0)
	sidekiqProcess{prefix: "myapp:", version: 7, hostname: "worker.1", work: map[string]string{
		"abc": sidekiqWorkEntry("default", sidekiqJobJSON("MineJob", "default", started), started.Unix()),
	}}.beat(t, client)
	sidekiqProcess{version: 7, hostname: "worker.2", work: map[string]string{ // another app in the same database
		"def": sidekiqWorkEntry("default", sidekiqJobJSON("TheirJob", "default", started), started.Unix()),
	}}.beat(t, client)

	mine := readRunning(t, openRunning(t, metrics.Settings{Source: "sidekiq", URL: url + "?namespace=myapp"}))
	wantJobs(t, "namespace myapp", mine.Running, metrics.Job{Worker: "worker.1", Started: started, Class: "MineJob", Queue: "default"})
	theirs := readRunning(t, openRunning(t, metrics.Settings{Source: "sidekiq", URL: url}))
	wantJobs(t, "no namespace", theirs.Running, metrics.Job{Worker: "worker.2", Started: started, Class: "TheirJob", Queue: "default"})
}

func TestSidekiqRunningJobsMalformed(t *testing.T) {
	now := time.Now()
	good := sidekiqJobJSON("HardJob", "default", now)
	for _, c := range []struct {
		name string
		p    sidekiqProcess
		want []string // beside the identity
	}{
		{"work entry not JSON", sidekiqProcess{version: 7, work: map[string]string{"tid1": "{queue: default"}}, []string{"job tid1", "not JSON"}},
		{"run_at a string", sidekiqProcess{version: 7, work: map[string]string{"tid2": `{"queue":"default","payload":` + strconvQuote(good) + `,"run_at":"yesterday"}`}}, []string{"job tid2", "run_at", "yesterday"}},
		{"run_at missing", sidekiqProcess{version: 7, work: map[string]string{"tid6": `{"queue":"default","payload":` + strconvQuote(good) + `}`}}, []string{"job tid6", `run_at is ""`}},
		{"run_at neither seconds nor ms", sidekiqProcess{version: 6, work: map[string]string{"tid3": sidekiqWorkEntry("default", good, 42)}}, []string{"job tid3", "run_at is 42"}},
		{"payload not a job", sidekiqProcess{version: 7, work: map[string]string{"tid4": sidekiqWorkEntry("default", "[1,2]", now.Unix())}}, []string{"job tid4", "payload"}},
		{"info not JSON", sidekiqProcess{version: 7, info: "worker.1 pid 4711", work: map[string]string{"tid5": sidekiqWorkEntry("default", good, now.Unix())}}, []string{"info", "not JSON"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			url, client := redisDB(t, dbRunning)
			sidekiqWaiting(t, client, "", 30*time.Second)
			sidekiqProcess{version: 7, hostname: "worker.1", work: map[string]string{
				"fine": sidekiqWorkEntry("default", good, now.Unix()),
			}}.beat(t, client)
			c.p.hostname = "worker.2"
			identity := c.p.beat(t, client)

			r, err := read(t, openRunning(t, metrics.Settings{Source: "sidekiq", URL: url}))
			if err != nil {
				t.Fatalf("the value could not be read: %v", err)
			}
			between(t, "latency despite the malformed running job", r.Value, 30-0.001, 30.001+time.Since(now).Seconds())
			wantError(t, r.RunningErr, append([]string{"sidekiq redis://", "running jobs", "Sidekiq process " + identity}, c.want...)...)
		})
	}
}

// strconvQuote is a Go string as a JSON string.
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// rqTime is a time in RQ's format (rq.utils.utcformat: %Y-%m-%dT%H:%M:%S.%fZ, UTC).
func rqTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// rqWorker registers an RQ worker as RQ 1.13's Worker.register_birth does (the hash rq:worker:<name> with birth,
// last_heart_beat, queues, pid, hostname, version, python_version; its key in the sets rq:workers and
// rq:workers:<queue>), and when job is not "", makes it busy with that job as prepare_job_execution does (state
// busy, current_job).
func rqWorker(t testing.TB, client *redis.Client, name, queue, job string) {
	t.Helper()
	ctx := context.Background()
	key := "rq:worker:" + name
	now := rqTime(time.Now())
	if _, err := client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key, "birth", now, "last_heart_beat", now, "queues", queue, "pid", 4711, "hostname", "5f3c9a0b1c2d",
			"version", "1.13.0", "python_version", "3.11.2 (main)")
		p.Expire(ctx, key, 480)
		p.SAdd(ctx, "rq:workers", key)
		p.SAdd(ctx, "rq:workers:"+queue, key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if job != "" {
		if err := client.HSet(ctx, key, "state", "busy", "current_job", job).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// rqStarted stores a started job as RQ's Job.to_dict and prepare_for_execution leave it: the hash rq:job:<id>.
func rqStarted(t testing.TB, client *redis.Client, id, origin, description, startedAt, worker string) {
	t.Helper()
	ctx := context.Background()
	enqueued := rqTime(time.Now().Add(-time.Hour))
	if err := client.HSet(ctx, "rq:job:"+id, "created_at", enqueued, "enqueued_at", enqueued, "started_at", startedAt,
		"last_heartbeat", startedAt, "origin", origin, "description", description, "status", "started", "timeout", "180",
		"data", "x\x9c\x00", "worker_name", worker).Err(); err != nil {
		t.Fatal(err)
	}
}

// rqWaiting enqueues a job as RQ does, ago old, so that a reading's value shows it was read along.
func rqWaiting(t testing.TB, client *redis.Client, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	client.SAdd(ctx, "rq:queues", "rq:queue:default")
	client.RPush(ctx, "rq:queue:default", "w1")
	if err := client.HSet(ctx, "rq:job:w1", "enqueued_at", rqTime(time.Now().Add(-ago)), "origin", "default", "status", "queued").Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRQRunningJobs(t *testing.T) {
	url, client := redisDB(t, dbRunning)
	before := time.Now()
	rqWaiting(t, client, 60*time.Second)

	s1 := before.Add(-90 * time.Second).UTC().Truncate(time.Microsecond)
	s2 := before.Add(-20 * time.Second).UTC().Truncate(time.Microsecond)
	s3 := before.Add(-40 * time.Second).UTC().Truncate(time.Microsecond)
	random := "9f2c4e1a7b3d4c5e8f6a0b1c2d3e4f50" // RQ's default name: uuid4().hex
	rqWorker(t, client, "worker.2", "default", "j1")
	rqStarted(t, client, "j1", "default", "app.tasks.send_report('secret-arg', to='ops@example.com')", rqTime(s1), "worker.2")
	rqWorker(t, client, random, "low", "j2")
	rqStarted(t, client, "j2", "low", "app.jobs.resize_image(3)", rqTime(s2), random)
	rqWorker(t, client, "worker.3", "low", "j3")
	rqStarted(t, client, "j3", "low", "app.jobs.resize_image(4)", rqTime(s3), "worker.3")
	rqWorker(t, client, "worker.4", "default", "")   // idle
	rqWorker(t, client, "worker.5", "default", "j5") // its job ended and its hash is gone between the reads
	client.SAdd(context.Background(), "rq:workers", "rq:worker:worker.6")

	report := metrics.Job{Worker: "worker.2", Started: s1, Class: "app.tasks.send_report", Queue: "default"}
	resizeUnknown := metrics.Job{Worker: random, Started: s2, Class: "app.jobs.resize_image", Queue: "low"}
	resize := metrics.Job{Worker: "worker.3", Started: s3, Class: "app.jobs.resize_image", Queue: "low"}

	all := readRunning(t, openRunning(t, metrics.Settings{Source: "rq", URL: url}))
	between(t, "latency read along with the running jobs", all.Value, 60-0.001, 60.001+time.Since(before).Seconds())
	wantJobs(t, "all queues", all.Running, report, resizeUnknown, resize)
	if shown := fmt.Sprintf("%+v", all.Running); strings.Contains(shown, "secret-arg") || strings.Contains(shown, "ops@example.com") {
		t.Errorf("a job's arguments are kept: %s", shown)
	}

	some := readRunning(t, openRunning(t, metrics.Settings{Source: "rq", URL: url, Queues: "default"}))
	wantJobs(t, "QUEUES=default", some.Running, report, resize)

	plain := mustRead(t, open(t, metrics.Settings{Source: "rq", URL: url}))
	if plain.Running != nil || plain.RunningErr != nil {
		t.Errorf("a source not asked for running jobs read %v, %v", plain.Running, plain.RunningErr)
	}

	t.Run("malformed started_at", func(t *testing.T) {
		rqWorker(t, client, "worker.7", "default", "j4")
		rqStarted(t, client, "j4", "default", "app.jobs.f()", "last tuesday", "worker.7")
		r, err := read(t, openRunning(t, metrics.Settings{Source: "rq", URL: url}))
		if err != nil {
			t.Fatalf("the value could not be read: %v", err)
		}
		between(t, "latency despite the malformed running job", r.Value, 60-0.001, 60.001+time.Since(before).Seconds())
		wantError(t, r.RunningErr, "rq redis://", "running jobs", "rq:job:j4", "worker worker.7", "started_at")
	})
}

// utc is a Rails timestamp: UTC written without a zone, as t.datetime columns hold it.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999") }

// insertID runs an INSERT … RETURNING id.
func insertID(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return id
}

func TestPostgresRunningJobs(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Microsecond)
	s1, s2, s3 := now.Add(-120*time.Second), now.Add(-30*time.Second), now.Add(-3600*time.Second)

	for _, c := range []struct {
		preset string
		// jobs creates the tables, inserts running jobs and others, and returns the running jobs a reading over all
		// queues lists, and the queues and jobs of a reading over some.
		jobs func(t *testing.T, pool *pgxpool.Pool) (all []metrics.Job, queues string, some []metrics.Job)
	}{
		{"good_job", func(t *testing.T, pool *pgxpool.Pool) ([]metrics.Job, string, []metrics.Job) {
			ddl(t, pool, "good_job.sql")
			insert := func(queue, class string, performed, finished any) {
				sqlExec(t, pool, "INSERT INTO good_jobs (queue_name, priority, serialized_params, scheduled_at, performed_at, finished_at, created_at, updated_at, job_class)"+
					" VALUES ($1, 0, jsonb_build_object('job_class', $2::text, 'queue_name', $1::text, 'arguments', '[]'::jsonb), $3::text::timestamp, $4::text::timestamp, $5::text::timestamp, $3::text::timestamp, $3::text::timestamp, $2)",
					queue, class, utc(now.Add(-2*time.Hour)), performed, finished)
			}
			insert("default", "ReportJob", utc(s1), nil)                             // running
			insert("mailers", "MailJob", utc(s2), nil)                               // running
			insert("default", "WaitingJob", nil, nil)                                // waiting
			insert("default", "DoneJob", utc(s3), utc(s2))                           // finished
			report := metrics.Job{Started: s1, Class: "ReportJob", Queue: "default"} // GoodJob's host is not the dyno
			mail := metrics.Job{Started: s2, Class: "MailJob", Queue: "mailers"}
			return []metrics.Job{report, mail}, "mailers", []metrics.Job{mail}
		}},
		{"solid_queue", func(t *testing.T, pool *pgxpool.Pool) ([]metrics.Job, string, []metrics.Job) {
			ddl(t, pool, "solid_queue.sql")
			ddl(t, pool, "solid_queue_processes.sql")
			host := "a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b" // a Heroku dyno's hostname
			process := insertID(t, pool, "INSERT INTO solid_queue_processes (kind, last_heartbeat_at, pid, hostname, metadata, created_at, name)"+
				" VALUES ('Worker', $1::text::timestamp, 12, $2, '{\"queues\":\"*\"}', $1::text::timestamp, 'worker-1f0c3a') RETURNING id", utc(now), host)
			job := func(queue, class string) int64 {
				return insertID(t, pool, "INSERT INTO solid_queue_jobs (queue_name, class_name, arguments, created_at, updated_at) VALUES ($1, $2, '{}', $3::text::timestamp, $3::text::timestamp) RETURNING id",
					queue, class, utc(now.Add(-2*time.Hour)))
			}
			claim := func(job int64, process any, at time.Time) {
				sqlExec(t, pool, "INSERT INTO solid_queue_claimed_executions (job_id, process_id, created_at) VALUES ($1, $2, $3::text::timestamp)", job, process, utc(at))
			}
			claim(job("default", "ReportJob"), process, s1)
			claim(job("mailers", "MailJob"), nil, s2) // its process row gone: the host is unknown
			waiting := job("default", "WaitingJob")
			sqlExec(t, pool, "INSERT INTO solid_queue_ready_executions (job_id, queue_name, created_at) VALUES ($1, 'default', $2::text::timestamp)", waiting, utc(s3))
			job("default", "DoneJob") // finished: no execution left
			report := metrics.Job{Worker: host, Started: s1, Class: "ReportJob", Queue: "default"}
			mail := metrics.Job{Started: s2, Class: "MailJob", Queue: "mailers"}
			return []metrics.Job{report, mail}, "default", []metrics.Job{report}
		}},
		{"delayed_job", func(t *testing.T, pool *pgxpool.Pool) ([]metrics.Job, string, []metrics.Job) {
			ddl(t, pool, "delayed_job.sql")
			insert := func(queue, lockedBy, lockedAt, failedAt any) int64 {
				return insertID(t, pool, "INSERT INTO delayed_jobs (handler, run_at, locked_at, locked_by, failed_at, queue, created_at, updated_at)"+
					" VALUES ('--- !ruby/object:HardJob {}', $1::text::timestamp, $2::text::timestamp, $3, $4::text::timestamp, $5, $1::text::timestamp, $1::text::timestamp) RETURNING id",
					utc(now.Add(-2*time.Hour)), lockedAt, lockedBy, failedAt, queue)
			}
			named := insert("mailers", "worker.2:host:x pid:1", utc(s1), nil) // bin/delayed_job --prefix "$DYNO:"
			deflt := insert(nil, "host:abc pid:1", utc(s2), nil)              // the default queue, dyno unknown
			low := insert("low", "host:abc pid:2", utc(s3), nil)
			insert("default", nil, nil, nil)                      // waiting
			insert("default", "host:abc pid:3", utc(s3), utc(s2)) // failed while locked
			j1 := metrics.Job{Worker: "worker.2:host:x pid:1", Started: s1, Class: fmt.Sprintf("job %d", named), Queue: "mailers"}
			j2 := metrics.Job{Worker: "host:abc pid:1", Started: s2, Class: fmt.Sprintf("job %d", deflt), Queue: "default"}
			j3 := metrics.Job{Worker: "host:abc pid:2", Started: s3, Class: fmt.Sprintf("job %d", low), Queue: "low"}
			return []metrics.Job{j1, j2, j3}, "default", []metrics.Job{j1, j2}
		}},
		{"river", func(t *testing.T, pool *pgxpool.Pool) ([]metrics.Job, string, []metrics.Job) {
			presetTables()["river"].setup(t, pool) // river's own migrations: the real river_job
			client := riverClient(t, pool, time.Time{})
			insert := func(queue string) int64 {
				res, err := client.Insert(context.Background(), hardJob{}, &river.InsertOpts{Queue: queue})
				if err != nil {
					t.Fatal(err)
				}
				return res.Job.ID
			}
			// As a producer fetching a job does: state running, attempt+1, attempted_at, its client ID appended.
			run := func(id int64, at time.Time, by []string) {
				sqlExec(t, pool, "UPDATE river_job SET state = 'running', attempt = attempt + 1, attempted_at = $2::text::timestamptz, attempted_by = $3 WHERE id = $1",
					id, at.Format(time.RFC3339Nano), by)
			}
			run(insert("default"), s1, []string{"worker.1", "worker.2"}) // retried: now on worker.2
			run(insert("mailers"), s2, nil)
			run(insert("low"), s3, []string{"8c1d2e3f"})
			insert("default") // available
			done := insert("default")
			sqlExec(t, pool, "UPDATE river_job SET state = 'completed', attempt = 1, attempted_at = now(), attempted_by = '{worker.1}', finalized_at = now() WHERE id = $1", done)
			j1 := metrics.Job{Worker: "worker.2", Started: s1, Class: "hard_job", Queue: "default"}
			j2 := metrics.Job{Started: s2, Class: "hard_job", Queue: "mailers"}
			j3 := metrics.Job{Worker: "8c1d2e3f", Started: s3, Class: "hard_job", Queue: "low"}
			return []metrics.Job{j1, j2, j3}, "mailers", []metrics.Job{j1, j2}
		}},
	} {
		t.Run(c.preset, func(t *testing.T) {
			t.Parallel()
			pool, url := schema(t)
			all, queues, some := c.jobs(t, pool)

			r := readRunning(t, openRunning(t, metrics.Settings{Source: "postgres", URL: url, Preset: c.preset, Measure: "size"}))
			if r.Value != 1 {
				t.Errorf("size read along with the running jobs = %v, want the 1 waiting job", r.Value)
			}
			wantJobs(t, "all queues", r.Running, all...)
			r = readRunning(t, openRunning(t, metrics.Settings{Source: "postgres", URL: url, Preset: c.preset, Queues: queues}))
			wantJobs(t, "QUEUES="+queues, r.Running, some...)
			if c.preset == "delayed_job" {
				// The job locked by "worker.2:host:x pid:1" is kept outside QUEUES because it names its dyno.
				for _, j := range r.Running {
					if p, n, ok := metrics.DynoName(j.Worker); j.Queue == "mailers" && (!ok || p != "worker" || n != 2) {
						t.Errorf("locked_by %q names dyno %q.%d (%v), want worker.2", j.Worker, p, n, ok)
					}
				}
			}
			plain := mustRead(t, open(t, metrics.Settings{Source: "postgres", URL: url, Preset: c.preset}))
			if plain.Running != nil || plain.RunningErr != nil {
				t.Errorf("a source not asked for running jobs read %v, %v", plain.Running, plain.RunningErr)
			}
		})
	}
}
