package pgstate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Check says where it connected, how, the schema's version, and who holds the lock, and never keeps it.
func TestCheck(t *testing.T) {
	url, admin := database(t)
	key := lockKey()
	ctx := context.Background()

	alone := open(t, "alone", url, key, 0, 0)
	report, err := alone.store.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PostgreSQL ", "direct (not pooled)", "schema version 1 (current)", "free, this instance can take it now"} {
		if !strings.Contains(report, want) {
			t.Errorf("Check with nobody leading does not say %q: %s", want, report)
		}
	}
	if h := lockHolder(t, admin, key); h != 0 {
		t.Fatalf("Check kept the lock (pid %d)", h)
	}

	t.Setenv("DYNO", "worker.2")
	leader := start(t, "leader", url, key, 0, 0)
	waitLeader(t, 5*time.Second, leader)
	pid := lockHolder(t, admin, key)
	report, err = alone.store.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`held by another instance, backend pid %d (application_name "dynopilot worker.2"): it leads`, pid)
	if !strings.Contains(report, want) || !strings.Contains(report, ", term 1 since ") {
		t.Errorf("Check on a standby: %s\nwant it to contain %s, term 1 since …", report, want)
	}
	report, err = leader.store.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, fmt.Sprintf("held by this instance's own lock connection, backend pid %d", pid)) {
		t.Errorf("Check on the leader: %s", report)
	}
	if h := lockHolder(t, admin, key); h != pid {
		t.Fatalf("after Check the lock is held by %d, want the leader's %d", h, pid)
	}
	if !leader.store.Leading() {
		t.Fatal("Check disturbed the leader")
	}
	t.Logf("Check: %s", report)
}
