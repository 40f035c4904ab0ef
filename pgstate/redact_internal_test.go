package pgstate

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dynopilot/dynopilot/internal/servicetest"
)

// A Store whose database becomes unreachable (its port closed, here) logs and returns errors that name the
// database by its redacted URL and never show the password.
func TestUnreachableHidesThePassword(t *testing.T) {
	base, _, _ := emptySchema(t)
	if !strings.HasPrefix(base, "postgres://postgres@") {
		t.Skipf("needs a URL of the form postgres://postgres@…, with trust authentication: %s", base)
	}
	const password = "s3cr3t-Pa55w0rd"
	url := strings.Replace(base, "postgres://postgres@", "postgres://postgres:"+password+"@", 1)
	var log servicetest.Buffer
	s, err := Open(context.Background(), Options{URL: url, Logger: slog.New(slog.NewTextHandler(&log, nil)), Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.conn.Port = 1
	poolCfg, err := pgxpool.ParseConfig(strings.Replace(url, ":5432/", ":1/", 1))
	if err != nil {
		t.Fatal(err)
	}
	s.pool.Close()
	if s.pool, err = pgxpool.NewWithConfig(context.Background(), poolCfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	s.Run(ctx)
	cancel()
	_, _, loadErr := s.Load(context.Background(), "policy/a/web")
	if loadErr == nil {
		t.Fatal("Load succeeded on a closed port")
	}
	out := log.String() + loadErr.Error()
	if strings.Contains(out, password) {
		t.Fatalf("a log line or an error shows the password:\n%s", out)
	}
	if !strings.Contains(log.String(), "state database unreachable") || !strings.Contains(out, "postgres://xxxxx@127.0.0.1:") {
		t.Fatalf("expected the failure logged with the redacted URL:\n%s", out)
	}
	t.Log(out)
}
