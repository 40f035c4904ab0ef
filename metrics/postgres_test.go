package metrics_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// schema creates a fresh schema dropped at the end of the test. It returns a pool whose connections use it, and
// the source URL that reads it, with a session time zone other than UTC so that the presets' handling of Rails'
// zoneless UTC timestamps is exercised.
func schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	base := servicetest.Lookup(t, servicetest.DatabaseURL)
	name := unique("dp_metrics_")
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := pgxpool.New(context.Background(), base)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	url := base + sep + "search_path=" + name + "&timezone=America/New_York"
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, url
}

// sqlExec runs statements, failing the test on error.
func sqlExec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// ddl creates the tables of a job library from testdata.
func ddl(t testing.TB, pool *pgxpool.Pool, file string) {
	t.Helper()
	sql, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	sqlExec(t, pool, string(sql))
}

// utcAgo is a Rails timestamp (zoneless UTC) $2 seconds before the database's now().
const utcAgo = "(now() AT TIME ZONE 'UTC') - make_interval(secs => $2)"

// jobTables describes, per preset, how to create its tables and insert a waiting job, and inserts jobs that are not
// waiting (running, finished, failed, scheduled for later) and must count in neither latency nor size.
type jobTables struct {
	setup      func(t testing.TB, pool *pgxpool.Pool)
	waiting    func(t testing.TB, pool *pgxpool.Pool, queue string, secondsAgo float64)
	notWaiting func(t testing.TB, pool *pgxpool.Pool, queue string)
}

