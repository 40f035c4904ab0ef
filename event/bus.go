package event

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultQueue is a consumer's queue length when its Subscription gives none: enough for a burst of events from
// every policy at once while a notifier waits out a retry, small enough (events are a few hundred bytes) to cost
// nothing.
const DefaultQueue = 256

// Subscription is one consumer of a Bus.
type Subscription struct {
	Name  string // the consumer's name in logs and in dynopilot_events_dropped_total{consumer}; unique per Bus
	Sink  Sink
	Types []Type // the types it wants; none: every type. Filtering at Publish keeps what a consumer ignores
	// (a notifier and the per-tick decisions) out of its queue, where it would crowd out what it wants.
	Queue int // queue length; 0: DefaultQueue
}

// Bus fans events out to its consumers: each has its own bounded queue and goroutine, so that a consumer that is
// slow (a webhook receiver that hangs) or failing (one that retries) delays neither the publisher nor the other
// consumers. When a consumer's queue is full the event is dropped for that consumer only, and counted.
type Bus struct {
	log     *slog.Logger
	dropped *prometheus.CounterVec

	// ctx is the consumers' context: cancelled when Close's deadline passes, so that a consumer in the middle of
	// a delivery gives up and the rest of its queue is dropped.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.RWMutex // guards closed and consumers; Publish holds it for reading only
	closed    bool
	consumers []*consumer
	wg        sync.WaitGroup
}

type consumer struct {
	name     string
	sink     Sink
	accept   map[Type]bool // nil: every type
	queue    chan Event
	dropped  prometheus.Counter
	dropping atomic.Bool // set by a drop, cleared by the next event queued: the drop is logged once per run of drops
	done     chan struct{}
}

// NewBus returns a Bus with no consumers. The drop counter, dynopilot_events_dropped_total{consumer}, is
// registered with reg (nil: not registered, still counted); log (nil: slog.Default()) gets a line when a consumer
// starts dropping and when one panics.
func NewBus(reg prometheus.Registerer, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.Default()
	}
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dynopilot_events_dropped_total",
		Help: "Events a consumer never got, because its queue was full (it is slower than events arrive) or because shutdown ended before it caught up.",
	}, []string{"consumer"})
	if reg != nil {
		if err := reg.Register(dropped); err != nil {
			return nil, fmt.Errorf("event bus: registering dynopilot_events_dropped_total: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bus{log: log, dropped: dropped, ctx: ctx, cancel: cancel}, nil
}

// Subscribe adds a consumer and starts its goroutine. It may be called at any time before Close; a consumer
// added later gets only the events published after it.
func (b *Bus) Subscribe(s Subscription) error {
	if s.Name == "" {
		return errors.New("event bus: a subscription needs a name")
	}
	if s.Sink == nil {
		return fmt.Errorf("event bus: subscription %q has no sink", s.Name)
	}
	if s.Queue < 0 {
		return fmt.Errorf("event bus: subscription %q: queue length %d is negative", s.Name, s.Queue)
	}
	c := &consumer{name: s.Name, sink: s.Sink, done: make(chan struct{})}
	if len(s.Types) > 0 {
		c.accept = make(map[Type]bool, len(s.Types))
		for _, t := range s.Types {
			if !t.Valid() {
				return fmt.Errorf("event bus: subscription %q: unknown event type %q", s.Name, t)
			}
			c.accept[t] = true
		}
	}
	n := s.Queue
	if n == 0 {
		n = DefaultQueue
	}
	c.queue = make(chan Event, n)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("event bus: subscription %q: the bus is closed", s.Name)
	}
	for _, o := range b.consumers {
		if o.name == s.Name {
			return fmt.Errorf("event bus: two consumers named %q", s.Name)
		}
	}
	c.dropped = b.dropped.WithLabelValues(s.Name) // the series exists at 0 from the start, for rate() and alerts
	b.consumers = append(b.consumers, c)
	b.wg.Add(1)
	go b.run(c)
	return nil
}

// Publish hands e to every consumer that wants its type, without ever blocking: a consumer whose queue is full
// misses it (counted in dynopilot_events_dropped_total). ctx is not used: it is there because Bus is a Sink. An
// event published after Close is ignored.
func (b *Bus) Publish(_ context.Context, e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return
	}
	for _, c := range b.consumers {
		if c.accept != nil && !c.accept[e.Type] {
			continue
		}
		select {
		case c.queue <- e:
			c.dropping.Store(false)
		default:
			c.dropped.Inc()
			if c.dropping.CompareAndSwap(false, true) {
				b.log.Warn("event consumer is behind; dropping events until it catches up",
					"consumer", c.name, "queue", cap(c.queue), "type", e.Type, "policy", e.Policy)
			}
		}
	}
}

// run delivers c's queue to its sink until Close has closed the queue and it is empty. Once the consumers'
// context is cancelled (Close's deadline passed) whatever is left is dropped, not delivered.
func (b *Bus) run(c *consumer) {
	defer b.wg.Done()
	defer close(c.done)
	for e := range c.queue {
		if b.ctx.Err() != nil {
			c.dropped.Inc()
			continue
		}
		b.deliver(c, e)
	}
}

// deliver gives one event to a consumer; a consumer that panics loses that event, not the daemon.
func (b *Bus) deliver(c *consumer, e Event) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("event consumer panicked; event lost", "consumer", c.name, "type", e.Type, "policy", e.Policy, "panic", r)
		}
	}()
	c.sink.Publish(b.ctx, e)
}

// Close stops accepting events and lets every consumer finish its queue until ctx is done; then it cancels the
// consumers' context, so that deliveries in progress give up and what is left is dropped (and counted), and
// returns at once. Close is thus bounded by ctx, which is what a shutdown needs: Heroku kills a dyno 30 seconds
// after SIGTERM, so give Close a deadline well inside what is left of that. It returns nil when every consumer
// finished in time, else an error naming those that did not. Calling Close again does nothing.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	consumers := b.consumers
	for _, c := range consumers {
		close(c.queue)
	}
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		b.cancel()
		return nil
	case <-ctx.Done():
	}
	b.cancel()
	var busy []string
	for _, c := range consumers {
		select {
		case <-c.done:
		default:
			busy = append(busy, fmt.Sprintf("%s (%d queued)", c.name, len(c.queue)))
		}
	}
	if len(busy) == 0 {
		return nil
	}
	return fmt.Errorf("event bus: %s still delivering when the shutdown deadline passed; the rest is dropped: %w",
		strings.Join(busy, ", "), context.Cause(ctx))
}
