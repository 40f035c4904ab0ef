package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/metrics"
)

// failureSettings are settings of every kind reading addr with a password in the URL.
func failureSettings(addr, password string) map[string]metrics.Settings {
	return map[string]metrics.Settings{
		"sidekiq":    {Source: "sidekiq", URL: "redis://:" + password + "@" + addr + "/0"},
		"rq":         {Source: "rq", URL: "redis://:" + password + "@" + addr + "/0"},
		"celery":     {Source: "celery", URL: "redis://:" + password + "@" + addr + "/0"},
		"redis":      {Source: "redis", URL: "redis://:" + password + "@" + addr + "/0", Queues: "k"},
		"postgres":   {Source: "postgres", URL: "postgres://app:" + password + "@" + addr + "/app?sslmode=disable", Preset: "que"},
		"rabbitmq":   {Source: "rabbitmq", URL: "amqp://app:" + password + "@" + addr + "/", Queues: "q"},
		"prometheus": {Source: "prometheus", URL: "http://app:" + password + "@" + addr, Query: "up"},
		"hirefire":   {Source: "hirefire", URL: "http://" + addr + "/hirefire/" + password + "/info"},
	}
}

// wrapped opens s and wraps it with the package's timeout handling.
func wrapped(t testing.TB, s metrics.Settings) metrics.Source {
	t.Helper()
	spec := parse(t, s)
	conns := metrics.NewConnections(nil)
	t.Cleanup(func() { _ = conns.Close() })
	src, err := conns.Open(spec)
	if err != nil {
		t.Fatalf("Open does no I/O and must not fail: %v", err)
	}
	return withTimeout(spec, src)
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	for kind, s := range failureSettings(addr, "Unre4chable-Secret") {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s.Timeout = "5s"
			r, err := wrapped(t, s).Read(context.Background())
			wantError(t, err, kind+" ", addr, "refused")
			wantNoSecret(t, err, "Unre4chable-Secret")
			if r.Value != 0 || !r.At.IsZero() || r.Running != nil || r.RunningErr != nil {
				t.Errorf("a failed reading carries %+v", r)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	addr := silentServer(t)
	for kind, s := range failureSettings(addr, "Sl0w-Secret") {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s.Timeout = "300ms"
			_, err := wrapped(t, s).Read(context.Background())
			wantError(t, err, kind+" ", addr, "TIMEOUT=300ms")
			wantNoSecret(t, err, "Sl0w-Secret")
			if !isTimeout(err) {
				t.Errorf("%v does not say it timed out", err)
			}
		})
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		url, admin := redisDB(t, dbFailures)
		// The test server lets anyone in as the default user, so the test makes a user of its own (and removes it).
		user := unique("dp_metrics_")
		ctx := context.Background()
		if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">Right-Redis", "~*", "&*", "+@all").Err(); err != nil {
			t.Fatalf("ACL SETUSER: %v", err)
		}
		t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })
		right := strings.Replace(url, "redis://", "redis://"+user+":Right-Redis@", 1)
		if _, err := read(t, open(t, metrics.Settings{Source: "sidekiq", URL: right})); err != nil {
			t.Fatalf("with the right password: %v", err)
		}
		wrong := strings.Replace(url, "redis://", "redis://"+user+":Wr0ng-Redis@", 1)
		for _, kind := range []string{"sidekiq", "rq", "celery"} {
			_, err := read(t, open(t, metrics.Settings{Source: kind, URL: wrong}))
			wantError(t, err, kind+" redis://xxxxx@", "WRONGPASS")
			wantNoSecret(t, err, "Wr0ng-Redis")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		base := servicetest.Lookup(t, servicetest.DatabaseURL)
		// The test server trusts local users, so a wrong password is tried with a user it does not know.
		wrong := "postgres://nosuchuser:Wr0ng-Pg@" + base[strings.LastIndex(base, "@")+1:]
		_, err := read(t, open(t, metrics.Settings{Source: "postgres", URL: wrong, Query: "SELECT 1"}))
		wantError(t, err, "postgres postgres://xxxxx@", "nosuchuser")
		wantNoSecret(t, err, "Wr0ng-Pg")
	})
	// RabbitMQ: TestRabbitMQ/wrong_password; Prometheus: TestPrometheus/wrong_password.
}
