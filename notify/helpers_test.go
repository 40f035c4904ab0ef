package notify_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/notify"
)

// The Standard Webhooks reference libraries' test vector (libraries/go/webhook_test.go, TestWebhookSign, in
// github.com/standard-webhooks/standard-webhooks): this secret, id, timestamp and payload sign to vectorSignature.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// guard is how long a test waits for what must happen at once before calling it a deadlock: not a timing
// assertion, a correct notifier is done in milliseconds and a broken one never.
const guard = 10 * time.Second

// clock is a fake clock: Sleep advances it at once and remembers how long it was asked to wait, so that pacing
// and backoff are tested by their arithmetic, not by wall-clock bounds.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *clock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// received is one request a receiver got, with the fake time it arrived at.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is an httptest server that records every request and answers from a script: answers[i] for request
// i, the last one for every request after; an answer is a status and optional headers and body.
type receiver struct {
	srv   *httptest.Server
	clock *clock

	mu      sync.Mutex
	got     []received
	answers []answer
}

type answer struct {
	status int
	header map[string]string
	body   string
	hang   bool // never answer: wait until the client gives up
}

func newReceiver(t *testing.T, c *clock, answers ...answer) *receiver {
	t.Helper()
	if len(answers) == 0 {
		answers = []answer{{status: http.StatusOK}}
	}
	r := &receiver{clock: c, answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.got)
	at := time.Time{}
	if r.clock != nil {
		at = r.clock.Now()
	}
	r.got = append(r.got, received{at: at, header: req.Header.Clone(), body: body})
	a := r.answers[min(n, len(r.answers)-1)]
	r.mu.Unlock()
	if a.hang {
		<-req.Context().Done()
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// options are notifier options on the fake clock, logging into logs.
func options(c *clock, logs *servicetest.Buffer) notify.Options {
	return notify.Options{
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: prometheus.NewRegistry(),
		Now:        c.Now,
		Sleep:      c.Sleep,
	}
}

// scaledEvent is a typical scale event.
func scaledEvent(at time.Time) event.Event {
	return event.Event{
		Type: event.Scaled, Time: at, Policy: "shop/web", App: "shop", Process: "web",
		From: 2, To: 4, Wanted: 4, Min: 1, Max: 10, Action: "up", Reason: "above_target",
		Reading: 0.62, HasReading: true, Target: 0.3,
		Explanation: "value 0.62s is 2.07x the 0.3s target: 2 -> 4",
	}
}

// counter reads one series of a counter from a registry; -1 when absent.
func counter(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}
