// Package notify tells people (and their machines) what the autoscaler did and when something needs them: a
// Standard Webhooks notifier (DYNOPILOT_WEBHOOK_URL, signed with DYNOPILOT_WEBHOOK_SECRET) and a Slack notifier
// (DYNOPILOT_SLACK_WEBHOOK_URL), each an event.Sink fed by its own queue on the event.Bus, so that a receiver that
// hangs or fails never delays scaling; and the Detector, which turns the stream of per-tick decisions into the
// few events worth a message (pinned at MAX, readings failing, and their ends).
//
// Every notifier lives in its own file behind event.Sink, like node_exporter's collectors; Subscriptions is the
// one place that lists them, so adding one is a file, a settings struct and a line there.
//
// Delivery: one message at a time per notifier, each tried up to Retry.Attempts times with exponential backoff
// and jitter for what waiting can cure (a transport error, a timeout, 408, 429, 5xx; Retry-After honoured),
// within Retry.Budget; a 3xx or another 4xx is logged once and not retried; 410 Gone turns the notifier off
// until restart, as Standard Webhooks asks. Receivers are named in logs by scheme://host only: the rest of a
// notification URL is often its credential.
package notify

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/event"
)

// Options are what the notifiers share: none is required.
type Options struct {
	Client     *http.Client          // nil: a client that follows no redirect (a 3xx is a failure)
	Logger     *slog.Logger          // nil: slog.Default()
	Registerer prometheus.Registerer // for dynopilot_notifications_total{notifier,result}; nil: not registered
	Retry      Retry                 // zero fields: the defaults documented on Retry
	// Now and Sleep are the clock, for tests (pacing and backoff without waiting); nil: the real ones. Sleep must
	// return early, with an error, when ctx is done.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Subscriptions returns an event.Bus subscription for every notifier the settings turn on, each with the event
// types its settings name. s must have been validated (Parse does).
func Subscriptions(s Settings, o Options) ([]event.Subscription, error) {
	// The notifiers: one line each.
	notifiers := []struct {
		name      string // the consumer on the bus, in logs and metrics
		on        bool
		eventsVar string // the variable listing its event types, and its value
		events    string
		build     func() (event.Sink, error)
	}{
		{"webhook", s.Webhook.URL != "", "DYNOPILOT_WEBHOOK_EVENTS", s.Webhook.Events, func() (event.Sink, error) { return NewWebhook(s.Webhook, o) }},
		{"slack", s.Slack.URL != "", "DYNOPILOT_SLACK_EVENTS", s.Slack.Events, func() (event.Sink, error) { return NewSlack(s.Slack, o) }},
	}
	var subs []event.Subscription
	for _, n := range notifiers {
		if !n.on {
			continue
		}
		types, err := EventTypes(n.eventsVar, n.events)
		if err != nil {
			return nil, err
		}
		sink, err := n.build()
		if err != nil {
			return nil, err
		}
		subs = append(subs, event.Subscription{Name: n.name, Sink: sink, Types: types})
	}
	return subs, nil
}
