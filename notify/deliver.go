package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/setting"
)

// Retry bounds the delivery of one message: a notification is worth a few tries, not a queue that grows behind a
// receiver that is down (the bus drops, and counts, what does not fit meanwhile). A zero field takes its default.
type Retry struct {
	Attempts int           // tries in all, the first included; default 5
	First    time.Duration // wait before the second try, doubling after each (with jitter); default 1s
	MaxWait  time.Duration // longest wait between two tries, unless Retry-After asks for more; default 30s
	Budget   time.Duration // no try starts later than this after the first; default 2m
	Timeout  time.Duration // limit on one request; default 10s
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.First <= 0 {
		r.First = time.Second
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 30 * time.Second
	}
	if r.Budget <= 0 {
		r.Budget = 2 * time.Minute
	}
	if r.Timeout <= 0 {
		r.Timeout = 10 * time.Second
	}
	return r
}

// backoff is the wait before try n+1 (n >= 1): First doubled n-1 times, capped at MaxWait, with jitter in its upper
// half so that instances retrying together spread out.
func (r Retry) backoff(n int) time.Duration {
	d := r.First
	for i := 1; i < n && d < r.MaxWait; i++ {
		d *= 2
	}
	d = min(d, r.MaxWait)
	return d/2 + rand.N(d/2+1)
}

// poster sends one notifier's messages: each with retries, one at a time, at most one try per gap when the
// receiver wants pacing (Slack). What it logs names the receiver by scheme://host only: the rest of a webhook URL
// is often the credential (Slack's /services/T…/B…/secret, a ?token=).
type poster struct {
	name   string // the notifier, in logs and metrics
	url    string
	where  string // scheme://host, for logs and errors
	hidden []string
	client *http.Client
	retry  Retry
	gap    time.Duration // least time between two tries; 0: none
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	log    *slog.Logger
	sent   *prometheus.CounterVec

	gone atomic.Bool // the receiver answered 410 Gone: it wants no more messages from us

	mu   sync.Mutex // one message at a time, so that pacing holds even if Publish is called concurrently
	last time.Time  // start of the last try, for gap
}

// newPoster builds a poster for the notifier called name, sending to rawURL (validated by Settings).
func newPoster(name, rawURL string, o Options, gap time.Duration) (*poster, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: invalid URL %s", name, redactURL(rawURL))
	}
	sent, err := notificationsCounter(o.Registerer)
	if err != nil {
		return nil, err
	}
	for _, r := range []string{"sent", "failed"} {
		sent.WithLabelValues(name, r)
	}
	p := &poster{
		name: name, url: rawURL, where: redactURL(rawURL), hidden: urlSecrets(rawURL),
		client: o.Client, retry: o.Retry.withDefaults(), gap: gap,
		now: o.Now, sleep: o.Sleep, log: o.Logger, sent: sent,
	}
	if p.client == nil {
		p.client = &http.Client{
			// A 3xx is a failure (Standard Webhooks): following it would send the message, and its signature,
			// somewhere no one configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.sleep == nil {
		p.sleep = sleep
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("notifier", name, "url", p.where)
	return p, nil
}

// notificationsCounter returns dynopilot_notifications_total, registering it with reg unless a notifier already
// did: every notifier shares it, by label.
func notificationsCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dynopilot_notifications_total",
		Help: "Notifications by notifier and result: sent (a 2xx, retries included), failed (given up, refused, or the receiver is gone).",
	}, []string{"notifier", "result"})
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("registering dynopilot_notifications_total: %w", err)
	}
	return c, nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// attempt is one try's request: the body, and the headers (a webhook signs each try with its own timestamp).
type attempt func(at time.Time) (body []byte, header http.Header)

// outcome of one try.
type outcome struct {
	status     int           // 0: no answer (a transport error or a timeout)
	err        error         // why it failed, safe to show
	retry      bool          // worth another try
	retryAfter time.Duration // the receiver's Retry-After, if any
}

