// Package herokuapi is dynopilot's client for the Heroku Platform API: the few calls an autoscaler needs (formation
// list and update, account, rate limits, token expiry), all drawing from one account-wide Limiter so that every
// policy together stays within the pool Heroku gives an account, and leaves a reserve for the people using it.
//
// Every call is idempotent (GETs, and PATCHes of absolute quantities), so a 429, a 5xx or a transport error is
// retried with capped exponential backoff and jitter within the caller's deadline; nothing else is retried. A 429
// is first checked against GET /account/rate-limits (which takes no token), so that one 429 from an account that
// still has tokens does not stall every call while the limiter waits for a refill it does not need.
package herokuapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// DefaultBaseURL is the Platform API.
const DefaultBaseURL = "https://api.heroku.com"

// Config configures a Client. Token and Limiter are the only things a caller must think about.
type Config struct {
	BaseURL    string        // default DefaultBaseURL
	Token      string        // the API token; never logged
	Version    string        // dynopilot's version, for the User-Agent
	Timeout    time.Duration // limit on one attempt; default 10s
	Limiter    *Limiter      // the account's one limiter, which New lets read the pool; default: 4500 an hour, 450 reserved
	HTTPClient *http.Client  // default: a client with no timeout of its own (Timeout applies per attempt)
	Logger     *slog.Logger  // default: discard
	Registerer prometheus.Registerer

	// Backoff bounds for retries; defaults 250ms and 8s.
	MinBackoff, MaxBackoff time.Duration
}

// Client calls the Platform API. It is safe for concurrent use; share one per account.
type Client struct {
	base    *url.URL
	token   string
	ua      string
	timeout time.Duration
	limiter *Limiter
	hc      *http.Client
	log     *slog.Logger
	in      *instruments
	minBack time.Duration
	maxBack time.Duration
}

