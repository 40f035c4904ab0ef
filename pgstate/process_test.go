package pgstate_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/pgstate"
)

// The helper process: a dynopilot instance of its own, with the default timing, that prints "leading" when it
// leads and runs until it is killed. The tests kill it as Heroku or a failing host would.
const (
	helperURL = "PGSTATE_TEST_HELPER_URL"
	helperKey = "PGSTATE_TEST_HELPER_KEY"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(helperURL); url != "" {
		os.Exit(helper(url))
	}
	os.Exit(m.Run())
}

func helper(url string) int {
	key, err := strconv.ParseInt(os.Getenv(helperKey), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := pgstate.Open(context.Background(), pgstate.Options{URL: url, LockKey: key, OnChange: func(leading bool) {
		if leading {
			fmt.Println("leading")
		}
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s.Run(context.Background())
	return 0
}

// startHelper starts the helper process on url and waits until it leads.
func startHelper(t *testing.T, url string, key int64) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperURL+"="+url, helperKey+"="+strconv.FormatInt(key, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	led := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "leading" {
				led <- true
				return
			}
		}
		led <- false
	}()
	select {
	case ok := <-led:
		if !ok {
			t.Fatal("the helper process ended without leading")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the helper process did not lead within 15 s")
	}
	return cmd
}

// takeOver waits until in leads, at most 15 s after since, and returns how long it took.
func takeOver(t *testing.T, in *instance, since time.Time) time.Duration {
	t.Helper()
	for !in.store.Leading() {
		if time.Since(since) > 15*time.Second {
			t.Fatalf("the standby did not lead within 15 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(since)
}

// kill -9 of the leading process: its socket closes, the server ends its session and the lock goes with it; the
// standby leads within 15 s (Retry, then 2×Confirm since nobody released the lock: about 6 s).
func TestLeaderKilled(t *testing.T) {
	t.Parallel()
	url, _ := database(t)
	key := lockKey()
	cmd := startHelper(t, url, key)
	standby := start(t, "standby", url, key, 0, 0)
	time.Sleep(500 * time.Millisecond)
	if standby.store.Leading() {
		t.Fatal("the standby leads while the helper does")
	}
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("the standby led %v after kill -9", takeOver(t, standby, killed))
}

// A leader that falls silent without closing its socket (SIGSTOP here; a network split or a frozen host alike):
// the server ends its session after idle_session_timeout (3×Confirm, 6 s), and the standby leads within 15 s.
func TestLeaderSilent(t *testing.T) {
	t.Parallel()
	url, admin := database(t)
	var version int
	if err := admin.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 140000 {
		t.Skipf("PostgreSQL %d has no idle_session_timeout: a silent leader is detected by TCP keepalives", version)
	}
	key := lockKey()
	cmd := startHelper(t, url, key)
	standby := start(t, "standby", url, key, 0, 0)
	time.Sleep(500 * time.Millisecond)
	stopped := time.Now()
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := takeOver(t, standby, stopped)
	if took < 6*time.Second {
		t.Fatalf("the standby led %v after the leader froze: before the leader's session could have timed out", took)
	}
	t.Logf("the standby led %v after the leader froze", took)
}
