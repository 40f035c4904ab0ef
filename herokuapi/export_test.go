package herokuapi

import (
	"context"
	"time"
)

// Clock is the limiter's clock, for tests that drive time by hand.
type Clock = clock

// SetClock makes the limiter read time from c and wait on c's timers; the estimate is left as it was.
func (l *Limiter) SetClock(c Clock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clock = c
	l.last = c.Now()
}

// SetPoolReader installs read as the Client would, and sets how often the pool may be read again while callers
// wait (0 leaves DefaultResyncEvery).
func (l *Limiter) SetPoolReader(read func(context.Context) (int, error), every time.Duration) {
	l.setPoolReader(read)
	if every > 0 {
		l.mu.Lock()
		l.resyncEvery = every
		l.mu.Unlock()
	}
}

// Resync reads the pool now, as the limiter does while callers wait and the Client does after a 429.
func (l *Limiter) Resync(ctx context.Context) error { return l.resync(ctx, 0) }
