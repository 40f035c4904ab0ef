package scaler

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/chart"
)

// History sizes: what the status page shows of each policy. Six hours of one-minute buckets is what a person asks
// about ("what happened at 14:05?") without opening Grafana: 360 buckets of 20 bytes whatever the policy's interval,
// and its last 20 scale events with their explanations, at most about 15 kB per policy once six hours have passed
// (60 MB for 4,000 policies that all scale often; a policy that rarely scales keeps far less).
const (
	HistorySpan       = 6 * time.Hour
	historyBucket     = time.Minute
	historyBuckets    = int(HistorySpan / historyBucket)
	historyScaleMarks = 20
)

// History keeps each policy's recent decisions and scale events for the status page: an event.Sink on the one event
// path (subscribe it to the bus for event.Decision, event.Scaled and event.ScaleFailed). Each minute keeps the
// highest reading of the decisions in it (so a spike between two samples is never lost), the dynos at its start,
// and the last desired quantity and bounds.
// With a Store (DYNOPILOT_STATE_URL) the leader saves it every minute and a new process loads it, so a restart or a
// failover keeps the history.
type History struct {
	mu       sync.Mutex
	policies map[string]*policyHistory
	dirty    map[string]bool // changed since the last save
}

// policyHistory is one policy's ring of minute buckets and its last scale events.
type policyHistory struct {
	Buckets []historyBucketT `json:"b"` // oldest first, at most historyBuckets, one per minute with a decision
	Scales  []ScaleMark      `json:"s"` // oldest first, at most historyScaleMarks
}

// historyBucketT is one minute of decisions, compact: quantities above 65,535 do not occur on Heroku.
type historyBucketT struct {
	Minute  int32   `json:"t"` // Unix minutes: an int32 lasts until the year 6053
	Reading float32 `json:"r"` // the highest usable reading of the minute; NaN (encoded -1) when none was
	Target  float32 `json:"g"`
	Current uint16  `json:"c"`
	Desired uint16  `json:"d"`
	Min     uint16  `json:"n"`
	Max     uint16  `json:"x"`
}

// ScaleMark is one scale event as the status page lists it.
type ScaleMark struct {
	At          time.Time `json:"at"`
	From        int       `json:"from"`
	To          int       `json:"to"`
	Result      string    `json:"result"` // ok, dry_run or error
	Reason      string    `json:"reason"`
	Explanation string    `json:"explanation"`
	Error       string    `json:"error,omitempty"`
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{policies: map[string]*policyHistory{}, dirty: map[string]bool{}}
}

var _ event.Sink = (*History)(nil)

// Publish records one event; it takes microseconds and never blocks on I/O.
func (h *History) Publish(_ context.Context, e event.Event) {
	if e.Policy == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.policies[e.Policy]
	if p == nil {
		p = &policyHistory{}
		h.policies[e.Policy] = p
	}
	h.dirty[e.Policy] = true
	switch e.Type {
	case event.Decision:
		if e.NoFormation {
			return
		}
		p.decision(e)
	case event.Scaled, event.ScaleFailed:
		result := "ok"
		switch {
		case e.Type == event.ScaleFailed:
			result = "error"
		case e.DryRun:
			result = "dry_run"
		}
		p.Scales = append(p.Scales, ScaleMark{At: e.Time, From: e.From, To: e.To, Result: result, Reason: e.Reason, Explanation: e.Explanation, Error: e.Error})
		if n := len(p.Scales); n > historyScaleMarks {
			p.Scales = slices.Delete(p.Scales, 0, n-historyScaleMarks)
		}
	}
}

func quantity16(n int) uint16 { return uint16(min(max(n, 0), math.MaxUint16)) }

