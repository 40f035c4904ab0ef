package pgstate_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/pgstate"
)

// hour is a Confirm long enough that the instance's background confirmation never runs during a test: it leads
// until something else (Save's fence, Confirm) tells it otherwise, as an instance that has not noticed yet would.
const hour = time.Hour

func mustLoad(t *testing.T, in *instance, key string) []byte {
	t.Helper()
	v, ok, err := in.store.Load(context.Background(), key)
	if err != nil || !ok {
		t.Fatalf("%s: Load(%q) = %q, %v, %v", in.name, key, v, ok, err)
	}
	return v
}

// The leader saves; every instance loads it; after the leader lost its lock without knowing, a new leader's state
// is not overwritten (the database fences the old leader's write) and a restarted instance loads it.
func TestSaveFencedAfterTakeOver(t *testing.T) {
	t.Parallel()
	url, admin := database(t)
	key := lockKey()
	ctx := context.Background()
	old := start(t, "old", url, key, hour, 50*time.Millisecond)
	waitLeader(t, 5*time.Second, old)
	next := start(t, "next", url, key, 0, 50*time.Millisecond)

	if err := old.store.Save(ctx, "policy/shop/web", []byte("old-1")); err != nil {
		t.Fatalf("leader's Save: %v", err)
	}
	if got := mustLoad(t, next, "policy/shop/web"); string(got) != "old-1" {
		t.Fatalf("standby loads %q, want what the leader saved", got)
	}
	if err := next.store.Save(ctx, "policy/shop/web", []byte("standby")); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("standby's Save: %v, want ErrNotLeader", err)
	}

	// The old leader's interval as recorded is shortened, so that the new one waits 100 ms rather than 2 h.
	sqlExec(t, admin, "UPDATE "+schemaOf(url)+".dynopilot_leader SET confirm_ms = 50 WHERE lock_key = $1", key)
	terminate(t, admin, lockHolder(t, admin, key))
	waitLeader(t, 10*time.Second, next)
	if err := next.store.Save(ctx, "policy/shop/web", []byte("next-1")); err != nil {
		t.Fatalf("new leader's Save: %v", err)
	}
	if !old.store.Leading() {
		t.Fatal("the old leader noticed on its own: the test needs one that has not")
	}
	err := old.store.Save(ctx, "policy/shop/web", []byte("old-2"))
	if !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("the old leader's Save after losing its lock: %v, want ErrNotLeader", err)
	}
	if old.store.Leading() {
		t.Fatal("a fenced-off Save must stop the instance leading")
	}
	if got := mustLoad(t, next, "policy/shop/web"); string(got) != "next-1" {
		t.Fatalf("after the old leader's fenced-off write: %q, want the new leader's value", got)
	}
	time.Sleep(100 * time.Millisecond)
	if got := old.reported(); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("OnChange of the old leader: %v", got)
	}

	restarted := open(t, "restarted", url, key, 0, 0)
	if got := mustLoad(t, restarted, "policy/shop/web"); string(got) != "next-1" {
		t.Fatalf("a restarted instance loads %q", got)
	}
	if _, ok, err := restarted.store.Load(ctx, "policy/shop/worker"); ok || err != nil {
		t.Fatalf("Load of a key never saved: %v, %v", ok, err)
	}
}

// The lock's session died and nobody took the lock yet (the term is unchanged): the leader that has not noticed
// cannot write, because pg_locks no longer shows its session holding the lock.
func TestSaveFencedWithoutLock(t *testing.T) {
	t.Parallel()
	url, admin := database(t)
	key := lockKey()
	ctx := context.Background()
	l := start(t, "leader", url, key, hour, 0)
	waitLeader(t, 5*time.Second, l)
	if err := l.store.Save(ctx, "policy/a/web", []byte("1")); err != nil {
		t.Fatal(err)
	}
	terminate(t, admin, lockHolder(t, admin, key))
	if err := l.store.Save(ctx, "policy/a/web", []byte("2")); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("Save after the lock's session ended: %v, want ErrNotLeader", err)
	}
	if got := mustLoad(t, l, "policy/a/web"); string(got) != "1" {
		t.Fatalf("value %q after a fenced-off Save", got)
	}
}

// Likewise Prune: a leader whose lock's session died cannot delete anything.
func TestPruneFencedWithoutLock(t *testing.T) {
	t.Parallel()
	url, admin := database(t)
	key := lockKey()
	ctx := context.Background()
	l := start(t, "leader", url, key, hour, 0)
	waitLeader(t, 5*time.Second, l)
	if err := l.store.Save(ctx, "policy/a/web", []byte("1")); err != nil {
		t.Fatal(err)
	}
	terminate(t, admin, lockHolder(t, admin, key))
	if err := l.store.Prune(ctx, nil); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("Prune after the lock's session ended: %v, want ErrNotLeader", err)
	}
	if l.store.Leading() {
		t.Fatal("a fenced-off Prune must stop the instance leading")
	}
	mustLoad(t, l, "policy/a/web")
}

