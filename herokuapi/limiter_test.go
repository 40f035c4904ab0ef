package herokuapi_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi"
)

func TestNewLimiterRejectsBadConfig(t *testing.T) {
	for _, cfg := range []herokuapi.LimiterConfig{
		{Capacity: 0, PerHour: 4500},
		{Capacity: 4500, PerHour: 0},
		{Capacity: 4500, PerHour: 4500, Reserve: -1},
		{Capacity: 100, PerHour: 4500, Reserve: 100},
	} {
		if _, err := herokuapi.NewLimiter(cfg); err == nil {
			t.Errorf("NewLimiter(%+v) = nil error, want one", cfg)
		}
	}
}

func TestLimiterKeepsTheReserve(t *testing.T) {
	// 10 tokens, 8 kept for people: two calls may go at once, the third must wait for a refill
	// that is an hour away at 1 token an hour.
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 10, PerHour: 1, Reserve: 8})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		if _, err := l.Wait(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = l.Wait(ctx)
	var we *herokuapi.WaitError
	if !errors.As(err, &we) {
		t.Fatalf("third call: got %v, want a *WaitError", err)
	}
	if !errors.Is(err, herokuapi.RateLimit) {
		t.Errorf("WaitError should match herokuapi.RateLimit")
	}
	if we.Wait < 30*time.Minute {
		t.Errorf("wait %v: want about an hour for one token at 1/hour", we.Wait)
	}
}

func TestLimiterFollowsTheAPIsRemainingCount(t *testing.T) {
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 4500, PerHour: 1, Reserve: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tk, err := l.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else drained the account: the API says 10 left, which is all reserve.
	l.Observe(tk, 10, true)
	if got := l.Remaining(); got > 10.01 {
		t.Fatalf("remaining %v after the API said 10", got)
	}
	if _, err := l.Wait(ctx); !errors.Is(err, herokuapi.RateLimit) {
		t.Fatalf("Wait with only the reserve left: got %v, want a rate-limit error", err)
	}
}

func TestLimiterTreatsA429AsEmpty(t *testing.T) {
	l, _ := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 4500, PerHour: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tk, err := l.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Exhausted(tk)
	if got := l.Remaining(); got >= 1 {
		t.Fatalf("remaining %v after a 429, want < 1", got)
	}
}

func TestLimiterIgnoresStaleAnswers(t *testing.T) {
	l, _ := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 4500, PerHour: 1})
	ctx := context.Background()
	first, _ := l.Wait(ctx)
	second, _ := l.Wait(ctx)
	l.Observe(second, 100, true)
	l.Observe(first, 4000, true) // older news: must not raise the count back
	if got := l.Remaining(); got > 100.01 {
		t.Fatalf("remaining %v: an answer older than one already seen raised it", got)
	}
}

func TestLimiterCountsUnansweredRequests(t *testing.T) {
	l, _ := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 4500, PerHour: 1})
	ctx := context.Background()
	l.Wait(ctx) // sent before first, not answered yet
	first, _ := l.Wait(ctx)
	for i := 0; i < 2; i++ { // sent after first, not answered yet
		if _, err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l.Observe(first, 50, true)
	if got := l.Remaining(); got > 47.01 || got < 46.99 {
		t.Fatalf("remaining %v, want 47: 50 said by the API less 3 requests it may not have counted yet", got)
	}
}

func TestLimiterCancelledWaitReturnsContextError(t *testing.T) {
	l, _ := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 1, PerHour: 1})
	if _, err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := l.Wait(ctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestLimiterServesConcurrentCallersWithinTheRate(t *testing.T) {
	// 5 tokens, 36000 an hour = 10 a second: 25 callers get tokens; none is refused since there is no deadline.
	l, _ := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 5, PerHour: 36000})
	var wg sync.WaitGroup
	errs := make(chan error, 25)
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk, err := l.Wait(context.Background())
			if err != nil {
				errs <- err
				return
			}
			l.Observe(tk, 0, false)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := l.Remaining(); got > 1 {
		t.Errorf("remaining %v after 25 calls on a pool of 5: the limiter handed out tokens it did not have", got)
	}
}

// fakeClock is a clock for the limiter that moves only when told to; its timers fire when it passes their time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &fakeTimer{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		tm.ch <- c.now
	} else {
		c.timers = append(c.timers, tm)
	}
	return tm.ch, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == tm {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// Advance moves the clock on and fires the timers it passes.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			kept = append(kept, tm)
		} else {
			tm.ch <- c.now
		}
	}
	c.timers = kept
}

// pending returns how far off each pending timer is.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, tm := range c.timers {
		out = append(out, tm.at.Sub(c.now))
	}
	return out
}

type waitResult struct {
	ticket herokuapi.Ticket
	err    error
}

