package pgstate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/pgstate"
)

// No error shows the URL's password, whatever fails: the scheme, parsing, the host, the port.
func TestErrorsHideThePassword(t *testing.T) {
	const password = "s3cr3t-Pa55w0rd"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://dpuser:" + password + "@127.0.0.1:1/test?sslmode=disable",
		"postgresql://dpuser:" + password + "@db.invalid:5432/test?sslmode=disable&connect_timeout=5",
		"postgres://dpuser:" + password + "@127.0.0.1:notaport/test",
		"postgres://dpuser:" + password + "@127.0.0.1:5432/test?sslmode=bogus",
		"mysql://dpuser:" + password + "@127.0.0.1:5432/test",
		"postgres://dpuser:p%40ss%2F" + password + "@127.0.0.1:1/test?sslmode=disable",
	} {
		s, err := pgstate.Open(ctx, pgstate.Options{URL: url})
		if err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "dpuser:") {
			t.Errorf("the error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "state database ") {
			t.Errorf("the error does not say what failed: %v", err)
		}
		t.Log(err)
	}
}

// With a password in the URL (trust authentication ignores it), a Store whose database goes away logs and returns
// errors without it.
func TestLogsHideThePassword(t *testing.T) {
	base := servicetest.Lookup(t, servicetest.DatabaseURL)
	if !strings.HasPrefix(base, "postgres://postgres@") {
		t.Skipf("needs a URL of the form postgres://postgres@…, with trust authentication: %s", base)
	}
	const password = "s3cr3t-Pa55w0rd"
	url, admin := database(t)
	url = strings.Replace(url, "postgres://postgres@", "postgres://postgres:"+password+"@", 1)
	name := "pgstate_test_" + randomHex(4) // only this instance's connections are ended, not other tests'
	url = withParam(url, "application_name", name)
	key := lockKey()
	in := start(t, "leader", url, key, 0, 100*time.Millisecond)
	waitLeader(t, 5*time.Second, in)
	// Every connection of the instance is ended by the server, again and again, for a second.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		sqlExec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", name)
	}
	err := in.store.Confirm(context.Background())
	if err == nil {
		t.Fatal("Confirm succeeded")
	}
	out := in.log.String() + err.Error()
	if strings.Contains(out, password) {
		t.Fatalf("a log line or an error shows the password:\n%s", out)
	}
	if !strings.Contains(in.log.String(), "postgres://xxxxx@") {
		t.Fatalf("the log does not name the database by its redacted URL:\n%s", in.log.String())
	}
}
