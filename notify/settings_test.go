package notify_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/notify"
)

const slackURL = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/Xy9sEcReTtOkEn0123456789"

func TestParseDefaults(t *testing.T) {
	s, err := notify.Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Webhook.URL != "" || s.Slack.URL != "" {
		t.Errorf("notifiers on by default: %v", s)
	}
	subs, err := notify.Subscriptions(s, notify.Options{})
	if err != nil || len(subs) != 0 {
		t.Errorf("Subscriptions with nothing set = %v, %v; want none", subs, err)
	}
	// The documented constants are the defaults the tags give.
	if s.Webhook.Events != notify.DefaultWebhookEvents || s.Slack.Events != notify.DefaultSlackEvents {
		t.Errorf("defaults %q, %q differ from the constants", s.Webhook.Events, s.Slack.Events)
	}
	web, _ := notify.EventTypes("X", notify.DefaultWebhookEvents)
	if !reflect.DeepEqual(web, sorted(event.Notifiable())) {
		t.Errorf("the webhook's default is %v, want every notifiable type", web)
	}
	slack, _ := notify.EventTypes("X", notify.DefaultSlackEvents)
	if slices.Contains(slack, event.Scaled) || slices.Contains(slack, event.Decision) || len(slack) != len(web)-1 {
		t.Errorf("Slack's default is %v, want all but scaled", slack)
	}
}

func sorted(ts []event.Type) []event.Type {
	ts = slices.Clone(ts)
	slices.Sort(ts)
	return ts
}

func TestParseTurnsNotifiersOn(t *testing.T) {
	s, err := notify.Parse([]string{
		"DYNOPILOT_WEBHOOK_URL=https://example.com/hooks/dynopilot",
		"DYNOPILOT_WEBHOOK_SECRET=" + vectorSecret,
		"DYNOPILOT_WEBHOOK_EVENTS= scaled, pinned_at_max ,",
		"DYNOPILOT_SLACK_WEBHOOK_URL=" + slackURL,
		"DYNOPILOT_SLACK_EVENTS=all",
	})
	if err != nil {
		t.Fatal(err)
	}
	subs, err := notify.Subscriptions(s, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || subs[0].Name != "webhook" || subs[1].Name != "slack" {
		t.Fatalf("subscriptions %v", subs)
	}
	if !reflect.DeepEqual(subs[0].Types, []event.Type{event.PinnedAtMax, event.Scaled}) {
		t.Errorf("webhook types %v", subs[0].Types)
	}
	if !reflect.DeepEqual(subs[1].Types, sorted(event.Notifiable())) {
		t.Errorf("slack types %v, want all notifiable", subs[1].Types)
	}
	// A local receiver over http is fine.
	for _, u := range []string{"http://localhost:8080/x", "http://127.0.0.1:9/x", "http://[::1]:9/x"} {
		if _, err := notify.Parse([]string{"DYNOPILOT_SLACK_WEBHOOK_URL=" + u}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	// Neither the secret nor the Slack token shows when the settings are printed.
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%+v", s)} {
		if strings.Contains(out, "MfKQ9r8") || strings.Contains(out, "Xy9sEcReT") || strings.Contains(out, "T0123ABCD") {
			t.Errorf("the settings print a secret: %s", out)
		}
	}
}

// TestParseRefuses: every problem at once, each naming its variable and saying what is expected, with no secret
// and no credential of a URL in the text.
func TestParseRefuses(t *testing.T) {
	_, err := notify.Parse([]string{
		"DYNOPILOT_WEBHOOK_URL=http://hooks.example.com/relay/T0kenInPath99?key=Qu3ryS3cret",
		"DYNOPILOT_WEBHOOK_SECRET=MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // no whsec_
		"DYNOPILOT_WEBHOOK_EVENTS=scaled,scaling,pinned",
		"DYNOPILOT_SLACK_WEBHOOK_URL=hooks.slack.com/services/T0123ABCD/B0456EFGH/Xy9sEcReTtOkEn0123456789",
		"DYNOPILOT_SLACK_EVENTS=decision",
	})
	if err == nil {
		t.Fatal("accepted")
	}
	problems := setting.Flatten(err)
	text := err.Error()
	for _, want := range []string{
		`DYNOPILOT_WEBHOOK_URL="http://hooks.example.com": expected an https:// URL; http:// is allowed only to localhost`,
		`DYNOPILOT_WEBHOOK_SECRET="(hidden)": expected whsec_ followed by base64`,
		`DYNOPILOT_WEBHOOK_EVENTS="scaled,scaling,pinned": expected comma-separated event types; scaling, pinned unknown; valid: all, scaled, scale_failed, pinned_at_max`,
		`DYNOPILOT_SLACK_WEBHOOK_URL="(an invalid URL)": expected an https:// URL`,
		`DYNOPILOT_SLACK_EVENTS="decision": expected event types other than decision`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the error lacks %s:\n%s", want, text)
		}
	}
	if len(problems) != 5 {
		t.Errorf("%d problems, want 5:\n%s", len(problems), text)
	}
	for _, secret := range []string{"MfKQ9r8", "T0kenInPath99", "Qu3ryS3cret", "Xy9sEcReT", "T0123ABCD", "/relay"} {
		if strings.Contains(text, secret) {
			t.Errorf("the error shows %q:\n%s", secret, text)
		}
	}

	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"DYNOPILOT_WEBHOOK_URL=https://example.com/h"}, "DYNOPILOT_WEBHOOK_SECRET is empty: expected a whsec_ secret"},
		{[]string{"DYNOPILOT_WEBHOOK_SECRET=" + vectorSecret}, "DYNOPILOT_WEBHOOK_URL is empty: expected the webhook receiver's URL, since DYNOPILOT_WEBHOOK_SECRET is set"},
		{[]string{"DYNOPILOT_WEBHOOK_URL=https://example.com/h", "DYNOPILOT_WEBHOOK_SECRET=whsec_c2hvcnQ="}, `DYNOPILOT_WEBHOOK_SECRET="(hidden)": expected a key of 24 to 64 bytes after whsec_ (this one has 5)`},
		{[]string{"DYNOPILOT_WEBHOOK_URL=https://example.com/h", "DYNOPILOT_WEBHOOK_SECRET=whsec_!!!"}, "expected whsec_ followed by valid base64"},
		{[]string{"DYNOPILOT_SLACK_EVENTS=,"}, "DYNOPILOT_SLACK_EVENTS=\",\": expected at least one event type"},
		{[]string{"DYNOPILOT_SLACK_WEBHOOK_URL=ftp://hooks.slack.com/x"}, "expected an https:// URL (a Slack incoming webhook"},
	} {
		_, err := notify.Parse(c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%v) = %v, want %q", c.env, err, c.want)
		}
	}
}