func waitAsync(ctx context.Context, l *herokuapi.Limiter) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		tk, err := l.Wait(ctx)
		ch <- waitResult{tk, err}
	}()
	return ch
}

// blocked waits (in real time, generously) until the caller is asleep on one timer of the fake clock, and returns
// how far off that timer is. It fails the test if the caller returns instead.
func blocked(t *testing.T, clk *fakeClock, res <-chan waitResult, what string) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case r := <-res:
			t.Fatalf("%s: Wait returned (ticket %d, err %v) instead of waiting", what, r.ticket, r.err)
		default:
		}
		if p := clk.pending(); len(p) == 1 {
			return p[0]
		} else if len(p) > 1 {
			t.Fatalf("%s: %d timers pending, want 1", what, len(p))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Wait neither returned nor waited on the clock within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func returned(t *testing.T, res <-chan waitResult, what string) waitResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Wait did not return within 10s", what)
		return waitResult{}
	}
}

func TestLimiterWaitHandsOutOnlyTheTokensItHas(t *testing.T) {
	// 10 tokens, 4 kept for people, 1800 an hour: one token every 2 s. No deadline, so nothing is refused: a caller
	// without a token must wait, on the limiter's clock, exactly as long as the refill takes.
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 10, PerHour: 1800, Reserve: 4})
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	l.SetClock(clk)
	ctx := context.Background()
	for i := range 6 {
		r := returned(t, waitAsync(ctx, l), fmt.Sprintf("caller %d of the 6 above the reserve", i+1))
		if r.err != nil {
			t.Fatalf("caller %d: %v", i+1, r.err)
		}
		if p := clk.pending(); len(p) != 0 {
			t.Fatalf("caller %d waited on the clock (%v) with tokens above the reserve", i+1, p)
		}
	}
	for i := 7; i <= 8; i++ {
		res := waitAsync(ctx, l)
		if wait := blocked(t, clk, res, fmt.Sprintf("caller %d, with only the reserve left", i)); wait != 2*time.Second {
			t.Fatalf("caller %d waits %v, want 2s: one token at 1800 an hour", i, wait)
		}
		clk.Advance(2*time.Second - time.Millisecond)
		if wait := blocked(t, clk, res, fmt.Sprintf("caller %d, 1ms before the refill", i)); wait != time.Millisecond {
			t.Fatalf("caller %d: 1ms before the refill it waits %v", i, wait)
		}
		clk.Advance(time.Millisecond)
		if r := returned(t, res, fmt.Sprintf("caller %d at the refill", i)); r.err != nil {
			t.Fatalf("caller %d at the refill: %v", i, r.err)
		}
		if got := l.Remaining(); got < 3.999 || got > 4.001 {
			t.Fatalf("after caller %d: remaining %v, want the reserve of 4", i, got)
		}
	}
}

func TestLimiterReadsThePoolAgainWhileCallersWait(t *testing.T) {
	// Heroku's defaults. A 429 left the estimate empty and the read that followed failed; the account in fact has
	// 4000 tokens. Waiting for the reserve to refill would take 451/1.25 s (6 minutes): the pool must be read again
	// every 15 s while callers wait, so they go on within a minute.
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 4500, PerHour: 4500, Reserve: 450})
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	l.SetClock(clk)
	var mu sync.Mutex
	reads, fail := 0, true
	l.SetPoolReader(func(context.Context) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		if fail {
			return 0, errors.New("503 from the API")
		}
		return 4000, nil
	}, 0)
	readCount := func() int { mu.Lock(); defer mu.Unlock(); return reads }

	tk, err := l.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l.Exhausted(tk)

	// Just told the pool is empty: a caller with a deadline is refused at once, without reading the pool.
	short, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.Wait(short); !errors.As(err, new(*herokuapi.WaitError)) {
		t.Fatalf("caller with a 5s deadline: %v, want a *WaitError", err)
	}
	if n := readCount(); n != 0 {
		t.Fatalf("%d reads of the pool right after the API said it was empty", n)
	}

	// A patient caller sleeps until the next read is due, not the 6 minutes of the refill.
	res := waitAsync(context.Background(), l)
	if wait := blocked(t, clk, res, "patient caller"); wait != herokuapi.DefaultResyncEvery {
		t.Fatalf("patient caller sleeps %v, want %v until the pool is read again", wait, herokuapi.DefaultResyncEvery)
	}
	clk.Advance(herokuapi.DefaultResyncEvery) // the read fails: the estimate stands, next read 15 s on
	if wait := blocked(t, clk, res, "patient caller after a failed read"); wait != herokuapi.DefaultResyncEvery {
		t.Fatalf("after a failed read the caller sleeps %v, want %v", wait, herokuapi.DefaultResyncEvery)
	}
	if n := readCount(); n != 1 {
		t.Fatalf("%d reads after 15s, want 1", n)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	clk.Advance(herokuapi.DefaultResyncEvery)
	if r := returned(t, res, "patient caller after a good read"); r.err != nil {
		t.Fatal(r.err)
	}
	if got := l.Remaining(); got < 3998.9 || got > 3999.1 {
		t.Errorf("remaining %v after the API said 4000 and one token was taken", got)
	}

	// Another 429. A caller with a deadline is refused at first; once 15 s have passed, it reads the pool before
	// refusing, and goes on.
	tk, _ = l.Wait(context.Background())
	l.Exhausted(tk)
	if _, err := l.Wait(short); !errors.As(err, new(*herokuapi.WaitError)) {
		t.Fatalf("caller with a deadline right after a 429: %v, want a *WaitError", err)
	}
	clk.Advance(herokuapi.DefaultResyncEvery)
	if _, err := l.Wait(short); err != nil {
		t.Fatalf("caller with a deadline 15s after a 429: %v; the pool should have been read", err)
	}
	if n := readCount(); n != 3 {
		t.Errorf("%d reads of the pool, want 3", n)
	}
}

