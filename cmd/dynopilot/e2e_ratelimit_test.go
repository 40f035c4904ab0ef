package main_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rlRequest is one entry of fakeheroku's request log, with the time it arrived.
type rlRequest struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
}

func rlRequests(t *testing.T, h *heroku) []rlRequest {
	t.Helper()
	var rs []rlRequest
	getJSON(t, h.url+"/_fake/requests", &rs)
	return rs
}

func rlPost(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: status %d", url, body, resp.StatusCode)
	}
}

var rlRemainingRE = regexp.MustCompile(`(?m)^dynopilot_heroku_ratelimit_remaining ([0-9.e+-]+)$`)

func rlRemaining(t *testing.T, d *daemon) float64 {
	t.Helper()
	m := rlRemainingRE.FindStringSubmatch(d.metrics(t))
	if m == nil {
		t.Fatalf("/metrics has no dynopilot_heroku_ratelimit_remaining")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// One 429 while the account still has almost all of its 4500 tokens must not stall the daemon: the client re-reads
// the pool from GET /account/rate-limits instead of assuming it empty and waiting ~6 minutes for the reserve of 450
// to refill at 75 a minute.
func TestOne429DoesNotStallScaling(t *testing.T) {
	h := startHeroku(t) // Heroku's default pool: 4500, 75 a minute
	r := newReading(t, 1)
	d := startDaemon(t, baseEnv(h, r)) // target 1, reading 1: nothing to do; the formation is cached for 1m
	waitFor(t, "a first decision", 20*time.Second, func() bool { return d.status(t, "shop/web").Evaluated })

	rlPost(t, h.url+"/_fake/faults", `{"status":429,"count":1}`)
	r.set(3) // three times the target: the daemon PATCHes, and that request meets the 429
	waitFor(t, "the 429", 20*time.Second, func() bool {
		for _, req := range rlRequests(t, h) {
			if req.Status == http.StatusTooManyRequests {
				return true
			}
		}
		return false
	})
	waitFor(t, "the PATCH after the 429", 60*time.Second, func() bool { return h.quantity(t, "web") == 6 })

	var at429, patched time.Time
	for _, req := range rlRequests(t, h) {
		switch {
		case req.Status == http.StatusTooManyRequests && at429.IsZero():
			at429 = req.Time
		case req.Method == "PATCH" && req.Status == http.StatusOK && !at429.IsZero() && patched.IsZero():
			patched = req.Time
		}
	}
	t.Logf("the PATCH landed %v after the 429", patched.Sub(at429).Round(time.Millisecond))

	// The gauge is the limiter's belief, re-synced from the API: the account has nearly all of its tokens.
	if got := rlRemaining(t, d); got < 4000 {
		t.Errorf("dynopilot_heroku_ratelimit_remaining %v after the re-sync, want the ~4490 the account has (reserve 450)", got)
	}
	var resynced bool
	for _, req := range rlRequests(t, h) {
		resynced = resynced || (req.Path == "/account/rate-limits" && !req.Time.Before(at429))
	}
	if !resynced {
		t.Errorf("no GET /account/rate-limits after the 429")
	}
	d.noToken(t)
}