func presetTables() map[string]jobTables {
	return map[string]jobTables{
		"good_job": {
			setup: func(t testing.TB, pool *pgxpool.Pool) { ddl(t, pool, "good_job.sql") },
			waiting: func(t testing.TB, pool *pgxpool.Pool, queue string, ago float64) {
				// Enqueued now: GoodJob leaves scheduled_at NULL before v3, sets it to created_at since.
				sqlExec(t, pool, "INSERT INTO good_jobs (queue_name, priority, serialized_params, scheduled_at, created_at, updated_at, job_class) VALUES ($1, 0, '{}', "+utcAgo+", "+utcAgo+", "+utcAgo+", 'HardJob')", queue, ago)
				sqlExec(t, pool, "INSERT INTO good_jobs (queue_name, priority, serialized_params, created_at, updated_at, job_class) VALUES ($1, 0, '{}', "+utcAgo+", "+utcAgo+", 'HardJob')", queue, ago/2)
			},
			notWaiting: func(t testing.TB, pool *pgxpool.Pool, queue string) {
				sqlExec(t, pool, "INSERT INTO good_jobs (queue_name, scheduled_at, performed_at, created_at, updated_at) VALUES ($1, "+utcAgo+", now() AT TIME ZONE 'UTC', "+utcAgo+", now())", queue, 5000) // running
				sqlExec(t, pool, "INSERT INTO good_jobs (queue_name, scheduled_at, performed_at, finished_at, created_at, updated_at) VALUES ($1, "+utcAgo+", "+utcAgo+", "+utcAgo+", "+utcAgo+", now())", queue, 6000)
				sqlExec(t, pool, "INSERT INTO good_jobs (queue_name, scheduled_at, created_at, updated_at) VALUES ($1, "+utcAgo+", now(), now())", queue, -3600) // scheduled for later
			},
		},
		"solid_queue": {
			setup: func(t testing.TB, pool *pgxpool.Pool) { ddl(t, pool, "solid_queue.sql") },
			waiting: func(t testing.TB, pool *pgxpool.Pool, queue string, ago float64) {
				sqlExec(t, pool, "WITH job AS (INSERT INTO solid_queue_jobs (queue_name, class_name, created_at, updated_at) VALUES ($1, 'HardJob', "+utcAgo+", "+utcAgo+") RETURNING id) "+
					"INSERT INTO solid_queue_ready_executions (job_id, queue_name, created_at) SELECT id, $1, "+utcAgo+" FROM job", queue, ago)
				sqlExec(t, pool, "WITH job AS (INSERT INTO solid_queue_jobs (queue_name, class_name, created_at, updated_at) VALUES ($1, 'HardJob', "+utcAgo+", "+utcAgo+") RETURNING id) "+
					"INSERT INTO solid_queue_ready_executions (job_id, queue_name, created_at) SELECT id, $1, "+utcAgo+" FROM job", queue, ago/2)
			},
			notWaiting: func(t testing.TB, pool *pgxpool.Pool, queue string) {
				sqlExec(t, pool, "WITH job AS (INSERT INTO solid_queue_jobs (queue_name, class_name, created_at, updated_at) VALUES ($1, 'HardJob', "+utcAgo+", "+utcAgo+") RETURNING id) "+
					"INSERT INTO solid_queue_claimed_executions (job_id, created_at) SELECT id, now() FROM job", queue, 5000) // running
			},
		},
		"delayed_job": {
			setup: func(t testing.TB, pool *pgxpool.Pool) { ddl(t, pool, "delayed_job.sql") },
			waiting: func(t testing.TB, pool *pgxpool.Pool, queue string, ago float64) {
				var q any = queue
				if queue == "default" {
					q = nil // Delayed Job's default queue is NULL
				}
				for _, a := range []float64{ago, ago / 2} {
					sqlExec(t, pool, "INSERT INTO delayed_jobs (handler, run_at, queue, created_at, updated_at) VALUES ('--- !ruby/object:HardJob {}', "+utcAgo+", $1, "+utcAgo+", "+utcAgo+")", q, a)
				}
			},
			notWaiting: func(t testing.TB, pool *pgxpool.Pool, queue string) {
				sqlExec(t, pool, "INSERT INTO delayed_jobs (handler, run_at, locked_at, locked_by, queue) VALUES ('x', "+utcAgo+", now(), 'host:1', $1)", queue, 5000)
				sqlExec(t, pool, "INSERT INTO delayed_jobs (handler, run_at, failed_at, queue) VALUES ('x', "+utcAgo+", now(), $1)", queue, 6000)
				sqlExec(t, pool, "INSERT INTO delayed_jobs (handler, run_at, queue) VALUES ('x', "+utcAgo+", $1)", queue, -3600)
			},
		},
		"que": {
			setup: func(t testing.TB, pool *pgxpool.Pool) { ddl(t, pool, "que.sql") },
			waiting: func(t testing.TB, pool *pgxpool.Pool, queue string, ago float64) {
				for _, a := range []float64{ago, ago / 2} {
					sqlExec(t, pool, "INSERT INTO que_jobs (job_class, queue, run_at, job_schema_version) VALUES ('HardJob', $1, now() - make_interval(secs => $2), 2)", queue, a)
				}
			},
			notWaiting: func(t testing.TB, pool *pgxpool.Pool, queue string) {
				sqlExec(t, pool, "INSERT INTO que_jobs (job_class, queue, run_at, finished_at, job_schema_version) VALUES ('X', $1, now() - make_interval(secs => $2), now(), 2)", queue, 6000)
				sqlExec(t, pool, "INSERT INTO que_jobs (job_class, queue, run_at, expired_at, job_schema_version) VALUES ('X', $1, now() - make_interval(secs => $2), now(), 2)", queue, 6000)
				sqlExec(t, pool, "INSERT INTO que_jobs (job_class, queue, run_at, error_count, job_schema_version) VALUES ('X', $1, now() - make_interval(secs => $2), 1, 2)", queue, 6000)
				sqlExec(t, pool, "INSERT INTO que_jobs (job_class, queue, run_at, job_schema_version) VALUES ('X', $1, now() - make_interval(secs => $2), 2)", queue, -3600)
				// Being worked: a Que locker holds an advisory lock on the job's id for as long as it runs.
				var id int64
				if err := pool.QueryRow(context.Background(), "INSERT INTO que_jobs (job_class, queue, run_at, job_schema_version) VALUES ('X', $1, now() - interval '5000 seconds', 2) RETURNING id", queue).Scan(&id); err != nil {
					t.Fatal(err)
				}
				conn, err := pool.Acquire(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(conn.Release)
				if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_lock($1)", id); err != nil {
					t.Fatal(err)
				}
			},
		},
		"river": {
			setup: func(t testing.TB, pool *pgxpool.Pool) {
				var search string
				if err := pool.QueryRow(context.Background(), "SELECT current_schema()").Scan(&search); err != nil {
					t.Fatal(err)
				}
				migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: search})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := migrator.Migrate(context.Background(), rivermigrate.DirectionUp, nil); err != nil {
					t.Fatalf("river migrations: %v", err)
				}
			},
			waiting: func(t testing.TB, pool *pgxpool.Pool, queue string, ago float64) {
				for _, a := range []float64{ago, ago / 2} {
					// River stamps an available job's scheduled_at with its insert time; its test clock ages it.
					client := riverClient(t, pool, time.Now().Add(-time.Duration(a*float64(time.Second))))
					if _, err := client.Insert(context.Background(), hardJob{}, &river.InsertOpts{Queue: queue}); err != nil {
						t.Fatal(err)
					}
				}
			},
			notWaiting: func(t testing.TB, pool *pgxpool.Pool, queue string) {
				client := riverClient(t, pool, time.Time{})
				if _, err := client.Insert(context.Background(), hardJob{}, &river.InsertOpts{Queue: queue, ScheduledAt: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				old := riverClient(t, pool, time.Now().Add(-5000*time.Second))
				res, err := old.Insert(context.Background(), hardJob{}, &river.InsertOpts{Queue: queue})
				if err != nil {
					t.Fatal(err)
				}
				sqlExec(t, pool, "UPDATE river_job SET state = 'running', attempted_at = now(), attempt = 1 WHERE id = $1", res.Job.ID) // as a producer does when it fetches the job
			},
		},
	}
}

