package metrics_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/redis/go-redis/v9"
)

// Redis databases this package's tests own (FLUSHDB at the start of each test using one), so that they neither
// collide with each other when run in parallel nor with other packages, which use other databases.
const (
	dbSidekiq  = 10
	dbRQ       = 11
	dbCelery   = 12
	dbKeys     = 13
	dbShared   = 14 // connection sharing and benchmarks: reads only, no FLUSHDB
	dbFailures = 15
)

// redisDB returns the test Redis URL pointing at database db, with an emptied database, and a client to write with.
func redisDB(t testing.TB, db int) (string, *redis.Client) {
	t.Helper()
	base := servicetest.Lookup(t, servicetest.RedisURL)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", servicetest.RedisURL, err)
	}
	u.Path = "/" + strconv.Itoa(db)
	raw := u.String()
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	if db != dbShared {
		if err := client.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("FLUSHDB %d: %v", db, err)
		}
	}
	return raw, client
}

// parse is Settings.Parse for a test that expects the settings to be valid.
func parse(t testing.TB, s metrics.Settings) metrics.Spec {
	t.Helper()
	spec, err := s.Parse("shop", "worker", metrics.Defaults{})
	if err != nil {
		t.Fatalf("Parse(%+v): %v", s, err)
	}
	return spec
}

// open returns the Source for s from fresh Connections closed at the end of the test.
func open(t testing.TB, s metrics.Settings) metrics.Source {
	t.Helper()
	conns := metrics.NewConnections(nil)
	t.Cleanup(func() { _ = conns.Close() })
	src, err := conns.Open(parse(t, s))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return src
}

// read reads src once under a generous deadline.
func read(t testing.TB, src metrics.Source) (metrics.Reading, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return src.Read(ctx)
}

// mustRead reads and fails the test on error.
func mustRead(t testing.TB, src metrics.Source) metrics.Reading {
	t.Helper()
	r, err := read(t, src)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return r
}

// between fails unless lo <= v <= hi.
func between(t testing.TB, what string, v, lo, hi float64) {
	t.Helper()
	if v < lo || v > hi {
		t.Errorf("%s = %v, want within [%v, %v]", what, v, lo, hi)
	}
}

// wantError fails unless err is non-nil and its text contains every part.
func wantError(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// wantNoSecret fails when err's text contains secret.
func wantNoSecret(t testing.TB, err error, secret string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the secret %q: %v", secret, err)
	}
}

// unique returns prefix followed by random hex, for schema, queue and key names no other test run uses.
func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// run runs a program (a real Sidekiq, RQ or Celery client) and fails the test with its output when it fails.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// silentServer accepts connections and never answers, to test timeouts; it returns its address.
func silentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// closedPort returns an address where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// withTimeout wraps src with the package's own timeout handling (Instruments.Wrap on nil Instruments).
func withTimeout(spec metrics.Spec, src metrics.Source) metrics.Source {
	var i *metrics.Instruments
	return i.Wrap("app/worker", spec, src)
}

// isTimeout reports whether err says the reading ran out of time.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout")
}
