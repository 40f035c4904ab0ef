package main_test

// End-to-end tests of PROTECT_BUSY with real job libraries: Sidekiq processes started as the dynos worker.1 and
// worker.2, RQ workers named after $DYNO or not, and river clients whose ID is $DYNO, all running real jobs that
// end when the test says so, while `dynopilot run` decides whether a scale-down may stop their dynos.

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/dynopilot/dynopilot/internal/servicetest"
)

// Redis databases of these tests (the metrics package's tests use 10 to 15).
const (
	dbBusySidekiq = 8
	dbBusyRQ      = 9
)

// busyRedis returns the test Redis URL on database db, emptied, and a client of it.
func busyRedis(t *testing.T, db int) (string, *redis.Client) {
	t.Helper()
	u, err := url.Parse(servicetest.Lookup(t, servicetest.RedisURL))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + strconv.Itoa(db)
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	if err := client.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("FLUSHDB %d: %v", db, err)
	}
	return u.String(), client
}

// worker starts a job-library worker as the dyno named dyno ("" for none), stopped at the end of the test.
func worker(t *testing.T, dyno string, env []string, name string, args ...string) *proc {
	t.Helper()
	env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	if dyno != "" {
		env = append(env, "DYNO="+dyno)
	}
	return start(t, env, name, args...)
}

