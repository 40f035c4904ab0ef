// Package pgstate lets several dynopilot instances share one PostgreSQL database (DYNOPILOT_STATE_URL): exactly one
// of them leads, and only the leader changes anything on Heroku; the state a decision depends on beyond the
// formation survives a restart and a change of leader.
//
// # Leadership
//
// Every instance campaigns (Run) for one session-level advisory lock, LockKey (DefaultLockKey unless set), taken
// with pg_try_advisory_lock on a dedicated *pgx.Conn that serves nothing else of substance (never a pool: a pool
// would hand the session, and the lock with it, to whichever caller comes next). PostgreSQL releases such a lock
// when the session ends, whatever ends it: pg_advisory_unlock, the process exiting (kill -9 closes its socket), the
// connection being terminated, or the server giving up on a silent client. So:
//
//   - The leader confirms its lock every Confirm (2 s) with one round trip on the lock's connection; Leading is true
//     only while a confirmation is at most 2×Confirm old. Confirm, which the scaler calls right before every PATCH,
//     does the same synchronously: any failure stops leading at once, before the PATCH.
//   - On taking the lock, the leader sets idle_session_timeout on its session to 3×Confirm, at least 3 s
//     (PostgreSQL 14 and later), so that a leader that falls silent without closing its socket (a network split, a
//     frozen dyno) loses the lock on the server 6 s after its last confirmation, whatever TCP does; server-side TCP
//     keepalives (5 s idle, 3 probes 2 s apart) and tcp_user_timeout (10 s) cover older servers, in about 11 s.
//   - A standby tries the lock every Retry (2 s). A leader that stops cleanly (its context ends: SIGTERM) marks its
//     term released, unlocks and closes, and the standby leads at its next try. A standby that takes a lock whose
//     holder did not release it (killed, terminated, split off) waits 2×the old leader's Confirm before it leads:
//     by then the old leader's Leading is false, and a PATCH it sent right after its last good confirmation has had
//     that long to land. Worst cases with the defaults: a clean hand-over within Retry (2 s); a killed leader or a
//     dropped connection within Retry + 4 s; a silent leader within 6 + 2 + 4 = 12 s. An instance that lost the lock
//     keeps away from it for 2×Retry, so that a standby, whose link has not just failed, takes over.
//   - What Confirm cannot prevent: a process paused (for seconds) between a successful Confirm and its PATCH sends
//     that PATCH late. Quantities are absolute and the leader re-reads the formation before every PATCH, so the
//     next tick corrects it.
//
// Each instance uses up to three connections: the lock's, and a pool of at most two for Load, Save and Prune (and
// two more, briefly, during Open and Check).
// # State
//
// Save stores an opaque value (at most MaxValueSize) under a key, one row per key, overwritten: the scaler keeps
// one row per policy, so the table holds as many rows as there are policies and Prune removes those of policies
// no longer configured. Writes are fenced: every time an instance starts leading it increments a term in
// dynopilot_leader (which records the lock session's backend pid and start), and Save writes only while that row
// still carries the writer's term and pg_locks shows the lock held by that very session; the row is read FOR
// SHARE, so a new leader's increment waits for a write in flight and a write after it sees the new term. An
// instance that lost the lock, whether it knows yet or not, gets ErrNotLeader and the new leader's state stands.
//
// # Schema
//
// The tables are created and migrated by Open itself: embedded SQL, numbered, applied in one transaction under a
// transaction-level advisory lock (so that two instances starting together do not both migrate), recorded in
// dynopilot_schema_migrations. Migrations only ever add, so a program older than the schema (a rollback) keeps
// working and Open accepts it. The tables live in the first schema of the connection's search_path (add
// ?search_path=… to the URL to keep them apart from the application's).
//
// # Poolers
//
// A transaction pooler (PgBouncer in transaction mode, which is what Heroku's connection pooling is) gives the
// client a different server session for each transaction, so a session-level lock taken through it belongs to
// whoever gets that server session next: it would elect two leaders, or none. Open and Check refuse it; see
// ErrTransactionPooling for how it is detected.
package pgstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// DefaultLockKey is the advisory lock every instance campaigns for unless Options.LockKey says otherwise: the first
// eight bytes of SHA-256("dynopilot"), big-endian, as an int64. Advisory locks are per database, not per schema:
// two separate deployments sharing one database must set different keys (and search_paths).
const DefaultLockKey int64 = -7327359646838855570

