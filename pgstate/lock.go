package pgstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// sessionSQL sets up the lock's session: the server probes an idle client after 5 s and gives up on it after three
// unanswered probes 2 s apart, or when data it sent stays unacknowledged for 10 s (PostgreSQL 12 and later), so
// that a leader cut off without a FIN or RST loses its lock on servers without idle_session_timeout too.
const sessionSQL = `SELECT pg_backend_pid(),
	set_config('tcp_keepalives_idle', '5', false),
	set_config('tcp_keepalives_interval', '2', false),
	set_config('tcp_keepalives_count', '3', false),
	CASE WHEN current_setting('server_version_num')::int >= 120000 THEN set_config('tcp_user_timeout', '10000', false) END`

// confirmSQL is the confirmation: this session ($2 is the pid it had when it took the lock) holds the lock $1.
const confirmSQL = `SELECT pg_backend_pid() = $2 AND EXISTS (SELECT 1 FROM pg_locks k WHERE ` + lockMatch + ` AND k.pid = pg_backend_pid())`

// confirmStmt is confirmSQL prepared on the lock connection when it connects, so that a confirmation is one round
// trip.
const confirmStmt = "pgstate_confirm"

// trySQL tries the lock once and, when another session holds it, says which one. The OFFSET 0 keeps the attempt
// in its own subquery, evaluated once, before the lateral join that reads its result.
const trySQL = `SELECT t.got, h.pid, h.application_name
	FROM (SELECT pg_try_advisory_lock($1) AS got OFFSET 0) t
	LEFT JOIN LATERAL (
		SELECT k.pid, a.application_name FROM pg_locks k LEFT JOIN pg_stat_activity a ON a.pid = k.pid
		WHERE NOT t.got AND ` + lockMatch + ` AND k.pid <> pg_backend_pid() LIMIT 1) h ON true`

// shuttingDown is the reason given when Run's ctx ends.
const shuttingDown = "shutting down: releasing the lock"

// maxGrace caps the wait after an unclean hand-over, whatever confirm_ms an old leader recorded.
const maxGrace = 10 * time.Minute

// Leading reports whether this instance holds the lock and confirmed it within 2*Confirm.
func (s *Store) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading && time.Since(s.confirmed) <= 2*s.o.Confirm
}

// Confirm checks synchronously, with one round trip on the lock's own connection (bounded by ctx, and by
// 2×Confirm but at least a second), that the lock is still held by this session. On any failure it stops leading
// at once (Run's goroutine calls OnChange(false) right after) and returns an error; an instance that does not lead
// gets ErrNotLeader at once. The scaler calls it right before every PATCH.
func (s *Store) Confirm(ctx context.Context) error {
	term, ok := s.currentTerm()
	if !ok {
		return ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, max(2*s.o.Confirm, time.Second))
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		err := s.wrap("confirm the lock: its connection stayed busy", ctx.Err())
		s.lose(term, err.Error())
		return err
	}
	defer func() { <-s.sem }()
	s.mu.Lock()
	leading, pid := s.leading && s.term == term, s.lockPID
	s.mu.Unlock()
	if !leading || s.lockConn == nil {
		s.lose(term, "the lock connection is gone")
		return ErrNotLeader
	}
	sent := time.Now()
	var held bool
	if err := s.lockConn.QueryRow(ctx, confirmStmt, s.o.LockKey, int32(pid)).Scan(&held); err != nil {
		err = s.wrap("confirm the lock", err)
		s.closeLockConn()
		s.lose(term, err.Error())
		return err
	}
	if !held {
		s.closeLockConn()
		s.lose(term, "the lock is no longer held by this instance's session")
		return fmt.Errorf("confirm the lock: %w", ErrNotLeader)
	}
	s.mu.Lock()
	if s.leading && s.term == term && sent.After(s.confirmed) {
		s.confirmed = sent
	}
	s.mu.Unlock()
	return nil
}

// currentTerm returns the term this instance leads in, and whether it leads (regardless of how fresh its last
// confirmation is: the database fences what it writes).
func (s *Store) currentTerm() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term, s.leading
}

