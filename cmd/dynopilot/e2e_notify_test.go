package main_test

// End-to-end tests of issue 15's promises with the real binary: a signed Standard Webhooks message per scale event,
// a Slack message, one pinned-at-MAX notice over many ticks, scaling on time while every receiver hangs, and the
// status page's SVG holding the scale events that happened.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/notify"
)

// hookSecret is the webhook's signing secret: whsec_ and the base64 of 32 bytes.
var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("e2e-notify-signing-key-0123456789"[:32]))

// slackPath is the path of the Slack incoming webhook: its last segment is the credential.
const slackPath = "/services/T0E2E0001/B0E2E0002/xoxSlackE2eCredential77"

// delivery is one POST a receiver got.
type delivery struct {
	header http.Header
	body   []byte
	path   string
}

// receiver is a notification receiver: it records every POST and answers 200, or, hung, records it and never
// answers (until the test ends).
type receiver struct {
	mu       sync.Mutex
	got      []delivery
	hang     bool
	hits     int // requests that arrived, answered or not
	srv      *httptest.Server
	released chan struct{}
}

func newReceiver(t *testing.T, hang bool) *receiver {
	t.Helper()
	rc := &receiver{hang: hang, released: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		rc.mu.Lock()
		rc.hits++
		if err == nil && !rc.hang {
			rc.got = append(rc.got, delivery{header: req.Header.Clone(), body: body, path: req.URL.Path})
		}
		rc.mu.Unlock()
		if rc.hang {
			select {
			case <-rc.released:
			case <-req.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	// Cleanups run last first: release the hung handlers, then close the server (which waits for them).
	t.Cleanup(rc.srv.Close)
	t.Cleanup(func() { close(rc.released) })
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hits
}

// hookMessage is a webhook body as the issue defines it.
type hookMessage struct {
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

func decodeHook(t *testing.T, d delivery) hookMessage {
	t.Helper()
	var m hookMessage
	if err := json.Unmarshal(d.body, &m); err != nil {
		t.Fatalf("webhook body is not JSON: %v\n%s", err, d.body)
	}
	return m
}

// ofType returns the webhook deliveries whose type is typ.
func ofType(t *testing.T, ds []delivery, typ string) []delivery {
	t.Helper()
	var out []delivery
	for _, d := range ds {
		if decodeHook(t, d).Type == typ {
			out = append(out, d)
		}
	}
	return out
}

// standardSignature is the Standard Webhooks signature, written from the spec and not from package notify:
// v1, and the base64 of HMAC-SHA256 keyed with the base64-decoded part after whsec_, over id.timestamp.body.
func standardSignature(t *testing.T, secret, id, timestamp string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// checkSigned verifies a delivery both with notify.Verify and with standardSignature.
func checkSigned(t *testing.T, d delivery) {
	t.Helper()
	if err := notify.Verify(hookSecret, d.header, d.body, time.Now()); err != nil {
		t.Errorf("notify.Verify: %v\n%s", err, d.body)
	}
	id, ts, sigs := d.header.Get("webhook-id"), d.header.Get("webhook-timestamp"), d.header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		t.Fatalf("missing Standard Webhooks headers: %v", d.header)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(unix, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not the Unix time of sending", ts)
	}
	want := standardSignature(t, hookSecret, id, ts, d.body)
	if !strings.Contains(" "+sigs+" ", " "+want+" ") {
		t.Errorf("webhook-signature %q lacks the Standard Webhooks signature %q", sigs, want)
	}
}

// secrets are what must never appear in a message or in the daemon's output.
func secrets() []string {
	return []string{token, hookSecret, strings.TrimPrefix(hookSecret, "whsec_"), "xoxSlackE2eCredential77"}
}

func noSecrets(t *testing.T, where string, text []byte) {
	t.Helper()
	for _, s := range secrets() {
		if bytes.Contains(text, []byte(s)) {
			t.Errorf("%s holds the secret %q", where, s)
		}
	}
}

// decisions is how many decisions the daemon has taken for shop/web, from /metrics.
func (d *daemon) decisions(t *testing.T) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(d.metrics(t), "\n") {
		if strings.HasPrefix(l, "dynopilot_decisions_total{") && strings.Contains(l, `policy="shop/web"`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}

func notifyEnv(h *heroku, r *reading, extra ...string) []string {
	return baseEnv(h, r, append([]string{"POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1"}, extra...)...)
}

func TestNotifyWebhookSignedPerScaleEvent(t *testing.T) {
	t.Parallel()
	// The helper itself against the Standard Webhooks reference vector.
	if got := standardSignature(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
		[]byte(`{"test": 2432232314}`)); got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("standardSignature does not reproduce the test vector: %s", got)
	}
	h := startHeroku(t)
	r := newReading(t, 4) // ratio, one dyno per unit: 2 -> 4
	hook := newReceiver(t, false)
	started := time.Now()
	d := startDaemon(t, notifyEnv(h, r, "DYNOPILOT_WEBHOOK_URL="+hook.srv.URL+"/hooks", "DYNOPILOT_WEBHOOK_SECRET="+hookSecret))
	waitFor(t, "web scaled up to 4", 20*time.Second, func() bool { return h.quantity(t, "web") == 4 })
	t.Logf("scaled up %v after the start", time.Since(started).Round(100*time.Millisecond))
	r.set(3) // load falls: 4 -> 3
	waitFor(t, "web scaled down to 3", 20*time.Second, func() bool { return h.quantity(t, "web") == 3 })
	patches, ok := h.patchCount(t, 200)
	if patches != 2 || ok != patches {
		t.Fatalf("%d PATCHes, %d of them accepted: want the two scale events", patches, ok)
	}
	waitFor(t, "a scaled message per PATCH", 20*time.Second, func() bool { return len(hook.deliveries()) >= patches })
	time.Sleep(2 * time.Second) // two more ticks: no message for a decision that changes nothing

	all := hook.deliveries()
	scaled := ofType(t, all, "scaled")
	if len(scaled) != patches || len(all) != patches {
		for _, m := range all {
			t.Logf("got %s", m.body)
		}
		t.Fatalf("%d scaled messages (%d messages in all) for %d PATCHes", len(scaled), len(all), patches)
	}
	ids := map[string]bool{}
	for i, want := range [][2]float64{{2, 4}, {4, 3}} {
		dl := scaled[i]
		checkSigned(t, dl)
		if id := dl.header.Get("webhook-id"); ids[id] {
			t.Errorf("webhook-id %s sent twice for two events", id)
		} else {
			ids[id] = true
		}
		if dl.path != "/hooks" || !strings.HasPrefix(dl.header.Get("Content-Type"), "application/json") {
			t.Errorf("POST %s with Content-Type %q", dl.path, dl.header.Get("Content-Type"))
		}
		m := decodeHook(t, dl)
		if at, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil || at.Before(started) || at.After(time.Now()) {
			t.Errorf("timestamp %q is not when the event happened (%v)", m.Timestamp, err)
		}
		for _, key := range []string{"policy", "app", "process", "from", "to", "reason", "reading", "target", "explanation"} {
			if _, ok := m.Data[key]; !ok {
				t.Errorf("data lacks %q: %s", key, dl.body)
			}
		}
		if m.Data["policy"] != "shop/web" || m.Data["app"] != "shop" || m.Data["process"] != "web" ||
			m.Data["from"] != want[0] || m.Data["to"] != want[1] || m.Data["reason"] != "ratio" ||
			m.Data["reading"] != want[1] || m.Data["target"] != 1.0 {
			t.Errorf("message %d says %s, want shop/web from %g to %g for reading %g, target 1, reason ratio", i, dl.body, want[0], want[1], want[1])
		}
		if e, _ := m.Data["explanation"].(string); e == "" {
			t.Errorf("message %d has no explanation", i)
		}
		noSecrets(t, "a webhook body", dl.body)
		for k, v := range dl.header {
			noSecrets(t, "webhook header "+k, []byte(strings.Join(v, " ")))
		}
	}
	// A tampered body no longer verifies: the signature covers it.
	if err := notify.Verify(hookSecret, scaled[0].header, append(bytes.Clone(scaled[0].body), ' '), time.Now()); err == nil {
		t.Errorf("a changed body verifies")
	}
	noSecrets(t, "dynopilot's output", []byte(d.p.output()))
	d.noToken(t)
}

func TestNotifySlackMessage(t *testing.T) {
	t.Parallel()
	h := startHeroku(t)
	r := newReading(t, 4) // 2 -> 4
	slack := newReceiver(t, false)
	d := startDaemon(t, notifyEnv(h, r, "DYNOPILOT_SLACK_WEBHOOK_URL="+slack.srv.URL+slackPath, "DYNOPILOT_SLACK_EVENTS=scaled,scale_failed"))
	waitFor(t, "web scaled to 4", 20*time.Second, func() bool { return h.quantity(t, "web") == 4 })
	waitFor(t, "a Slack message", 20*time.Second, func() bool { return len(slack.deliveries()) >= 1 })
	time.Sleep(2 * time.Second) // more ticks holding at 4: no message per tick
	got := slack.deliveries()
	if patches, _ := h.patchCount(t, 0); len(got) != 1 || patches != 1 {
		t.Fatalf("%d Slack messages for %d PATCHes, want one for the one scale event", len(got), patches)
	}
	m := got[0]
	if m.path != slackPath || !strings.HasPrefix(m.header.Get("Content-Type"), "application/json") {
		t.Errorf("POST %s with Content-Type %q, want the incoming webhook's path and JSON", m.path, m.header.Get("Content-Type"))
	}
	var body map[string]any
	if err := json.Unmarshal(m.body, &body); err != nil {
		t.Fatalf("Slack body is not JSON: %v\n%s", err, m.body)
	}
	text, ok := body["text"].(string)
	if !ok || len(body) != 1 {
		t.Fatalf(`Slack body is not {"text": …}: %s`, m.body)
	}
	t.Logf("Slack text: %q", text)
	for _, want := range []string{"shop/web", "from 2 to 4"} {
		if !strings.Contains(text, want) {
			t.Errorf("Slack text lacks %q: %q", want, text)
		}
	}
	noSecrets(t, "the Slack message", m.body)
	noSecrets(t, "dynopilot's output", []byte(d.p.output()))
	d.noToken(t)
}

func TestNotifyPinnedAtMaxOncePerEpisode(t *testing.T) {
	t.Parallel()
	h := startHeroku(t)
	r := newReading(t, 20) // 20 dynos wanted, MAX 3
	hook := newReceiver(t, false)
	d := startDaemon(t, notifyEnv(h, r, "POLICY_0_MAX=3", "DYNOPILOT_WEBHOOK_URL="+hook.srv.URL, "DYNOPILOT_WEBHOOK_SECRET="+hookSecret))
	waitFor(t, "web at MAX 3", 20*time.Second, func() bool { return h.quantity(t, "web") == 3 })
	waitFor(t, "reason at_max", 10*time.Second, func() bool { return d.status(t, "shop/web").Reason == "at_max" })
	atMax := d.decisions(t)
	waitFor(t, "ten more ticks at MAX", 30*time.Second, func() bool { return d.decisions(t) >= atMax+10 })
	time.Sleep(time.Second) // the last tick's messages, if any, on their way
	all := hook.deliveries()
	pinned := ofType(t, all, "pinned_at_max")
	if len(pinned) != 1 {
		for _, m := range all {
			t.Logf("got %s", m.body)
		}
		t.Fatalf("%d pinned_at_max messages over %d decisions, the last ten or more at MAX: want 1", len(pinned), d.decisions(t))
	}
	if n := len(ofType(t, all, "pinned_at_max_ended")); n != 0 {
		t.Errorf("%d pinned_at_max_ended while still pinned", n)
	}
	checkSigned(t, pinned[0])
	m := decodeHook(t, pinned[0])
	if m.Data["policy"] != "shop/web" || m.Data["max"] != 3.0 || m.Data["wanted"] != 20.0 {
		t.Errorf("pinned_at_max says %s, want shop/web, max 3, wanted 20", pinned[0].body)
	}
	if s, _ := m.Data["summary"].(string); !strings.Contains(s, "MAX=3") {
		t.Errorf("summary %q does not name the MAX", s)
	}
	if patches, _ := h.patchCount(t, 0); len(ofType(t, all, "scaled")) != patches {
		t.Errorf("%d scaled messages for %d PATCHes", len(ofType(t, all, "scaled")), patches)
	}
}

func TestNotifyScalesOnTimeWhileEveryReceiverHangs(t *testing.T) {
	t.Parallel()
	h := startHeroku(t)
	r := newReading(t, 4) // 2 -> 4
	hook, slack := newReceiver(t, true), newReceiver(t, true)
	started := time.Now()
	d := startDaemon(t, notifyEnv(h, r, "DYNOPILOT_WEBHOOK_URL="+hook.srv.URL, "DYNOPILOT_WEBHOOK_SECRET="+hookSecret,
		"DYNOPILOT_SLACK_WEBHOOK_URL="+slack.srv.URL+slackPath, "DYNOPILOT_SLACK_EVENTS=all"))
	waitFor(t, "web scaled up to 4 with every receiver hung", 20*time.Second, func() bool { return h.quantity(t, "web") == 4 })
	t.Logf("scaled up %v after the start", time.Since(started).Round(100*time.Millisecond))
	waitFor(t, "the webhook receiver holding a request", 20*time.Second, func() bool { return hook.requests() > 0 })
	// The next scale event comes while the first one's messages still hang.
	r.set(3)
	down := time.Now()
	waitFor(t, "web scaled down to 3 with every receiver hung", 20*time.Second, func() bool { return h.quantity(t, "web") == 3 })
	t.Logf("scaled down %v after the reading fell", time.Since(down).Round(100*time.Millisecond))
	waitFor(t, "the Slack receiver holding a request", 20*time.Second, func() bool { return slack.requests() > 0 })
	if n := len(hook.deliveries()) + len(slack.deliveries()); n != 0 {
		t.Fatalf("%d messages answered by receivers that hang", n)
	}
	if patches, ok := h.patchCount(t, 200); patches != 2 || ok != 2 {
		t.Errorf("%d PATCHes (%d accepted), want 2", patches, ok)
	}
	if s := d.status(t, "shop/web"); !s.Evaluated || s.Current != 3 {
		t.Errorf("status %+v", s)
	}

	sent := time.Now()
	d.p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.p.done:
	case <-time.After(35 * time.Second):
		t.Fatalf("still running %v after SIGTERM with hung receivers: Heroku kills it at 30s", time.Since(sent).Round(time.Second))
	}
	took := time.Since(sent)
	t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
	if took >= 30*time.Second {
		t.Errorf("exited %v after SIGTERM: past Heroku's 30s", took.Round(time.Second))
	}
	if code := d.p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	noSecrets(t, "dynopilot's output", []byte(d.p.output()))
}

// scaleTitleRE finds a scale event's tooltip in the chart: "<title>15:04:05 UTC: scaled up 2 → 4 (ratio): value …</title>".
var scaleTitleRE = regexp.MustCompile(`<title>[0-9:]+ UTC: (scaled up|scaled down|failed to scale|would have [a-z ]+) (\d+) → (\d+) \(([a-z_]+)\): [^<]+</title>`)

func TestNotifyStatusPageShowsTheScaleEvents(t *testing.T) {
	t.Parallel()
	h := startHeroku(t)
	r := newReading(t, 4) // 2 -> 4
	d := startDaemon(t, notifyEnv(h, r))
	waitFor(t, "web scaled up to 4", 20*time.Second, func() bool { return h.quantity(t, "web") == 4 })
	r.set(3)
	waitFor(t, "web scaled down to 3", 20*time.Second, func() bool { return h.quantity(t, "web") == 3 })
	patches, _ := h.patchCount(t, 0)

	// The table of the last scale events, newest first, each from → to with its result.
	rowRE := regexp.MustCompile(`<td>(\d+) → (\d+)</td><td class="[^"]*">([a-z_]+)</td><td>([a-z_]+)</td>`)
	var page string
	var rows [][]string
	waitFor(t, "both scale events in the status page's table", 10*time.Second, func() bool {
		resp, err := http.Get(d.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		rows = rowRE.FindAllStringSubmatch(page, -1)
		return len(rows) >= 2
	})
	if err := os.WriteFile("/tmp/status-page.html", []byte(page), 0o644); err != nil {
		t.Logf("cannot save the page: %v", err)
	}
	if len(rows) != 2 || rows[0][1] != "4" || rows[0][2] != "3" || rows[1][1] != "2" || rows[1][2] != "4" {
		t.Errorf("scale events table rows %q, want 4 → 3 then 2 → 4", rows)
	}
	for _, row := range rows {
		if row[3] != "ok" || row[4] != "ratio" {
			t.Errorf("row %q: want result ok, reason ratio", row[0])
		}
	}
	start, end := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if start < 0 || end < start {
		t.Fatalf("no inline <svg> on the status page")
	}
	titles := scaleTitleRE.FindAllStringSubmatch(page[start:end], -1)
	if len(titles) != patches {
		t.Fatalf("%d scale events in the SVG for %d PATCHes: %q", len(titles), patches, titles)
	}
	for i, w := range [][3]string{{"scaled up", "2", "4"}, {"scaled down", "4", "3"}} {
		if titles[i][1] != w[0] || titles[i][2] != w[1] || titles[i][3] != w[2] || titles[i][4] != "ratio" {
			t.Errorf("scale event %d in the SVG: %q, want %s %s → %s (ratio) and its explanation", i, titles[i][0], w[0], w[1], w[2])
		}
	}
	noSecrets(t, "the status page", []byte(page))
}