// migrateKey is the transaction-level advisory lock Open holds while it migrates: the first eight bytes of
// SHA-256("dynopilot/migrate").
const migrateKey int64 = 8349640466487049548

// MaxValueSize is the largest value Save accepts (64 KiB); MaxKeySize the longest key (in bytes).
const (
	MaxValueSize = 64 << 10
	MaxKeySize   = 256
)

// Defaults of Options.
const (
	DefaultConfirm = 2 * time.Second
	DefaultRetry   = 2 * time.Second
)

// Options configure a Store.
type Options struct {
	URL      string             // DYNOPILOT_STATE_URL: postgres:// or postgresql://
	Logger   *slog.Logger       // nil: discard
	LockKey  int64              // 0: DefaultLockKey
	Confirm  time.Duration      // 0: 2s. How often the leader confirms its lock in the background
	Retry    time.Duration      // 0: 2s. How often a standby tries to take the lock
	OnChange func(leading bool) // called (from Run's goroutine) on every change of leadership; may be nil
}

// ErrNotLeader is returned by Confirm, Save and Prune when this instance does not lead: it never did, it stopped,
// or the database fenced its write off because another instance leads now.
var ErrNotLeader error = notLeader{}

type notLeader struct{}

func (notLeader) Error() string {
	return "this instance does not lead (it does not hold the state database's lock)"
}

// ErrTransactionPooling is what Open's and Check's error unwraps to when DYNOPILOT_STATE_URL goes through a
// transaction pooler. It is detected by what such a pooler cannot do: Open LISTENs on a fresh channel on one
// connection, NOTIFYs it from a second, and waits, without sending anything, for the notification. PostgreSQL
// delivers it at once to an idle listening session; a transaction pooler has unlinked the first client from its
// server session as soon as the LISTEN's transaction ended, so the notification never reaches it. That is the very
// property an advisory lock needs (the session stays with the client while it is idle) tested directly, not
// guessed from a port number or a server version string. Open also compares the process id the server announced
// at connection (BackendKeyData) with pg_backend_pid(): PostgreSQL always announces its own, a pooler makes one
// up; a mismatch with the notification delivered is a session-mode pooler, which keeps one server session per
// client and is accepted.
var ErrTransactionPooling error = transactionPooling{}

type transactionPooling struct{}

func (transactionPooling) Error() string {
	return "goes through a transaction pooler (such as PgBouncer in transaction mode, which Heroku's connection pooling is)"
}

// Store is one instance's view of the state database: its campaign for the lock and its reads and writes.
type Store struct {
	o       Options
	log     *slog.Logger
	url     string   // redacted, for messages
	secrets []string // of the URL, scrubbed from every error
	conn    *pgx.ConnConfig
	pool    *pgxpool.Pool // Load, Save, Prune: short statements that need no session of their own
	mode    string        // how Open found the connection: direct, or through a session pooler

	sem      chan struct{} // one user of lockConn at a time: Run's goroutine or Confirm
	lockConn *pgx.Conn     // guarded by sem

	mu        sync.Mutex
	leading   bool
	term      int64     // the term this instance leads in (or took last)
	lockPID   uint32    // the lock connection's backend pid, 0 without one
	lockNet   net.Conn  // the lock connection's socket, to cut it when it cannot be closed in time
	confirmed time.Time // when the last successful confirmation was sent
	lost      string    // why leadership ended outside Run's goroutine, for Run's log line
	closed    bool
	runs      sync.WaitGroup

	wake chan struct{} // Run's goroutine: leadership was lost elsewhere
	stop chan struct{} // closed by Close
}

