package pgstate_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/pgstate"
)

// database creates a fresh schema, dropped at the end of the test, and returns a URL whose search_path is that
// schema, and an admin pool on the database (for the test's own queries: pg_locks, pg_terminate_backend).
func database(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	base := servicetest.Lookup(t, servicetest.DatabaseURL)
	name := "dp_pgstate_" + randomHex(6)
	admin, err := pgxpool.New(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	sqlExec(t, admin, "CREATE SCHEMA "+name)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE") })
	return withParam(base, "search_path", name), admin
}

// withParam adds a query parameter to a URL.
func withParam(u, key, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + key + "=" + value
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockKey is a key of the test's own, so that tests running at once never campaign for the same lock.
func lockKey() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if k := int64(binary.BigEndian.Uint64(b[:])); k != 0 {
		return k
	}
	return 1
}

func sqlExec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// instance is one Store with its Run goroutine, its log and the leadership changes OnChange reported.
type instance struct {
	name   string
	store  *pgstate.Store
	log    *servicetest.Buffer
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changes []bool
}

// open opens a Store on url with lock key key (Confirm and Retry as given; 0: defaults) without running it.
func open(t testing.TB, name, url string, key int64, confirm, retry time.Duration) *instance {
	t.Helper()
	in := &instance{name: name, log: &servicetest.Buffer{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstate.Open(ctx, pgstate.Options{
		URL:     url,
		Logger:  slog.New(slog.NewTextHandler(in.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LockKey: key,
		Confirm: confirm,
		Retry:   retry,
		OnChange: func(leading bool) {
			in.mu.Lock()
			defer in.mu.Unlock()
			in.changes = append(in.changes, leading)
		},
	})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	in.store = s
	t.Cleanup(func() {
		s.Close()
		if t.Failed() || testing.Verbose() && os.Getenv("PGSTATE_SHOW_LOGS") != "" {
			t.Logf("log of %s:\n%s", name, in.log.String())
		}
	})
	return in
}

// run starts the instance's Run.
func (in *instance) run() *instance {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() {
		defer close(in.done)
		in.store.Run(ctx)
	}()
	return in
}

// start opens and runs an instance.
func start(t testing.TB, name, url string, key int64, confirm, retry time.Duration) *instance {
	t.Helper()
	in := open(t, name, url, key, confirm, retry).run()
	t.Cleanup(func() {
		in.cancel()
		<-in.done
	})
	return in
}

func (in *instance) reported() []bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]bool(nil), in.changes...)
}

// waitLeader waits until one of the instances leads and returns it.
// leaderAndStandby starts two instances with the default timing on url and lock key, and returns the one that
// leads within the time given and the other.
func leaderAndStandby(t testing.TB, url string, key int64, within time.Duration) (leader, other *instance) {
	t.Helper()
	a := start(t, "a", url, key, 0, 0)
	b := start(t, "b", url, key, 0, 0)
	if leader = waitLeader(t, within, a, b); leader == a {
		return a, b
	}
	return b, a
}

func waitLeader(t testing.TB, within time.Duration, ins ...*instance) *instance {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, in := range ins {
			if in.store.Leading() {
				return in
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no instance led within %v", within)
	return nil
}

// sampler checks Leading on every instance every few milliseconds in the background and records every moment
// when more than one led.
type sampler struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples int
	both    int
	none    int
}

func sample(ins ...*instance) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			n := 0
			for _, in := range ins {
				if in.store.Leading() {
					n++
				}
			}
			s.mu.Lock()
			s.samples++
			if n > 1 {
				s.both++
			}
			if n == 0 {
				s.none++
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// end stops sampling and returns the number of samples, of those with more than one leader and with none.
func (s *sampler) end() (samples, both, none int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.both, s.none
}

// lockHolder returns the backend pid holding key, 0 if none.
func lockHolder(t testing.TB, admin *pgxpool.Pool, key int64) int32 {
	t.Helper()
	var pid int32
	err := admin.QueryRow(context.Background(), `SELECT coalesce((SELECT k.pid FROM pg_locks k WHERE k.locktype = 'advisory'
		AND k.granted AND k.objsubid = 1 AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND ((k.classid::int8 << 32) | k.objid::int8) = $1 LIMIT 1), 0)`, key).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// terminate ends a backend from the server's side, as a dropped connection or a database restart would, and waits
// until it has exited (and so released its locks).
func terminate(t testing.TB, admin *pgxpool.Pool, pid int32) {
	t.Helper()
	var ok bool
	if err := admin.QueryRow(context.Background(), "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, ok, err)
	}
}
