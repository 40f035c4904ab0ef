package scaler_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/scaler"
)

// leader is a scaler.Leader whose answers the test sets.
type leader struct {
	LeadingFn func() bool
	ConfirmFn func(context.Context) error
}

var _ scaler.Leader = leader{}

func (l leader) Leading() bool                     { return l.LeadingFn() }
func (l leader) Confirm(ctx context.Context) error { return l.ConfirmFn(ctx) }

// memory is a scaler.Store in memory, shared by the instances of a test as a database would be.
type memory struct {
	mu    sync.Mutex
	m     map[string][]byte
	saves int
}

var _ scaler.Store = (*memory)(nil)

func (m *memory) Load(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.m[key]
	return b, ok, nil
}

func (m *memory) Save(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string][]byte{}
	}
	m.m[key] = append([]byte(nil), value...)
	m.saves++
	return nil
}

func TestAStandbyReadsAndChangesNothing(t *testing.T) {
	w := newWorldWith(t, func(o *scaler.Options) {
		o.Leader = leader{LeadingFn: func() bool { return false }, ConfirmFn: func(context.Context) error { return errors.New("not leading") }}
	}, settings("web", "10"))
	w.srcs["web"].set(3, nil)
	w.heroku.ClearRequests()
	w.tick(t)
	if n := len(w.heroku.Requests()); n != 0 {
		t.Errorf("a standby sent %d Heroku requests", n)
	}
	if w.s.Role() != "standby" || !w.s.Ready() {
		t.Errorf("role %q ready %v, want a ready standby", w.s.Role(), w.s.Ready())
	}
	if got := counter(t, w.reg, "dynopilot_leader", nil); got != 0 {
		t.Errorf("dynopilot_leader %v on a standby", got)
	}
}

func TestALeaderThatCannotConfirmItsLockDoesNotPatch(t *testing.T) {
	var confirms int
	w := newWorldWith(t, func(o *scaler.Options) {
		o.Leader = leader{LeadingFn: func() bool { return true }, ConfirmFn: func(context.Context) error {
			confirms++
			return errors.New("connection to the lock lost")
		}}
	}, settings("web", "10"))
	w.srcs["web"].set(3, nil) // wants 6
	w.tick(t)
	if confirms != 1 || w.patches() != 0 || w.quantity(t, "web") != 2 {
		t.Errorf("%d confirmations, %d PATCHes, web %d: a leader that cannot confirm must not PATCH", confirms, w.patches(), w.quantity(t, "web"))
	}
	if got := counter(t, w.reg, "dynopilot_leader", nil); got != 1 {
		t.Errorf("dynopilot_leader %v", got)
	}
}

