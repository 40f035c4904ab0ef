package scaler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Leader decides whether this instance may change formations, when several run (DYNOPILOT_STATE_URL);
// *pgstate.Store provides it. Without one the instance always leads.
type Leader interface {
	// Leading reports whether this instance leads now, as far as it knows without asking.
	Leading() bool
	// Confirm asks, with one round trip, whether it still leads; an error means it does not, and must not PATCH.
	Confirm(ctx context.Context) error
}

// Store keeps what a decision depends on beyond the formation, so that a restart or a failover decides exactly as
// an uninterrupted process would; *pgstate.Store provides it. Without one, state lives in memory and a start fills
// the down-stabilization window instead (policy.State.Start).
type Store interface {
	Load(ctx context.Context, key string) ([]byte, bool, error)
	Save(ctx context.Context, key string, value []byte) error
}

// storeTimeout bounds one Load or Save.
const storeTimeout = 5 * time.Second

// record is one policy's durable state: what the engine remembers (stabilization windows, failed readings), the
// daemon's own last PATCH and a refusal being waited out, and the last status, so that a new leader's status page
// shows what happened before it.
type record struct {
	Version   int       `json:"v"`
	State     []byte    `json:"state"`
	Started   bool      `json:"started"`
	LastPatch time.Time `json:"last_patch,omitzero"`
	Refused   struct {
		Until   time.Time     `json:"until,omitzero"`
		Delay   time.Duration `json:"delay,omitempty"`
		Message string        `json:"message,omitempty"`
	} `json:"refused"`
	Status Status `json:"status"`
}

const recordVersion = 1

func (e *entry) storeKey() string { return "policy/" + e.name }

// deciding encodes what the entry must remember to decide, without its status: it tells whether anything that
// decides changed since the last save. Callers hold e.mu.
func (e *entry) deciding() (record, []byte, error) {
	st, err := e.state.MarshalBinary()
	if err != nil {
		return record{}, nil, err
	}
	r := record{Version: recordVersion, State: st, Started: e.started, LastPatch: e.lastPatch}
	r.Refused.Until, r.Refused.Delay, r.Refused.Message = e.refused.until, e.refused.delay, e.refused.message
	b, err := json.Marshal(r)
	return r, b, err
}

// restore sets the entry from a saved record. Only what was decided is taken from the saved status: what the
// configuration says (names, source, mode, interval) is this process's. Callers hold e.mu.
func (e *entry) restore(b []byte) error {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("state of %s: %w", e.name, err)
	}
	if r.Version != recordVersion {
		return fmt.Errorf("state of %s: version %d: expected %d", e.name, r.Version, recordVersion)
	}
	if err := e.state.UnmarshalBinary(r.State); err != nil {
		return fmt.Errorf("state of %s: %w", e.name, err)
	}
	e.started, e.lastPatch = r.Started, r.LastPatch
	e.refused = refusal{until: r.Refused.Until, delay: r.Refused.Delay, message: r.Refused.Message}
	mine := e.status
	e.status = r.Status
	e.status.Policy, e.status.App, e.status.Process, e.status.Source = mine.Policy, mine.App, mine.Process, mine.Source
	e.status.Mode, e.status.Interval, e.status.Enabled, e.status.DryRun = mine.Mode, mine.Interval, mine.Enabled, mine.DryRun
	e.status.Target, e.status.Predict = mine.Target, mine.Predict
	e.status.Metrics = restoreMetrics(mine.Metrics, r.Status.Metrics)
	e.status.RetryAt = e.refused.until
	return nil
}

// restoreMetrics returns the metrics as configured now (mine), each with the last reading saved for it when the
// saved status has the same metric: the same number, source, measure and mode.
func restoreMetrics(mine, saved []MetricStatus) []MetricStatus {
	out := slices.Clone(mine)
	for i := range out {
		if i >= len(saved) {
			break
		}
		m, sv := &out[i], saved[i]
		if sv.Metric == m.Metric && sv.Source == m.Source && sv.Measure == m.Measure && sv.Mode == m.Mode {
			m.Value, m.At, m.OK, m.Error = sv.Value, sv.At, sv.OK, sv.Error
		}
	}
	return out
}

// leading reports whether this instance may act now.
func (s *Scaler) leading() bool {
	return s.opts.Leader == nil || s.opts.Leader.Leading()
}

// LeadershipChanged is told of every change of leadership (pgstate's OnChange): it starts a new term, so that every
// policy's state is read again before this instance next acts, since another instance may have led, and written
// it, in between. (dynopilot_leader asks Leader itself.)
func (s *Scaler) LeadershipChanged(bool) {
	s.mu.Lock()
	s.term++
	s.mu.Unlock()
}

func (s *Scaler) currentTerm() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term
}

// load reads the durable state of the group's policies not read in this term. It reports false when one could not
// be read: a leader does not act on state it has not read.
func (s *Scaler) load(ctx context.Context, g *group) bool {
	if s.opts.State == nil {
		return true
	}
	term := s.currentTerm()
	for _, e := range g.entries {
		e.mu.Lock()
		done := e.loadedTerm == term && e.loaded
		e.mu.Unlock()
		if done {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		b, found, err := s.opts.State.Load(lctx, e.storeKey())
		cancel()
		if err != nil {
			s.log.Warn("cannot read the policy's durable state; not acting until it can be read", "policy", e.name, "err", err)
			return false
		}
		e.mu.Lock()
		if found {
			if err := e.restore(b); err != nil {
				s.log.Warn("ignoring durable state that cannot be read", "policy", e.name, "err", err)
			} else {
				e.state.Resume(e.Rules, s.now()) // nobody read anything since it was saved
			}
		}
		e.loaded, e.loadedTerm = true, term
		e.savedDeciding = nil
		e.mu.Unlock()
		if found {
			s.log.Info("read the policy's durable state", "policy", e.name)
		}
		if err := s.loadProfile(ctx, e); err != nil {
			s.log.Warn("cannot read the policy's learned load profile; not acting until it can be read", "policy", e.name, "err", err)
			e.mu.Lock()
			e.loaded = false
			e.mu.Unlock()
			return false
		}
	}
	return true
}

// save writes the durable state of the group's policies whose deciding state changed since it was last saved.
func (s *Scaler) save(ctx context.Context, g *group) {
	if s.opts.State == nil {
		return
	}
	for _, e := range g.entries {
		e.mu.Lock()
		r, deciding, err := e.deciding()
		unchanged := err == nil && bytes.Equal(deciding, e.savedDeciding)
		var full []byte
		if err == nil && !unchanged { // the status is saved with it, but only when what decides changed
			r.Status = e.status
			full, err = json.Marshal(r)
		}
		e.mu.Unlock()
		if err != nil {
			s.log.Error("cannot encode the policy's state", "policy", e.name, "err", err)
			continue
		}
		if unchanged {
			continue
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		err = s.opts.State.Save(sctx, e.storeKey(), full)
		cancel()
		if err != nil {
			s.log.Warn("cannot save the policy's durable state", "policy", e.name, "err", err)
			continue
		}
		e.mu.Lock()
		e.savedDeciding = deciding
		e.mu.Unlock()
	}
}

// Role is "leader" on the instance that acts, "standby" on one that waits to take over.
func (s *Scaler) Role() string {
	if s.leading() {
		return "leader"
	}
	return "standby"
}
