// Package setting provides the error type every configuration problem is reported with, so that the loader can
// name the exact environment variable (POLICY_0_MIN, HEROKU_API_URL) while the packages that validate settings
// (policy, metrics) know only their own setting names (MIN, SOURCE_URL).
package setting

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is one wrong setting: which, the value it had and what was expected. Value is the value as configured:
// Error redacts it (Redact) when it formats it, and scrubs any secret of it from Expected (which may quote a client
// library's message), so that no caller can forget to and no secret ever reaches an error, a log line or
// `dynopilot check`.
type Error struct {
	Name     string // the setting as the validating package knows it, e.g. "MIN"; the loader prefixes it
	Value    string
	Expected string
}

func (e *Error) Error() string {
	name := e.Name
	if !identifier(name) { // a variable's name may be anything but '='; a strange one is shown quoted, and redacted
		name = strconv.Quote(Redact("", name))
	}
	expected := Scrub(e.Expected, Secrets(e.Name, e.Value))
	if e.Value == "" {
		return fmt.Sprintf("%s is empty: expected %s", name, expected)
	}
	return fmt.Sprintf("%s=%q: expected %s", name, Redact(e.Name, e.Value), expected)
}

// identifier reports whether name is made of ASCII letters, digits, '_', '-' and '.', as the names of variables
// and flags are.
func identifier(name string) bool {
	for _, c := range name {
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return name != ""
}

// Errorf builds an *Error with a formatted expectation.
func Errorf(name, value, expected string, args ...any) *Error {
	return &Error{Name: name, Value: value, Expected: fmt.Sprintf(expected, args...)}
}

// List collects every problem found while validating, so that a user sees all of them at once rather than fixing
// one per deploy.
type List []error

// Add appends err when it is not nil.
func (l *List) Add(err error) {
	if err != nil {
		*l = append(*l, err)
	}
}

// Err returns nil for an empty list, else an error that unwraps to every problem in order.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return listError(append([]error(nil), l...))
}

type listError []error

func (l listError) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (l listError) Unwrap() []error { return l }

// Flatten returns every leaf error inside err (following Unwrap() []error), in order; a nil err gives nil.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	m, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range m.Unwrap() {
		out = append(out, Flatten(e)...)
	}
	return out
}

// Prefixed returns a copy of every *Error inside err with prefix put before its Name (for example "POLICY_0_"),
// leaving other errors as they are; the result unwraps to every problem.
func Prefixed(prefix string, err error) error {
	leaves := Flatten(err)
	if leaves == nil {
		return nil
	}
	var out List
	for _, e := range leaves {
		// Only a leaf that is itself an *Error is renamed; anything else (even one wrapping several problems)
		// is kept whole, so that no problem is ever dropped.
		if se, ok := e.(*Error); ok {
			c := *se
			c.Name = prefix + c.Name
			out.Add(&c)
			continue
		}
		out.Add(e)
	}
	return out.Err()
}
