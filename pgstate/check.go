package pgstate

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Check is what `dynopilot check` reports: reachable, not pooled, schema current, and whether the lock can be
// obtained now or is held by another instance (which is fine: it says which backend pid and application_name holds
// it, since when, and in which term). It connects afresh, as Open does, and never keeps the lock: when it can take
// it, it releases it at once. Like Open, it gives up after 30 s if ctx has no earlier deadline.
func (s *Store) Check(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	conn, mode, err := s.probe(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	parts := []string{s.url, "PostgreSQL " + conn.PgConn().ParameterStatus("server_version"), mode}

	version, err := schemaVersion(ctx, conn)
	if err != nil {
		return "", s.wrap("read the schema version", err)
	}
	want := len(migrations())
	switch {
	case version < want:
		return "", fmt.Errorf("state database %s: schema version %d, expected %d: it was changed since this program opened it", s.url, version, want)
	case version > want:
		parts = append(parts, fmt.Sprintf("schema version %d (newer than this program's %d: migrations only add, fine)", version, want))
	default:
		parts = append(parts, fmt.Sprintf("schema version %d (current)", version))
	}

	s.mu.Lock()
	ownPID := s.lockPID
	s.mu.Unlock()
	var got bool
	var holder *int32
	var app *string
	if err := conn.QueryRow(ctx, trySQL, s.o.LockKey).Scan(&got, &holder, &app); err != nil {
		return "", s.wrap("try the lock", err)
	}
	lock := fmt.Sprintf("lock %d: ", s.o.LockKey)
	switch {
	case got:
		var unlocked bool
		if err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", s.o.LockKey).Scan(&unlocked); err != nil || !unlocked {
			_ = conn.Close(context.WithoutCancel(ctx)) // ending the session releases it in any case
		}
		lock += "free, this instance can take it now (no instance leads)"
	case holder == nil:
		lock += "held by a session that just let it go"
	default:
		who := fmt.Sprintf("backend pid %d", *holder)
		if app != nil && *app != "" {
			who += fmt.Sprintf(" (application_name %q)", *app)
		}
		if ownPID != 0 && uint32(*holder) == ownPID {
			lock += "held by this instance's own lock connection, " + who
		} else {
			lock += "held by another instance, " + who + ": it leads and this one stands by, which is fine"
		}
		var term int64
		var since time.Time
		err := conn.QueryRow(ctx, "SELECT term, since FROM dynopilot_leader WHERE lock_key = $1 AND pid = $2 AND released_at IS NULL",
			s.o.LockKey, *holder).Scan(&term, &since)
		if err == nil {
			lock += fmt.Sprintf(", term %d since %s", term, since.UTC().Format(time.RFC3339))
		}
	}
	parts = append(parts, lock)
	return strings.Join(parts, "; "), nil
}