// lose stops leading in term, for reason, and wakes Run's goroutine to say so and start over.
func (s *Store) lose(term int64, reason string) {
	s.mu.Lock()
	if s.leading && s.term == term {
		s.leading = false
		s.lost = reason
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// closeLockConn closes the lock connection, which releases the lock if the session still held it. The caller holds
// sem.
func (s *Store) closeLockConn() {
	if s.lockConn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.lockConn.Close(ctx)
	s.lockConn = nil
	s.mu.Lock()
	s.lockPID, s.lockNet = 0, nil
	s.mu.Unlock()
}

// Run campaigns until ctx ends (or Close): takes the lock when free (on a dedicated *pgx.Conn, never a pool),
// confirms it every Confirm while leading, reconnects after errors, and on ctx's end releases the lock
// (pg_advisory_unlock) promptly, within two seconds, and returns. OnChange is called from Run's goroutine. Run
// once at a time; it may be run again after it returned.
func (s *Store) Run(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.runs.Add(1)
	s.mu.Unlock()
	defer s.runs.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()

	c := &campaign{s: s}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		wait := c.step(ctx)
		c.report()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-timer.C:
		}
	}
	c.release()
}

// campaign is the state of Run's goroutine.
type campaign struct {
	s          *Store
	holding    bool      // the lock connection holds the lock: leading, or waiting out graceUntil
	term       int64     // the term taken with the lock
	pid        uint32    // the lock connection's backend pid
	graceUntil time.Time // zero unless waiting after an unclean hand-over
	notBefore  time.Time // no new attempt before this, after losing the lock
	reported   bool      // the last value given to OnChange
	repTerm    int64     // the term reported leading
	failure    string    // the last connection failure logged
	holder     int32     // the other session last seen holding the lock
}

// step does one thing on the lock connection, connecting first if need be, and returns how long to wait before
// the next.
func (c *campaign) step(ctx context.Context) time.Duration {
	s := c.s
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	defer func() { <-s.sem }()

	if s.lockConn != nil && s.lockConn.IsClosed() {
		s.closeLockConn()
	}
	if s.lockConn == nil {
		if c.holding { // Confirm found the lock lost and closed the connection
			c.yield()
		}
		if left := time.Until(c.notBefore); left > 0 {
			return left
		}
		if err := c.connect(ctx); err != nil {
			c.failed("connect", err)
			return s.o.Retry
		}
	}
	// Statements run to their own timeout even when ctx ends meanwhile, so that the connection is still usable to
	// release the lock cleanly.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.queryTimeout())
	defer cancel()

	if !c.holding {
		sent := time.Now()
		var got bool
		var holder *int32
		var app *string
		if err := s.lockConn.QueryRow(qctx, trySQL, s.o.LockKey).Scan(&got, &holder, &app); err != nil {
			c.drop("try the lock", err)
			return s.o.Retry
		}
		c.recovered()
		if !got {
			if holder != nil && *holder != c.holder {
				c.holder = *holder
				name := ""
				if app != nil {
					name = *app
				}
				s.log.Info("standing by: another session holds the state database's lock", "holder_pid", *holder, "holder", name)
			}
			return s.o.Retry
		}
		c.holding, c.holder = true, 0
		grace, err := c.begin(qctx)
		if err != nil {
			c.drop("start a term", err) // closing the connection lets the lock go
			return s.o.Retry
		}
		if grace > 0 {
			c.graceUntil = time.Now().Add(grace)
			s.log.Info("took the state database's lock from a leader that did not release it: waiting before leading",
				"term", c.term, "wait", grace)
			return min(s.o.Confirm, grace)
		}
		c.lead(sent)
		return s.o.Confirm
	}

	if c.graceUntil.IsZero() {
		s.mu.Lock()
		lostElsewhere := !(s.leading && s.term == c.term)
		s.mu.Unlock()
		if lostElsewhere { // Save found a write fenced off: start over
			s.closeLockConn()
			c.yield()
			return time.Until(c.notBefore)
		}
	}
	sent := time.Now()
	var held bool
	err := s.lockConn.QueryRow(qctx, confirmStmt, s.o.LockKey, int32(c.pid)).Scan(&held)
	if err != nil {
		c.drop("confirm the lock", err)
		return time.Until(c.notBefore)
	}
	if !held {
		c.drop("confirm the lock", fmt.Errorf("the lock is no longer held by this session"))
		return time.Until(c.notBefore)
	}
	if !c.graceUntil.IsZero() {
		if left := time.Until(c.graceUntil); left > 0 {
			return min(s.o.Confirm, left)
		}
		c.graceUntil = time.Time{}
		c.lead(sent)
		return s.o.Confirm
	}
	s.mu.Lock()
	if s.leading && s.term == c.term && sent.After(s.confirmed) {
		s.confirmed = sent
	}
	s.mu.Unlock()
	return s.o.Confirm
}