// New validates cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	// The errors are *setting.Error, which shows the value without its userinfo (or anything else secret).
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, setting.Errorf("HEROKU_API_URL", cfg.BaseURL, "an http(s) URL such as %s", DefaultBaseURL)
	}
	if base.User != nil {
		return nil, setting.Errorf("HEROKU_API_URL", cfg.BaseURL, "an http(s) URL without credentials: the token goes in HEROKU_API_KEY")
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, ErrNoToken
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Limiter == nil {
		cfg.Limiter, err = NewLimiter(LimiterConfig{Capacity: 4500, PerHour: 4500, Reserve: 450})
		if err != nil {
			return nil, err
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 8 * time.Second
	}
	in, err := newInstruments(cfg.Registerer, cfg.Limiter)
	if err != nil {
		return nil, fmt.Errorf("registering heroku API metrics: %w", err)
	}
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	c := &Client{
		base: base, token: cfg.Token, ua: "dynopilot/" + version + " (+https://github.com/dynopilot/dynopilot)",
		timeout: cfg.Timeout, limiter: cfg.Limiter, hc: cfg.HTTPClient, log: cfg.Logger, in: in,
		minBack: cfg.MinBackoff, maxBack: cfg.MaxBackoff,
	}
	cfg.Limiter.setPoolReader(c.readPool)
	return c, nil
}

// Limiter returns the account's limiter, for budgeting.
func (c *Client) Limiter() *Limiter { return c.limiter }

// call is one logical API call: retried attempts share it.
type call struct {
	method   string
	endpoint string // route template for metrics
	path     string
	body     any
	limited  bool // takes a token from the pool (rate-limits does not)
	once     bool // not retried: the caller tries again later
}

// do performs c with retries and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("encoding %s %s body: %w", cl.method, cl.endpoint, err)
		}
	}
	for attempt := 0; ; attempt++ {
		err := c.attempt(ctx, cl, body, out)
		if err == nil || cl.once || !retryable(err) {
			return err
		}
		wait := c.backoff(attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		c.log.Debug("retrying heroku API call", "method", cl.method, "endpoint", cl.endpoint, "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// backoff is capped exponential with full jitter, so that many callers retrying together spread out.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.minBack << min(attempt, 20)
	if d > c.maxBack || d <= 0 {
		d = c.maxBack
	}
	return d/2 + rand.N(d/2+1)
}

func (c *Client) attempt(ctx context.Context, cl call, body []byte, out any) error {
	var ticket Ticket
	if cl.limited {
		t, err := c.limiter.Wait(ctx)
		if err != nil {
			return err
		}
		ticket = t
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + cl.path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u.String(), rd)
	if err != nil {
		if cl.limited {
			c.limiter.Release(ticket)
		}
		return fmt.Errorf("building %s %s: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.ua)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	c.in.duration.WithLabelValues(cl.method, cl.endpoint).Observe(time.Since(start).Seconds())
	if err != nil {
		c.in.requests.WithLabelValues(cl.method, cl.endpoint, "error").Inc()
		if cl.limited {
			c.limiter.Observe(ticket, 0, false)
		}
		return &Error{Method: cl.method, Endpoint: cl.endpoint, Path: cl.path, Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, 10<<20))
	c.in.requests.WithLabelValues(cl.method, cl.endpoint, strconv.Itoa(resp.StatusCode)).Inc()

	reqID := resp.Header.Get("Request-Id")
	if cl.limited {
		if resp.StatusCode == http.StatusTooManyRequests {
			c.rateLimited(ctx, cl, ticket, reqID)
		} else {
			remaining, known := parseRemaining(resp.Header.Get("RateLimit-Remaining"))
			c.limiter.Observe(ticket, remaining, known)
		}
	}
	if readErr != nil {
		return &Error{Method: cl.method, Endpoint: cl.endpoint, Path: cl.path, Err: readErr, RequestID: reqID}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Method: cl.method, Endpoint: cl.endpoint, Path: cl.path, Status: resp.StatusCode, RequestID: reqID}
		var body struct{ ID, Message string }
		if json.Unmarshal(data, &body) == nil {
			e.ID, e.Message = body.ID, body.Message
		}
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(truncate(data, 200)))
		}
		c.log.Warn("heroku API call failed", "method", cl.method, "path", cl.path, "status", resp.StatusCode, "id", e.ID, "request_id", reqID)
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &Error{Method: cl.method, Endpoint: cl.endpoint, Path: cl.path, Status: resp.StatusCode, ID: "bad_answer", RequestID: reqID,
			Err: fmt.Errorf("decoding JSON %q: %w", truncate(data, 120), err)}
	}
	return nil
}

// rateLimited handles a 429 to the request made with ticket: the limiter takes the pool to be empty, then the pool
// is read again at once from GET /account/rate-limits (which takes no token), because a 429 does not prove the pool
// empty and assuming it would stall every call until the reserve refilled (about 6 minutes at Heroku's defaults).
// The 429's own RateLimit-Remaining is not trusted either way.
func (c *Client) rateLimited(ctx context.Context, cl call, ticket Ticket, reqID string) {
	c.limiter.Exhausted(ticket)
	if err := c.limiter.resync(ctx, uint64(ticket)); err != nil {
		c.log.Warn("heroku API answered 429 and the account's rate limit could not be read; assuming the pool empty",
			"method", cl.method, "path", cl.path, "request_id", reqID, "err", err)
		return
	}
	c.log.Info("heroku API answered 429; re-read the account's rate limit", "method", cl.method, "path", cl.path,
		"request_id", reqID, "remaining", int(math.Floor(c.limiter.Remaining())))
}

// readPool is the limiter's way to read the account's pool: one GET /account/rate-limits, not retried (the limiter
// reads again later), taking no token.
func (c *Client) readPool(ctx context.Context) (int, error) {
	n, err := c.rateLimits(ctx, true)
	if err != nil {
		return 0, err
	}
	c.log.Debug("read the account's rate limit", "remaining", n)
	return n, nil
}

func parseRemaining(h string) (int, bool) {
	if h == "" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return append(b[:n:n], "…"...)
	}
	return b
}

// scrubURLError drops the URL from net/http's errors: it adds nothing the Error does not already say.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