// decision folds one decision into its minute. Its reading and target are the policy's own metric's (metric 1),
// whichever metric the decision is about, so that the chart draws one metric against its own target.
func (p *policyHistory) decision(e event.Event) {
	minute := int32(e.Time.Unix() / 60)
	reading := float32(math.NaN())
	if len(e.Metrics) > 0 {
		e.HasReading, e.Reading, e.Target = e.Metrics[0].OK, e.Metrics[0].Value, e.Metrics[0].Target
	}
	if e.HasReading {
		reading = float32(e.Reading)
	}
	n := len(p.Buckets)
	if n > 0 && p.Buckets[n-1].Minute == minute {
		b := &p.Buckets[n-1]
		if !math.IsNaN(float64(reading)) && (math.IsNaN(float64(b.Reading)) || reading > b.Reading) {
			b.Reading = reading
		}
		// Current stays the minute's first: the quantity at the minute's start (the scale events in the minute put
		// their changes at their own times); the rest is the minute's last word.
		b.Target, b.Desired, b.Min, b.Max = float32(e.Target), quantity16(e.To), quantity16(e.Min), quantity16(e.Max)
		return
	}
	if n > 0 && p.Buckets[n-1].Minute > minute {
		return // a clock that went back: the history keeps its order
	}
	p.Buckets = append(p.Buckets, historyBucketT{Minute: minute, Reading: reading, Target: float32(e.Target),
		Current: quantity16(e.From), Desired: quantity16(e.To), Min: quantity16(e.Min), Max: quantity16(e.Max)})
	// Drop what is older than the span: at most one bucket a minute, so the slice stays within historyBuckets.
	cut := 0
	for cut < len(p.Buckets) && p.Buckets[cut].Minute <= minute-int32(historyBuckets) {
		cut++
	}
	if cut > 0 {
		p.Buckets = slices.Delete(p.Buckets, 0, cut)
	}
}

// Scales returns the policy's last scale events, newest first.
func (h *History) Scales(policy string) []ScaleMark {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.policies[policy]
	if p == nil {
		return nil
	}
	out := slices.Clone(p.Scales)
	slices.Reverse(out)
	return out
}

// Chart is the status page's chart of one policy over span (at most HistorySpan) before now: the reading against
// its target above, the dynos (current and desired) within their bounds below, each scale event a dot that
// explains itself on hover. seconds says whether readings are latencies.
func (h *History) Chart(policy string, now time.Time, span time.Duration, seconds bool) chart.Chart {
	if span <= 0 || span > HistorySpan {
		span = HistorySpan
	}
	h.mu.Lock()
	var buckets []historyBucketT
	var scales []ScaleMark
	if p := h.policies[policy]; p != nil {
		buckets, scales = slices.Clone(p.Buckets), slices.Clone(p.Scales)
	}
	h.mu.Unlock()

	format := chart.Number
	if seconds {
		format = chart.Seconds
	}
	var reading, target, current, desired []chart.Point
	var lastMin, lastMax float64
	for i, b := range buckets {
		at := time.Unix(int64(b.Minute)*60, 0).UTC()
		if i > 0 && b.Minute-buckets[i-1].Minute > 2 { // minutes without a decision: a gap, not a line across
			gap := time.Unix((int64(buckets[i-1].Minute)+1)*60, 0).UTC()
			reading = append(reading, chart.Point{T: gap, V: math.NaN()})
		}
		reading = append(reading, chart.Point{T: at, V: float64(b.Reading)})
		target = append(target, chart.Point{T: at, V: float64(b.Target)})
		current = append(current, chart.Point{T: at, V: float64(b.Current)})
		desired = append(desired, chart.Point{T: at, V: float64(b.Desired)})
		lastMin, lastMax = float64(b.Min), float64(b.Max)
	}
	// A scale event changes the dynos when it happens, not at the end of its minute: its point goes into the step
	// line, so that its dot sits on the line.
	for _, m := range scales {
		if m.Result == "ok" && !m.At.Before(now.Add(-span)) {
			current = append(current, chart.Point{T: m.At, V: float64(m.To)})
		}
	}
	slices.SortStableFunc(current, func(a, b chart.Point) int { return a.T.Compare(b.T) })
	var markers []chart.Marker
	for _, m := range scales {
		if m.At.Before(now.Add(-span)) {
			continue
		}
		color, verb := "#2ca02c", "scaled up"
		switch {
		case m.Result == "error":
			color, verb = "#d62728", "failed to scale"
		case m.To < m.From:
			color, verb = "#9467bd", "scaled down"
		}
		if m.Result == "dry_run" {
			verb = "would have " + verb
		}
		title := fmt.Sprintf("%s UTC: %s %d → %d (%s): %s", m.At.UTC().Format("15:04:05"), verb, m.From, m.To, m.Reason, m.Explanation)
		if m.Error != "" {
			title += ": " + m.Error
		}
		markers = append(markers, chart.Marker{Kind: chart.Dot, At: m.At, Value: float64(m.To), Name: verb, Title: title, Color: color})
	}
	readingPanel := chart.Panel{Title: "reading", Format: format, Series: []chart.Series{
		{Name: "reading", Points: reading, Color: "#1f77b4"},
		{Name: "target", Points: target, Style: chart.Step, Dashed: true, Color: "#d62728"},
	}}
	dynos := chart.Panel{Title: "dynos", Series: []chart.Series{
		{Name: "current", Points: current, Style: chart.Step, Color: "#e6550d"},
		{Name: "desired", Points: desired, Style: chart.Step, Dashed: true, Color: "#555555"},
	}, Markers: markers}
	if len(buckets) > 0 {
		dynos.Rules = []chart.Rule{{Value: lastMax, Label: fmt.Sprintf("MAX %g", lastMax), Color: "#888888"},
			{Value: lastMin, Label: fmt.Sprintf("MIN %g", lastMin), Color: "#888888"}}
	}
	return chart.Chart{Width: 900, Height: 300, Start: now.Add(-span), End: now,
		Columns: []chart.Column{{Title: policy, Note: fmt.Sprintf("%d scale events in the last %s", countSince(scales, now.Add(-span)), spanText(span)),
			Panels: []chart.Panel{readingPanel, dynos}}}}
}

