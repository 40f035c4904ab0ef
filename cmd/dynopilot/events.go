package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/notify"
	"github.com/dynopilot/dynopilot/scaler"
)

// eventPath is the one event path of a running daemon: the scaler publishes to sink; the detector derives the
// events worth a message (pinned at MAX, failing readings) from the decisions; the bus fans everything out, each
// consumer on its own bounded queue: the status history and the notifiers the configuration turns on. Adding a
// consumer is one Subscribe here.
type eventPath struct {
	sink    event.Sink
	bus     *event.Bus
	history *scaler.History
}

// newEventPath builds the path for the configuration; it does no I/O.
func newEventPath(g config.Global, reg prometheus.Registerer, log *slog.Logger) (*eventPath, error) {
	bus, err := event.NewBus(reg, log)
	if err != nil {
		return nil, err
	}
	history := scaler.NewHistory()
	// The history takes a decision per policy per tick: its queue holds a few ticks of a thousand policies.
	if err := bus.Subscribe(event.Subscription{Name: "history", Sink: history, Queue: 4096,
		Types: []event.Type{event.Decision, event.Scaled, event.ScaleFailed}}); err != nil {
		return nil, err
	}
	subs, err := notify.Subscriptions(g.Notify, notify.Options{Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if err := bus.Subscribe(s); err != nil {
			return nil, err
		}
	}
	return &eventPath{sink: notify.NewDetector(bus, notify.DefaultQuiet), bus: bus, history: history}, nil
}

// leadership publishes changes of leadership that someone should hear of: an instance that has run for a while
// taking over or losing the lead. The first lead of a process that has just started is not one (every deploy and
// daily restart would post it), nor is the loss of an instance shutting down.
type leadership struct {
	path    *eventPath
	started time.Time
	mu      sync.Mutex
	leading bool
}

// quietAfterStart is how long after its start an instance's change of leadership is its start, not news.
const quietAfterStart = time.Minute

func (l *leadership) changed(ctx context.Context, leading bool) {
	l.mu.Lock()
	was := l.leading
	l.leading = leading
	l.mu.Unlock()
	if was == leading || time.Since(l.started) < quietAfterStart || ctx.Err() != nil {
		return
	}
	l.path.sink.Publish(ctx, event.Event{Type: event.LeadershipChanged, Time: time.Now(), Leader: leading})
}

// tokenExpiring publishes token_expiring once when the token has two weeks left and once more when it has a day.
type tokenExpiring struct {
	path *eventPath
	told time.Duration // the smallest threshold already told, 0 for none
}

func (t *tokenExpiring) check(ctx context.Context, expiresIn time.Duration, now time.Time) {
	for _, threshold := range []time.Duration{14 * 24 * time.Hour, 24 * time.Hour} {
		if expiresIn < threshold && (t.told == 0 || threshold < t.told) {
			t.told = threshold
			t.path.sink.Publish(ctx, event.Event{Type: event.TokenExpiring, Time: now, ExpiresAt: now.Add(expiresIn)})
			return
		}
	}
}
