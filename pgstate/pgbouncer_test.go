package pgstate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/pgstate"
)

// pgbouncer starts a PgBouncer in poolMode in front of a fresh database of the test PostgreSQL, and returns a URL
// through it and a direct URL to the same database.
func pgbouncer(t *testing.T, poolMode string) (pooled, direct string) {
	t.Helper()
	bin := servicetest.Binary(t, servicetest.PgbouncerBin)
	base := servicetest.Lookup(t, servicetest.DatabaseURL)
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	db := "dp_pgstate_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})

	// PgBouncer refuses to run as root; as root, it is told to become nobody, who must be able to read its files.
	dir, err := os.MkdirTemp("", "pgstate-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	ini := fmt.Sprintf(`[databases]
%s = host=%s port=%d dbname=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
default_pool_size = 20
max_client_conn = 50
`, db, cfg.Host, cfg.Port, db, port, filepath.Join(dir, "users.txt"), poolMode)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(fmt.Sprintf("%q \"\"\n", cfg.User)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	var out servicetest.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pgbouncer:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pooled = fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", cfg.User, addr, db)
	direct = fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, db)
	return pooled, direct
}

// Through PgBouncer in transaction mode, as Heroku's connection pooling runs it, Open refuses, says why and what to
// use instead, and creates nothing.
func TestTransactionPoolerRefused(t *testing.T) {
	t.Parallel()
	pooled, direct := pgbouncer(t, "transaction")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := pgstate.Open(ctx, pgstate.Options{URL: pooled})
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a transaction pooler")
	}
	if !errors.Is(err, pgstate.ErrTransactionPooling) {
		t.Fatalf("Open through a transaction pooler: %v; want ErrTransactionPooling", err)
	}
	for _, want := range []string{"transaction pooler", "connection pooling", "DATABASE_CONNECTION_POOL_URL", "direct URL", "advisory lock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	t.Logf("refusal: %v", err)
	conn, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'dynopilot%'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("a refused Open created %d tables (%v)", n, err)
	}
}

// Through PgBouncer in session mode, each client keeps its server session: accepted, and leadership works.
func TestSessionPoolerAccepted(t *testing.T) {
	t.Parallel()
	pooled, _ := pgbouncer(t, "session")
	leader, other := leaderAndStandby(t, pooled, lockKey(), 10*time.Second)
	ctx := context.Background()
	if err := leader.store.Confirm(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leader.store.Save(ctx, "policy/a/web", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := other.store.Save(ctx, "policy/a/web", []byte("w")); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("the standby's Save through a session pooler: %v", err)
	}
	if got := mustLoad(t, other, "policy/a/web"); string(got) != "v" {
		t.Fatalf("Load: %q", got)
	}
	report, err := other.store.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, "session-mode pooler") || !strings.Contains(report, "held by another instance") {
		t.Fatalf("Check through a session pooler: %s", report)
	}
	smp := sample(leader, other)
	time.Sleep(time.Second)
	if _, both, none := smp.end(); both > 0 || none > 0 {
		t.Fatalf("through a session pooler: %d samples with two leaders, %d with none", both, none)
	}
}
