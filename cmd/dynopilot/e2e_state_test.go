package main_test

// End-to-end tests of DYNOPILOT_STATE_URL with two real dynopilot processes and the real PostgreSQL: one leader,
// each change PATCHed once, takeover after kill -9 and after SIGTERM, a down-stabilization window that began
// before a failover honoured after it, and a leader whose database connection is cut stopping at once.
//
// The leader lock is one advisory lock for the whole database, so these tests run one after another (none is
// parallel), each with its own schema for the state.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dynopilot/dynopilot/internal/servicetest"
)

// stateURL is the test database with a fresh schema of its own as the state's search_path.
func stateURL(t *testing.T) string {
	t.Helper()
	base := servicetest.Lookup(t, servicetest.DatabaseURL)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "e2e_state_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// pair is two dynopilot processes on one state database, as Heroku runs two worker dynos.
type pair struct {
	h   *heroku
	r   *reading
	env []string
	d   [2]*daemon
}

func startPair(t *testing.T, extra ...string) *pair {
	t.Helper()
	p := &pair{h: startHerokuApps(t, "shop:web=2:Standard-1X,worker=4:Standard-1X"), r: newReading(t, 4)}
	p.env = baseEnv(p.h, p.r, append([]string{"DYNOPILOT_STATE_URL=" + stateURL(t), "POLICY_0_PROCESS=worker", "POLICY_0_MODE=ratio",
		"POLICY_0_PER_DYNO=1", "POLICY_0_MAX=10"}, extra...)...)
	for i := range p.d {
		p.start(t, i)
	}
	return p
}

func (p *pair) start(t *testing.T, i int) {
	t.Helper()
	p.d[i] = startDaemon(t, append(p.env, fmt.Sprintf("DYNO=worker.%d", i+1)))
}

// roles returns each running instance's role ("" for one that does not answer).
func (p *pair) roles(t *testing.T) [2]string {
	t.Helper()
	var out [2]string
	for i, d := range p.d {
		if d == nil {
			continue
		}
		select {
		case <-d.p.done:
			continue
		default:
		}
		var body struct{ Role string }
		getJSON(t, d.url+"/api/policies", &body)
		out[i] = body.Role
	}
	return out
}

// leader waits until exactly one instance leads and the other stands by, and returns the leader's index.
func (p *pair) leader(t *testing.T, within time.Duration) int {
	t.Helper()
	who := -1
	waitFor(t, "one leader and one standby", within, func() bool {
		r := p.roles(t)
		switch {
		case r[0] == "leader" && r[1] != "leader":
			who = 0
		case r[1] == "leader" && r[0] != "leader":
			who = 1
		default:
			return false
		}
		return true
	})
	return who
}

func (p *pair) patches(t *testing.T) int { t.Helper(); all, _ := p.h.patchCount(t, 0); return all }

func TestTwoInstancesOneLeaderEachChangePatchedOnce(t *testing.T) {
	p := startPair(t)
	l := p.leader(t, 20*time.Second)
	for i, q := range []float64{6, 8, 5, 9, 7, 6} {
		p.r.set(q)
		waitFor(t, fmt.Sprintf("the change to %v", q), 20*time.Second, func() bool { return p.h.quantity(t, "worker") == int(q) })
		if n := p.patches(t); n != i+1 {
			t.Fatalf("%d PATCHes for %d changes: two instances acted", n, i+1)
		}
		if r := p.roles(t); r[l] != "leader" || r[1-l] != "standby" {
			t.Fatalf("roles %v", r)
		}
	}
	if !strings.Contains(p.d[l].metrics(t), "dynopilot_leader 1") || !strings.Contains(p.d[1-l].metrics(t), "dynopilot_leader 0") {
		t.Errorf("dynopilot_leader is not 1 on the leader and 0 on the standby")
	}
	if strings.Contains(p.d[1-l].p.output(), "msg=scaled") {
		t.Errorf("the standby scaled")
	}
}

func TestKill9OfTheLeaderIsTakenOverWithin15Seconds(t *testing.T) {
	p := startPair(t)
	l := p.leader(t, 20*time.Second)
	p.d[l].p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.d[l].p.done
	killed := time.Now()
	waitFor(t, "the standby to lead", 15*time.Second, func() bool { return p.roles(t)[1-l] == "leader" })
	t.Logf("took over %v after kill -9", time.Since(killed).Round(100*time.Millisecond))
	p.r.set(7)
	waitFor(t, "the new leader to scale", 20*time.Second, func() bool { return p.h.quantity(t, "worker") == 7 })
	if n := p.patches(t); n != 1 {
		t.Errorf("%d PATCHes for one change", n)
	}
}

func TestSIGTERMHandsOverWithinSeconds(t *testing.T) {
	p := startPair(t)
	l := p.leader(t, 20*time.Second)
	p.d[l].p.cmd.Process.Signal(syscall.SIGTERM)
	sent := time.Now()
	waitFor(t, "the standby to lead", 10*time.Second, func() bool { return p.roles(t)[1-l] == "leader" })
	t.Logf("handed over %v after SIGTERM", time.Since(sent).Round(100*time.Millisecond))
	select {
	case <-p.d[l].p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the old leader still runs 15 s after SIGTERM")
	}
}

func TestADownStabilizationWindowIsHonouredAcrossAFailover(t *testing.T) {
	// worker at 8 for load 8; load drops to 1 at T; the leader dies at T+8 s; the standby takes over. With a window
	// of 25 s the new leader must not scale down before T+25 s, and must by T+25 s and a few ticks: it decides as
	// the old leader would have, not as a process that starts a window of its own at takeover.
	const window = 25 * time.Second
	p := startPair(t, "POLICY_0_DOWN_COOLDOWN=0s", "POLICY_0_DOWN_STABILIZATION="+window.String())
	l := p.leader(t, 20*time.Second)
	p.r.set(8)
	waitFor(t, "worker at 8", 20*time.Second, func() bool { return p.h.quantity(t, "worker") == 8 })
	time.Sleep(3 * time.Second) // a few recommendations of 8 in the leader's window
	p.r.set(1)
	T := time.Now()
	time.Sleep(8 * time.Second)
	p.d[l].p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.d[l].p.done
	waitFor(t, "the standby to lead", 15*time.Second, func() bool { return p.roles(t)[1-l] == "leader" })
	for time.Since(T) < window-2*time.Second {
		if q := p.h.quantity(t, "worker"); q != 8 {
			t.Fatalf("worker = %d %v after the load dropped, inside DOWN_STABILIZATION=%v", q, time.Since(T).Round(time.Second), window)
		}
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, "the scale-down when the old leader's window ends", window+10*time.Second-time.Since(T), func() bool { return p.h.quantity(t, "worker") == 1 })
	// The last reading of 8 may have been taken up to one interval (1 s) before T: its window ends that much sooner.
	if since := time.Since(T); since < window-time.Second {
		t.Errorf("scaled down %v after the load dropped, inside the window", since.Round(100*time.Millisecond))
	}
}

func TestALeaderCutOffFromTheDatabaseStopsPatching(t *testing.T) {
	// Instance 0 reaches the database through a proxy that the test cuts, as a network split would, closing every
	// connection and refusing new ones; instance 1 reaches it directly.
	p := &pair{h: startHerokuApps(t, "shop:web=2:Standard-1X,worker=4:Standard-1X"), r: newReading(t, 4)}
	direct := stateURL(t)
	proxy := newTCPProxy(t, direct)
	p.env = baseEnv(p.h, p.r, "POLICY_0_PROCESS=worker", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1", "POLICY_0_MAX=10")
	p.d[0] = startDaemon(t, append(p.env, "DYNO=worker.1", "DYNOPILOT_STATE_URL="+proxy.url))
	waitFor(t, "instance 0 to lead", 20*time.Second, func() bool { return p.roles(t)[0] == "leader" })
	p.d[1] = startDaemon(t, append(p.env, "DYNO=worker.2", "DYNOPILOT_STATE_URL="+direct))
	if l := p.leader(t, 20*time.Second); l != 0 {
		t.Fatalf("instance %d leads", l)
	}
	before := len(p.d[0].p.output())
	proxy.cut()
	p.r.set(9) // a change that the cut-off leader would PATCH if it did not check its lock first
	waitFor(t, "instance 1 to lead and scale", 30*time.Second, func() bool { return p.h.quantity(t, "worker") == 9 })
	if n := p.patches(t); n != 1 {
		t.Errorf("%d PATCHes for one change", n)
	}
	after := p.d[0].p.output()[before:]
	if strings.Contains(after, "msg=scaled") {
		t.Errorf("the leader cut off from the database scaled:\n%s", after)
	}
	if r := p.roles(t); r[0] != "standby" || r[1] != "leader" {
		t.Errorf("roles after the cut %v, want standby and leader", r)
	}
}

// tcpProxy forwards connections to a PostgreSQL URL's host until cut, then refuses them.
type tcpProxy struct {
	url string
	ln  net.Listener
	mu  sync.Mutex
	cs  []net.Conn
	off bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	to := u.Host
	u.Host = ln.Addr().String()
	p.url = u.String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			p.mu.Lock()
			if err != nil || p.off {
				p.mu.Unlock()
				c.Close()
				if up != nil {
					up.Close()
				}
				continue
			}
			p.cs = append(p.cs, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

// cut closes every connection through the proxy and refuses new ones.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.off = true
	p.ln.Close()
	for _, c := range p.cs {
		c.Close()
	}
}

func TestCheckVerifiesTheStateDatabase(t *testing.T) {
	h := startHeroku(t)
	r := newReading(t, 1)
	build(t)
	cmd := exec.Command(bins.dynopilot, "check")
	cmd.Env = baseEnv(h, r, "DYNOPILOT_STATE_URL="+stateURL(t))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "state ok:") {
		t.Errorf("check with a reachable state database: %v\n%s", err, out)
	}
	cmd = exec.Command(bins.dynopilot, "check")
	cmd.Env = baseEnv(h, r, "DYNOPILOT_STATE_URL=postgres://dynopilot:St4teSecret@127.0.0.1:1/state?connect_timeout=2")
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "DYNOPILOT_STATE_URL") || strings.Contains(string(out), "St4teSecret") {
		t.Errorf("check with an unreachable state database: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

func TestTheStatusHistorySurvivesARestart(t *testing.T) {
	t.Parallel()
	h := startHerokuApps(t, "shop:web=2:Standard-1X,worker=4:Standard-1X")
	r := newReading(t, 6)
	env := baseEnv(h, r, "DYNOPILOT_STATE_URL="+stateURL(t), "POLICY_0_PROCESS=worker", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1", "POLICY_0_MAX=10")
	first := startDaemon(t, env)
	waitFor(t, "the scale to 6", 20*time.Second, func() bool { return h.quantity(t, "worker") == 6 })
	page := func(d *daemon) string {
		resp, err := http.Get(d.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor(t, "the scale event on the status page", 10*time.Second, func() bool { return strings.Contains(page(first), "4 → 6") })
	first.p.cmd.Process.Signal(syscall.SIGTERM) // a deploy: the history is saved as the process stops
	<-first.p.done
	second := startDaemon(t, env)
	waitFor(t, "the new process to lead", 20*time.Second, func() bool { return second.status(t, "shop/worker").Evaluated })
	if p := page(second); !strings.Contains(p, "4 → 6") || !strings.Contains(p, "<svg") {
		t.Errorf("after the restart the status page has lost the scale event 4 → 6:\n%s", p)
	}
}