// release lets the Redis job holding on key end.
func release(t *testing.T, client *redis.Client, key string) {
	t.Helper()
	if err := client.Set(context.Background(), key, "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// busyWorkerEnv is a policy for worker that wants 1 dyno as soon as nothing waits (MIN=1, one job per dyno), with
// busy protection on by default and nothing else in the way of a scale-down.
func busyWorkerEnv(h *heroku, source, sourceURL string, extra ...string) []string {
	env := []string{
		"HEROKU_API_KEY=" + token, "HEROKU_API_URL=" + h.url, "DYNOPILOT_LISTEN=127.0.0.1:0", "LOG_LEVEL=debug", "HOME=/nonexistent",
		"PATH=" + os.Getenv("PATH"), "DYNOPILOT_FORMATION_REFRESH=5s",
		"POLICY_0_APP=shop", "POLICY_0_PROCESS=worker", "POLICY_0_SOURCE=" + source, "POLICY_0_SOURCE_URL=" + sourceURL,
		"POLICY_0_MEASURE=size", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1", "POLICY_0_MIN=1", "POLICY_0_MAX=5",
		"POLICY_0_INTERVAL=1s", "POLICY_0_UP_COOLDOWN=0s", "POLICY_0_DOWN_COOLDOWN=0s", "POLICY_0_DOWN_STABILIZATION=0s",
	}
	return append(env, extra...)
}

// holdsThenScales checks that the scale-down 2 -> 1 is held with reason busy for a while, then, once the job is let
// end, goes ahead.
func holdsThenScales(t *testing.T, h *heroku, d *daemon, end func()) {
	t.Helper()
	waitFor(t, "a busy hold", 20*time.Second, func() bool { return d.status(t, "shop/worker").Reason == "busy" })
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if q := h.quantity(t, "worker"); q != 2 {
			t.Fatalf("worker = %d while worker.2 runs a job", q)
		}
	}
	if all, _ := h.patchCount(t, 0); all != 0 {
		t.Fatalf("%d PATCHes while worker.2 runs a job", all)
	}
	end()
	waitFor(t, "the scale-down once the job has ended", 30*time.Second, func() bool { return h.quantity(t, "worker") == 1 })
}

func TestBusySidekiqDynos(t *testing.T) {
	t.Parallel()
	ruby := servicetest.Binary(t, servicetest.SidekiqRuby)
	sidekiq, err := exec.LookPath("sidekiq")
	if err != nil {
		t.Fatalf("the sidekiq server program (Debian's ruby-sidekiq): %v", err)
	}
	redisURL, client := busyRedis(t, dbBusySidekiq)
	app, _ := filepath.Abs("testdata/busy_sidekiq.rb")
	env := []string{"REDIS_URL=" + redisURL}
	// Two dynos of the worker process type; each listens on a queue of its own so that the test can say which
	// dyno runs a job.
	worker(t, "worker.1", env, ruby, sidekiq, "-r", app, "-q", "one", "-c", "1")
	worker(t, "worker.2", env, ruby, sidekiq, "-r", app, "-q", "two", "-c", "1")
	running := func(dyno string) bool { // Sidekiq writes what runs on its heartbeat, every 5 s
		procs, _ := client.SMembers(context.Background(), "processes").Result()
		for _, p := range procs {
			info, _ := client.HGet(context.Background(), p, "info").Result()
			n, _ := client.HLen(context.Background(), p+":workers").Result()
			m, _ := client.HLen(context.Background(), p+":work").Result()
			if strings.Contains(info, `"hostname":"`+dyno+`"`) && n+m > 0 {
				return true
			}
		}
		return false
	}
	enqueue := func(t *testing.T, queue, key string) {
		t.Helper()
		cmd := exec.Command(ruby, app, queue, key)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("enqueue: %v\n%s", err, out)
		}
	}

	t.Run("a long job on worker.2 holds 2 -> 1 until it ends", func(t *testing.T) {
		enqueue(t, "two", "end-a")
		waitFor(t, "worker.2 running the job", 30*time.Second, func() bool { return running("worker.2") })
		h := startHerokuApps(t, "shop:web=1:Standard-1X,worker=2:Standard-1X")
		// check takes the daemon's decision: it shows the hold too.
		if _, out := cfgRun(t, busyWorkerEnv(h, "sidekiq", redisURL), "check"); !strings.Contains(out, "worker.2, which runs HoldJob (queue two)") {
			t.Errorf("check does not show the busy dyno:\n%s", out)
		}
		d := startDaemon(t, busyWorkerEnv(h, "sidekiq", redisURL))
		holdsThenScales(t, h, d, func() { release(t, client, "end-a") })
		out := d.p.output()
		if !strings.Contains(out, "a scale-down waits for busy dynos") || !strings.Contains(out, "worker.2, which runs HoldJob (queue two)") {
			t.Errorf("the hold is not logged with the dyno and the job:\n%s", out)
		}
		if n := strings.Count(out, "a scale-down waits for busy dynos"); n != 1 {
			t.Errorf("the hold is logged %d times, want once", n)
		}
	})

	t.Run("the same job on worker.1 does not hold 2 -> 1", func(t *testing.T) {
		enqueue(t, "one", "end-b")
		defer release(t, client, "end-b")
		waitFor(t, "worker.1 running the job", 30*time.Second, func() bool { return running("worker.1") })
		h := startHerokuApps(t, "shop:web=1:Standard-1X,worker=2:Standard-1X")
		startDaemon(t, busyWorkerEnv(h, "sidekiq", redisURL))
		waitFor(t, "the scale-down with worker.1 busy", 20*time.Second, func() bool { return h.quantity(t, "worker") == 1 })
		if !running("worker.1") {
			t.Errorf("the job on worker.1 ended before the scale-down: the test proves nothing")
		}
	})

	t.Run("PROTECT_BUSY_MAX ends the wait with a warning", func(t *testing.T) {
		enqueue(t, "two", "end-c")
		defer release(t, client, "end-c")
		waitFor(t, "worker.2 running the job", 30*time.Second, func() bool { return running("worker.2") })
		h := startHerokuApps(t, "shop:web=1:Standard-1X,worker=2:Standard-1X")
		started := time.Now()
		d := startDaemon(t, busyWorkerEnv(h, "sidekiq", redisURL, "POLICY_0_PROTECT_BUSY_MAX=6s"))
		waitFor(t, "a busy hold", 20*time.Second, func() bool { return d.status(t, "shop/worker").Reason == "busy" })
		waitFor(t, "the scale-down after PROTECT_BUSY_MAX", 30*time.Second, func() bool { return h.quantity(t, "worker") == 1 })
		if since := time.Since(started); since < 6*time.Second {
			t.Errorf("scaled down %v after the start, before PROTECT_BUSY_MAX=6s", since)
		}
		if out := d.p.output(); !strings.Contains(out, "level=WARN msg=\"a scale-down waited PROTECT_BUSY_MAX for busy dynos: scaling down anyway\"") {
			t.Errorf("no warning when PROTECT_BUSY_MAX ends the wait:\n%s", out)
		}
	})
}

