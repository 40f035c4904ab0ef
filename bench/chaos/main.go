// Command chaos runs two dynopilot instances on one state database (DYNOPILOT_STATE_URL) against a fakeheroku, with
// a load that changes every few seconds, and for -duration kills the leader (kill -9, restarted a few seconds later)
// or restarts PostgreSQL, -events times at random moments. It then counts the PATCHes that were wrong:
//
//   - unclaimed: a PATCH that no instance logged as its own scale event;
//   - two leaders: a moment when both instances said they led (their roles are sampled every 200 ms);
//   - inside a window: a scale-down to q when the load asked for more than q during the DOWN_STABILIZATION before it.
//
// The goal is 0 of each. It restarts PostgreSQL with pg_ctlcluster (run it as root, on a machine of its own).
//
//	go run ./bench/chaos [-duration 10m] [-events 10] [-db postgres://postgres@127.0.0.1:5432/test?sslmode=disable]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dynopilot/dynopilot/internal/program"
)

const (
	token  = "chaos-token"
	window = 30 * time.Second // the policy's DOWN_STABILIZATION
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long to run")
	events := flag.Int("events", 10, "leader kills and database restarts, at random moments")
	db := flag.String("db", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "the PostgreSQL for the state (a fresh schema is made in it)")
	flag.Parse()
	if err := run(*duration, *events, *db); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// load is the reading the instances scale on, and its history, to judge every scale-down afterwards.
type load struct {
	mu      sync.Mutex
	value   float64
	history []change
}

type change struct {
	at    time.Time
	value float64
}

func (l *load) set(v float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.value = v
	l.history = append(l.history, change{time.Now(), v})
}

// most is the highest load in force at any moment of [from, to].
func (l *load) most(from, to time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := 0.0
	for i, c := range l.history {
		end := to
		if i+1 < len(l.history) {
			end = l.history[i+1].at
		}
		if c.at.Before(to) && end.After(from) {
			m = math.Max(m, c.value)
		}
	}
	return m
}

func run(duration time.Duration, events int, db string) error {
	dir, err := os.MkdirTemp("", "chaos")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := program.Build(dir, "dynopilot", "fakeheroku")
	if err != nil {
		return err
	}
	stateURL, dropSchema, err := freshSchema(db)
	if err != nil {
		return err
	}
	defer dropSchema()

	fake, err := program.Start(bins["fakeheroku"], []string{"-listen", "127.0.0.1:0", "-token", token, "-app", "shop:worker=4:Standard-1X"}, nil)
	if err != nil {
		return err
	}
	defer fake.Stop()
	l := &load{}
	l.set(4)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		l.mu.Lock()
		v := l.value
		l.mu.Unlock()
		fmt.Fprintf(w, `[{"name":"worker","value":%g}]`, v)
	}))
	defer src.Close()
	env := []string{"HEROKU_API_KEY=" + token, "HEROKU_API_URL=" + fake.URL, "DYNOPILOT_LISTEN=127.0.0.1:0", "LOG_FORMAT=text",
		"HOME=/nonexistent", "DYNOPILOT_STATE_URL=" + stateURL, "POLICY_0_APP=shop", "POLICY_0_PROCESS=worker",
		"POLICY_0_SOURCE=hirefire", "POLICY_0_SOURCE_URL=" + src.URL + "/hirefire/t/info", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1",
		"POLICY_0_MAX=12", "POLICY_0_INTERVAL=1s", "POLICY_0_UP_COOLDOWN=0s", "POLICY_0_DOWN_COOLDOWN=0s",
		"POLICY_0_DOWN_STABILIZATION=" + window.String(), "DYNOPILOT_FORMATION_REFRESH=5s"}

	var mu sync.Mutex // guards inst and logs
	inst := [2]*program.Process{}
	var logs [2]strings.Builder // every instance's output, across its restarts
	startInst := func(i int) error {
		p, err := program.Start(bins["dynopilot"], []string{"run"}, append(env, fmt.Sprintf("DYNO=worker.%d", i+1)))
		if err != nil {
			return err
		}
		mu.Lock()
		inst[i] = p
		mu.Unlock()
		return nil
	}
	keep := func(i int) { // what the instance printed, before it is replaced
		mu.Lock()
		defer mu.Unlock()
		if inst[i] != nil {
			logs[i].WriteString(inst[i].Output())
		}
	}
	for i := range inst {
		if err := startInst(i); err != nil {
			return err
		}
	}
	defer func() {
		for i := range inst {
			inst[i].Stop()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()

	// Roles, sampled every 200 ms: moments with two leaders.
	var twoLeaders, samples int
	var roleMu sync.Mutex
	go func() {
		for ctx.Err() == nil {
			var leaders int
			for i := range inst {
				mu.Lock()
				p := inst[i]
				mu.Unlock()
				if role(p) == "leader" {
					leaders++
				}
			}
			roleMu.Lock()
			samples++
			if leaders > 1 {
				twoLeaders++
			}
			roleMu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	// The load: a new value every 4 to 12 s, from 1 to 12.
	go func() {
		for ctx.Err() == nil {
			time.Sleep(time.Duration(4+mrand.IntN(9)) * time.Second)
			l.set(float64(1 + mrand.IntN(12)))
		}
	}()
	// The chaos: one event at a random moment of each of events equal slots of the duration.
	slot := duration / time.Duration(events+1)
	begin := time.Now()
	var kills, restarts int
	for e := range events {
		at := begin.Add(time.Duration(e)*slot + time.Duration(mrand.Int64N(int64(slot))))
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(at)):
		}
		if ctx.Err() != nil {
			break
		}
		if mrand.IntN(2) == 0 {
			i := leaderIndex(inst[:], &mu)
			if i < 0 {
				i = mrand.IntN(2)
			}
			fmt.Printf("%s kill -9 instance %d (the leader)\n", time.Now().Format(time.TimeOnly), i+1)
			mu.Lock()
			p := inst[i]
			mu.Unlock()
			p.Kill()
			keep(i)
			time.Sleep(3 * time.Second)
			if err := startInst(i); err != nil {
				return err
			}
			kills++
		} else {
			fmt.Printf("%s restart PostgreSQL\n", time.Now().Format(time.TimeOnly))
			if out, err := restartPostgres(); err != nil {
				return fmt.Errorf("restarting PostgreSQL: %v\n%s", err, out)
			}
			restarts++
		}
	}
	<-ctx.Done()
	for i := range inst {
		keep(i)
	}

	// Judge every PATCH the fake received.
	patches, err := patchesOf(fake.URL)
	if err != nil {
		return err
	}
	var insideWindow int
	prev := 4
	for _, p := range patches {
		if p.quantity < prev && l.most(p.at.Add(-window+2*time.Second), p.at) > float64(p.quantity) {
			insideWindow++
			fmt.Printf("  wrong: %s scale-down %d -> %d while the load asked for %g within the window\n", p.at.Format(time.TimeOnly), prev, p.quantity, l.most(p.at.Add(-window+2*time.Second), p.at))
		}
		prev = p.quantity
	}
	scaled := [2]int{}
	for i := range logs {
		scaled[i] = strings.Count(logs[i].String(), "msg=scaled")
	}
	unclaimed := len(patches) - scaled[0] - scaled[1] // a PATCH no instance logged as its own scale event
	roleMu.Lock()
	defer roleMu.Unlock()
	fmt.Printf("chaos for %v: %d leader kills, %d PostgreSQL restarts, %d load changes, %d PATCHes (%d by instance 1, %d by instance 2)\n",
		duration, kills, restarts, len(l.history), len(patches), scaled[0], scaled[1])
	fmt.Printf("wrong PATCHes: %d inside a down-stabilization window, %d that no instance logged as its own; %d of %d role samples with two leaders\n",
		insideWindow, max(unclaimed, 0), twoLeaders, samples)
	return nil
}

type patch struct {
	at       time.Time
	quantity int
}

var quantityRE = regexp.MustCompile(`"quantity":\s*(\d+)`)

// patchesOf reads the fake's request log: every successful PATCH, with the quantity it set.
func patchesOf(fakeURL string) ([]patch, error) {
	resp, err := http.Get(fakeURL + "/_fake/requests")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var reqs []struct {
		Time   time.Time
		Method string
		Status int
		Body   string
	}
	if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil {
		return nil, err
	}
	var out []patch
	for _, r := range reqs {
		if r.Method != "PATCH" || r.Status/100 != 2 {
			continue
		}
		if m := quantityRE.FindStringSubmatch(r.Body); m != nil {
			q, _ := strconv.Atoi(m[1])
			out = append(out, patch{r.Time, q})
		}
	}
	return out, nil
}

// role asks an instance whether it leads; "" when it does not answer.
func role(p *program.Process) string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(p.URL + "/api/policies")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct{ Role string }
	json.NewDecoder(resp.Body).Decode(&body)
	return body.Role
}

func leaderIndex(inst []*program.Process, mu *sync.Mutex) int {
	for i := range inst {
		mu.Lock()
		p := inst[i]
		mu.Unlock()
		if role(p) == "leader" {
			return i
		}
	}
	return -1
}

// freshSchema makes a schema of its own in db and returns db with it as the search_path.
func freshSchema(db string) (string, func(), error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "chaos_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(db)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		if c, err := pgx.Connect(ctx, db); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
	return u.String(), drop, nil
}

// restartPostgres restarts the local cluster (Debian's pg_ctlcluster) and waits until it answers.
func restartPostgres() ([]byte, error) {
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		return nil, fmt.Errorf("no cluster under /etc/postgresql: %v", err)
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", "restart").CombinedOutput()
	if err != nil {
		return out, err
	}
	for range 60 {
		if exec.Command("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q").Run() == nil {
			return out, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return out, fmt.Errorf("PostgreSQL did not answer within 30 s of its restart")
}
