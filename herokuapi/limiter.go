package herokuapi

import (
	"context"
	"errors"
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

// DefaultResyncEvery is how often, at most, the limiter re-reads the account's pool while callers would have to
// wait for a token (see Limiter).
const DefaultResyncEvery = 15 * time.Second

// Limiter is the one token bucket shared by every call dynopilot makes to an account. The pool is shared with the
// CLI, the dashboard and other tools we cannot see, so the local estimate is only a forecast: every
// RateLimit-Remaining the API returns replaces it. A 429 sets it to empty, but only until the pool is read again:
// the Client that owns the limiter re-reads it at once from GET /account/rate-limits, which takes no token, since a
// 429 does not prove the pool is empty (another throttle, a proxy, or a moment's race may answer one). Whenever the
// estimate says a caller must wait and the API has told us nothing for DefaultResyncEvery, the pool is read again
// before the caller waits or is refused, and every DefaultResyncEvery while it waits, so a pool that has tokens
// is never left unused for long because of a stale estimate. Callers wait their turn in order; a caller whose wait
// would pass its deadline is told so at once.
type Limiter struct {
	cfg         LimiterConfig
	rate        float64 // tokens per second
	clock       clock
	resyncEvery time.Duration

	turn chan struct{} // held by the one caller allowed to take the next token, so waiting is first come, first served

	mu       sync.Mutex
	tokens   float64 // estimated tokens in the account's pool
	last     time.Time
	queued   int               // callers waiting for their turn or a token
	seq      uint64            // number of tokens handed out
	answers  uint64            // number of answers seen to tokens handed out (Observe)
	inflight map[uint64]uint64 // tokens handed out whose answer has not been seen -> answers when it was handed out
	synced   uint64            // the highest sequence whose answer updated tokens
	changed  chan struct{}     // closed and replaced when tokens is set from the API, to wake the waiter

	readPool func(context.Context) (int, error) // reads the account's pool without taking a token; set by the Client
	reading  *poolReading                       // the read under way, nil when none
	heard    time.Time                          // when the API last told us the count, or a read was last tried
}

// poolReading is one re-read of the pool, shared by every caller that needs one while it is under way.
type poolReading struct {
	poolMark
	done chan struct{}
	err  error
}

// poolMark is where the limiter stood when a read of the pool began.
type poolMark struct {
	from    uint64 // l.seq: answers to tokens handed out later are newer than the read
	answers uint64 // l.answers: the requests answered since may have been counted after the read (see Observe)
}

// clock is the limiter's time: the real one, or a fake in tests.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
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
		cfg:         cfg,
		rate:        cfg.PerHour / 3600,
		clock:       realClock{},
		resyncEvery: DefaultResyncEvery,
		turn:        make(chan struct{}, 1),
		tokens:      float64(cfg.Capacity),
		inflight:    map[uint64]uint64{},
		changed:     make(chan struct{}),
	}
	l.last = l.clock.Now()
	return l, nil
}

// setPoolReader installs read as the way to re-read the account's pool (GET /account/rate-limits), unless one is
// installed already: a limiter shared by several clients of the account needs only one.
func (l *Limiter) setPoolReader(read func(context.Context) (int, error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readPool == nil {
		l.readPool = read
	}
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
// *WaitError when the token would come after ctx's deadline. When the estimate says it must wait and the pool has
// not been read for a while, it reads the pool first (see Limiter).
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
			l.inflight[uint64(t)] = l.answers
			l.mu.Unlock()
			return Ticket(t), nil
		}
		wait := l.waitFor(1)
		resyncIn, canResync := l.resyncIn()
		changed := l.changed
		l.mu.Unlock()
		if canResync && resyncIn <= 0 {
			_ = l.resync(ctx, 0) // on failure the estimate stands, and the next read is resyncEvery away
			continue
		}
		if err := l.deadlineError(ctx, wait); err != nil {
			return 0, err
		}
		sleep := wait
		if canResync && resyncIn < sleep {
			sleep = resyncIn
		}
		fired, stop := l.clock.NewTimer(max(sleep, time.Millisecond))
		select {
		case <-fired:
		case <-changed: // the API told us something new: recompute
			stop()
		case <-ctx.Done():
			stop()
			return 0, fmt.Errorf("waiting for a heroku API request token: %w", ctx.Err())
		}
	}
}

// checkDeadline fails at once when the callers already queued ahead would take the tokens until past the deadline,
// unless the pool is due to be read again: then it is read first, and the caller judged on the new count.
func (l *Limiter) checkDeadline(ctx context.Context) error {
	wait := l.queuedWait()
	err := l.deadlineError(ctx, wait)
	if err == nil {
		return nil
	}
	l.mu.Lock()
	resyncIn, canResync := l.resyncIn()
	l.mu.Unlock()
	if !canResync || resyncIn > 0 || l.resync(ctx, 0) != nil {
		return err
	}
	return l.deadlineError(ctx, l.queuedWait())
}

