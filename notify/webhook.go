package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dynopilot/dynopilot/event"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com/).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a Standard Webhooks symmetric secret: whsec_ and the base64 of the key.
const SecretPrefix = "whsec_"

// Tolerance is how far a webhook's timestamp may be from the receiver's clock for Verify to accept it: the
// Standard Webhooks libraries' five minutes, which stops a captured message from being replayed later.
const Tolerance = 5 * time.Minute

// Secret is a Standard Webhooks signing key. It prints as whsec_(hidden) however it is formatted or logged, so
// that it cannot leak through a log line or an error.
type Secret struct{ key []byte }

// ParseSecret reads a secret as whsec_<base64> (the prefix may be left out, as the reference libraries allow).
func ParseSecret(s string) (Secret, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return Secret{}, errors.New("the part after whsec_ is not valid base64")
	}
	if len(key) == 0 {
		return Secret{}, errors.New("the secret is empty")
	}
	return Secret{key: key}, nil
}

// Len is the key's length in bytes.
func (s Secret) Len() int { return len(s.key) }

// String hides the key.
func (Secret) String() string { return SecretPrefix + "(hidden)" }

// GoString hides the key from %#v too.
func (s Secret) GoString() string { return s.String() }

// LogValue hides the key from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Sign returns the webhook-signature value for one message: "v1," and the base64 of HMAC-SHA256 over
// "{id}.{unix seconds}.{body}", exactly as Standard Webhooks defines it.
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(s.mac(id, ts.Unix(), body))
}

func (s Secret) mac(id string, unix int64, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, unix, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors Verify returns, for a receiver that wants to tell them apart.
var (
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp      = errors.New("webhook-timestamp is invalid or too far from now")
	ErrSignature      = errors.New("no valid signature")
)

// Verify checks a received webhook as a Standard Webhooks receiver does: the three headers are there, the
// timestamp is within Tolerance of now (no replay), and one of the space-separated v1 signatures is the
// HMAC-SHA256 of "{id}.{timestamp}.{body}" with secret (whsec_…), compared in constant time. body must be the
// bytes received, before any JSON parsing: re-encoding changes them.
func Verify(secret string, header http.Header, body []byte, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	id, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(unix, 0)); d > Tolerance || d < -Tolerance {
		return ErrTimestamp
	}
	want := key.mac(id, unix, body)
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}

// Webhook is the generic webhook notifier: each event is POSTed as a Standard Webhooks message, signed with the
// secret, {"type": …, "timestamp": …, "data": {…}}, for machines (a chat bridge, an incident tool, an audit log).
type Webhook struct {
	p      *poster
	secret Secret
}

// NewWebhook returns the notifier for validated settings.
func NewWebhook(s WebhookSettings, o Options) (*Webhook, error) {
	secret, err := ParseSecret(s.Secret)
	if err != nil {
		return nil, fmt.Errorf("DYNOPILOT_WEBHOOK_SECRET: %w", err)
	}
	p, err := newPoster("webhook", s.URL, o, 0)
	if err != nil {
		return nil, err
	}
	return &Webhook{p: p, secret: secret}, nil
}

// Publish sends e, retrying within the poster's bounds. Every try carries the same webhook-id (the receiver's
// idempotency key) and its own timestamp and signature, as the standard asks. Decisions are never sent.
func (w *Webhook) Publish(ctx context.Context, e event.Event) {
	if e.Type == event.Decision {
		return
	}
	body, err := WebhookBody(e)
	if err != nil {
		w.p.log.Error("cannot encode a webhook", "type", e.Type, "policy", e.Policy, "err", err)
		return
	}
	id := messageID()
	w.p.deliver(ctx, e, func(at time.Time) ([]byte, http.Header) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
		h.Set(HeaderSignature, w.secret.Sign(id, at, body))
		return body, h
	})
}

// messageID is a new webhook-id: msg_ and a time-ordered UUID (version 7), so that a receiver's log sorts by it.
func messageID() string {
	u, err := uuid.NewV7()
	if err != nil {
		u = uuid.New()
	}
	return "msg_" + strings.ReplaceAll(u.String(), "-", "")
}

// WebhookBody is the JSON a webhook carries for e:
//
//	{"type": "scaled", "timestamp": "2025-01-10T14:05:00Z", "data": {…}}
//
// type is the event type as DYNOPILOT_WEBHOOK_EVENTS names it (Standard Webhooks suggests dotted names such as
// policy.scaled; these are flat so that what a user filters on is what a receiver gets), timestamp when it
// happened (RFC 3339, UTC), not when it was sent: webhook-timestamp says that. data
// always has "summary", one readable sentence; for a policy's event also policy, app, process, from, to, wanted,
// min, max, reason, reading (null when there was none), target and explanation; then per type: dry_run (scaled),
// error (scale_failed, reading_failing), failures and fallback_after (reading_failing, reading_recovered), since
// (pinned_at_max_ended, reading_recovered), leader (leadership_changed), expires_at (token_expiring).
func WebhookBody(e event.Event) ([]byte, error) {
	d := map[string]any{"summary": Summary(e)}
	if e.Policy != "" {
		d["policy"], d["app"], d["process"] = e.Policy, e.App, e.Process
		d["from"], d["to"], d["wanted"], d["min"], d["max"] = e.From, e.To, e.Wanted, e.Min, e.Max
		d["reason"], d["target"], d["explanation"] = e.Reason, number(e.Target), e.Explanation
		d["reading"] = nil
		if e.HasReading {
			d["reading"] = number(e.Reading)
		}
	}
	switch e.Type {
	case event.Scaled:
		d["dry_run"] = e.DryRun
	case event.ScaleFailed:
		d["error"] = e.Error
	case event.ReadingFailing, event.ReadingRecovered:
		d["failures"], d["fallback_after"] = e.Failures, e.FallbackAfter
		if e.Type == event.ReadingFailing {
			d["error"] = e.Error
		} else {
			d["since"] = timestamp(e.Since)
		}
	case event.PinnedAtMaxEnded:
		d["since"] = timestamp(e.Since)
	case event.LeadershipChanged:
		d["leader"] = e.Leader
	case event.TokenExpiring:
		d["expires_at"] = timestamp(e.ExpiresAt)
	}
	return json.Marshal(struct {
		Type      event.Type     `json:"type"`
		Timestamp any            `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{e.Type, timestamp(e.Time), d})
}

// number is f for JSON, which has no NaN or infinities: null for those.
func number(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// timestamp is t in RFC 3339 UTC, or null when unknown.
func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}