type hardJob struct{}

func (hardJob) Kind() string { return "hard_job" }

// riverClient is an insert-only river client whose clock reads at (the real clock when at is zero).
func riverClient(t testing.TB, pool *pgxpool.Pool, at time.Time) *river.Client[pgx.Tx] {
	t.Helper()
	var search string
	if err := pool.QueryRow(context.Background(), "SELECT current_schema()").Scan(&search); err != nil {
		t.Fatal(err)
	}
	cfg := &river.Config{Schema: search}
	if !at.IsZero() {
		cfg.Test.Time = fixedClock{at}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time       { return c.t }
func (c fixedClock) NowOrNil() *time.Time { return &c.t }

func TestPostgresPresets(t *testing.T) {
	t.Parallel()
	for name, tables := range presetTables() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, url := schema(t)
			tables.setup(t, pool)

			before := time.Now()
			tables.waiting(t, pool, "default", 300)
			tables.waiting(t, pool, "mailers", 60)
			tables.notWaiting(t, pool, "default")
			tables.notWaiting(t, pool, "mailers")

			settings := func(queues, measure string) metrics.Settings {
				return metrics.Settings{Source: "postgres", URL: url, Preset: name, Queues: queues, Measure: measure}
			}
			all := mustRead(t, open(t, settings("", "latency")))
			mailers := mustRead(t, open(t, settings("mailers", "")))
			both := mustRead(t, open(t, settings("mailers,default", "latency")))
			idle := mustRead(t, open(t, settings("idle", "latency")))
			slack := time.Since(before).Seconds()
			between(t, "latency over all queues", all.Value, 300-0.01, 300+slack)
			between(t, "latency of mailers", mailers.Value, 60-0.01, 60+slack)
			between(t, "latency of mailers and default", both.Value, 300-0.01, 300+slack)
			if idle.Value != 0 {
				t.Errorf("latency of an empty queue = %v, want 0", idle.Value)
			}

			for _, c := range []struct {
				queues string
				want   float64
			}{{"", 4}, {"default", 2}, {"mailers", 2}, {"default,mailers", 4}, {"idle", 0}} {
				got := mustRead(t, open(t, settings(c.queues, "size")))
				if got.Value != c.want {
					t.Errorf("size of QUEUES=%q = %v, want %v", c.queues, got.Value, c.want)
				}
			}
		})
	}
}

