package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/servicetest"
	"github.com/dynopilot/dynopilot/notify"
)

// TestHangingReceiversNeverBlockPublish: with every receiver hanging, the producer's Publish (through the
// Detector and the Bus, as the daemon wires them) returns at once for a flood of events; what does not fit the
// queues is dropped and counted; Close is bounded by its deadline.
func TestHangingReceiversNeverBlockPublish(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the handlers end so that the server can close

	reg := prometheus.NewRegistry()
	var logs servicetest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	bus, err := event.NewBus(reg, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := notify.Parse([]string{
		"DYNOPILOT_WEBHOOK_URL=" + hang.URL + "/hook", "DYNOPILOT_WEBHOOK_SECRET=" + vectorSecret,
		"DYNOPILOT_SLACK_WEBHOOK_URL=" + hang.URL + "/slack", "DYNOPILOT_SLACK_EVENTS=all",
	})
	if err != nil {
		t.Fatal(err)
	}
	subs, err := notify.Subscriptions(s, notify.Options{Logger: log, Registerer: reg, Retry: notify.Retry{Timeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		sub.Queue = 8
		if err := bus.Subscribe(sub); err != nil {
			t.Fatal(err)
		}
	}
	producer := notify.NewDetector(bus, notify.DefaultQuiet)

	ctx := context.Background()
	producer.Publish(ctx, scaledEvent(t0))
	<-arrived // both notifiers are now stuck in a request that will not end
	<-arrived

	const n = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			producer.Publish(ctx, scaledEvent(t0.Add(time.Duration(i)*time.Second)))
			producer.Publish(ctx, decision(i, 10, 14)) // decisions: filtered out, and one pinned_at_max
		}
	}()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatal("Publish blocked on hanging receivers")
	}
	// The webhook takes scaled and pinned_at_max; Slack (all) the same here: n+1 events each, 8 queued.
	for _, name := range []string{"webhook", "slack"} {
		if got, want := counter(t, reg, "dynopilot_events_dropped_total", map[string]string{"consumer": name}), float64(n+1-8); got != want {
			t.Errorf("dropped{consumer=%s} = %v, want %v", name, got, want)
		}
	}

	closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- bus.Close(closeCtx) }()
	select {
	case err := <-closed:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want the deadline's error", err)
		}
	case <-time.After(guard):
		t.Fatal("Close is not bounded by its context")
	}
}

// TestSecretsNeverLogged: whatever goes wrong (a refusal that quotes the request, 5xx, a receiver that is gone
// from the network), the logs name the receiver by scheme://host and show neither the signing secret nor the
// tokens in the URLs' paths and queries.
func TestSecretsNeverLogged(t *testing.T) {
	const pathToken, queryToken = "S3cretPathT0ken", "Qu3ryT0ken123"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/refuse/"):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("no route for " + r.URL.String() + " signed " + r.Header.Get("webhook-signature")))
		default:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("failed at " + r.URL.RequestURI()))
		}
	}))
	t.Cleanup(echo.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close() // connection refused, and the error quotes the URL

	c := newClock()
	var logs servicetest.Buffer
	o := options(c, &logs)
	ctx := context.Background()
	for _, url := range []string{
		echo.URL + "/refuse/" + pathToken + "?token=" + queryToken,
		echo.URL + "/fail/" + pathToken + "?token=" + queryToken,
		goneURL + "/hooks/" + pathToken + "?token=" + queryToken,
	} {
		s, err := notify.Parse([]string{"DYNOPILOT_WEBHOOK_URL=" + url, "DYNOPILOT_WEBHOOK_SECRET=" + vectorSecret, "DYNOPILOT_SLACK_WEBHOOK_URL=" + url})
		if err != nil {
			t.Fatal(err)
		}
		subs, err := notify.Subscriptions(s, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range subs {
			sub.Sink.Publish(ctx, event.Event{Type: event.ScaleFailed, Time: c.Now(), Policy: "shop/web", Error: "boom"})
		}
	}
	out := logs.String()
	if strings.Count(out, "notification failed") != 6 {
		t.Errorf("want 6 failures logged, one per notifier and receiver:\n%s", out)
	}
	if !strings.Contains(out, "url="+echo.URL+" ") {
		t.Errorf("the receiver is not named by scheme://host:\n%s", out)
	}
	for _, secret := range []string{pathToken, queryToken, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "/refuse/", "/hooks/"} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs show %q:\n%s", secret, out)
		}
	}
}
