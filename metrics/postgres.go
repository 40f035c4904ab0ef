package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// preset is where a job library keeps its waiting jobs, as the library itself and Judoscale's adapters read them.
// Jobs scheduled for later are not waiting yet and count in neither latency nor size.
type preset struct {
	table   string // FROM
	queue   string // the queue's name
	since   string // since when a waiting job has been due
	waiting string // WHERE: the job waits to be picked up
	// running selects the jobs running now as (worker, started, class, queue), "" when the library does not record
	// when a running job started. worker is whatever the library records of who runs the job (see Job.Worker).
	running string
}

// presets lists the job tables PRESET knows. Rails' timestamp columns are UTC without a zone; every preset reading
// runs with TimeZone=UTC so that they compare right with now().
func presets() map[string]preset {
	return map[string]preset{
		// GoodJob: good_jobs; a job is taken when performed_at is set, done when finished_at is.
		"good_job": {
			table:   "good_jobs",
			queue:   "queue_name",
			since:   "coalesce(scheduled_at, created_at)",
			waiting: "performed_at IS NULL AND finished_at IS NULL AND coalesce(scheduled_at, created_at) <= now()",
			// GoodJob records the process by its host name, which on Heroku is not the dyno's: the dyno is unknown.
			running: "SELECT '', performed_at, coalesce(serialized_params->>'job_class', ''), coalesce(queue_name, '')" +
				" FROM good_jobs WHERE performed_at IS NOT NULL AND finished_at IS NULL",
		},
		// Solid Queue: a row in solid_queue_ready_executions is a due job nobody has claimed.
		"solid_queue": {
			table:   "solid_queue_ready_executions",
			queue:   "queue_name",
			since:   "created_at",
			waiting: "true",
			// A claimed execution is a running job; its process's host name is not the dyno's on Heroku.
			running: "SELECT coalesce(p.hostname, ''), c.created_at, coalesce(j.class_name, ''), coalesce(j.queue_name, '')" +
				" FROM solid_queue_claimed_executions c JOIN solid_queue_jobs j ON j.id = c.job_id" +
				" LEFT JOIN solid_queue_processes p ON p.id = c.process_id",
		},
		// Delayed Job: a NULL queue is Delayed Job's default queue.
		"delayed_job": {
			table:   "delayed_jobs",
			queue:   "coalesce(queue, 'default')",
			since:   "run_at",
			waiting: "locked_at IS NULL AND failed_at IS NULL AND run_at <= now()",
			// locked_by is the worker's name, "host:<hostname> pid:<pid>" unless the app gives it a prefix: started
			// as `bin/delayed_job --prefix "$DYNO:"`, it begins with the dyno's name.
			running: "SELECT coalesce(locked_by, ''), locked_at, 'job ' || id, coalesce(queue, 'default')" +
				" FROM delayed_jobs WHERE locked_at IS NOT NULL AND failed_at IS NULL",
		},
		// Que 1.x and 2.x: a job being worked holds an advisory lock on its id (as que's job_stats reads them);
		// retrying jobs (error_count > 0) are left out, as Judoscale does.
		"que": {
			table: "que_jobs",
			queue: "queue",
			since: "run_at",
			waiting: "finished_at IS NULL AND expired_at IS NULL AND error_count = 0 AND run_at <= now() AND NOT EXISTS (" +
				"SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1" +
				" AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())" +
				" AND (l.classid::bigint << 32) + l.objid::bigint = que_jobs.id)",
		},
		// river: available jobs are the ones its producers fetch once scheduled_at has passed.
		"river": {
			table:   "river_job",
			queue:   "queue",
			since:   "scheduled_at",
			waiting: "state = 'available' AND scheduled_at <= now()",
			// attempted_by lists the clients that worked the job, the last one running it now: river.Config's ID,
			// the dyno's name when the app sets ID to $DYNO.
			running: "SELECT coalesce(attempted_by[array_length(attempted_by, 1)], ''), attempted_at, kind, queue" +
				" FROM river_job WHERE state = 'running' AND attempted_at IS NOT NULL",
		},
	}
}

