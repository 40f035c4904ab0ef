package pgstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dynopilot/dynopilot/internal/servicetest"
)

// emptySchema creates an empty schema for the test and returns a URL using it and an admin pool.
func emptySchema(t *testing.T) (string, string, *pgxpool.Pool) {
	t.Helper()
	base := servicetest.Lookup(t, servicetest.DatabaseURL)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "dp_pgstate_" + hex.EncodeToString(b)
	admin, err := pgxpool.New(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE") })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + name, name, admin
}

func openLogged(t *testing.T, url string) (*Store, *servicetest.Buffer, error) {
	t.Helper()
	var buf servicetest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{URL: url, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if s != nil {
		t.Cleanup(s.Close)
	}
	return s, &buf, err
}

func tables(t *testing.T, admin *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := admin.Query(context.Background(), "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func migrationRows(t *testing.T, admin *pgxpool.Pool, schema string) []int {
	t.Helper()
	rows, err := admin.Query(context.Background(), "SELECT version FROM "+schema+".dynopilot_schema_migrations ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Open on an empty schema creates the tables; Open again changes nothing and keeps the data.
func TestSchemaCreatedThenLeftAlone(t *testing.T) {
	url, schema, admin := emptySchema(t)
	s, log, err := openLogged(t, url)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tables(t, admin, schema), ","); got != "dynopilot_leader,dynopilot_schema_migrations,dynopilot_state" {
		t.Fatalf("tables after Open on an empty schema: %s", got)
	}
	if !strings.Contains(log.String(), "from=0 to=1") {
		t.Fatalf("no log line for the migration:\n%s", log.String())
	}
	if _, err := admin.Exec(context.Background(), "INSERT INTO "+schema+".dynopilot_state (key, value, term) VALUES ('policy/a/web', 'v', 1)"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, log2, err := openLogged(t, url)
	if err != nil {
		t.Fatal(err)
	}
	if got := migrationRows(t, admin, schema); len(got) != 1 || got[0] != 1 {
		t.Fatalf("migrations after a second Open: %v", got)
	}
	if strings.Contains(log2.String(), "migrated") {
		t.Fatalf("a second Open migrated:\n%s", log2.String())
	}
	if v, ok, err := s2.Load(context.Background(), "policy/a/web"); string(v) != "v" || !ok || err != nil {
		t.Fatalf("data after a second Open: %q %v %v", v, ok, err)
	}
}

// A schema written by an older program is migrated to the current version, keeping its data; a schema newer than
// the program (a rollback) is accepted as it is.
func TestSchemaMigratedFromOlderVersion(t *testing.T) {
	url, schema, admin := emptySchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	v1 := migrations()
	if from, to, err := migrate(ctx, conn, v1); from != 0 || to != 1 || err != nil {
		t.Fatalf("migrate to v1: %d→%d %v", from, to, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO dynopilot_state (key, value, term) VALUES ('policy/a/web', 'v', 1)"); err != nil {
		t.Fatal(err)
	}
	v2 := append(v1[:len(v1):len(v1)], "ALTER TABLE dynopilot_state ADD COLUMN note text NOT NULL DEFAULT ''")
	if from, to, err := migrate(ctx, conn, v2); from != 1 || to != 2 || err != nil {
		t.Fatalf("migrate v1→v2: %d→%d %v", from, to, err)
	}
	var note string
	if err := conn.QueryRow(ctx, "SELECT note FROM dynopilot_state WHERE key = 'policy/a/web'").Scan(&note); err != nil {
		t.Fatalf("after v2: %v", err)
	}
	if got := migrationRows(t, admin, schema); len(got) != 2 {
		t.Fatalf("migrations recorded: %v", got)
	}

	// The program, at v1, on this v2 schema.
	s, log, err := openLogged(t, url)
	if err != nil {
		t.Fatalf("Open on a newer schema: %v", err)
	}
	if !strings.Contains(log.String(), "newer than this program") {
		t.Fatalf("no warning for a newer schema:\n%s", log.String())
	}
	if got := migrationRows(t, admin, schema); len(got) != 2 {
		t.Fatalf("Open changed a newer schema: %v", got)
	}
	if v, ok, err := s.Load(ctx, "policy/a/web"); string(v) != "v" || !ok || err != nil {
		t.Fatalf("Load on a newer schema: %q %v %v", v, ok, err)
	}
}

// Instances starting together on an empty schema: every Open succeeds and the schema is created once.
func TestSchemaConcurrentOpens(t *testing.T) {
	url, schema, admin := emptySchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := Open(context.Background(), Options{URL: url})
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	if got := migrationRows(t, admin, schema); len(got) != 1 {
		t.Fatalf("migrations recorded: %v", got)
	}
}

func TestSchemaMissing(t *testing.T) {
	base := servicetest.Lookup(t, servicetest.DatabaseURL)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	_, _, err := openLogged(t, base+sep+"search_path=dp_pgstate_no_such_schema")
	if err == nil || !strings.Contains(err.Error(), "names no schema that exists") {
		t.Fatalf("Open with a search_path naming no schema: %v", err)
	}
}
