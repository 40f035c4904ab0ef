package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/event"
)

// SlackGap is the least time between two messages to one Slack incoming webhook: Slack allows one per second
// and answers 429 with Retry-After beyond that.
const SlackGap = time.Second

// SlackRepeat is how long Slack hears nothing more about a policy's failing PATCHes after it was told: during a
// Heroku outage every tick fails, and a team channel wants to know once, not six times a minute. The next message
// after the quiet time says how many failures it left out.
const SlackRepeat = 15 * time.Minute

// Slack is the Slack notifier: a short readable message per event to an incoming webhook ({"text": …}), at most
// one per SlackGap, honouring 429 Retry-After.
type Slack struct {
	p *poster

	mu      sync.Mutex
	failing map[string]*repeat // by policy: scale_failed messages being held back
}

// repeat is a policy's failing PATCHes since Slack was last told of one.
type repeat struct {
	told    time.Time // when the last message about them was sent
	skipped int       // failures since, not sent
}

// NewSlack returns the notifier for validated settings.
func NewSlack(s SlackSettings, o Options) (*Slack, error) {
	p, err := newPoster("slack", s.URL, o, SlackGap)
	if err != nil {
		return nil, err
	}
	return &Slack{p: p, failing: map[string]*repeat{}}, nil
}

// Publish sends e to Slack. Decisions are never sent, and a policy's repeated scale failures are held back for
// SlackRepeat.
func (s *Slack) Publish(ctx context.Context, e event.Event) {
	if e.Type == event.Decision {
		return
	}
	text, ok := s.text(e)
	if !ok {
		return
	}
	body, err := json.Marshal(struct {
		Text string `json:"text"`
	}{text})
	if err != nil {
		s.p.log.Error("cannot encode a Slack message", "type", e.Type, "policy", e.Policy, "err", err)
		return
	}
	s.p.deliver(ctx, e, func(time.Time) ([]byte, http.Header) { return body, nil })
}

// text is e's message, or false when it is held back.
func (s *Slack) text(e event.Event) (string, bool) {
	var b strings.Builder
	b.WriteString(icon(e))
	b.WriteString(" ")
	b.WriteString(escape(Summary(e)))
	if e.Type == event.ScaleFailed {
		at := e.Time
		if at.IsZero() {
			at = s.p.now()
		}
		s.mu.Lock()
		r := s.failing[e.Policy]
		if r != nil && at.Sub(r.told) < SlackRepeat {
			r.skipped++
			s.mu.Unlock()
			return "", false
		}
		if r != nil && r.skipped > 0 {
			fmt.Fprintf(&b, " (%d more failures since %s were not sent)", r.skipped, r.told.UTC().Format("15:04 MST"))
		}
		s.failing[e.Policy] = &repeat{told: at}
		s.mu.Unlock()
	}
	if e.Explanation != "" && e.Policy != "" {
		b.WriteString("\n>")
		b.WriteString(escape(e.Explanation))
	}
	return b.String(), true
}

// icon is the emoji a message starts with, so that a channel can be skimmed: trouble, relief, or news.
func icon(e event.Event) string {
	switch e.Type {
	case event.Scaled:
		if e.To < e.From {
			return ":arrow_down:"
		}
		return ":arrow_up:"
	case event.ScaleFailed:
		return ":x:"
	case event.PinnedAtMax, event.ReadingFailing, event.TokenExpiring:
		return ":warning:"
	case event.PinnedAtMaxEnded, event.ReadingRecovered:
		return ":white_check_mark:"
	}
	return ":information_source:"
}

// escape makes text literal in a Slack message: Slack reads &, < and > as markup (links, mentions) and asks for
// exactly these three to be escaped.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
