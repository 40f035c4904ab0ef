package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/event"
)

// collect is an event.Sink that keeps what it is given.
type collect struct {
	mu     sync.Mutex
	events []event.Event
}

func (c *collect) Publish(_ context.Context, e event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *collect) types() []event.Type {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event.Type
	for _, e := range c.events {
		out = append(out, e.Type)
	}
	return out
}

func TestTokenExpiringIsToldOncePerThreshold(t *testing.T) {
	sink := &collect{}
	te := &tokenExpiring{path: &eventPath{sink: sink}}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, left := range []time.Duration{20 * 24 * time.Hour, 13 * 24 * time.Hour, 12 * 24 * time.Hour, 5 * 24 * time.Hour,
		23 * time.Hour, 22 * time.Hour, time.Hour} { // checked hourly in the daemon; here at a few points
		te.check(context.Background(), left, now)
	}
	if got := sink.types(); len(got) != 2 {
		t.Fatalf("told %d times (%v), want twice: at 14 days and at 1 day", len(got), got)
	}
	if e := sink.events[1]; !e.ExpiresAt.Equal(now.Add(23 * time.Hour)) {
		t.Errorf("the second notice says it expires at %v, want %v", e.ExpiresAt, now.Add(23*time.Hour))
	}
}

func TestLeadershipIsNewsOnlyAfterTheStart(t *testing.T) {
	sink := &collect{}
	l := &leadership{path: &eventPath{sink: sink}, started: time.Now()}
	l.changed(context.Background(), true) // a process that has just started takes the lead: every deploy does
	if got := sink.types(); len(got) != 0 {
		t.Fatalf("the first lead of a new process was told: %v", got)
	}
	l.started = time.Now().Add(-2 * quietAfterStart)
	l.changed(context.Background(), false) // it lost the lead after running a while
	l.changed(context.Background(), false) // the same again is no change
	l.changed(context.Background(), true)
	if got := sink.types(); len(got) != 2 || sink.events[0].Leader || !sink.events[1].Leader {
		t.Fatalf("told %v, want a loss then a takeover", sink.events)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shutting down: the loss of the lead is not news
	l.changed(ctx, false)
	if got := sink.types(); len(got) != 2 {
		t.Fatalf("a loss of the lead while shutting down was told: %v", got)
	}
}
