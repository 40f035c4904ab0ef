package herokuapi

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// LimiterConfig describes the account's token pool as Heroku runs it.
type LimiterConfig struct {
	Capacity int     // tokens the pool holds when full (Heroku: 4500)
	PerHour  float64 // tokens returned per hour (Heroku: 4500, i.e. 75 a minute)
	Reserve  int     // tokens never spent by dynopilot, left for people and other tools on the account
}

// Limiter is the one token bucket shared by every call dynopilot makes to an account. The pool is shared with the
// CLI, the dashboard and other tools we cannot see, so the local estimate is only a forecast: every
// RateLimit-Remaining the API returns replaces it, and a 429 sets it to empty. Callers wait their turn in order;
// a caller whose wait would pass its deadline is told so at once.
type Limiter struct {
	cfg  LimiterConfig
	rate float64 // tokens per second
	now  func() time.Time

	turn chan struct{} // held by the one caller allowed to take the next token, so waiting is first come, first served

	mu       sync.Mutex
	tokens   float64 // estimated tokens in the account's pool
	last     time.Time
	queued   int             // callers waiting for their turn or a token
	seq      uint64          // number of tokens handed out
	inflight map[uint64]bool // tokens handed out whose answer has not been seen
	synced   uint64          // the highest sequence whose answer updated tokens
	changed  chan struct{}   // closed and replaced when tokens is set from the API, to wake the waiter
}

// NewLimiter returns a limiter starting from a full pool; the first answer from the API corrects that.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if cfg.Capacity <= 0 {
		return nil, fmt.Errorf("rate limiter: capacity %d: expected a positive number of tokens", cfg.Capacity)
	}
	if cfg.PerHour <= 0 || math.IsNaN(cfg.PerHour) || math.IsInf(cfg.PerHour, 0) {
		return nil, fmt.Errorf("rate limiter: %v tokens per hour: expected a positive number", cfg.PerHour)
	}
	if cfg.Reserve < 0 || cfg.Reserve >= cfg.Capacity {
		return nil, fmt.Errorf("rate limiter: reserve %d: expected at least 0 and less than the capacity %d", cfg.Reserve, cfg.Capacity)
	}
	l := &Limiter{
		cfg:      cfg,
		rate:     cfg.PerHour / 3600,
		now:      time.Now,
		turn:     make(chan struct{}, 1),
		tokens:   float64(cfg.Capacity),
		inflight: map[uint64]bool{},
		changed:  make(chan struct{}),
	}
	l.last = l.now()
	return l, nil
}

// Config returns the configuration the limiter was made with.
func (l *Limiter) Config() LimiterConfig { return l.cfg }

// WaitError is returned when the token a caller needs would come after its deadline: failing at once lets the
// caller report and move on instead of holding its slot until the deadline.
type WaitError struct {
	Wait     time.Duration // how long the caller would have had to wait
	Deadline time.Duration // how long it had
	Reserve  int
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("heroku API rate limit: the next request token is %s away (keeping %d in reserve), past the caller's deadline in %s",
		e.Wait.Round(time.Millisecond), e.Reserve, e.Deadline.Round(time.Millisecond))
}

// Is makes a WaitError match RateLimit, like a 429 does.
func (e *WaitError) Is(target error) bool { return target == RateLimit }

// Ticket identifies one token handed out, so that the API's answer to that request can be matched to it.
type Ticket uint64

// Wait blocks until a token may be spent without touching the reserve, then takes it. It returns at once with a
// *WaitError when the token would come after ctx's deadline.
func (l *Limiter) Wait(ctx context.Context) (Ticket, error) {
	l.mu.Lock()
	l.queued++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.queued--
		l.mu.Unlock()
	}()
	if err := l.checkDeadline(ctx); err != nil {
		return 0, err
	}
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for a heroku API request token: %w", ctx.Err())
	}
	defer func() { <-l.turn }()
	for {
		l.mu.Lock()
		l.advance()
		if l.tokens-1 >= float64(l.cfg.Reserve) {
			l.tokens--
			l.seq++
			t := l.seq
			l.inflight[uint64(t)] = true
			l.mu.Unlock()
			return Ticket(t), nil
		}
		wait := l.waitFor(1)
		changed := l.changed
		l.mu.Unlock()
		if err := l.deadlineError(ctx, wait); err != nil {
			return 0, err
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-changed: // the API told us something new: recompute
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return 0, fmt.Errorf("waiting for a heroku API request token: %w", ctx.Err())
		}
	}
}

// checkDeadline fails at once when the callers already queued ahead would take the tokens until past the deadline.
func (l *Limiter) checkDeadline(ctx context.Context) error {
	l.mu.Lock()
	l.advance()
	wait := l.waitFor(float64(l.queued))
	l.mu.Unlock()
	return l.deadlineError(ctx, wait)
}

func (l *Limiter) deadlineError(ctx context.Context, wait time.Duration) error {
	deadline, ok := ctx.Deadline()
	if !ok || wait <= 0 {
		return nil
	}
	if left := time.Until(deadline); wait > left {
		return &WaitError{Wait: wait, Deadline: left, Reserve: l.cfg.Reserve}
	}
	return nil
}

// waitFor is how long until n tokens can be spent above the reserve. Callers hold mu.
func (l *Limiter) waitFor(n float64) time.Duration {
	missing := float64(l.cfg.Reserve) + n - l.tokens
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / l.rate * float64(time.Second))
}

// advance refills the estimate for the time passed. Callers hold mu.
func (l *Limiter) advance() {
	now := l.now()
	if d := now.Sub(l.last).Seconds(); d > 0 {
		l.tokens = math.Min(float64(l.cfg.Capacity), l.tokens+d*l.rate)
	}
	l.last = now
}

// Observe records the API's answer to the request made with ticket t: remaining is its RateLimit-Remaining header
// (known=false when the answer had none, as with transport errors). Every other request still unanswered is
// taken off the remaining count, since the API may not have counted it yet: concurrent requests reach the API in
// any order, and counting one twice costs a moment's wait where counting it not at all costs a 429. Answers older
// than one already seen are not used to set the count.
func (l *Limiter) Observe(t Ticket, remaining int, known bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.inflight, uint64(t))
	if !known || uint64(t) < l.synced {
		return
	}
	l.synced = uint64(t)
	l.advance()
	l.tokens = float64(remaining - len(l.inflight))
	close(l.changed)
	l.changed = make(chan struct{})
}

// Exhausted records a 429 for ticket t: the pool is empty, whatever we thought.
func (l *Limiter) Exhausted(t Ticket) { l.Observe(t, 0, true) }

// Release gives back a ticket whose request was never sent.
func (l *Limiter) Release(t Ticket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[uint64(t)] {
		delete(l.inflight, uint64(t))
		l.tokens++
	}
}

// Remaining returns the current estimate of tokens left in the account's pool.
func (l *Limiter) Remaining() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance()
	return l.tokens
}
