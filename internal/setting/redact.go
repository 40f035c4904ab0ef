package setting

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Redacted replaces a secret wherever a setting's value is shown; the same marker as net/url's URL.Redacted.
const Redacted = "xxxxx"

// hidden is shown instead of the whole value of a variable whose name says it holds a secret.
const hidden = "(hidden)"

// Redact returns the value of the setting called name as it may be shown in an error, a log line or `dynopilot
// check`. It is the one place that decides what of a configured value is secret:
//
//   - a variable whose name says it holds a secret (KEY, TOKEN, SECRET, PASS, PWD: HEROKU_API_KEY,
//     DYNOPILOT_DRAIN_TOKEN, a misspelt POLICY_0_SECRET) is hidden whole;
//   - a URL's userinfo is hidden whole (redis://xxxxx@host:6379), user name included, since a token is often put
//     there; so are the values of its query parameters whose name says they are secret (?password=, ?token=,
//     ?api_key=), its fragment, and the token of a HireFire path (/hirefire/TOKEN/info);
//   - a value without "://" but with an '@' and no space (user:password@host, a URL missing its scheme) has what
//     comes before its last '@' hidden;
//   - in a key=value connection string (PostgreSQL's "host=db user=app password=…"), every value whose key says it
//     is secret is hidden, quoted or not.
//
// name may be empty for a value that is not a variable's (a source's URL). Redact works on the text rather than
// trusting net/url, because a password holding '/', '?', '#' or '@' makes url.Parse misread where the userinfo ends,
// and a value url.Parse rejects must still be shown safely; when in doubt it hides more, never less.
func Redact(name, value string) string {
	if value == "" {
		return ""
	}
	if secretName(name) {
		return hidden
	}
	if scheme, rest, ok := strings.Cut(value, "://"); ok {
		return scheme + "://" + redactAuthority(rest)
	}
	if strings.Contains(value, "@") && !strings.ContainsAny(value, " \t\r\n") {
		return redactAuthority(value)
	}
	return secretPairs.ReplaceAllString(value, "${1}"+Redacted)
}

// Secrets lists the secrets the value of the setting called name carries, as they may appear in an error text
// (raw and percent-decoded), longest first, so that they can be scrubbed (Scrub) from whatever a client library
// put in its message. They are exactly what Redact hides, but for user names, which are not secrets on their own
// and would, scrubbed, mangle messages ("user=postgres").
func Secrets(name, value string) []string {
	var out []string
	add := func(s string) {
		if s == "" || s == Redacted {
			return
		}
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
		if d, err := url.QueryUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
	}
	_, authority, isURL := strings.Cut(value, "://")
	switch {
	case value == "":
	case secretName(name):
		add(value)
	case isURL || (strings.Contains(value, "@") && !strings.ContainsAny(value, " \t\r\n")):
		if !isURL {
			authority = value
		}
		if at := strings.LastIndex(authority, "@"); at > 0 {
			user := authority[:at]
			if name, password, found := strings.Cut(user, ":"); found {
				add(password)
				if strings.ContainsAny(name, "/?#") {
					add(user)
				}
			} else if strings.ContainsAny(user, "/?#") {
				add(user)
			}
			authority = authority[at+1:]
		}
		beforeFragment, fragment, _ := strings.Cut(authority, "#")
		add(fragment)
		path, query, _ := strings.Cut(beforeFragment, "?")
		segments := strings.Split(path, "/")
		for i := 0; i+2 < len(segments); i++ {
			if strings.EqualFold(segments[i], "hirefire") && segments[i+2] == "info" {
				add(segments[i+1])
			}
		}
		for _, p := range strings.Split(query, "&") {
			if k, v, found := strings.Cut(p, "="); found && secretWord(k) {
				add(v)
			}
		}
	default:
		for _, m := range secretPairs.FindAllStringSubmatch(value, -1) {
			v := m[2]
			add(v)
			if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
				add(strings.ReplaceAll(strings.ReplaceAll(v[1:len(v)-1], `\'`, `'`), `\\`, `\`))
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// Scrub makes a free text (a client library's error message) safe to show: it replaces every secret in s by
// Redacted, longest first so that a secret containing another is hidden whole, then redacts every URL the text
// quotes as Redact would (a library that echoes the URL it could not parse shows its userinfo otherwise).
func Scrub(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return quotedURL.ReplaceAllStringFunc(s, func(u string) string {
		scheme, rest, _ := strings.Cut(u, "://")
		return scheme + "://" + redactAuthority(rest)
	})
}

// quotedURL finds a URL inside a text: a scheme, "://", and what follows up to a space or a quote.
var quotedURL = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'`<>]*")

// secretPairs finds the key=value pairs of a connection string whose key says the value is secret (password=,
// sslpassword=, token=…): group 1 is the key with its '=', group 2 the value, single-quoted (with backslash
// escapes, possibly unterminated) or up to the next space.
var secretPairs = regexp.MustCompile(`(?i)((?:^|[\s;&,])[\w.-]*(?:pass|pwd|token|secret|key|auth)[\w.-]*\s*=\s*)('(?:\\.|[^'\\])*'?|[^\s;&,]*)`)

// secretName reports whether a variable's name says it holds a secret: its value is never shown.
func secretName(name string) bool {
	name = strings.ToUpper(name)
	for _, word := range []string{"KEY", "TOKEN", "SECRET", "PASS", "PWD"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// secretWord reports whether a query parameter's name says its value is a secret.
func secretWord(name string) bool {
	name = strings.ToLower(name)
	for _, word := range []string{"pass", "pwd", "token", "secret", "key", "auth"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// redactAuthority hides the userinfo, the HireFire token, secret query values and the fragment of
// [userinfo@]host[/path][?query][#fragment].
func redactAuthority(rest string) string {
	if at := strings.LastIndex(rest, "@"); at > 0 {
		rest = Redacted + "@" + rest[at+1:]
	}
	s, _, hasFragment := strings.Cut(rest, "#")
	s, query, hasQuery := strings.Cut(s, "?")
	segments := strings.Split(s, "/")
	for i := 0; i+2 < len(segments); i++ {
		if strings.EqualFold(segments[i], "hirefire") && segments[i+2] == "info" {
			segments[i+1] = Redacted
		}
	}
	s = strings.Join(segments, "/")
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, found := strings.Cut(p, "="); found && secretWord(k) {
				params[i] = k + "=" + Redacted
			}
		}
		s += "?" + strings.Join(params, "&")
	}
	if hasFragment {
		s += "#" + Redacted
	}
	return s
}
