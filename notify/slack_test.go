package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/notify"
)

func newSlack(t *testing.T, url string, o notify.Options) *notify.Slack {
	t.Helper()
	s, err := notify.NewSlack(notify.SlackSettings{URL: url}, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slackText decodes a Slack message body, which must be {"text": …} and nothing else.
func slackText(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
		t.Fatalf("Slack body %s: want {\"text\": …} (%v)", body, err)
	}
	return m["text"]
}

func pinnedEvent(policy string, at time.Time) event.Event {
	return event.Event{
		Type: event.PinnedAtMax, Time: at, Policy: policy, From: 10, To: 10, Wanted: 14, Max: 10, Reason: "at_max",
		HasReading: true, Reading: 0.91, Target: 0.3, Explanation: "value 0.91s is 3.03x the 0.3s target: 10 -> 14, capped at MAX=10: holding at 10",
	}
}

// TestSlackPacing: messages published back to back reach Slack one SlackGap apart, the first at once. The fake
// clock makes this arithmetic, not a race against the wall clock.
func TestSlackPacing(t *testing.T) {
	c := newClock()
	start := c.Now()
	r := newReceiver(t, c, answer{status: 200, body: "ok"})
	var logs servicetest.Buffer
	s := newSlack(t, r.srv.URL+"/services/T0/B0/x", options(c, &logs))
	for i := range 5 {
		s.Publish(context.Background(), pinnedEvent(fmt.Sprintf("shop/p%d", i), c.Now()))
	}
	got := r.requests()
	if len(got) != 5 {
		t.Fatalf("Slack got %d messages, want 5", len(got))
	}
	if !got[0].at.Equal(start) {
		t.Errorf("the first message waited %v", got[0].at.Sub(start))
	}
	for i := 1; i < len(got); i++ {
		if gap := got[i].at.Sub(got[i-1].at); gap < notify.SlackGap {
			t.Errorf("messages %d and %d are %v apart, want at least %v", i-1, i, gap, notify.SlackGap)
		}
	}
	// Over any window of n seconds, at most n messages (here: exactly one per second).
	if span := got[4].at.Sub(got[0].at); span != 4*notify.SlackGap {
		t.Errorf("5 messages took %v, want 4s: no more waiting than the limit needs", span)
	}
}

// TestSlack429RetryAfter: Slack's 429 is retried after its Retry-After, and the pacing of the next message
// counts from the retry.
func TestSlack429RetryAfter(t *testing.T) {
	c := newClock()
	r := newReceiver(t, c,
		answer{status: 200, body: "ok"},
		answer{status: 429, header: map[string]string{"Retry-After": "3"}, body: "rate_limited"},
		answer{status: 200, body: "ok"})
	var logs servicetest.Buffer
	s := newSlack(t, r.srv.URL, options(c, &logs))
	for i := range 3 {
		s.Publish(context.Background(), pinnedEvent(fmt.Sprintf("shop/p%d", i), c.Now()))
	}
	got := r.requests()
	if len(got) != 4 {
		t.Fatalf("Slack got %d requests, want 4 (ok, 429, its retry, the third message)", len(got))
	}
	if slackText(t, got[1].body) != slackText(t, got[2].body) {
		t.Errorf("the retry after 429 is not the same message")
	}
	if d := got[2].at.Sub(got[1].at); d < 3*time.Second {
		t.Errorf("retried %v after the 429, want Retry-After's 3s", d)
	}
	if d := got[3].at.Sub(got[2].at); d < notify.SlackGap {
		t.Errorf("the next message came %v after the retry", d)
	}
	if strings.Contains(logs.String(), "notification failed") {
		t.Errorf("a 429 that was retried successfully was logged as a failure:\n%s", logs.String())
	}
}

// TestSlackMessages: each message is short, readable, has the facts, and escapes what Slack would read as markup.
func TestSlackMessages(t *testing.T) {
	at := time.Date(2025, 1, 10, 14, 5, 0, 0, time.UTC)
	for _, c := range []struct {
		e    event.Event
		want []string
	}{
		{scaledEvent(at), []string{":arrow_up: shop/web scaled up from 2 to 4 dynos (above_target)", "\n>value 0.62s is 2.07x the 0.3s target: 2 -&gt; 4"}},
		{pinnedEvent("shop/web", at), []string{":warning: shop/web is pinned at MAX=10 dynos: it wants 14 (reading 0.91, target 0.3)", "capped at MAX=10"}},
		{event.Event{Type: event.PinnedAtMaxEnded, Time: at, Policy: "shop/web", Since: at.Add(-23 * time.Minute), To: 10, Max: 10, HasReading: true, Reading: 0.2, Target: 0.3},
			[]string{":white_check_mark: shop/web is no longer pinned at MAX=10 dynos after 23m: now at 10 (reading 0.2, target 0.3)"}},
		{event.Event{Type: event.ScaleFailed, Time: at, Policy: "shop/web", From: 2, To: 4, Error: `422 <invalid_params> "size" & more`},
			[]string{":x: shop/web: scaling from 2 to 4 dynos failed: 422 &lt;invalid_params&gt; \"size\" &amp; more"}},
		{event.Event{Type: event.ReadingFailing, Time: at, Policy: "shop/worker", Failures: 3, FallbackAfter: 3, To: 2, Error: "redis: connection refused"},
			[]string{":warning: shop/worker: the last 3 readings failed (FALLBACK_AFTER=3), holding at 2 dynos: redis: connection refused"}},
		{event.Event{Type: event.ReadingRecovered, Time: at, Policy: "shop/worker", Since: at.Add(-90 * time.Second), HasReading: true, Reading: 12, Target: 50},
			[]string{"shop/worker: readings work again after 1m30s (reading 12, target 50)"}},
		{event.Event{Type: event.LeadershipChanged, Time: at, Leader: false}, []string{"no longer leads"}},
		{event.Event{Type: event.TokenExpiring, Time: at, ExpiresAt: at.Add(72 * time.Hour)}, []string{"expires on 2025-01-13 14:05 UTC, in 3 days", "HEROKU_API_KEY"}},
	} {
		clk := newClock()
		r := newReceiver(t, clk)
		var logs servicetest.Buffer
		newSlack(t, r.srv.URL, options(clk, &logs)).Publish(context.Background(), c.e)
		got := r.requests()
		if len(got) != 1 {
			t.Errorf("%s: %d messages, want 1", c.e.Type, len(got))
			continue
		}
		text := slackText(t, got[0].body)
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: message %q lacks %q", c.e.Type, text, w)
			}
		}
		if len(text) > 600 {
			t.Errorf("%s: %d characters is not short", c.e.Type, len(text))
		}
	}
}