func TestBusyRQWorkers(t *testing.T) {
	t.Parallel()
	python := servicetest.Binary(t, servicetest.Python)
	redisURL, client := busyRedis(t, dbBusyRQ)
	app, _ := filepath.Abs("testdata/busy_rq.py")
	env := []string{"PYTHONPATH=" + filepath.Dir(app)}
	enqueue := func(t *testing.T, queue, key string) {
		t.Helper()
		cmd := exec.Command(python, app, "enqueue", redisURL, queue, key)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("enqueue: %v\n%s", err, out)
		}
	}
	running := func(queue string) bool { // RQ moves a job it starts to the registry rq:wip:<queue>
		n, _ := client.ZCard(context.Background(), "rq:wip:"+queue).Result()
		return n > 0
	}

	t.Run("a worker named after its dyno holds exactly", func(t *testing.T) {
		// `rq worker --name $DYNO`, as the README says: worker.1 idle, worker.2 running the job.
		worker(t, "worker.1", env, python, app, "work", redisURL, "named1", "worker.1")
		worker(t, "worker.2", env, python, app, "work", redisURL, "named2", "worker.2")
		enqueue(t, "named2", "end-rq-a")
		waitFor(t, "worker.2 running the job", 30*time.Second, func() bool { return running("named2") })
		h := startHerokuApps(t, "shop:web=1:Standard-1X,worker=2:Standard-1X")
		d := startDaemon(t, busyWorkerEnv(h, "rq", redisURL))
		holdsThenScales(t, h, d, func() { release(t, client, "end-rq-a") })
		if out := d.p.output(); !strings.Contains(out, "worker.2, which runs busy_rq.hold (queue named2)") {
			t.Errorf("the hold does not name the dyno and the job:\n%s", out)
		}
	})

	t.Run("a worker with RQ's random name: its job holds once past the 30s grace", func(t *testing.T) {
		worker(t, "worker.3", env, python, app, "work", redisURL, "anon") // no --name: RQ names it at random
		enqueue(t, "anon", "end-rq-b")
		waitFor(t, "the job running", 30*time.Second, func() bool { return running("anon") })
		jobStarted := time.Now()
		h := startHerokuApps(t, "shop:web=1:Standard-1X,worker=3:Standard-1X")
		// Young, the job of an unknown dyno does not hold: it is taken for a short job that ends within the grace.
		young := startDaemon(t, busyWorkerEnv(h, "rq", redisURL, "POLICY_0_QUEUES=anon"))
		waitFor(t, "the scale-down while the job is young", 20*time.Second, func() bool { return h.quantity(t, "worker") == 1 })
		young.p.cmd.Process.Kill()
		<-young.p.done
		// Past 30 s it has shown that it is long: with the dyno unknown, every scale-down waits for it.
		time.Sleep(time.Until(jobStarted.Add(31 * time.Second)))
		h.scale(t, "worker", 3)
		d := startDaemon(t, busyWorkerEnv(h, "rq", redisURL, "POLICY_0_QUEUES=anon"))
		waitFor(t, "a busy hold", 20*time.Second, func() bool { return d.status(t, "shop/worker").Reason == "busy" })
		time.Sleep(3 * time.Second)
		if q := h.quantity(t, "worker"); q != 3 {
			t.Fatalf("worker = %d while a job of an unknown dyno has run past 30 s", q)
		}
		if out := d.p.output(); !strings.Contains(out, "cannot tell") {
			t.Errorf("the hold does not say that the dyno is unknown:\n%s", out)
		}
		release(t, client, "end-rq-b")
		waitFor(t, "the scale-down once the job has ended", 30*time.Second, func() bool { return h.quantity(t, "worker") == 1 })
	})
}

func TestBusyRiverClients(t *testing.T) {
	t.Parallel()
	dbURL := servicetest.Lookup(t, servicetest.DatabaseURL)
	build(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const schema = "dynopilot_busy_river"
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE; CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dbURL)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	schemaURL := u.String()
	river := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bins.riverworker, append([]string{"-database", schemaURL}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("riverworker %v: %v\n%s", args, err, out)
		}
	}
	river("-migrate")
	// river.Config{ID: os.Getenv("DYNO")}, as the README says: river records it in attempted_by.
	worker(t, "worker.1", nil, bins.riverworker, "-database", schemaURL, "-queue", "one")
	worker(t, "worker.2", nil, bins.riverworker, "-database", schemaURL, "-queue", "two")
	river("-queue", "two", "-insert", "end-river")
	waitFor(t, "worker.2 running the job", 30*time.Second, func() bool {
		var by string
		err := conn.QueryRow(ctx, "SELECT attempted_by[array_length(attempted_by, 1)] FROM "+schema+".river_job WHERE state = 'running'").Scan(&by)
		return err == nil && by == "worker.2"
	})
	h := startHerokuApps(t, "shop:web=1:Standard-1X,worker=2:Standard-1X")
	d := startDaemon(t, busyWorkerEnv(h, "postgres", schemaURL, "POLICY_0_PRESET=river"))
	holdsThenScales(t, h, d, func() {
		if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".busy_release VALUES ('end-river')"); err != nil {
			t.Fatal(err)
		}
	})
	if out := d.p.output(); !strings.Contains(out, "worker.2, which runs hold (queue two)") {
		t.Errorf("the hold does not name the dyno and the job:\n%s", out)
	}
}
