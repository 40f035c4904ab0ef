package herokuapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies a failed call by what the caller should do about it, so that callers branch with
// errors.Is(err, herokuapi.NotFound) instead of parsing status codes.
type Kind string

// The kinds of failure. Unauthorized and Forbidden need a person (a new token); NotFound and InvalidParams mean the
// configuration or the request is wrong; RateLimit, Server and Transport are worth retrying.
const (
	Unauthorized  Kind = "unauthorized"
	Forbidden     Kind = "forbidden"
	NotFound      Kind = "not_found"
	InvalidParams Kind = "invalid_params"
	RateLimit     Kind = "rate_limit"
	Server        Kind = "server_error"
	Transport     Kind = "transport_error"
	BadAnswer     Kind = "bad_answer" // the API answered something that is not what its schema promises
	Other         Kind = "other"
)

func (k Kind) Error() string { return "heroku: " + string(k) }

// tokenHelp is added to 401 and 403 errors: the usual cause is a CLI token that expired (a year, or 8 hours with SSO).
const tokenHelp = "create a long-lived token with `heroku authorizations:create -d dynopilot` and set HEROKU_API_KEY to it"

// Error is a failed Platform API call: the Heroku error id, status and message when the API answered, or the
// transport error when it did not. It never holds the token.
type Error struct {
	Method    string
	Endpoint  string // the route template, e.g. /apps/{app}/formation/{type}
	Path      string // the path called (app names are not secret)
	Status    int    // 0 for transport errors
	ID        string // Heroku's error id, e.g. "invalid_params"
	Message   string // Heroku's message
	RequestID string // the Request-Id header: quote it to Heroku support
	Err       error  // the underlying transport or decoding error, if any
}

// Kind classifies the error by the Heroku id when known, else by status.
func (e *Error) Kind() Kind {
	switch {
	case e.Err != nil && e.Status == 0:
		return Transport
	case e.ID == "bad_answer":
		return BadAnswer
	case e.Status == http.StatusUnauthorized || e.ID == "unauthorized":
		return Unauthorized
	case e.Status == http.StatusForbidden:
		return Forbidden
	case e.Status == http.StatusNotFound:
		return NotFound
	case e.Status == http.StatusTooManyRequests || e.ID == "rate_limit":
		return RateLimit
	case e.Status == http.StatusUnprocessableEntity:
		return InvalidParams
	case e.Status >= 500:
		return Server
	}
	return Other
}

// Is lets errors.Is(err, herokuapi.NotFound) match on the kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && e.Kind() == k
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	call := e.Method + " " + e.Path
	var msg string
	switch {
	case e.Status == 0:
		msg = fmt.Sprintf("heroku API %s: %v", call, e.Err)
	case e.Kind() == BadAnswer:
		msg = fmt.Sprintf("heroku API %s: unexpected answer (status %d): %v", call, e.Status, e.Err)
	default:
		id := e.ID
		if id == "" {
			id = http.StatusText(e.Status)
		}
		msg = fmt.Sprintf("heroku API %s: %d %s: %s", call, e.Status, id, e.Message)
	}
	if e.RequestID != "" {
		msg += " (Request-Id " + e.RequestID + ")"
	}
	if k := e.Kind(); k == Unauthorized || k == Forbidden {
		msg += "; " + tokenHelp
	}
	return msg
}

// retryable reports whether another attempt of an idempotent call may succeed.
func retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Kind() {
	case RateLimit, Server, Transport:
		return true
	}
	return false
}