// openTimeout bounds Open and Check when their ctx has no earlier deadline: `dynopilot check` never hangs on a
// database that accepts connections and then answers nothing (a pooler waiting for a free server, say).
const openTimeout = 30 * time.Second

// Open connects, refuses a transaction pooler with an error saying so (and that Heroku's connection pooling URL
// must not be used; use the database's direct URL), and creates or migrates the schema. It does not campaign. It
// gives up after 30 s if ctx has no earlier deadline. Every error names the database by its redacted URL.
func Open(ctx context.Context, o Options) (*Store, error) {
	s := &Store{
		log:     o.Logger,
		url:     setting.Redact("", o.URL),
		secrets: setting.Secrets("", o.URL),
		sem:     make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.LockKey == 0 {
		o.LockKey = DefaultLockKey
	}
	if o.Confirm == 0 {
		o.Confirm = DefaultConfirm
	}
	if o.Retry == 0 {
		o.Retry = DefaultRetry
	}
	s.o = o
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if o.Confirm < 0 || o.Retry < 0 {
		return nil, fmt.Errorf("state database: Confirm (%v) and Retry (%v) must not be negative", o.Confirm, o.Retry)
	}
	scheme, _, _ := strings.Cut(o.URL, "://")
	if scheme != "postgres" && scheme != "postgresql" {
		return nil, fmt.Errorf("state database %q: expected a postgres:// or postgresql:// URL", s.url)
	}
	poolCfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, s.wrap("parse the URL", err)
	}
	if _, ok := poolCfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		poolCfg.ConnConfig.RuntimeParams["application_name"] = applicationName()
	}
	poolCfg.MaxConns = 2
	poolCfg.MinConns = 0
	s.conn = poolCfg.ConnConfig.Copy()

	probe, mode, err := s.probe(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = probe.Close(context.Background()) }()
	s.mode = mode
	from, to, err := migrate(ctx, probe, migrations())
	if err != nil {
		return nil, s.wrap("migrate the schema", err)
	}
	switch {
	case from > to:
		s.log.Warn("state database schema is newer than this program: migrations only add, carrying on",
			"url", s.url, "schema_version", from, "program_version", to)
	case from < to:
		s.log.Info("state database schema migrated", "url", s.url, "from", from, "to", to)
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, poolCfg); err != nil {
		return nil, s.wrap("open the pool", err)
	}
	s.log.Debug("state database open", "url", s.url, "connection", mode, "lock_key", o.LockKey)
	return s, nil
}

// Close stops Run (releasing the lock as its context's end would) and closes every connection.
func (s *Store) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return
	}
	close(s.stop)
	s.runs.Wait()
	s.pool.Close()
}

// Load returns the value saved under key, and whether there was one. Any instance may read.
func (s *Store) Load(ctx context.Context, key string) ([]byte, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	var value []byte
	err := s.pool.QueryRow(ctx, "SELECT value FROM dynopilot_state WHERE key = $1", key).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.wrap("load "+key, err)
	}
	return value, true, nil
}

// fence selects the dynopilot_leader row of lock $1 only while it carries term $2 and the lock is held, now, by the
// very session that row names (pid and backend start, so that a recycled pid cannot pass); FOR SHARE so that a new
// leader's increment of the term waits for the statement that read it, and the statement, waiting for an increment
// in flight, reads the new term and writes nothing.
const fence = `fence AS (
	SELECT l.term FROM dynopilot_leader l
	WHERE l.lock_key = $1 AND l.term = $2 AND l.released_at IS NULL
	  AND EXISTS (SELECT 1 FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
	              WHERE ` + lockMatch + ` AND k.pid = l.pid AND a.backend_start = l.backend_start)
	FOR SHARE OF l)`

// lockMatch selects, in pg_locks k, the granted session-level advisory lock of key $1 in this database.
const lockMatch = `k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
	  AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	  AND ((k.classid::int8 << 32) | k.objid::int8) = $1`

