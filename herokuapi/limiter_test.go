package herokuapi_test

import (
	"context"
	"errors"
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
