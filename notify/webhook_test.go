package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/notify"
)

// TestSignReproducesTheStandardWebhooksVector: the signer gives, byte for byte, the signature the Standard
// Webhooks reference libraries give for their test vector, and Verify accepts it.
func TestSignReproducesTheStandardWebhooksVector(t *testing.T) {
	secret, err := notify.ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(vectorTimestamp, 0)
	if got := secret.Sign(vectorID, ts, []byte(vectorPayload)); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}

	h := http.Header{}
	h.Set(notify.HeaderID, vectorID)
	h.Set(notify.HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	h.Set(notify.HeaderSignature, vectorSignature)
	if err := notify.Verify(vectorSecret, h, []byte(vectorPayload), ts.Add(time.Minute)); err != nil {
		t.Errorf("Verify(the vector) = %v", err)
	}
	// The reference libraries accept the secret without its prefix too.
	if err := notify.Verify(strings.TrimPrefix(vectorSecret, "whsec_"), h, []byte(vectorPayload), ts); err != nil {
		t.Errorf("Verify without whsec_ = %v", err)
	}
	// Several signatures (a key being rotated, another scheme): one valid v1 is enough.
	h.Set(notify.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vectorSignature)
	if err := notify.Verify(vectorSecret, h, []byte(vectorPayload), ts); err != nil {
		t.Errorf("Verify(several signatures) = %v", err)
	}

	for _, c := range []struct {
		name   string
		change func(h http.Header, body []byte) []byte
		now    time.Time
		want   error
	}{
		{"one byte of the body changed", func(h http.Header, b []byte) []byte { b[len(b)-2]++; return b }, ts, notify.ErrSignature},
		{"another id", func(h http.Header, b []byte) []byte { h.Set(notify.HeaderID, vectorID+"x"); return b }, ts, notify.ErrSignature},
		{"another timestamp", func(h http.Header, b []byte) []byte {
			h.Set(notify.HeaderTimestamp, strconv.Itoa(vectorTimestamp+1))
			return b
		}, ts, notify.ErrSignature},
		{"only an invalid signature", func(h http.Header, b []byte) []byte {
			h.Set(notify.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
			return b
		}, ts, notify.ErrSignature},
		{"the signature under another version", func(h http.Header, b []byte) []byte {
			h.Set(notify.HeaderSignature, strings.Replace(vectorSignature, "v1,", "v1a,", 1))
			return b
		}, ts, notify.ErrSignature},
		{"no signature header", func(h http.Header, b []byte) []byte { h.Del(notify.HeaderSignature); return b }, ts, notify.ErrMissingHeaders},
		{"no id header", func(h http.Header, b []byte) []byte { h.Del(notify.HeaderID); return b }, ts, notify.ErrMissingHeaders},
		{"replayed after the tolerance", func(h http.Header, b []byte) []byte { return b }, ts.Add(notify.Tolerance + time.Second), notify.ErrTimestamp},
		{"from the future", func(h http.Header, b []byte) []byte { return b }, ts.Add(-notify.Tolerance - time.Second), notify.ErrTimestamp},
		{"a timestamp that is not a number", func(h http.Header, b []byte) []byte { h.Set(notify.HeaderTimestamp, "soon"); return b }, ts, notify.ErrTimestamp},
	} {
		h := http.Header{}
		h.Set(notify.HeaderID, vectorID)
		h.Set(notify.HeaderTimestamp, strconv.Itoa(vectorTimestamp))
		h.Set(notify.HeaderSignature, vectorSignature)
		body := c.change(h, []byte(vectorPayload))
		if err := notify.Verify(vectorSecret, h, body, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s, err := notify.ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), s.LogValue().String()} {
		if strings.Contains(out, "MfKQ9r8") {
			t.Errorf("the secret shows in %q", out)
		}
	}
	if s.Len() != 24 {
		t.Errorf("Len = %d, want 24", s.Len())
	}
	for _, bad := range []string{"whsec_not base64!", "whsec_"} {
		if _, err := notify.ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted it", bad)
		}
	}
}