// Save stores value under key, only while this instance leads: the write is fenced (see the package
// documentation), and a fenced-off write returns ErrNotLeader and stops this instance leading. A value over
// MaxValueSize is refused.
func (s *Store) Save(ctx context.Context, key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("state database: value for %q is %d bytes: at most %d (64 KiB) may be saved under one key", key, len(value), MaxValueSize)
	}
	if value == nil {
		value = []byte{} // the column is NOT NULL: an empty value is a value
	}
	term, ok := s.currentTerm()
	if !ok {
		return ErrNotLeader
	}
	tag, err := s.pool.Exec(ctx, "WITH "+fence+`
		INSERT INTO dynopilot_state (key, value, term, saved_at) SELECT $3, $4, term, now() FROM fence
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, term = EXCLUDED.term, saved_at = EXCLUDED.saved_at`,
		s.o.LockKey, term, key, value)
	if err != nil {
		return s.wrap("save "+key, err)
	}
	if tag.RowsAffected() == 0 {
		s.lose(term, "a write was fenced off: the lock is no longer held by this instance's session in term "+fmt.Sprint(term))
		return fmt.Errorf("save %s: %w", key, ErrNotLeader)
	}
	return nil
}

// Prune deletes the values of every key not in keep (those of policies no longer configured), only while this
// instance leads, fenced as Save is.
func (s *Store) Prune(ctx context.Context, keep []string) error {
	term, ok := s.currentTerm()
	if !ok {
		return ErrNotLeader
	}
	if keep == nil {
		keep = []string{}
	}
	var fenced bool
	var deleted int64
	err := s.pool.QueryRow(ctx, "WITH "+fence+`,
		gone AS (DELETE FROM dynopilot_state WHERE EXISTS (SELECT 1 FROM fence) AND NOT (key = ANY($3::text[])) RETURNING 1)
		SELECT NOT EXISTS (SELECT 1 FROM fence), (SELECT count(*) FROM gone)`,
		s.o.LockKey, term, keep).Scan(&fenced, &deleted)
	if err != nil {
		return s.wrap("prune", err)
	}
	if fenced {
		s.lose(term, "a prune was fenced off: the lock is no longer held by this instance's session in term "+fmt.Sprint(term))
		return fmt.Errorf("prune: %w", ErrNotLeader)
	}
	if deleted > 0 {
		s.log.Info("state of removed policies deleted", "rows", deleted)
	}
	return nil
}

// checkKey refuses a key PostgreSQL's text cannot hold or that is unreasonably long.
func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("state database: empty key")
	case len(key) > MaxKeySize:
		return fmt.Errorf("state database: key %.40q… is %d bytes: at most %d", key, len(key), MaxKeySize)
	case !utf8.ValidString(key) || strings.ContainsRune(key, 0):
		return fmt.Errorf("state database: key %q: expected valid UTF-8 without NUL", key)
	}
	return nil
}

// applicationName is how the lock's session appears in pg_stat_activity, and so in Check and in a standby's log:
// "dynopilot", followed by the dyno's name on Heroku.
func applicationName() string {
	if dyno := os.Getenv("DYNO"); dyno != "" {
		return "dynopilot " + dyno
	}
	return "dynopilot"
}

// stateError is an error whose text names the state database by its redacted URL and carries no secret of it;
// it unwraps to its cause so that errors.Is sees context errors.
type stateError struct {
	msg   string
	cause error
}

func (e *stateError) Error() string { return e.msg }
func (e *stateError) Unwrap() error { return e.cause }

// wrap describes err, which happened doing what, without any secret of the URL.
func (s *Store) wrap(what string, err error) error {
	return &stateError{msg: "state database " + s.url + ": " + what + ": " + setting.Scrub(err.Error(), s.secrets), cause: err}
}

// scrub is wrap's text without the prefix, for log lines.
func (s *Store) scrub(err error) string { return setting.Scrub(err.Error(), s.secrets) }