// queuedWait is how long until every caller queued, this one included, can have a token.
func (l *Limiter) queuedWait() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance()
	return l.waitFor(float64(l.queued))
}

// resyncIn is how long until the pool may be read again, and whether it can be read at all. Callers hold mu.
func (l *Limiter) resyncIn() (time.Duration, bool) {
	if l.readPool == nil {
		return 0, false
	}
	return l.heard.Add(l.resyncEvery).Sub(l.clock.Now()), true
}

// resync reads the account's pool through the Client's reader and sets the estimate from it. A caller arriving
// while a read is under way shares it, provided it began once the tokens up to need had been handed out (a 429
// for ticket t needs a read begun at or after t); otherwise it waits for it to end and reads again. On error the
// estimate is left as it was.
func (l *Limiter) resync(ctx context.Context, need uint64) error {
	for {
		l.mu.Lock()
		if l.readPool == nil {
			l.mu.Unlock()
			return errNoPoolReader
		}
		r := l.reading
		if r == nil {
			break // with mu held
		}
		l.mu.Unlock()
		select {
		case <-r.done:
			if r.from >= need {
				return r.err
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for the account's rate limit to be read: %w", ctx.Err())
		}
	}
	r := &poolReading{poolMark: poolMark{from: l.seq, answers: l.answers}, done: make(chan struct{})}
	l.reading = r
	l.heard = l.clock.Now()
	read := l.readPool
	l.mu.Unlock()

	n, err := read(ctx)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.reading = nil
	if err != nil {
		r.err = fmt.Errorf("reading the account's rate limit: %w", err)
	} else {
		l.setRemaining(r.from, n, l.answers-r.answers)
	}
	close(r.done)
	return r.err
}

var errNoPoolReader = errors.New("no way to read the account's rate limit")

// readBegins marks the start of a read of the pool by the Client itself (RateLimits): give it to poolRead with the
// count read. Callers do not hold mu.
func (l *Limiter) readBegins() poolMark {
	l.mu.Lock()
	defer l.mu.Unlock()
	return poolMark{from: l.seq, answers: l.answers}
}

// poolRead records remaining, the pool as GET /account/rate-limits answered it after readBegins returned m.
func (l *Limiter) poolRead(m poolMark, remaining int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setRemaining(m.from, remaining, l.answers-m.answers)
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

// setRemaining sets the estimate from a count the API gave, read after the tokens up to from were handed out, less
// every token the count may not include (see Observe): those still unanswered, and the answered since the request
// that brought the count was made. Callers hold mu.
func (l *Limiter) setRemaining(from uint64, remaining int, answeredSince uint64) {
	if from < l.synced {
		return // an answer to a later request has already been used
	}
	l.synced = from
	l.advance()
	l.tokens = float64(remaining) - float64(len(l.inflight)) - float64(answeredSince)
	l.heard = l.clock.Now()
	close(l.changed)
	l.changed = make(chan struct{})
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
	now := l.clock.Now()
	if d := now.Sub(l.last).Seconds(); d > 0 {
		l.tokens = math.Min(float64(l.cfg.Capacity), l.tokens+d*l.rate)
	}
	l.last = now
}

// Observe records the API's answer to the request made with ticket t: remaining is its RateLimit-Remaining header
// (known=false when the answer had none, as with transport errors). Answers to tickets older than one already
// used are not used to set the count; an answer to a ticket not in flight (released, or observed already) is ignored.
//
// Concurrent requests reach the API in any order, and it counts each when it arrives, so remaining may leave out
// any other request that had not reached the API when t did: every request still unanswered, and every request
// answered since t was handed out (its answer may have come first while the API counted it after t). All of those
// are taken off remaining. Counting one twice costs a moment's wait; counting it not at all costs a 429. (Taking
// off only the unanswered ones, the limiter believed the pool fuller than it was whenever the API counted a request
// after t while its answer came before t's, and the API answered 429s: bench/ratelimit, issue 17.)
func (l *Limiter) Observe(t Ticket, remaining int, known bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	handedAt, sent := l.inflight[uint64(t)]
	if !sent {
		return // released, or answered already: it has been accounted for
	}
	delete(l.inflight, uint64(t))
	answeredSince := l.answers - handedAt
	l.answers++
	if !known {
		return
	}
	l.setRemaining(uint64(t), remaining, answeredSince)
}

// Exhausted records a 429 for ticket t: the pool is taken to be empty until it is read again, which the Client
// does at once.
func (l *Limiter) Exhausted(t Ticket) { l.Observe(t, 0, true) }

// Release gives back a ticket whose request was never sent.
func (l *Limiter) Release(t Ticket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, sent := l.inflight[uint64(t)]; sent {
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