// queryTimeout bounds each of Run's statements.
func (s *Store) queryTimeout() time.Duration { return max(s.o.Confirm, time.Second) }

// connect opens the lock connection and sets its session up.
func (c *campaign) connect(ctx context.Context) error {
	s := c.s
	conn, err := connect(ctx, s.conn.Copy())
	if err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, s.queryTimeout())
	defer cancel()
	var pid uint32
	if err := conn.QueryRow(qctx, sessionSQL).Scan(&pid, nil, nil, nil, nil); err != nil {
		_ = conn.Close(context.Background())
		return err
	}
	if _, err := conn.Prepare(qctx, confirmStmt, confirmSQL); err != nil {
		_ = conn.Close(context.Background())
		return err
	}
	s.lockConn, c.pid = conn, pid
	s.mu.Lock()
	s.lockPID, s.lockNet = pid, conn.PgConn().Conn()
	s.mu.Unlock()
	return nil
}

// begin starts a term once the lock is taken: increments the term (which fences off every write of the previous
// one), records this session as the leader's, makes the server end this session if it stays silent for
// 3×Confirm (at least 3 s), and returns how long to wait before leading: 2×the previous leader's Confirm if it did
// not release the lock itself, else 0.
func (c *campaign) begin(ctx context.Context) (time.Duration, error) {
	s := c.s
	var released bool
	var prevConfirm int64
	err := s.lockConn.QueryRow(ctx, "SELECT released_at IS NOT NULL, confirm_ms FROM dynopilot_leader WHERE lock_key = $1",
		s.o.LockKey).Scan(&released, &prevConfirm)
	first := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !first {
		return 0, err
	}
	if err := s.lockConn.QueryRow(ctx, `INSERT INTO dynopilot_leader AS l
			(lock_key, term, pid, backend_start, application_name, confirm_ms, since, released_at)
		SELECT $1, 1, a.pid, a.backend_start, coalesce(a.application_name, ''), $2, now(), NULL
		FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()
		ON CONFLICT (lock_key) DO UPDATE SET term = l.term + 1, pid = EXCLUDED.pid, backend_start = EXCLUDED.backend_start,
			application_name = EXCLUDED.application_name, confirm_ms = EXCLUDED.confirm_ms, since = EXCLUDED.since,
			released_at = NULL
		RETURNING term`, s.o.LockKey, s.o.Confirm.Milliseconds()).Scan(&c.term); err != nil {
		return 0, err
	}
	lease := max(3*s.o.Confirm, 3*time.Second)
	if _, err := s.lockConn.Exec(ctx, `SELECT CASE WHEN current_setting('server_version_num')::int >= 140000
		THEN set_config('idle_session_timeout', $1, false) END`, strconv.FormatInt(lease.Milliseconds(), 10)); err != nil {
		return 0, err
	}
	if first || released {
		return 0, nil
	}
	return min(2*time.Duration(prevConfirm)*time.Millisecond, maxGrace), nil
}

// lead makes this instance the leader in c.term, confirmed at sent.
func (c *campaign) lead(sent time.Time) {
	s := c.s
	s.mu.Lock()
	s.leading, s.term, s.confirmed, s.lost = true, c.term, sent, ""
	s.mu.Unlock()
}

