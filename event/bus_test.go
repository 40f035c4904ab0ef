package event_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/internal/servicetest"
)

// guard is how long a test waits for something that must happen at once before it calls it a deadlock. It is
// not a timing assertion: a correct bus finishes in microseconds, a broken one never.
const guard = 10 * time.Second

// recorder is a consumer that keeps what it got.
type recorder struct {
	mu  sync.Mutex
	got []event.Event
}

func (r *recorder) Publish(_ context.Context, e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
}

func (r *recorder) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.got...)
}

// hanging is a consumer whose receiver never answers: it blocks until the bus gives up on it.
type hanging struct {
	started chan struct{} // closed when the first event arrived
	once    sync.Once
}

func newHanging() *hanging { return &hanging{started: make(chan struct{})} }

func (h *hanging) Publish(ctx context.Context, _ event.Event) {
	h.once.Do(func() { close(h.started) })
	<-ctx.Done()
}

func newBus(t *testing.T) (*event.Bus, *prometheus.Registry, *servicetest.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var logs servicetest.Buffer
	b, err := event.NewBus(reg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b, reg, &logs
}

func subscribe(t *testing.T, b *event.Bus, s event.Subscription) {
	t.Helper()
	if err := b.Subscribe(s); err != nil {
		t.Fatal(err)
	}
}

// dropped reads dynopilot_events_dropped_total{consumer} from the registry, as Prometheus would scrape it; -1
// when the series does not exist.
func dropped(t *testing.T, reg *prometheus.Registry, consumer string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "dynopilot_events_dropped_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "consumer" && l.GetValue() == consumer {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

func scaled(i int) event.Event {
	return event.Event{Type: event.Scaled, Policy: "shop/web", App: "shop", Process: "web", From: i, To: i + 1}
}

// within runs f and fails the test when it does not return within guard: for calls that must never block.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatalf("%s blocked", what)
	}
}

// TestHangingConsumerNeverDelaysPublish: a consumer that never returns gets its queue filled and the rest dropped
// and counted, while Publish returns at once and another consumer gets every event.
func TestHangingConsumerNeverDelaysPublish(t *testing.T) {
	b, reg, logs := newBus(t)
	h := newHanging()
	healthy := &recorder{}
	const queue = 4
	subscribe(t, b, event.Subscription{Name: "webhook", Sink: h, Queue: queue})
	subscribe(t, b, event.Subscription{Name: "history", Sink: healthy})
	if got := dropped(t, reg, "webhook"); got != 0 {
		t.Fatalf("dropped{consumer=webhook} before any event = %v, want 0 (the series exists from the start)", got)
	}

	ctx := context.Background()
	b.Publish(ctx, scaled(0))
	<-h.started // the consumer holds one event and hangs: what follows can only queue or drop

	const more = 100
	within(t, "Publish", func() {
		for i := 1; i <= more; i++ {
			b.Publish(ctx, scaled(i))
		}
	})
	if got, want := dropped(t, reg, "webhook"), float64(more-queue); got != want {
		t.Errorf("dropped{consumer=webhook} = %v, want %v", got, want)
	}
	if got := dropped(t, reg, "history"); got != 0 {
		t.Errorf("dropped{consumer=history} = %v, want 0", got)
	}
	if n := strings.Count(logs.String(), "dropping events"); n != 1 {
		t.Errorf("the drops were logged %d times, want once:\n%s", n, logs)
	}

	// Close gives the hanging consumer until the deadline, then cancels it: bounded, and it says who was late.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	within(t, "Close", func() { err = b.Close(ctx) })
	if err == nil || !strings.Contains(err.Error(), "webhook") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want an error naming the webhook consumer and the deadline", err)
	}
	if got := len(healthy.events()); got != more+1 {
		t.Errorf("the healthy consumer got %d events, want %d", got, more+1)
	}
}