// TestLimiterAnswersOutOfOrder: the API counts concurrent requests in the order they reach it, which need not be the
// order of their tickets, nor of their answers. Here it counts the third request first, then the first and the
// second, whose answers come before the third's: the third's RateLimit-Remaining (9) is the oldest count, and the
// two requests it leaves out have been answered already. The limiter took only the unanswered ones off and believed
// 9 tokens left where the pool had 7: bench/ratelimit's 429s (issue 17).
func TestLimiterAnswersOutOfOrder(t *testing.T) {
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 10, PerHour: 1})
	if err != nil {
		t.Fatal(err)
	}
	var tickets [3]herokuapi.Ticket
	for i := range tickets {
		if tickets[i], err = l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Counted 3 (9 left), 1 (8 left), 2 (7 left); answered 1, 2, 3.
	l.Observe(tickets[0], 8, true)
	l.Observe(tickets[1], 7, true)
	l.Observe(tickets[2], 9, true)
	if got := l.Remaining(); got > 7.01 {
		t.Errorf("remaining %.2f, but the pool has 7 left: the next requests would get 429s", got)
	}
}

// TestLimiterReadCountsWhatItMayLeaveOut: a read of the pool (GET /account/rate-limits) may leave out a request
// the API counted after it, whose answer came before the read's: that request is taken off the count too.
func TestLimiterReadCountsWhatItMayLeaveOut(t *testing.T) {
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: 10, PerHour: 1})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := l.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l.SetPoolReader(func(context.Context) (int, error) {
		// The API reads the pool (10), then counts tk (9 left) and answers it before the read's answer arrives.
		l.Observe(tk, 9, true)
		return 10, nil
	}, 0)
	if err := l.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.Remaining(); got > 9.01 {
		t.Errorf("remaining %.2f, but the pool has 9 left", got)
	}
}

// TestLimiterNeverOverspendsWhateverTheOrder: a model of the API (a pool of 20 tokens, no refill, nobody else on
// the account) counts requests in a random order and answers them in another: whatever the orders, the limiter
// hands out no token the pool does not have, so the API never answers 429.
func TestLimiterNeverOverspendsWhateverTheOrder(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 17))
		const pool = 20
		l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: pool, PerHour: 1})
		if err != nil {
			t.Fatal(err)
		}
		api := pool
		var sent []herokuapi.Ticket // not counted by the API yet
		type counted struct {
			ticket    herokuapi.Ticket
			remaining int
		}
		var unanswered []counted
		take := func(s []herokuapi.Ticket) (herokuapi.Ticket, []herokuapi.Ticket) {
			i := rng.IntN(len(s))
			t := s[i]
			return t, append(s[:i], s[i+1:]...)
		}
		for step := range 400 {
			switch r := rng.IntN(3); {
			case r == 0: // a caller asks for a token, and gives up at once if it would have to wait
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				tk, err := l.Wait(ctx)
				cancel()
				if err == nil {
					sent = append(sent, tk)
				}
			case r == 1 && len(sent) > 0: // the API counts one request
				var tk herokuapi.Ticket
				tk, sent = take(sent)
				if api < 1 {
					t.Fatalf("seed %d, step %d: the API answers ticket %d with 429: the limiter handed out a token the pool did not have", seed, step, tk)
				}
				api--
				unanswered = append(unanswered, counted{tk, api})
			case r == 2 && len(unanswered) > 0: // its answer reaches the limiter
				i := rng.IntN(len(unanswered))
				a := unanswered[i]
				unanswered = append(unanswered[:i], unanswered[i+1:]...)
				l.Observe(a.ticket, a.remaining, true)
			}
		}
	}
}