func newWebhook(t *testing.T, url string, o notify.Options) *notify.Webhook {
	t.Helper()
	w, err := notify.NewWebhook(notify.WebhookSettings{URL: url, Secret: vectorSecret}, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWebhookDeliversASignedMessage: what a receiver gets verifies with the Standard Webhooks algorithm, carries
// the facts, and stops verifying when one byte of the body changes.
func TestWebhookDeliversASignedMessage(t *testing.T) {
	c := newClock()
	r := newReceiver(t, c)
	var logs servicetest.Buffer
	w := newWebhook(t, r.srv.URL+"/hooks/dynopilot", options(c, &logs))

	e := scaledEvent(c.Now())
	w.Publish(context.Background(), e)
	w.Publish(context.Background(), event.Event{Type: event.Decision, Policy: "shop/web"}) // never sent
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(got))
	}
	req := got[0]
	if err := notify.Verify(vectorSecret, req.header, req.body, c.Now()); err != nil {
		t.Fatalf("Verify = %v\nheaders %v\nbody %s", err, req.header, req.body)
	}
	if ts := req.header.Get("webhook-timestamp"); ts != strconv.FormatInt(c.Now().Unix(), 10) {
		t.Errorf("webhook-timestamp = %s, want the unix seconds of the attempt", ts)
	}
	if id := req.header.Get("webhook-id"); !strings.HasPrefix(id, "msg_") || strings.Contains(id, ".") {
		t.Errorf("webhook-id = %q, want msg_… without a dot", id)
	}
	tampered := append([]byte(nil), req.body...)
	tampered[len(tampered)/2] ^= 1
	if err := notify.Verify(vectorSecret, req.header, tampered, c.Now()); !errors.Is(err, notify.ErrSignature) {
		t.Errorf("Verify(one byte changed) = %v, want ErrSignature", err)
	}

	var body struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != "scaled" || body.Timestamp != e.Time.UTC().Format(time.RFC3339Nano) {
		t.Errorf("type, timestamp = %q, %q", body.Type, body.Timestamp)
	}
	want := map[string]any{
		"policy": "shop/web", "app": "shop", "process": "web", "from": 2.0, "to": 4.0, "wanted": 4.0, "min": 1.0, "max": 10.0,
		"reason": "above_target", "reading": 0.62, "target": 0.3, "explanation": e.Explanation, "dry_run": false,
	}
	for k, v := range want {
		if body.Data[k] != v {
			t.Errorf("data.%s = %#v, want %#v", k, body.Data[k], v)
		}
	}
	if s, _ := body.Data["summary"].(string); !strings.Contains(s, "shop/web scaled up from 2 to 4 dynos") {
		t.Errorf("data.summary = %q", s)
	}
	if req.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", req.header.Get("Content-Type"))
	}
}

// TestWebhookRetriesOn500ThenSucceeds: 5xx is retried with backoff; every try has the same webhook-id and its own
// valid signature; a second message gets another id.
func TestWebhookRetriesOn500ThenSucceeds(t *testing.T) {
	c := newClock()
	r := newReceiver(t, c, answer{status: 500}, answer{status: 503}, answer{status: 200})
	var logs servicetest.Buffer
	o := options(c, &logs)
	w := newWebhook(t, r.srv.URL, o)

	w.Publish(context.Background(), scaledEvent(c.Now()))
	got := r.requests()
	if len(got) != 3 {
		t.Fatalf("the receiver got %d requests, want 3 (500, 503, then 200)", len(got))
	}
	for i, req := range got {
		if id := req.header.Get("webhook-id"); id != got[0].header.Get("webhook-id") {
			t.Errorf("try %d has webhook-id %s, want the first try's %s", i, id, got[0].header.Get("webhook-id"))
		}
		if err := notify.Verify(vectorSecret, req.header, req.body, req.at); err != nil {
			t.Errorf("try %d: Verify = %v", i, err)
		}
	}
	// Exponential backoff with jitter in the upper half: ~1s, then ~2s.
	s := c.sleeps()
	if len(s) != 2 || s[0] < 500*time.Millisecond || s[0] > time.Second || s[1] < time.Second || s[1] > 2*time.Second {
		t.Errorf("waits between tries = %v, want about 1s then 2s", s)
	}
	if n := counter(t, o.Registerer.(prometheus.Gatherer), "dynopilot_notifications_total", map[string]string{"notifier": "webhook", "result": "sent"}); n != 1 {
		t.Errorf("notifications_total{sent} = %v, want 1", n)
	}
	if strings.Contains(logs.String(), "notification failed") {
		t.Errorf("a delivery that succeeded was logged as failed:\n%s", logs.String())
	}

	w.Publish(context.Background(), scaledEvent(c.Now()))
	got = r.requests()
	if len(got) != 4 || got[3].header.Get("webhook-id") == got[0].header.Get("webhook-id") {
		t.Errorf("a second message reused the first one's webhook-id")
	}
}