// Presets returns the valid values of PRESET.
func Presets() []string {
	var names []string
	for name := range presets() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// sql is the statement reading measure over the given queues ($1 when queues is true).
func (p preset) sql(measure string, queues bool) string {
	where := p.waiting
	if queues {
		where += " AND " + p.queue + " = ANY($1)"
	}
	if measure == MeasureSize {
		return "SELECT count(*)::float8 FROM " + p.table + " WHERE " + where
	}
	// greatest(…, 0): a job stamped by an application server whose clock runs ahead of the database's has just been
	// enqueued (the clock-skew case, as latencySince); a QUERY's negative result, by contrast, is refused.
	return "SELECT greatest(coalesce(extract(epoch FROM now() - min(" + p.since + ")), 0), 0)::float8 FROM " + p.table + " WHERE " + where
}

// postgresKind reads a number from PostgreSQL: the result of QUERY (one row, one numeric column), or the latency or
// size of a job library's table (PRESET), over QUEUES or all queues. A QUERY's result is passed on as it is: a
// negative one is refused by Instruments.Wrap, never read as 0. Every reading runs in a read-only transaction
// with statement_timeout set to TIMEOUT. Tables are found through the search_path (add ?search_path=… to the URL
// for another schema).
func postgresKind() kind {
	return kind{
		name: KindPostgres,
		backend: backend{
			globalURL:  "DATABASE_URL",
			defaultURL: func(d Defaults) string { return d.DatabaseURL },
			schemes:    []string{"postgres", "postgresql"},
			checkURL:   func(raw string) error { _, err := pgConfig(raw); return err },
		},
		measures:  []string{MeasureLatency, MeasureSize},
		query:     optional,
		preset:    optional,
		queues:    optional,
		queueNoun: "queues",
		check: func(s *Spec, errs *setting.List) {
			switch {
			case s.Query == "" && s.Preset == "":
				errs.Add(setting.Errorf("PRESET", "", "one of %s, or a QUERY, for SOURCE=postgres", strings.Join(Presets(), ", ")))
			case s.Query != "" && s.Preset != "":
				errs.Add(setting.Errorf("QUERY", s.Query, "nothing when PRESET is set: give QUERY or PRESET, not both"))
			case s.Query != "" && len(s.Queues) > 0:
				errs.Add(setting.Errorf("QUEUES", strings.Join(s.Queues, ","), "nothing with a QUERY: QUEUES selects the queues of a PRESET; filter in the QUERY instead"))
			}
		},
		running: func(s Spec) string {
			switch p, ok := presets()[s.Preset]; {
			case s.Preset == "":
				return "a QUERY reads one number; running jobs are read from the tables of a PRESET"
			case !ok || p.running == "":
				return fmt.Sprintf("PRESET=%s records a running job only as a lock, not since when it runs", s.Preset)
			}
			return ""
		},
		open: func(c *Connections, s Spec) (Source, error) {
			pool, err := c.pgPool(s.URL)
			if err != nil {
				return nil, err
			}
			src := &postgres{pool: pool, sql: s.Query, timeout: s.Timeout}
			if s.Preset != "" {
				p, ok := presets()[s.Preset]
				if !ok {
					return nil, fmt.Errorf("unknown preset %q: expected one of %s", s.Preset, strings.Join(Presets(), ", "))
				}
				src.sql, src.utc = p.sql(s.Measure, len(s.Queues) > 0), true
				if s.Running {
					src.running, src.queues = p.running, s.Queues
				}
				if len(s.Queues) > 0 {
					src.args = []any{s.Queues}
				}
			}
			return src, nil
		},
	}
}

// pgConfig parses a PostgreSQL URL (any parameter pgx knows, e.g. sslmode, search_path, default_query_exec_mode=
// simple_protocol behind PgBouncer), names the connections after dynopilot and keeps their number small.
func pgConfig(raw string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(raw, "pool_max_conns") {
		cfg.MaxConns = maxConnsPerURL
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = clientName
	}
	return cfg, nil
}

type postgres struct {
	pool    *pgxpool.Pool
	sql     string
	args    []any
	utc     bool // preset over Rails tables: read timestamps without zone as UTC
	timeout time.Duration
	running string   // the preset's running jobs, when they are read (Spec.Running)
	queues  []string // the policy's queues, for running jobs of unknown dynos
}

// Read runs the statement in a read-only transaction that is always rolled back.
func (s *postgres) Read(ctx context.Context) (Reading, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return Reading{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // with ctx done, pgx closes the connection and the pool replaces it

	timeout := s.timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	set := "SELECT set_config('statement_timeout', $1, true)"
	if s.utc {
		set += ", set_config('TimeZone', 'UTC', true)"
	}
	if _, err := tx.Exec(ctx, set, strconv.FormatInt(max(timeout.Milliseconds(), 1), 10)); err != nil {
		return Reading{}, fmt.Errorf("set statement_timeout: %w", err)
	}

	rows, err := tx.Query(ctx, s.sql, s.args...)
	if err != nil {
		return Reading{}, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	var value any
	count := 0
	for rows.Next() {
		count++
		if count == 1 {
			vals, err := rows.Values()
			if err != nil {
				return Reading{}, fmt.Errorf("query: %w", err)
			}
			if len(vals) > 0 {
				value = vals[0]
			}
		}
	}
	if err := rows.Err(); err != nil {
		return Reading{}, fmt.Errorf("query: %w", err)
	}
	if n := len(rows.FieldDescriptions()); n != 1 {
		return Reading{}, fmt.Errorf("query returned %d columns: expected one number", n)
	}
	at := time.Now()
	switch count {
	case 0:
		return Reading{}, errors.New("query returned no row: expected one row with one number")
	case 1:
	default:
		return Reading{}, fmt.Errorf("query returned %d rows: expected one row with one number", count)
	}
	typeName := "unknown"
	if t, ok := rows.Conn().TypeMap().TypeForOID(rows.FieldDescriptions()[0].DataTypeOID); ok {
		typeName = t.Name
	}
	v, err := sqlNumber(value, typeName)
	if err != nil {
		return Reading{}, err
	}
	r := Reading{Value: v, At: at}
	if s.running != "" {
		r.Running, r.RunningErr = s.runningJobs(ctx, tx)
	}
	return r, nil
}

// runningJobs reads the preset's running jobs in the reading's transaction.
func (s *postgres) runningJobs(ctx context.Context, tx pgx.Tx) ([]Job, error) {
	rows, err := tx.Query(ctx, s.running)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	var jobs []Job
	for rows.Next() {
		var j Job
		var started *time.Time
		if err := rows.Scan(&j.Worker, &started, &j.Class, &j.Queue); err != nil {
			rows.Close()
			return nil, fmt.Errorf("query: %w", err)
		}
		if started == nil {
			continue
		}
		j.Started = *started
		if keepRunning(j, s.queues) {
			jobs = append(jobs, j)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return jobs, nil
}

// sqlNumber converts a query's one value to a float: integers, floats, numeric, and intervals (as seconds, a month
// being 30 days as in extract(epoch …)). NULL, NaN, infinities and anything else are errors.
func sqlNumber(v any, typeName string) (float64, error) {
	var f float64
	switch v := v.(type) {
	case nil:
		return 0, errors.New("query returned NULL: expected a number (wrap it in coalesce(…, 0) if NULL means zero)")
	case int16:
		f = float64(v)
	case int32:
		f = float64(v)
	case int64:
		f = float64(v)
	case uint32:
		f = float64(v)
	case float32:
		f = float64(v)
	case float64:
		f = v
	case pgtype.Numeric:
		if v.NaN {
			return 0, errors.New("query returned NaN: expected a number")
		}
		if v.InfinityModifier != pgtype.Finite {
			return 0, errors.New("query returned an infinite number: expected a finite one")
		}
		n, err := v.Float64Value()
		if err != nil || !n.Valid {
			return 0, fmt.Errorf("query returned numeric that does not fit a float: %v", err)
		}
		f = n.Float64
	case pgtype.Interval:
		f = float64(v.Months)*30*86400 + float64(v.Days)*86400 + float64(v.Microseconds)/1e6
	default:
		return 0, fmt.Errorf("query returned a value of type %s: expected a number", typeName)
	}
	switch {
	case math.IsNaN(f):
		return 0, errors.New("query returned NaN: expected a number")
	case math.IsInf(f, 0):
		return 0, errors.New("query returned an infinite number: expected a finite one")
	}
	return f, nil
}
