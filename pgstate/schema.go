package pgstate

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations returns the schema's migrations: the one at index i takes the schema to version i+1. Each runs in the
// transaction that records it. Rules, so that an older program keeps working on a newer schema (a rollback, or the
// old dyno still running during a deploy's 30 s overlap): only add (tables, columns with defaults, indexes), never
// rename, drop or tighten; never edit a migration once released, append a new one.
func migrations() []string {
	return []string{
		// 1. One row per key (per policy), overwritten: the table never holds more rows than policies configured
		//    (Prune removes those of policies no longer configured), each at most 64 KiB. One row per lock key in
		//    dynopilot_leader: its current term and the session that holds it.
		`CREATE TABLE dynopilot_state (
			key      text PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 256),
			value    bytea NOT NULL CHECK (octet_length(value) <= 65536),
			term     bigint NOT NULL,
			saved_at timestamptz NOT NULL DEFAULT now()
		);
		COMMENT ON TABLE dynopilot_state IS 'dynopilot: what a scaling decision depends on beyond the formation, one row per policy, written only by the leader';
		CREATE TABLE dynopilot_leader (
			lock_key         bigint PRIMARY KEY,
			term             bigint NOT NULL,
			pid              integer NOT NULL,
			backend_start    timestamptz NOT NULL,
			application_name text NOT NULL,
			confirm_ms       integer NOT NULL,
			since            timestamptz NOT NULL,
			released_at      timestamptz
		);
		COMMENT ON TABLE dynopilot_leader IS 'dynopilot: per advisory lock key, the leader''s term and session; writes to dynopilot_state are fenced on it'`,
	}
}

// migrate brings the schema of conn's search_path to len(list), in one transaction under migrateKey so that
// instances starting together take turns. It returns the version found and the version of list; a schema newer
// than list is left alone.
func migrate(ctx context.Context, conn *pgx.Conn, list []string) (from, to int, err error) {
	to = len(list)
	var schema *string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return 0, to, err
	}
	if schema == nil {
		var path string
		_ = conn.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&path)
		return 0, to, fmt.Errorf("no schema to create tables in: search_path %q names no schema that exists (create it, or fix ?search_path= in the URL)", path)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, to, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateKey); err != nil {
		return 0, to, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS dynopilot_schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, to, fmt.Errorf("in schema %q: %w", *schema, err)
	}
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM dynopilot_schema_migrations").Scan(&from); err != nil {
		return 0, to, err
	}
	for v := from + 1; v <= to; v++ {
		if _, err := tx.Exec(ctx, list[v-1]); err != nil {
			return from, to, fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO dynopilot_schema_migrations (version) VALUES ($1)", v); err != nil {
			return from, to, fmt.Errorf("migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return from, to, err
	}
	return from, to, nil
}

// schemaVersion reads the schema's version (0 before any migration).
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM dynopilot_schema_migrations").Scan(&v)
	var missing interface{ SQLState() string }
	if errors.As(err, &missing) && missing.SQLState() == "42P01" { // undefined_table
		return 0, nil
	}
	return v, err
}
