// Package servicetest lets integration tests find the real services they talk to (Redis, PostgreSQL, RabbitMQ,
// a Prometheus binary) through environment variables, so that `go test ./...` passes on a laptop with nothing
// installed while CI, which sets DYNOPILOT_REQUIRE_SERVICES=1, fails instead of silently skipping.
package servicetest

import (
	"os"
	"os/exec"
	"testing"
)

// Variables read by the integration tests; .ci/run sets every one of them.
const (
	RedisURL       = "DYNOPILOT_TEST_REDIS_URL"    // e.g. redis://127.0.0.1:6379/0
	DatabaseURL    = "DYNOPILOT_TEST_DATABASE_URL" // e.g. postgres://postgres@127.0.0.1:5432/test
	RabbitMQURL    = "DYNOPILOT_TEST_RABBITMQ_URL" // e.g. amqp://guest:guest@127.0.0.1:5672/
	PrometheusBin  = "DYNOPILOT_TEST_PROMETHEUS"   // path to the prometheus binary
	PromtoolBin    = "DYNOPILOT_TEST_PROMTOOL"     // path to the promtool binary
	PushgatewayBin = "DYNOPILOT_TEST_PUSHGATEWAY"  // path to the prometheus-pushgateway binary
	SidekiqRuby    = "DYNOPILOT_TEST_SIDEKIQ_RUBY" // a ruby that can `require "sidekiq"`
	Python         = "DYNOPILOT_TEST_PYTHON"       // a python3 that can import rq and celery
	PgbouncerBin   = "DYNOPILOT_TEST_PGBOUNCER"    // path to the pgbouncer binary (Debian's is /usr/sbin/pgbouncer)
	Require        = "DYNOPILOT_REQUIRE_SERVICES"
)

// Required reports whether a missing service must fail the test rather than skip it.
func Required() bool { return os.Getenv(Require) == "1" }

// Lookup returns the value of the environment variable name, skipping the test when it is unset, or failing it
// when DYNOPILOT_REQUIRE_SERVICES=1.
func Lookup(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if Required() {
		t.Fatalf("%s is not set and %s=1: this integration test needs its service", name, Require)
	}
	t.Skipf("%s is not set: skipping integration test", name)
	return ""
}

// Binary is Lookup for a program: the variable names a path that must be executable.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path := Lookup(t, name)
	if _, err := exec.LookPath(path); err != nil {
		if Required() {
			t.Fatalf("%s=%s: %v", name, path, err)
		}
		t.Skipf("%s=%s: %v", name, path, err)
	}
	return path
}