// TestCloseDrainsInOrder: what was published before Close reaches a consumer that keeps up, in order.
func TestCloseDrainsInOrder(t *testing.T) {
	b, reg, _ := newBus(t)
	r := &recorder{}
	subscribe(t, b, event.Subscription{Name: "log", Sink: r, Queue: 100})
	for i := range 100 {
		b.Publish(context.Background(), scaled(i))
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.events()
	if len(got) != 100 {
		t.Fatalf("got %d events, want 100", len(got))
	}
	for i, e := range got {
		if e.From != i {
			t.Fatalf("event %d has From %d: out of order", i, e.From)
		}
	}
	if d := dropped(t, reg, "log"); d != 0 {
		t.Errorf("dropped = %v, want 0", d)
	}
	// After Close: ignored, no panic, not counted as a drop.
	b.Publish(context.Background(), scaled(100))
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if d := dropped(t, reg, "log"); d != 0 {
		t.Errorf("dropped after a late Publish = %v, want 0", d)
	}
}

// TestTypesFilterAtPublish: a consumer gets only the types it asked for, and the per-tick decisions it did not
// ask for never fill its queue.
func TestTypesFilterAtPublish(t *testing.T) {
	b, reg, _ := newBus(t)
	r := &recorder{}
	subscribe(t, b, event.Subscription{Name: "slack", Sink: r, Types: []event.Type{event.ScaleFailed}, Queue: 1})
	for range 1000 {
		b.Publish(context.Background(), event.Event{Type: event.Decision})
	}
	b.Publish(context.Background(), event.Event{Type: event.ScaleFailed, Error: "boom"})
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.events()
	if len(got) != 1 || got[0].Type != event.ScaleFailed {
		t.Errorf("got %v, want the one scale_failed", got)
	}
	if d := dropped(t, reg, "slack"); d != 0 {
		t.Errorf("dropped = %v, want 0: decisions must not take queue room", d)
	}
}

// TestPanickingConsumerLosesOneEvent: a consumer that panics loses that event; the bus and the daemon go on.
func TestPanickingConsumerLosesOneEvent(t *testing.T) {
	b, _, logs := newBus(t)
	r := &recorder{}
	subscribe(t, b, event.Subscription{Name: "buggy", Sink: event.SinkFunc(func(ctx context.Context, e event.Event) {
		if e.From == 1 {
			panic("bug")
		}
		r.Publish(ctx, e)
	})})
	for i := range 3 {
		b.Publish(context.Background(), scaled(i))
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.events(); len(got) != 2 || got[0].From != 0 || got[1].From != 2 {
		t.Errorf("got %v, want events 0 and 2", got)
	}
	if !strings.Contains(logs.String(), "panicked") {
		t.Errorf("the panic was not logged:\n%s", logs)
	}
}

func TestSubscribeRefuses(t *testing.T) {
	b, _, _ := newBus(t)
	r := &recorder{}
	subscribe(t, b, event.Subscription{Name: "a", Sink: r})
	for _, c := range []struct {
		s    event.Subscription
		want string
	}{
		{event.Subscription{Sink: r}, "needs a name"},
		{event.Subscription{Name: "b"}, "no sink"},
		{event.Subscription{Name: "a", Sink: r}, `two consumers named "a"`},
		{event.Subscription{Name: "b", Sink: r, Types: []event.Type{"scaling"}}, `unknown event type "scaling"`},
		{event.Subscription{Name: "b", Sink: r, Queue: -1}, "negative"},
	} {
		if err := b.Subscribe(c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Subscribe(%+v) = %v, want %q", c.s, err, c.want)
		}
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(event.Subscription{Name: "late", Sink: r}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Subscribe after Close = %v, want an error", err)
	}
}

// TestRegistersOnce: the counter goes through the Registerer given, so two buses on one registry are an error
// rather than a silent second counter.
func TestRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := event.NewBus(reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := event.NewBus(reg, nil); err == nil {
		t.Error("a second bus on the same registry registered without error")
	}
	if _, err := event.NewBus(nil, nil); err != nil {
		t.Errorf("NewBus without a registry: %v", err)
	}
}

func TestTypes(t *testing.T) {
	for _, ty := range event.Notifiable() {
		if ty == event.Decision || !ty.Valid() {
			t.Errorf("Notifiable holds %q", ty)
		}
	}
	if len(event.Notifiable()) != len(event.Types())-1 {
		t.Errorf("Notifiable = %v", event.Notifiable())
	}
	if event.Type("scaling").Valid() {
		t.Error(`"scaling" is valid`)
	}
}

// ExampleBus shows the wiring: producers publish to the bus; each consumer subscribes with the types it wants.
func ExampleBus() {
	bus, _ := event.NewBus(prometheus.NewRegistry(), nil)
	_ = bus.Subscribe(event.Subscription{
		Name:  "print",
		Types: []event.Type{event.Scaled},
		Sink: event.SinkFunc(func(_ context.Context, e event.Event) {
			fmt.Printf("%s %s: %d -> %d\n", e.Type, e.Policy, e.From, e.To)
		}),
	})
	bus.Publish(context.Background(), event.Event{Type: event.Decision, Policy: "shop/web", From: 2, To: 2})
	bus.Publish(context.Background(), event.Event{Type: event.Scaled, Policy: "shop/web", From: 2, To: 4})
	_ = bus.Close(context.Background())
	// Output: scaled shop/web: 2 -> 4
}