func TestPostgresQuery(t *testing.T) {
	t.Parallel()
	_, url := schema(t)
	query := func(sql string) (metrics.Reading, error) {
		return read(t, open(t, metrics.Settings{Source: "postgres", URL: url, Query: sql, Measure: "size"}))
	}
	for sql, want := range map[string]float64{
		"SELECT 42":           42,
		"SELECT 42::smallint": 42,
		"SELECT 2.5::numeric": 2.5,
		"SELECT 0.25::real":   0.25,
		"SELECT count(*) FROM generate_series(1, 7)": 7,
		"SELECT interval '1 minute 30 seconds'":      90,
	} {
		r, err := query(sql)
		if err != nil || r.Value != want {
			t.Errorf("%s: got %v, %v; want %v", sql, r.Value, err, want)
		}
	}
	for sql, want := range map[string]string{
		"SELECT 1 WHERE false":                "no row",
		"SELECT * FROM generate_series(1, 3)": "3 rows",
		"SELECT 1, 2":                         "2 columns",
		"SELECT NULL::int":                    "NULL",
		"SELECT 'twelve'":                     "type text",
		"SELECT now()":                        "type timestamptz",
		"SELECT 'NaN'::float8":                "NaN",
		"SELECT 'NaN'::numeric":               "NaN",
		"SELECT 'Infinity'::float8":           "infinite",
		"CREATE TABLE sneaky (id int)":        "read-only transaction",
		"SELECT count(*) FROM no_such_table":  "no_such_table",
	} {
		_, err := query(sql)
		wantError(t, err, "postgres postgres://", want)
	}
}

// TestPostgresNegativeReadings: issue 11, item 3. A QUERY's negative result was read as 0 (a latency) or passed on
// (a size), and scaled down; it is a failed reading naming the value. A preset's latency computed from job
// timestamps stamped by a clock ahead of the database's is the clock-skew case: 0, the job was just enqueued.
func TestPostgresNegativeReadings(t *testing.T) {
	t.Parallel()
	pool, url := schema(t)
	for _, c := range []struct{ query, measure, value string }{
		{"SELECT extract(epoch FROM now() - (now() + interval '1 minute'))", "latency", "-60"},
		{"SELECT -0.001::float8", "latency", "-0.001"},
		{"SELECT -5", "size", "-5"},
	} {
		spec := parse(t, metrics.Settings{Source: "postgres", URL: url, Query: c.query, Measure: c.measure})
		_, err := read(t, withTimeout(spec, open(t, metrics.Settings{Source: "postgres", URL: url, Query: c.query, Measure: c.measure})))
		wantError(t, err, "postgres postgres://", "read "+c.value+":", "expected a "+c.measure+" of 0 or more")
	}

	jobs := presetTables()["solid_queue"]
	jobs.setup(t, pool)
	jobs.waiting(t, pool, "default", -60) // enqueued by an application server whose clock is a minute ahead
	spec := parse(t, metrics.Settings{Source: "postgres", URL: url, Preset: "solid_queue"})
	r := mustRead(t, withTimeout(spec, open(t, metrics.Settings{Source: "postgres", URL: url, Preset: "solid_queue"})))
	if r.Value != 0 {
		t.Errorf("a job stamped a minute ahead of the database's clock: latency %v, want 0", r.Value)
	}
}

func TestPostgresStatementTimeout(t *testing.T) {
	t.Parallel()
	_, url := schema(t)
	spec := parse(t, metrics.Settings{Source: "postgres", URL: url, Query: "SELECT 1 FROM pg_sleep(30)", Timeout: "200ms"})
	conns := metrics.NewConnections(nil)
	defer conns.Close()
	src, err := conns.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Read without the caller's deadline: the database itself must stop the statement (SET LOCAL statement_timeout).
	_, err = read(t, src)
	wantError(t, err, "statement timeout")
}