// TestSlackHoldsBackRepeatedFailures: a policy whose every PATCH fails (Heroku down) gives one message, then
// nothing until SlackRepeat has passed, then one that says how many it left out; another policy is not held back.
func TestSlackHoldsBackRepeatedFailures(t *testing.T) {
	c := newClock()
	r := newReceiver(t, c)
	var logs servicetest.Buffer
	s := newSlack(t, r.srv.URL, options(c, &logs))
	at := time.Date(2025, 1, 10, 14, 0, 0, 0, time.UTC)
	fail := func(policy string, at time.Time) event.Event {
		return event.Event{Type: event.ScaleFailed, Time: at, Policy: policy, From: 2, To: 4, Error: "503 Service Unavailable"}
	}
	for i := range 100 { // a failure every 10s for 16m30s
		s.Publish(context.Background(), fail("shop/web", at.Add(time.Duration(i)*10*time.Second)))
	}
	s.Publish(context.Background(), fail("shop/worker", at.Add(time.Minute)))
	var texts []string
	for _, g := range r.requests() {
		texts = append(texts, slackText(t, g.body))
	}
	if len(texts) != 3 {
		t.Fatalf("Slack got %d messages, want 3:\n%s", len(texts), strings.Join(texts, "\n"))
	}
	if !strings.Contains(texts[1], "(89 more failures since 14:00 UTC were not sent)") {
		t.Errorf("the message after the quiet time does not count what it held back: %q", texts[1])
	}
	if !strings.Contains(texts[2], "shop/worker") {
		t.Errorf("another policy's failure was held back: %q", texts[2])
	}
}