// drop closes the lock connection after err (which lets the lock go, if held) and stops leading.
func (c *campaign) drop(what string, err error) {
	s := c.s
	reason := what + ": " + s.scrub(err)
	s.closeLockConn()
	s.mu.Lock()
	if s.leading && s.term == c.term {
		s.leading, s.lost = false, reason
	}
	s.mu.Unlock()
	if c.holding && !c.graceUntil.IsZero() {
		s.log.Warn("lost the state database's lock before leading", "term", c.term, "reason", reason)
	}
	if c.holding {
		c.yield()
	}
	c.failed(what, err)
}

// yield forgets the lock after losing it, and keeps away from it for 2×Retry: a standby, which tries every Retry,
// gets the first chance, since this instance's link to the database has just proved unreliable.
func (c *campaign) yield() {
	c.holding, c.graceUntil = false, time.Time{}
	c.notBefore = time.Now().Add(2 * c.s.o.Retry)
}

// failed logs a connection failure once, until the connection works again.
func (c *campaign) failed(what string, err error) {
	msg := what + ": " + c.s.scrub(err)
	if msg == c.failure {
		return
	}
	c.failure = msg
	c.s.log.Warn("state database unreachable: retrying", "url", c.s.url, "err", msg, "retry", c.s.o.Retry)
}

// recovered logs that the lock connection works again after a failure.
func (c *campaign) recovered() {
	if c.failure == "" {
		return
	}
	c.failure = ""
	c.s.log.Info("state database reachable again", "url", c.s.url)
}

// report logs every change of leadership and calls OnChange.
func (c *campaign) report() {
	s := c.s
	s.mu.Lock()
	leading, term, lost := s.leading, s.term, s.lost
	s.lost = ""
	s.mu.Unlock()
	if c.reported && (!leading || term != c.repTerm) {
		c.reported = false
		level := slog.LevelWarn
		if lost == shuttingDown {
			level = slog.LevelInfo
		}
		s.log.Log(context.Background(), level, "stopped leading: this instance no longer changes anything on Heroku", "term", c.repTerm, "reason", lost)
		if s.o.OnChange != nil {
			s.o.OnChange(false)
		}
	}
	if leading && !c.reported {
		c.reported, c.repTerm = true, term
		s.log.Info("leading: this instance holds the state database's lock and acts on Heroku", "term", term, "pid", c.pid)
		if s.o.OnChange != nil {
			s.o.OnChange(true)
		}
	}
}

// release ends the campaign: stops leading, marks the term released (so that the next leader need not wait),
// unlocks and closes, within two seconds whatever happens.
func (c *campaign) release() {
	s := c.s
	s.mu.Lock()
	led := s.leading && s.term == c.term
	if s.leading {
		s.leading, s.lost = false, shuttingDown
	}
	s.mu.Unlock()
	c.report()

	wait, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-wait.Done():
		// A Confirm is stuck on the lock connection: cut its socket; the server ends the session, and the lock
		// with it.
		s.mu.Lock()
		if s.lockNet != nil {
			_ = s.lockNet.Close()
		}
		s.mu.Unlock()
		s.log.Warn("state database's lock connection busy at shutdown: cut it, the server releases the lock")
		return
	}
	if s.lockConn == nil {
		return
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	if c.holding {
		var err error
		if led { // a term cut short during its grace is not marked: the next leader waits as this one would have
			_, err = s.lockConn.Exec(ctx, "UPDATE dynopilot_leader SET released_at = now() WHERE lock_key = $1 AND term = $2", s.o.LockKey, c.term)
		}
		if err == nil {
			_, err = s.lockConn.Exec(ctx, "SELECT pg_advisory_unlock($1)", s.o.LockKey)
		}
		if err != nil {
			s.log.Warn("state database's lock not released cleanly: closing its connection releases it", "err", s.scrub(err))
		} else {
			s.log.Info("released the state database's lock", "term", c.term)
		}
	}
	s.closeLockConn()
}