// TestWebhookDoesNotRetryA4xx: a 400 would be refused again: one try, one log line, counted as failed.
func TestWebhookDoesNotRetryA4xx(t *testing.T) {
	c := newClock()
	r := newReceiver(t, c, answer{status: 400, body: "unknown event type"})
	var logs servicetest.Buffer
	o := options(c, &logs)
	w := newWebhook(t, r.srv.URL, o)

	w.Publish(context.Background(), scaledEvent(c.Now()))
	if n := len(r.requests()); n != 1 {
		t.Errorf("the receiver got %d requests, want 1", n)
	}
	if s := c.sleeps(); len(s) != 0 {
		t.Errorf("waited %v before giving up on a 400", s)
	}
	if n := strings.Count(logs.String(), "notification failed"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "status=400") || !strings.Contains(logs.String(), "unknown event type") {
		t.Errorf("the log line does not say the status and the receiver's answer:\n%s", logs.String())
	}
	if n := counter(t, o.Registerer.(prometheus.Gatherer), "dynopilot_notifications_total", map[string]string{"notifier": "webhook", "result": "failed"}); n != 1 {
		t.Errorf("notifications_total{failed} = %v, want 1", n)
	}
}

// TestWebhookRetryBounds: tries stop at Retry.Attempts, at the retry budget (a Retry-After past it is not
// waited for), and when the context ends; 429's Retry-After is waited for; a 3xx is a failure, not followed;
// 410 Gone turns the notifier off.
func TestWebhookRetryBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("attempts", func(t *testing.T) {
		c := newClock()
		r := newReceiver(t, c, answer{status: 502})
		var logs servicetest.Buffer
		newWebhook(t, r.srv.URL, options(c, &logs)).Publish(ctx, scaledEvent(c.Now()))
		if n := len(r.requests()); n != 5 {
			t.Errorf("%d tries, want the default 5", n)
		}
		if n := strings.Count(logs.String(), "notification failed"); n != 1 {
			t.Errorf("logged %d times, want once:\n%s", n, logs.String())
		}
	})
	t.Run("Retry-After", func(t *testing.T) {
		c := newClock()
		r := newReceiver(t, c, answer{status: 429, header: map[string]string{"Retry-After": "7"}}, answer{status: 200})
		var logs servicetest.Buffer
		newWebhook(t, r.srv.URL, options(c, &logs)).Publish(ctx, scaledEvent(c.Now()))
		got := r.requests()
		if len(got) != 2 || got[1].at.Sub(got[0].at) != 7*time.Second {
			t.Errorf("tries at %v, want two, 7s apart", got)
		}
	})
	t.Run("budget", func(t *testing.T) {
		c := newClock()
		r := newReceiver(t, c, answer{status: 503, header: map[string]string{"Retry-After": "3600"}})
		var logs servicetest.Buffer
		newWebhook(t, r.srv.URL, options(c, &logs)).Publish(ctx, scaledEvent(c.Now()))
		if n := len(r.requests()); n != 1 {
			t.Errorf("%d tries, want 1: an hour's Retry-After is past the budget", n)
		}
		if s := c.sleeps(); len(s) != 0 {
			t.Errorf("waited %v", s)
		}
		if !strings.Contains(logs.String(), "retry budget") {
			t.Errorf("the log does not say why it gave up:\n%s", logs.String())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		c := newClock()
		r := newReceiver(t, c, answer{hang: true}, answer{status: 200})
		var logs servicetest.Buffer
		o := options(c, &logs)
		o.Retry.Timeout = 50 * time.Millisecond
		newWebhook(t, r.srv.URL, o).Publish(ctx, scaledEvent(c.Now()))
		if n := len(r.requests()); n != 2 {
			t.Errorf("%d tries, want 2: a timeout is retried", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		c := newClock()
		r := newReceiver(t, c, answer{status: 500})
		var logs servicetest.Buffer
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		newWebhook(t, r.srv.URL, options(c, &logs)).Publish(ctx, scaledEvent(c.Now()))
		if n := len(r.requests()); n > 1 {
			t.Errorf("%d tries after the context ended", n)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		c := newClock()
		elsewhere := newReceiver(t, c)
		r := newReceiver(t, c, answer{status: 307, header: map[string]string{"Location": elsewhere.srv.URL}})
		var logs servicetest.Buffer
		newWebhook(t, r.srv.URL, options(c, &logs)).Publish(ctx, scaledEvent(c.Now()))
		if len(r.requests()) != 1 || len(elsewhere.requests()) != 0 {
			t.Errorf("a 307 was retried or followed: %d tries, %d elsewhere", len(r.requests()), len(elsewhere.requests()))
		}
	})
	t.Run("gone", func(t *testing.T) {
		c := newClock()
		r := newReceiver(t, c, answer{status: 410})
		var logs servicetest.Buffer
		w := newWebhook(t, r.srv.URL, options(c, &logs))
		w.Publish(ctx, scaledEvent(c.Now()))
		w.Publish(ctx, scaledEvent(c.Now()))
		if n := len(r.requests()); n != 1 {
			t.Errorf("%d requests, want 1: after 410 Gone nothing more is sent", n)
		}
		if n := strings.Count(logs.String(), "no more notifications"); n != 1 {
			t.Errorf("410 logged %d times, want once:\n%s", n, logs.String())
		}
	})
}

// TestWebhookBodies: every notifiable type encodes, with the fields its type promises.
func TestWebhookBodies(t *testing.T) {
	at := time.Date(2025, 1, 10, 14, 5, 0, 0, time.UTC)
	for _, c := range []struct {
		e    event.Event
		want []string
	}{
		{event.Event{Type: event.ScaleFailed, Time: at, Policy: "shop/web", From: 2, To: 4, Error: "422 invalid_params"}, []string{`"error":"422 invalid_params"`, `"reading":null`}},
		{event.Event{Type: event.ReadingFailing, Time: at, Policy: "shop/web", Failures: 3, FallbackAfter: 3, Error: "dial tcp: refused"}, []string{`"failures":3`, `"fallback_after":3`, `"error":"dial tcp: refused"`}},
		{event.Event{Type: event.ReadingRecovered, Time: at, Policy: "shop/web", Since: at.Add(-5 * time.Minute), HasReading: true, Reading: 0.2}, []string{`"since":"2025-01-10T14:00:00Z"`, `"reading":0.2`}},
		{event.Event{Type: event.PinnedAtMaxEnded, Time: at, Policy: "shop/web", Since: at.Add(-time.Hour)}, []string{`"since":"2025-01-10T13:05:00Z"`}},
		{event.Event{Type: event.LeadershipChanged, Time: at, Leader: true}, []string{`"leader":true`, `"summary":"this dynopilot instance now leads`}},
		{event.Event{Type: event.TokenExpiring, Time: at, ExpiresAt: at.Add(6 * 24 * time.Hour)}, []string{`"expires_at":"2025-01-16T14:05:00Z"`, `in 6 days`}},
		{event.Event{Type: event.Scaled, Time: at, Policy: "shop/web", HasReading: true, Reading: math.NaN()}, []string{`"reading":null`}},
	} {
		b, err := notify.WebhookBody(c.e)
		if err != nil {
			t.Errorf("%s: %v", c.e.Type, err)
			continue
		}
		if !json.Valid(b) || !strings.Contains(string(b), `"type":"`+string(c.e.Type)+`"`) || !strings.Contains(string(b), `"timestamp":"2025-01-10T14:05:00Z"`) {
			t.Errorf("%s: %s", c.e.Type, b)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: %s lacks %s", c.e.Type, b, w)
			}
		}
		if c.e.Policy == "" && strings.Contains(string(b), `"policy"`) {
			t.Errorf("%s: a policy field in an event of no policy: %s", c.e.Type, b)
		}
	}
}
