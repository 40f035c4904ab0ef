package pgstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyWait is how long the probe waits for its own notification. PostgreSQL delivers it in milliseconds; the
// wait only runs out through a transaction pooler (or a link so slow that leading over it would not work either).
const notifyWait = 3 * time.Second

// connectTimeout bounds one connection attempt when ctx has no earlier deadline.
const connectTimeout = 10 * time.Second

// probe connects and makes sure that a session stays with its client while the client is idle, which a
// session-level advisory lock needs (see ErrTransactionPooling). It returns the connection, ready for more (Open
// migrates on it), and how it was found: direct, or through a session pooler.
func (s *Store) probe(ctx context.Context) (*pgx.Conn, string, error) {
	cfg := s.conn.Copy()
	// The simple protocol: no prepared statement that a pooler could send to another server session than the one
	// that prepared it, so that the probe fails with its own clear error rather than "prepared statement … does
	// not exist".
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	listener, err := connect(ctx, cfg)
	if err != nil {
		return nil, "", s.wrap("connect", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = listener.Close(context.Background())
		}
	}()
	var pid uint32
	if err := listener.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return nil, "", s.wrap("read the backend's process id", err)
	}
	announced := listener.PgConn().PID()

	var random [8]byte
	_, _ = rand.Read(random[:])
	channel := "dynopilot_probe_" + hex.EncodeToString(random[:])
	if _, err := listener.Exec(ctx, "LISTEN "+channel); err != nil {
		return nil, "", s.wrap("LISTEN", err)
	}
	notifier, err := connect(ctx, cfg)
	if err != nil {
		return nil, "", s.wrap("connect a second time", err)
	}
	_, err = notifier.Exec(ctx, "SELECT pg_notify($1, 'probe')", channel)
	_ = notifier.Close(context.Background())
	if err != nil {
		return nil, "", s.wrap("NOTIFY", err)
	}
	wctx, cancel := context.WithTimeout(ctx, notifyWait)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	switch {
	case err == nil && n != nil && n.Channel == channel:
	case err != nil && ctx.Err() != nil:
		return nil, "", s.wrap("wait for a notification", ctx.Err())
	case err != nil && !errors.Is(err, context.DeadlineExceeded) && !listener.IsClosed():
		return nil, "", s.wrap("wait for a notification", err)
	default:
		detail := fmt.Sprintf("a notification this session LISTENed for was not delivered within %v while it was idle", notifyWait)
		if announced != pid {
			detail += fmt.Sprintf(", and the server process id announced at connection (%d) is not the session's (%d)", announced, pid)
		}
		return nil, "", &stateError{
			msg: "state database " + s.url + " " + ErrTransactionPooling.Error() + ": " + detail +
				". A session-level advisory lock taken through it would not stay with this instance, so two instances" +
				" could lead at once. Do not use Heroku's connection pooling URL (DATABASE_CONNECTION_POOL_URL, pgbouncer)" +
				" for DYNOPILOT_STATE_URL: use the database's direct URL (DATABASE_URL, as `heroku pg:credentials:url` shows it)",
			cause: ErrTransactionPooling,
		}
	}
	if _, err := listener.Exec(ctx, "UNLISTEN "+channel); err != nil {
		return nil, "", s.wrap("UNLISTEN", err)
	}
	ok = true
	if announced == pid {
		return listener, "direct (not pooled)", nil
	}
	return listener, fmt.Sprintf("through a session-mode pooler (server process %d, announced as %d): accepted, each client keeps its own server session", pid, announced), nil
}

// connect opens one connection, bounded by ctx and by connectTimeout.
func connect(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}
