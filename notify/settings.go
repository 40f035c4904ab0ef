package notify

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/setting"
)

// The default event lists. A webhook is read by machines, which want every scale event to keep their own record;
// a team channel wants only what needs a person (and each episode's end, so that no one is left wondering):
// scaled is off for Slack because a busy app scales many times a day.
const (
	DefaultWebhookEvents = "scaled,scale_failed,pinned_at_max,pinned_at_max_ended,reading_failing,reading_recovered,leadership_changed,token_expiring"
	DefaultSlackEvents   = "scale_failed,pinned_at_max,pinned_at_max_ended,reading_failing,reading_recovered,leadership_changed,token_expiring"
)

// Settings are the notification settings, read from the environment with caarlos0/env. Each notifier has its own
// struct; a notifier without its URL is off.
type Settings struct {
	Webhook WebhookSettings
	Slack   SlackSettings
}

// WebhookSettings configure the Standard Webhooks notifier.
type WebhookSettings struct {
	URL    string `env:"DYNOPILOT_WEBHOOK_URL"`
	Secret string `env:"DYNOPILOT_WEBHOOK_SECRET"` // whsec_<base64 of 24 to 64 random bytes>
	Events string `env:"DYNOPILOT_WEBHOOK_EVENTS" envDefault:"scaled,scale_failed,pinned_at_max,pinned_at_max_ended,reading_failing,reading_recovered,leadership_changed,token_expiring"`
}

// SlackSettings configure the Slack notifier.
type SlackSettings struct {
	URL    string `env:"DYNOPILOT_SLACK_WEBHOOK_URL"` // https://hooks.slack.com/services/…
	Events string `env:"DYNOPILOT_SLACK_EVENTS" envDefault:"scale_failed,pinned_at_max,pinned_at_max_ended,reading_failing,reading_recovered,leadership_changed,token_expiring"`
}

// Parse reads the settings from environ (as os.Environ gives it) and validates them. The error, when not nil,
// unwraps (setting.Flatten) to one *setting.Error per problem, each naming its variable; no secret and no
// credential of a URL is ever in it.
func Parse(environ []string) (Settings, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var s Settings
	if err := env.ParseWithOptions(&s, env.Options{Environment: vars}); err != nil {
		return s, fmt.Errorf("notification settings: %w", err) // only strings: cannot happen
	}
	return s, s.Validate()
}

// Validate reports every problem at once.
func (s Settings) Validate() error {
	var l setting.List
	if s.Webhook.URL != "" {
		l.Add(checkURL("DYNOPILOT_WEBHOOK_URL", s.Webhook.URL, ""))
		if s.Webhook.Secret == "" {
			l.Add(setting.Errorf("DYNOPILOT_WEBHOOK_SECRET", "", "a whsec_ secret to sign webhooks with, such as the output of: echo whsec_$(openssl rand -base64 32)"))
		}
	} else if s.Webhook.Secret != "" {
		l.Add(setting.Errorf("DYNOPILOT_WEBHOOK_URL", "", "the webhook receiver's URL, since DYNOPILOT_WEBHOOK_SECRET is set"))
	}
	if s.Webhook.Secret != "" {
		l.Add(checkSecret(s.Webhook.Secret))
	}
	_, err := EventTypes("DYNOPILOT_WEBHOOK_EVENTS", s.Webhook.Events)
	l.Add(err)
	if s.Slack.URL != "" {
		l.Add(checkURL("DYNOPILOT_SLACK_WEBHOOK_URL", s.Slack.URL, " (a Slack incoming webhook, https://hooks.slack.com/services/…)"))
	}
	_, err = EventTypes("DYNOPILOT_SLACK_EVENTS", s.Slack.Events)
	l.Add(err)
	return l.Err()
}

// checkURL accepts an https:// URL, or an http:// one to this machine (a receiver in a test or beside the
// daemon): a notification's body and a Slack URL's token must not cross a network in clear. The value is shown
// as scheme://host only, since the path of a notification URL is often its credential.
func checkURL(name, value, what string) error {
	u, err := url.Parse(value)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "":
		return setting.Errorf(name, redactURL(value), "an https:// URL%s", what)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	}
	return setting.Errorf(name, redactURL(value), "an https:// URL%s; http:// is allowed only to localhost", what)
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkSecret accepts what Standard Webhooks calls a symmetric secret: whsec_ and the base64 of 24 to 64 bytes.
// setting.Error hides the value of a variable called …SECRET whole.
func checkSecret(value string) error {
	const name, how = "DYNOPILOT_WEBHOOK_SECRET", "; make one with: echo whsec_$(openssl rand -base64 32)"
	if !strings.HasPrefix(value, SecretPrefix) {
		return setting.Errorf(name, value, "whsec_ followed by base64"+how)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(value, SecretPrefix))
	switch {
	case err != nil:
		return setting.Errorf(name, value, "whsec_ followed by valid base64 (standard alphabet, with = padding)"+how)
	case len(key) < 24 || len(key) > 64:
		return setting.Errorf(name, value, "a key of 24 to 64 bytes after whsec_ (this one has %d)%s", len(key), how)
	}
	return nil
}

// EventTypes reads a comma-separated list of event types (spaces and empty items ignored; "all" is every type
// that can be notified) for the variable called name. An unknown name is an error listing the valid ones;
// decision is refused, since no one wants a message per tick.
func EventTypes(name, value string) ([]event.Type, error) {
	valid := event.Notifiable()
	var out []event.Type
	var unknown []string
	for _, item := range strings.Split(value, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		t := event.Type(item)
		switch {
		case item == "":
		case item == "all":
			out = append(out, valid...)
		case slices.Contains(valid, t):
			out = append(out, t)
		default:
			unknown = append(unknown, item)
		}
	}
	names := make([]string, len(valid))
	for i, t := range valid {
		names[i] = string(t)
	}
	switch {
	case len(unknown) == 1 && unknown[0] == string(event.Decision):
		return nil, setting.Errorf(name, value, "event types other than decision, which is per tick and never notified; valid: all, %s", strings.Join(names, ", "))
	case len(unknown) > 0:
		return nil, setting.Errorf(name, value, "comma-separated event types; %s unknown; valid: all, %s", strings.Join(unknown, ", "), strings.Join(names, ", "))
	case len(out) == 0:
		return nil, setting.Errorf(name, value, "at least one event type (unset the notifier's URL to turn it off); valid: all, %s", strings.Join(names, ", "))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// String describes the settings without secrets: receivers as scheme://host, the secret as set or unset.
func (s Settings) String() string {
	return fmt.Sprintf("webhook={%s} slack={%s}", s.Webhook, s.Slack)
}

// String describes the webhook settings without secrets.
func (s WebhookSettings) String() string {
	if s.URL == "" {
		return "off"
	}
	secret := "unset"
	if s.Secret != "" {
		secret = "set"
	}
	return fmt.Sprintf("url=%s secret=%s events=%s", redactURL(s.URL), secret, s.Events)
}

// String describes the Slack settings without the webhook's token.
func (s SlackSettings) String() string {
	if s.URL == "" {
		return "off"
	}
	return fmt.Sprintf("url=%s events=%s", redactURL(s.URL), s.Events)
}
