package pgstate_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/pgstate"
)

func TestDefaultLockKeyIsDerivedFromDynopilot(t *testing.T) {
	sum := sha256.Sum256([]byte("dynopilot"))
	if want := int64(binary.BigEndian.Uint64(sum[:8])); pgstate.DefaultLockKey != want {
		t.Fatalf("DefaultLockKey = %d, documented as the first 8 bytes of SHA-256(\"dynopilot\") = %d", pgstate.DefaultLockKey, want)
	}
}

// Two instances with the default timing: exactly one leads at every moment sampled; the leader's ctx ending (SIGTERM)
// releases the lock at once and the other leads within Retry (2 s), never both.
func TestOneLeaderAndCleanHandOver(t *testing.T) {
	t.Parallel()
	url, _ := database(t)
	leader, other := leaderAndStandby(t, url, lockKey(), 5*time.Second)

	smp := sample(leader, other)
	time.Sleep(3 * time.Second) // longer than Confirm and Retry: the standby tries, the leader confirms
	samples, both, none := smp.end()
	if both > 0 || none > 0 || samples < 100 {
		t.Fatalf("%d samples: %d with both leading, %d with none; expected exactly one leader in each", samples, both, none)
	}
	if !slices.Equal(leader.reported(), []bool{true}) || len(other.reported()) != 0 {
		t.Fatalf("OnChange: leader %v, other %v; expected [true] and nothing", leader.reported(), other.reported())
	}

	smp = sample(leader, other)
	stopped := time.Now()
	leader.cancel()
	select {
	case <-leader.done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2 s of its ctx's end")
	}
	if took := time.Since(stopped); took > 2*time.Second {
		t.Fatalf("Run took %v to release and return", took)
	}
	for !other.store.Leading() {
		if time.Since(stopped) > 3*time.Second {
			t.Fatalf("the standby did not lead within 3 s of the leader's release")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tookOver := time.Since(stopped)
	_, both, _ = smp.end()
	if both > 0 {
		t.Fatalf("%d samples with both leading during the hand-over", both)
	}
	if !slices.Equal(leader.reported(), []bool{true, false}) || !slices.Equal(other.reported(), []bool{true}) {
		t.Fatalf("OnChange: old leader %v, new leader %v", leader.reported(), other.reported())
	}
	if !strings.Contains(leader.log.String(), "released the state database's lock") ||
		!strings.Contains(other.log.String(), "leading: this instance holds") {
		t.Fatalf("expected a log line for each change of leadership:\n%s\n%s", leader.log, other.log)
	}
	if strings.Contains(other.log.String(), "waiting before leading") {
		t.Fatalf("a clean hand-over must not wait:\n%s", other.log)
	}
	t.Logf("hand-over took %v", tookOver)
}

// The leader's lock connection is terminated from the server's side: its Confirm fails at once and it stops leading
// at once; the standby leads within 15 s (Retry, then 2×Confirm because the lock was not released), and at no
// sampled moment do both lead.
func TestDroppedConnection(t *testing.T) {
	t.Parallel()
	url, admin := database(t)
	key := lockKey()
	leader, other := leaderAndStandby(t, url, key, 5*time.Second)
	ctx := context.Background()
	if err := leader.store.Confirm(ctx); err != nil {
		t.Fatalf("Confirm while leading: %v", err)
	}
	if err := other.store.Confirm(ctx); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("Confirm on the standby: %v, want ErrNotLeader", err)
	}

	smp := sample(leader, other)
	killed := time.Now()
	terminate(t, admin, lockHolder(t, admin, key))
	start := time.Now()
	err := leader.store.Confirm(ctx)
	if err == nil {
		t.Fatal("Confirm succeeded after the lock's connection was terminated")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Confirm took %v to fail", took)
	}
	if leader.store.Leading() {
		t.Fatal("Leading still true right after a failed Confirm")
	}
	if err := leader.store.Save(ctx, "policy/x/web", []byte("x")); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("Save after losing the lock: %v, want ErrNotLeader", err)
	}
	for !other.store.Leading() {
		if time.Since(killed) > 15*time.Second {
			t.Fatal("the standby did not lead within 15 s of the leader's connection being dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the standby led %v after the connection was dropped", time.Since(killed))
	_, both, _ := smp.end()
	if both > 0 {
		t.Fatalf("%d samples with both leading", both)
	}
	time.Sleep(100 * time.Millisecond) // Run's goroutine reports right after Confirm's failure wakes it
	if got := leader.reported(); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("OnChange of the old leader: %v, want [true false]", got)
	}
	if !strings.Contains(leader.log.String(), "stopped leading") {
		t.Fatalf("no log line for the loss of leadership:\n%s", leader.log)
	}
	// The old leader does not grab the lock back: the new one keeps it.
	time.Sleep(5 * time.Second)
	if !other.store.Leading() || leader.store.Leading() {
		t.Fatalf("after 5 s: old leader %v, new leader %v", leader.store.Leading(), other.store.Leading())
	}
}

// Without anyone calling Confirm, a standby that takes a lock its holder did not release waits 2×the holder's
// Confirm before leading, by which time the old leader's Leading has expired: never two leaders, even for the
// seconds before the old one's background confirmation notices.
func TestGraceAfterUncleanLoss(t *testing.T) {
	t.Parallel()
	url, admin := database(t)
	key := lockKey()
	const confirm, retry = 400 * time.Millisecond, 50 * time.Millisecond
	a := start(t, "a", url, key, confirm, retry)
	waitLeader(t, 5*time.Second, a)
	b := start(t, "b", url, key, confirm, retry)
	time.Sleep(200 * time.Millisecond)

	smp := sample(a, b)
	killed := time.Now()
	terminate(t, admin, lockHolder(t, admin, key))
	for !b.store.Leading() {
		if time.Since(killed) > 10*time.Second {
			t.Fatal("the standby did not lead")
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(killed)
	_, both, _ := smp.end()
	if both > 0 {
		t.Fatalf("%d samples with both leading", both)
	}
	if took < 2*confirm {
		t.Fatalf("the standby led %v after an unclean loss: sooner than 2×Confirm (%v)", took, 2*confirm)
	}
	if !strings.Contains(b.log.String(), "waiting before leading") {
		t.Fatalf("no log line for the wait:\n%s", b.log)
	}
}

func TestConfirmWithoutLeading(t *testing.T) {
	url, _ := database(t)
	a := open(t, "a", url, lockKey(), 0, 0)
	if err := a.store.Confirm(context.Background()); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("Confirm before Run: %v, want ErrNotLeader", err)
	}
	if a.store.Leading() {
		t.Fatal("Leading before Run")
	}
}

// Close while Run campaigns: Run returns and the lock is free.
func TestCloseReleases(t *testing.T) {
	url, admin := database(t)
	key := lockKey()
	a := open(t, "a", url, key, 0, 0).run()
	waitLeader(t, 5*time.Second, a)
	closed := time.Now()
	a.store.Close()
	select {
	case <-a.done:
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if took := time.Since(closed); took > 2*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if h := lockHolder(t, admin, key); h != 0 {
		t.Fatalf("lock still held by pid %d after Close", h)
	}
	a.cancel()
}
