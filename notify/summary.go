package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/event"
)

// Summary says what e means in one sentence a person reads at a glance, with its numbers: the headline of a
// Slack message and the "summary" of a webhook. The decision's own explanation goes with it where there is one;
// the summary says why it matters.
func Summary(e event.Event) string {
	name := e.Policy
	switch e.Type {
	case event.Scaled:
		if e.DryRun {
			return fmt.Sprintf("%s would scale %s from %d to %s (dry run; %s)", name, direction(e.From, e.To), e.From, dynos(e.To), e.Reason)
		}
		return fmt.Sprintf("%s scaled %s from %d to %s (%s)", name, direction(e.From, e.To), e.From, dynos(e.To), e.Reason)
	case event.ScaleFailed:
		return fmt.Sprintf("%s: scaling from %d to %s failed: %s", name, e.From, dynos(e.To), orUnknown(e.Error))
	case event.PinnedAtMax:
		s := fmt.Sprintf("%s is pinned at MAX=%s", name, dynos(e.Max))
		if e.Wanted > e.Max {
			s += fmt.Sprintf(": it wants %d", e.Wanted)
		}
		return s + readingText(e)
	case event.PinnedAtMaxEnded:
		return fmt.Sprintf("%s is no longer pinned at MAX=%s%s: now at %d%s", name, dynos(e.Max), lasted(e), e.To, readingText(e))
	case event.ReadingFailing:
		return fmt.Sprintf("%s: the last %d readings failed (FALLBACK_AFTER=%d), holding at %s: %s", name, e.Failures,
			e.FallbackAfter, dynos(e.To), orUnknown(e.Error))
	case event.ReadingRecovered:
		return fmt.Sprintf("%s: readings work again%s%s", name, lasted(e), readingText(e))
	case event.LeadershipChanged:
		if e.Leader {
			return "this dynopilot instance now leads: it reads, decides and scales"
		}
		return "this dynopilot instance no longer leads: another instance scales"
	case event.TokenExpiring:
		s := "the Heroku API token expires"
		if !e.ExpiresAt.IsZero() {
			s += " on " + e.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")
			if !e.Time.IsZero() && e.ExpiresAt.After(e.Time) {
				s += ", in " + span(e.ExpiresAt.Sub(e.Time))
			}
		}
		return s + ": renew it and set HEROKU_API_KEY, or dynopilot stops scaling"
	case event.Decision:
		return fmt.Sprintf("%s: %s %d -> %d (%s)", name, e.Action, e.From, e.To, e.Reason)
	}
	return fmt.Sprintf("%s %s", e.Type, name)
}

func direction(from, to int) string {
	if to < from {
		return "down"
	}
	return "up"
}

func dynos(n int) string {
	if n == 1 {
		return "1 dyno"
	}
	return strconv.Itoa(n) + " dynos"
}

func orUnknown(s string) string {
	if s == "" {
		return "(no error given)"
	}
	return s
}

// readingText is " (reading 0.91, target 0.3)" when there was a reading.
func readingText(e event.Event) string {
	if !e.HasReading {
		return ""
	}
	return fmt.Sprintf(" (reading %s, target %s)", num(e.Reading), num(e.Target))
}

// num shows a reading with at most four significant digits: 0.6234 rather than 0.62340000001.
func num(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// lasted is " after 23m" for an episode that began at e.Since.
func lasted(e event.Event) string {
	if e.Since.IsZero() || e.Time.Before(e.Since) {
		return ""
	}
	return " after " + span(e.Time.Sub(e.Since))
}

// span shows a duration as people say it: 45s, 1m30s, 23m, 5h10m, 6 days.
func span(d time.Duration) string {
	switch {
	case d < time.Hour:
		d = d.Round(time.Second)
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
	default:
		return fmt.Sprintf("%d days", int(d.Round(24*time.Hour)/(24*time.Hour)))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}