func TestANewLeaderDecidesAsTheOldOneWould(t *testing.T) {
	// Instance a leads; it has seen load for 8 workers until T, then for 1. Its DOWN_STABILIZATION of 60 s holds the
	// 8 until T+60 s. a dies at T+40 s and b takes over at T+45 s: b must hold until T+60 s and scale down then, as a
	// would have: not at once (no window), and not at T+105 s (a window it filled itself).
	st := ratio("worker")
	st.DownCooldown, st.DownStabilization = "0", "60s"
	store := &memory{}
	aLeads := true
	w := newWorldWith(t, func(o *scaler.Options) {
		o.State = store
		o.Leader = leader{LeadingFn: func() bool { return aLeads }, ConfirmFn: func(context.Context) error { return nil }}
	}, st)
	if _, err := w.heroku.Scale("shop", "worker", 8); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Hour)
	w.srcs["worker"].set(8, nil)
	w.tick(t)
	T := w.clock.Now()
	w.srcs["worker"].set(1, nil)
	for range 4 {
		w.clock.Advance(10 * time.Second)
		w.tick(t) // T+10 … T+40: stabilizing
	}
	aLeads = false

	srv := newServer(t, w.heroku)
	client, _ := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	p, _ := st.Parse()
	src := &source{}
	src.set(1, nil)
	b, err := scaler.New(scaler.Options{Heroku: client, Refresh: time.Nanosecond, Registerer: prometheus.NewRegistry(), Now: w.clock.Now, State: store,
		Leader:   leader{LeadingFn: func() bool { return true }, ConfirmFn: func(context.Context) error { return nil }},
		Policies: []scaler.Managed{{Rules: p, Source: src, SourceKind: "hirefire", Interval: "@every 10s"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(5 * time.Second) // T+45: b leads
	for w.clock.Now().Before(T.Add(60 * time.Second)) {
		evaluate(t, b)
		if q := w.quantity(t, "worker"); q != 8 {
			t.Fatalf("worker = %d at T+%v: the new leader scaled down inside the window the old one began", q, w.clock.Now().Sub(T))
		}
		w.clock.Advance(5 * time.Second)
	}
	w.clock.Advance(time.Second) // T+61
	evaluate(t, b)
	if q := w.quantity(t, "worker"); q != 1 {
		t.Errorf("worker = %d at T+61s, want 1: the new leader must decide as the old one would have", q)
	}
	var status scaler.Status
	for _, s := range b.Statuses() {
		status = s
	}
	if status.Reason != string(policy.ReasonRatio) {
		t.Errorf("reason %q", status.Reason)
	}
}

func TestStateIsSavedWhenWhatDecidesChanges(t *testing.T) {
	store := &memory{}
	st := settings("web", "10")
	st.DownStabilization = "0"
	w := newWorldWith(t, func(o *scaler.Options) { o.State = store }, st)
	w.srcs["web"].set(1, nil) // on target: nothing that decides changes from tick to tick
	for range 5 {
		w.tick(t)
		w.clock.Advance(10 * time.Second)
	}
	if store.saves != 1 {
		t.Errorf("%d saves for five ticks that change nothing, want 1", store.saves)
	}
	w.srcs["web"].set(2, nil) // scales: the last PATCH changes
	w.tick(t)
	if store.saves != 2 {
		t.Errorf("%d saves after a scale event, want 2", store.saves)
	}
}

func TestANewLeaderCarriesTheOldOnesNewestRecommendationThroughTheGap(t *testing.T) {
	// a saw load for 10 until it died at T; nobody read anything until b took over at T+6 s, when the load was 8.
	// An uninterrupted process would have seen 10 until some moment in the gap and held it a window after that, so b
	// must hold 10 until T+6 s + DOWN_STABILIZATION, not scale down a window after T.
	st := ratio("worker")
	st.DownCooldown, st.DownStabilization = "0", "30s"
	store := &memory{}
	aLeads := true
	w := newWorldWith(t, func(o *scaler.Options) {
		o.State = store
		o.Leader = leader{LeadingFn: func() bool { return aLeads }, ConfirmFn: func(context.Context) error { return nil }}
	}, st)
	if _, err := w.heroku.Scale("shop", "worker", 10); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Hour)
	w.srcs["worker"].set(10, nil)
	for range 3 {
		w.tick(t)
		w.clock.Advance(time.Second)
	}
	T := w.clock.Now()
	aLeads = false

	srv := newServer(t, w.heroku)
	client, _ := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: "tok"})
	p, _ := st.Parse()
	src := &source{}
	src.set(8, nil)
	b, err := scaler.New(scaler.Options{Heroku: client, Refresh: time.Nanosecond, Registerer: prometheus.NewRegistry(), Now: w.clock.Now, State: store,
		Leader:   leader{LeadingFn: func() bool { return true }, ConfirmFn: func(context.Context) error { return nil }},
		Policies: []scaler.Managed{{Rules: p, Source: src, SourceKind: "hirefire", Interval: "@every 5s"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(6 * time.Second) // T+6 s: b leads
	for w.clock.Now().Before(T.Add(35 * time.Second)) {
		evaluate(t, b)
		if q := w.quantity(t, "worker"); q != 10 {
			t.Fatalf("worker = %d at T+%v: b scaled down within a window of the gap in which nobody read", q, w.clock.Now().Sub(T))
		}
		w.clock.Advance(5 * time.Second)
	}
	w.clock.Advance(2 * time.Second) // T+37 s: a window after the takeover
	evaluate(t, b)
	if q := w.quantity(t, "worker"); q != 8 {
		t.Errorf("worker = %d a window after the takeover, want 8", q)
	}
}
