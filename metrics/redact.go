package metrics

import (
	"net/url"
	"slices"
	"strings"
)

// redacted replaces a secret wherever a URL is shown; the same marker as net/url's URL.Redacted.
const redacted = "xxxxx"

// Redact returns rawURL with every secret it may carry replaced by "xxxxx": the password of its userinfo, the values
// of query parameters whose name says they are secret (password, token, key, secret, auth), and the token of a
// HireFire path (/hirefire/TOKEN/info). URLs are shown in errors, logs and `dynopilot check`; secrets never are.
//
// It works on the text rather than trusting net/url, because a password holding '/', '?', '#' or '@' makes url.Parse
// misread where the userinfo ends; when in doubt it hides more, never less.
func Redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		scheme, rest = "", rawURL
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, hasPassword := rest[:at], false
		if name, _, found := strings.Cut(user, ":"); found {
			user, hasPassword = name, true
		}
		switch {
		case strings.ContainsAny(user, "/?#"):
			rest = redacted + "@" + rest[at+1:]
		case hasPassword:
			rest = user + ":" + redacted + "@" + rest[at+1:]
		}
	}
	rest = redactPathAndQuery(rest)
	if ok {
		return scheme + "://" + rest
	}
	return rest
}

// redactUserinfo is Redact hiding the whole userinfo, user name included.
func redactUserinfo(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok || !strings.Contains(rest, "@") {
		return Redact(rawURL)
	}
	return Redact(scheme + "://" + redacted + "@" + rest[strings.LastIndex(rest, "@")+1:])
}

// redactPathAndQuery hides the HireFire token segment and secret query values of host[/path][?query][#fragment].
func redactPathAndQuery(s string) string {
	s, _, hasFragment := strings.Cut(s, "#")
	s, query, hasQuery := strings.Cut(s, "?")
	segments := strings.Split(s, "/")
	for i := 0; i+2 < len(segments); i++ {
		if strings.EqualFold(segments[i], "hirefire") && segments[i+2] == "info" {
			segments[i+1] = redacted
		}
	}
	s = strings.Join(segments, "/")
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, found := strings.Cut(p, "="); found && secretParam(k) {
				params[i] = k + "=" + redacted
			}
		}
		s += "?" + strings.Join(params, "&")
	}
	if hasFragment {
		s += "#" + redacted
	}
	return s
}

// secretParam reports whether a query parameter's name says its value is a secret.
func secretParam(name string) bool {
	name = strings.ToLower(name)
	for _, word := range []string{"pass", "pwd", "token", "secret", "key", "auth"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// secretsOf lists the secrets rawURL carries, as they may appear in an error text (raw and percent-decoded), longest
// first, so that they can be scrubbed from whatever a client library puts in its messages.
func secretsOf(rawURL string) []string {
	var out []string
	add := func(s string) {
		if s == "" || s == redacted {
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
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		rest = rawURL
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user := rest[:at]
		if name, password, found := strings.Cut(user, ":"); found {
			add(password)
			if strings.ContainsAny(name, "/?#") {
				add(user)
			}
		} else if strings.ContainsAny(user, "/?#") {
			add(user)
		}
		rest = rest[at+1:]
	}
	rest, fragment, _ := strings.Cut(rest, "#")
	add(fragment)
	path, query, _ := strings.Cut(rest, "?")
	segments := strings.Split(path, "/")
	for i := 0; i+2 < len(segments); i++ {
		if strings.EqualFold(segments[i], "hirefire") && segments[i+2] == "info" {
			add(segments[i+1])
		}
	}
	for _, p := range strings.Split(query, "&") {
		if k, v, found := strings.Cut(p, "="); found && secretParam(k) {
			add(v)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}