// spanText prints a span the way a person says it: "6h", "30m".
func spanText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func countSince(scales []ScaleMark, since time.Time) int {
	n := 0
	for _, m := range scales {
		if !m.At.Before(since) {
			n++
		}
	}
	return n
}

// historyKey is where a policy's history is kept in the Store, beside its decision state.
func historyKey(policy string) string { return "history/" + policy }

// encode is the policy's history as JSON, a NaN reading written as -1 (no reading is negative).
func (p *policyHistory) encode() ([]byte, error) {
	c := policyHistory{Buckets: slices.Clone(p.Buckets), Scales: p.Scales}
	for i := range c.Buckets {
		if math.IsNaN(float64(c.Buckets[i].Reading)) {
			c.Buckets[i].Reading = -1
		}
	}
	return json.Marshal(c)
}

// Save writes the history of every policy that changed since the last save. Only a leader's saves go through
// (the Store is fenced); a failed one is tried again at the next.
func (h *History) Save(ctx context.Context, st Store) error {
	h.mu.Lock()
	batch := map[string][]byte{}
	for name := range h.dirty {
		b, err := h.policies[name].encode()
		if err != nil {
			h.mu.Unlock()
			return fmt.Errorf("history of %s: %w", name, err)
		}
		batch[name] = b
	}
	h.dirty = map[string]bool{}
	h.mu.Unlock()
	for name, b := range batch {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := st.Save(sctx, historyKey(name), b)
		cancel()
		if err != nil {
			h.mu.Lock()
			for n := range batch {
				h.dirty[n] = true
			}
			h.mu.Unlock()
			return fmt.Errorf("save the history of %s: %w", name, err)
		}
	}
	return nil
}

// Load reads the saved history of the given policies, for a process that starts: what it has recorded itself
// already is kept, and the saved buckets go before it.
func (h *History) Load(ctx context.Context, st Store, policies []string) error {
	for _, name := range policies {
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		b, ok, err := st.Load(lctx, historyKey(name))
		cancel()
		if err != nil {
			return fmt.Errorf("load the history of %s: %w", name, err)
		}
		if !ok {
			continue
		}
		var saved policyHistory
		if err := json.Unmarshal(b, &saved); err != nil {
			return fmt.Errorf("the saved history of %s is not what this version writes: %w", name, err)
		}
		for i := range saved.Buckets {
			if saved.Buckets[i].Reading < 0 {
				saved.Buckets[i].Reading = float32(math.NaN())
			}
		}
		h.mu.Lock()
		p := h.policies[name]
		if p == nil {
			p = &policyHistory{}
			h.policies[name] = p
		}
		if n := len(p.Buckets); n > 0 {
			first := p.Buckets[0].Minute
			saved.Buckets = slices.DeleteFunc(saved.Buckets, func(b historyBucketT) bool { return b.Minute >= first })
		}
		if n := len(p.Scales); n > 0 {
			first := p.Scales[0].At
			saved.Scales = slices.DeleteFunc(saved.Scales, func(m ScaleMark) bool { return !m.At.Before(first) })
		}
		p.Buckets = append(saved.Buckets, p.Buckets...)
		p.Scales = append(saved.Scales, p.Scales...)
		if n := len(p.Scales); n > historyScaleMarks {
			p.Scales = slices.Delete(p.Scales, 0, n-historyScaleMarks)
		}
		h.mu.Unlock()
	}
	return nil
}