// deliver sends one message, retrying what can be cured by waiting (a transport error, a timeout, 408, 429, 5xx)
// within p.retry, and logs the end once: a failure at Warn (Error for 410), success at Debug. A 4xx other than
// 408 and 429, and a 3xx, are not retried: the same message would be refused again.
func (p *poster) deliver(ctx context.Context, e event.Event, build attempt) {
	attrs := []any{"type", e.Type}
	if e.Policy != "" {
		attrs = append(attrs, "policy", e.Policy)
	}
	if p.gone.Load() {
		p.sent.WithLabelValues(p.name, "failed").Inc()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	start := p.now()
	var o outcome
	for n := 1; ; n++ {
		if p.gap > 0 && !p.last.IsZero() {
			if wait := p.last.Add(p.gap).Sub(p.now()); wait > 0 {
				if err := p.sleep(ctx, wait); err != nil {
					o = outcome{err: fmt.Errorf("waiting to send: %w", err)}
					break
				}
			}
		}
		at := p.now()
		p.last = at
		body, header := build(at)
		o = p.try(ctx, body, header)
		if o.err == nil {
			p.sent.WithLabelValues(p.name, "sent").Inc()
			p.log.Debug("notification sent", append(attrs, "status", o.status, "attempts", n)...)
			return
		}
		if !o.retry || n >= p.retry.Attempts || ctx.Err() != nil {
			attrs = append(attrs, "attempts", n)
			break
		}
		wait := p.retry.backoff(n)
		if o.retryAfter > 0 {
			wait = o.retryAfter
		}
		if p.now().Add(wait).Sub(start) > p.retry.Budget {
			attrs = append(attrs, "attempts", n, "retry_after", wait)
			o.err = fmt.Errorf("%w; giving up: the next try would be past the %s retry budget", o.err, p.retry.Budget)
			break
		}
		if err := p.sleep(ctx, wait); err != nil {
			attrs = append(attrs, "attempts", n)
			o.err = fmt.Errorf("%w; giving up: %w", o.err, err)
			break
		}
	}
	p.sent.WithLabelValues(p.name, "failed").Inc()
	if o.status != 0 {
		attrs = append(attrs, "status", o.status)
	}
	attrs = append(attrs, "err", o.err.Error())
	if o.status == http.StatusGone {
		p.gone.Store(true)
		p.log.Error("notification receiver answered 410 Gone: no more notifications to it until restart", attrs...)
		return
	}
	p.log.Warn("notification failed", attrs...)
}

// try sends one request and says what came of it.
func (p *poster) try(ctx context.Context, body []byte, header http.Header) outcome {
	ctx, cancel := context.WithTimeout(ctx, p.retry.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return outcome{err: errors.New(p.scrub(err.Error()))}
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dynopilot")
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL: keep only what went wrong, and scrub that too.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", p.retry.Timeout)
		}
		return outcome{err: fmt.Errorf("POST %s: %s", p.where, p.scrub(err.Error())), retry: true}
	}
	defer resp.Body.Close()
	// A little of the answer says why (Slack: "invalid_payload", "no_service"); the rest is drained so that the
	// connection can be reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	o := outcome{status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return o
	}
	msg := fmt.Sprintf("POST %s: %s", p.where, resp.Status)
	if s := strings.TrimSpace(string(snippet)); s != "" {
		msg += ": " + p.scrub(strconv.Quote(s))
	}
	o.err = errors.New(msg)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		o.retry = true
		o.retryAfter = retryAfter(resp.Header.Get("Retry-After"), p.now())
	}
	return o
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// scrub hides the URL's secret parts, and any credential, in a text that may quote them.
func (p *poster) scrub(s string) string {
	return setting.Scrub(s, p.hidden)
}

// redactURL shows a receiver's URL as scheme://host (with its port): enough to say which receiver failed. The
// path and query are left out whole, not redacted piece by piece, because a notification URL's path is commonly
// its credential (Slack's /services/T…/B…/<secret>, a webhook relay's /hooks/<token>).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(an invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// urlSecrets lists what of a URL must never be shown, longest first, for setting.Scrub: the URL itself, its path
// and query, every path segment and query value, its userinfo.
func urlSecrets(raw string) []string {
	out := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		out = append(out, u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery, u.Fragment)
		if u.User != nil {
			out = append(out, u.User.String())
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			}
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if tokenLike(seg) {
				out = append(out, seg)
			}
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				if tokenLike(v) {
					out = append(out, v)
				}
			}
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" || s == "/" })
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// tokenLike reports whether a path segment or query value looks like a credential rather than a word: hiding
// "services" or "hooks" wherever a message says them would mangle it and protect nothing.
func tokenLike(s string) bool {
	if len(s) >= 16 {
		return true
	}
	return len(s) >= 6 && strings.ContainsFunc(s, func(r rune) bool { return r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' })
}
