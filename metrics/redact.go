package metrics

import "github.com/dynopilot/dynopilot/internal/setting"

// Redact returns rawURL as it may be shown in errors, logs and `dynopilot check`: with its userinfo, the values of
// its query parameters whose name says they are secret, its fragment and the token of a HireFire path
// (/hirefire/TOKEN/info) replaced by "xxxxx". It is setting.Redact, the one place that decides what of a configured
// value is secret, for a URL that is not a variable's value.
func Redact(rawURL string) string { return setting.Redact("", rawURL) }

// secretsOf lists the secrets rawURL carries, as they may appear in a client library's error text.
func secretsOf(rawURL string) []string { return setting.Secrets("", rawURL) }
