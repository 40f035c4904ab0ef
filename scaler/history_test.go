package scaler_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/chart"
	"github.com/dynopilot/dynopilot/scaler"
)

// memStore is a scaler.Store in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) Load(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	return b, ok, nil
}

func (s *memStore) Save(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = value
	return nil
}

var _ scaler.Store = (*memStore)(nil)

func decisionAt(at time.Time, reading float64, ok bool, from, to int) event.Event {
	return event.Event{Type: event.Decision, Time: at, Policy: "shop/web", App: "shop", Process: "web",
		From: from, To: to, Min: 1, Max: 10, Reading: reading, HasReading: ok, Target: 0.3}
}

func render(t *testing.T, c chart.Chart) string {
	t.Helper()
	var b bytes.Buffer
	if err := chart.Render(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHistoryKeepsEachMinutesHighestReadingAndItsScaleEvents(t *testing.T) {
	h := scaler.NewHistory()
	t0 := time.Date(2026, 3, 14, 14, 0, 0, 0, time.UTC)
	// Three decisions in one minute: the spike of the middle one is what the minute shows.
	h.Publish(context.Background(), decisionAt(t0, 0.2, true, 2, 2))
	h.Publish(context.Background(), decisionAt(t0.Add(10*time.Second), 0.9, true, 2, 4))
	h.Publish(context.Background(), decisionAt(t0.Add(20*time.Second), 0.25, true, 4, 4))
	h.Publish(context.Background(), decisionAt(t0.Add(time.Minute), 0, false, 4, 4)) // a failed reading
	h.Publish(context.Background(), event.Event{Type: event.Scaled, Time: t0.Add(11 * time.Second), Policy: "shop/web", From: 2, To: 4,
		Reason: "above_target", Explanation: "value 0.9s is 3.00x the 0.3s target: 2 -> 6, capped at MAX=4"})
	svg := render(t, h.Chart("shop/web", t0.Add(2*time.Minute), 0, true))
	for _, want := range []string{"<svg", "scaled up 2 → 4", "value 0.9s is 3.00x", "MAX 10", "MIN 1"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	scales := h.Scales("shop/web")
	if len(scales) != 1 || scales[0].From != 2 || scales[0].To != 4 || scales[0].Result != "ok" {
		t.Errorf("scale events = %+v, want the one 2 -> 4", scales)
	}
	c := h.Chart("shop/web", t0.Add(2*time.Minute), 0, true)
	readings := c.Columns[0].Panels[0].Series[0].Points
	if len(readings) != 2 || readings[0].V != float64(float32(0.9)) || !math.IsNaN(readings[1].V) {
		t.Errorf("readings = %+v, want the minute's highest 0.9 and a gap for the failed one", readings)
	}
}

func TestHistoryForgetsWhatIsOlderThanItsSpan(t *testing.T) {
	h := scaler.NewHistory()
	t0 := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for m := range 8 * 60 { // eight hours, one decision a minute
		h.Publish(context.Background(), decisionAt(t0.Add(time.Duration(m)*time.Minute), float64(m), true, 2, 2))
	}
	now := t0.Add(8 * time.Hour)
	points := h.Chart("shop/web", now, 0, false).Columns[0].Panels[0].Series[0].Points
	if len(points) != 6*60 {
		t.Fatalf("%d minutes kept, want the 360 of the last 6 hours", len(points))
	}
	if first := points[0].T; first.Before(now.Add(-scaler.HistorySpan)) {
		t.Errorf("the oldest minute kept is %v, before the span's start %v", first, now.Add(-scaler.HistorySpan))
	}
}

func TestHistorySurvivesARestartThroughTheStore(t *testing.T) {
	st := &memStore{}
	old := scaler.NewHistory()
	t0 := time.Date(2026, 3, 14, 14, 0, 0, 0, time.UTC)
	old.Publish(context.Background(), decisionAt(t0, 0.5, true, 2, 3))
	old.Publish(context.Background(), decisionAt(t0.Add(time.Minute), 0, false, 3, 3))
	old.Publish(context.Background(), event.Event{Type: event.ScaleFailed, Time: t0.Add(time.Second), Policy: "shop/web", From: 2, To: 3, Error: "422 boom"})
	if err := old.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	// The new process has recorded a minute of its own before it loads.
	fresh := scaler.NewHistory()
	fresh.Publish(context.Background(), decisionAt(t0.Add(2*time.Minute), 0.4, true, 3, 3))
	if err := fresh.Load(context.Background(), st, []string{"shop/web", "shop/worker"}); err != nil {
		t.Fatal(err)
	}
	points := fresh.Chart("shop/web", t0.Add(3*time.Minute), time.Hour, true).Columns[0].Panels[0].Series[0].Points
	if len(points) != 3 || points[0].V != float64(float32(0.5)) || !math.IsNaN(points[1].V) || points[2].V != float64(float32(0.4)) {
		t.Errorf("after the restart: %+v, want 0.5, a gap, then 0.4", points)
	}
	if s := fresh.Scales("shop/web"); len(s) != 1 || s[0].Result != "error" || s[0].Error != "422 boom" {
		t.Errorf("scale events after the restart: %+v", s)
	}
}