// Another term began (its increment committed) while the lock session still lives: the old term cannot write.
// And a Save in flight when the increment is pending waits for it and then writes nothing (FOR SHARE).
func TestSaveFencedByTerm(t *testing.T) {
	t.Parallel()
	url, admin := database(t)
	key := lockKey()
	ctx := context.Background()
	table := schemaOf(url) + ".dynopilot_leader"

	l := start(t, "leader", url, key, hour, 0)
	waitLeader(t, 5*time.Second, l)
	if err := l.store.Save(ctx, "policy/a/web", []byte("1")); err != nil {
		t.Fatal(err)
	}
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "UPDATE "+table+" SET term = term + 1 WHERE lock_key = $1", key); err != nil {
		t.Fatal(err)
	}
	saved := make(chan error, 1)
	go func() { saved <- l.store.Save(ctx, "policy/a/web", []byte("2")) }()
	select {
	case err := <-saved:
		t.Fatalf("Save did not wait for a new term being taken: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-saved; !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("Save in flight while a new term began: %v, want ErrNotLeader", err)
	}
	if got := mustLoad(t, l, "policy/a/web"); string(got) != "1" {
		t.Fatalf("value %q after a fenced-off Save", got)
	}
}

func TestValueBounds(t *testing.T) {
	url, _ := database(t)
	ctx := context.Background()
	l := start(t, "leader", url, lockKey(), 0, 0)
	waitLeader(t, 5*time.Second, l)

	big := bytes.Repeat([]byte{0xfe}, pgstate.MaxValueSize)
	if err := l.store.Save(ctx, "policy/a/web", big); err != nil {
		t.Fatalf("Save of 64 KiB: %v", err)
	}
	if got := mustLoad(t, l, "policy/a/web"); !bytes.Equal(got, big) {
		t.Fatalf("Load returned %d bytes, saved %d", len(got), len(big))
	}
	err := l.store.Save(ctx, "policy/a/web", append(big, 0))
	if err == nil || !strings.Contains(err.Error(), "64 KiB") || !strings.Contains(err.Error(), "65537") {
		t.Fatalf("Save of 64 KiB + 1: %v, want a clear refusal", err)
	}
	if err := l.store.Save(ctx, "policy/b/web", nil); err != nil {
		t.Fatalf("Save of an empty value: %v", err)
	}
	if v, ok, err := l.store.Load(ctx, "policy/b/web"); !ok || len(v) != 0 || err != nil {
		t.Fatalf("Load of an empty value: %q, %v, %v", v, ok, err)
	}
	for _, k := range []string{"", strings.Repeat("k", pgstate.MaxKeySize+1), "bad\x00key", "\xff"} {
		if err := l.store.Save(ctx, k, []byte("x")); err == nil || errors.Is(err, pgstate.ErrNotLeader) {
			t.Errorf("Save under key %q: %v, want a refusal", k, err)
		}
	}
	if err := l.store.Save(ctx, strings.Repeat("k", pgstate.MaxKeySize), []byte("x")); err != nil {
		t.Errorf("Save under a key of %d bytes: %v", pgstate.MaxKeySize, err)
	}
}

// Prune keeps the values of the policies configured and deletes the others; only the leader prunes.
func TestPrune(t *testing.T) {
	url, _ := database(t)
	ctx := context.Background()
	key := lockKey()
	l := start(t, "leader", url, key, 0, 0)
	waitLeader(t, 5*time.Second, l)
	s := start(t, "standby", url, key, 0, 0)
	for _, k := range []string{"policy/a/web", "policy/a/worker", "policy/b/web"} {
		if err := l.store.Save(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.store.Prune(ctx, nil); !errors.Is(err, pgstate.ErrNotLeader) {
		t.Fatalf("a standby's Prune: %v, want ErrNotLeader", err)
	}
	if err := l.store.Prune(ctx, []string{"policy/a/web", "policy/c/web"}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"policy/a/web": true, "policy/a/worker": false, "policy/b/web": false} {
		if _, ok, err := l.store.Load(ctx, k); ok != want || err != nil {
			t.Errorf("after Prune, %s present = %v (%v), want %v", k, ok, err, want)
		}
	}
}

// schemaOf returns the search_path a test URL names.
func schemaOf(url string) string {
	_, after, _ := strings.Cut(url, "search_path=")
	name, _, _ := strings.Cut(after, "&")
	return name
}
