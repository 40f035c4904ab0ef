package herokuapi

import (
	"context"
	"net/url"
	"time"
)

// Account is whose token this is; reading it checks that the token works.
type Account struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Account returns the token's account.
func (c *Client) Account(ctx context.Context) (Account, error) {
	var out Account
	err := c.do(ctx, call{method: "GET", endpoint: "/account", path: "/account", limited: true}, &out)
	return out, err
}

// RateLimits returns the tokens left in the account's pool, and sets the limiter's estimate from it. The API does
// not count this call against the pool, so it is the cheap way to learn what other tools on the account have spent.
func (c *Client) RateLimits(ctx context.Context) (int, error) {
	from := c.limiter.readBegins()
	n, err := c.rateLimits(ctx, false)
	if err != nil {
		return 0, err
	}
	c.limiter.poolRead(from, n)
	return n, nil
}

// rateLimits reads GET /account/rate-limits; once: a single attempt.
func (c *Client) rateLimits(ctx context.Context, once bool) (int, error) {
	var out struct {
		Remaining *int `json:"remaining"`
	}
	cl := call{method: "GET", endpoint: "/account/rate-limits", path: "/account/rate-limits", once: once}
	if err := c.do(ctx, cl, &out); err != nil {
		return 0, err
	}
	if out.Remaining == nil || *out.Remaining < 0 {
		return 0, &Error{Method: cl.method, Endpoint: cl.endpoint, Path: cl.path, Status: 200, ID: "bad_answer",
			Err: errBadField("remaining", "a number of tokens, 0 or more")}
	}
	return *out.Remaining, nil
}

// Authorization is an OAuth authorization (a token) as far as dynopilot cares: when it expires.
type Authorization struct {
	ID        string
	ExpiresIn *time.Duration // nil: never expires
}

// Authorization reads authorization id and publishes its expiry as dynopilot_heroku_token_expires_in_seconds.
// The API's answer includes the token itself; it is not kept.
func (c *Client) Authorization(ctx context.Context, id string) (Authorization, error) {
	var out struct {
		ID          string `json:"id"`
		AccessToken *struct {
			ExpiresIn *int64 `json:"expires_in"`
		} `json:"access_token"`
	}
	cl := call{method: "GET", endpoint: "/oauth/authorizations/{id}", path: "/oauth/authorizations/" + url.PathEscape(id), limited: true}
	if err := c.do(ctx, cl, &out); err != nil {
		return Authorization{}, err
	}
	a := Authorization{ID: out.ID}
	if out.AccessToken != nil && out.AccessToken.ExpiresIn != nil {
		d := time.Duration(*out.AccessToken.ExpiresIn) * time.Second
		a.ExpiresIn = &d
		c.in.expiry.set(d.Seconds(), true)
	} else {
		c.in.expiry.set(0, false)
	}
	return a, nil
}

type fieldError struct{ field, expected string }

func (e fieldError) Error() string { return "field " + e.field + ": expected " + e.expected }

func errBadField(field, expected string) error { return fieldError{field, expected} }
