package scaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dynopilot/dynopilot/predict"
)

// A policy that predicts (PREDICT) has a load profile (package predict) that learns from the readings of its
// Rules.PredictMetric(): every usable one, at the time it was true. Before each decision the profile predicts the
// peak load until PREDICT_AHEAD from now, and the quantity that load needs (Rules.PredictedQuantity) is a floor
// under the decision (policy.Input.Predicted). Only a policy that predicts has a profile (about 17 kB). With a
// Store, the profile is kept across restarts and failovers: read with the policy's durable state when this
// instance starts to lead, saved by the leader every minute and as it stops (SavePredictions).

// newProfile returns an empty profile for a policy that predicts.
func newProfile() *predict.Profile { return predict.New(predict.Config{}) }

// predictionKey is where a policy's load profile is kept in the Store, beside its decision state.
func predictionKey(policy string) string { return "predict/" + policy }

// observe feeds the profile of each policy that predicts with its predicting metric's reading, if usable; rs[i]
// are entry i's readings (read's result).
func (s *Scaler) observe(g *group, rs [][]reading, now time.Time) {
	for i, e := range g.entries {
		if !e.Rules.Predict {
			continue
		}
		m := e.Rules.PredictMetric()
		if m < 0 || m >= len(rs[i]) || rs[i][m].err != nil {
			continue
		}
		r := rs[i][m]
		at := r.At
		if at.IsZero() || at.After(now) { // a source's clock ahead of ours must not hold back the readings after it
			at = now
		}
		e.mu.Lock()
		if e.profile.Observe(at, r.Value) {
			e.profileDirty = true
		}
		e.mu.Unlock()
	}
}

// predicted returns the quantity the entry's profile needs ahead of now (0 for none), whether predictions are on,
// and the profile's sentence for a person. Callers hold e.mu.
func (e *entry) predicted(now time.Time) (quantity int, on bool, status string) {
	if !e.Rules.Predict {
		return 0, false, ""
	}
	if load, ok := e.profile.Predict(now, e.Rules.PredictAhead); ok {
		quantity = e.Rules.PredictedQuantity(load)
	}
	e.profileDirty = true // Predict notes what it expects, to judge itself by
	return quantity, e.profile.Enabled(), e.profile.Status()
}

// loadProfile reads the entry's saved profile, if any, into a new one: what an earlier leader (or this app's last
// process) learned. Called with the policy's durable state, by a leader only.
func (s *Scaler) loadProfile(ctx context.Context, e *entry) error {
	if !e.Rules.Predict {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	b, found, err := s.opts.State.Load(lctx, predictionKey(e.name))
	cancel()
	if err != nil || !found {
		return err
	}
	p := newProfile()
	if err := p.UnmarshalBinary(b); err != nil {
		s.log.Warn("ignoring a saved load profile that cannot be read; learning anew", "policy", e.name, "err", err)
		return nil
	}
	e.mu.Lock()
	e.profile, e.profileDirty = p, false
	e.mu.Unlock()
	s.log.Info("read the policy's learned load profile", "policy", e.name)
	return nil
}

// SavePredictions writes the load profile of every policy that predicts and whose profile changed since it was last
// saved; without a Store it does nothing. Only a leader's saves go through (the Store is fenced); a failed one is
// tried again at the next.
func (s *Scaler) SavePredictions(ctx context.Context) error {
	if s.opts.State == nil {
		return nil
	}
	var errs []error
	for _, e := range s.all {
		if !e.Rules.Predict { // only a policy that predicts has a profile
			continue
		}
		e.mu.Lock()
		dirty := e.profileDirty
		var b []byte
		var err error
		if dirty {
			b, err = e.profile.MarshalBinary()
			e.profileDirty = false
		}
		e.mu.Unlock()
		if !dirty {
			continue
		}
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, storeTimeout)
			err = s.opts.State.Save(sctx, predictionKey(e.name), b)
			cancel()
		}
		if err != nil {
			e.mu.Lock()
			e.profileDirty = true
			e.mu.Unlock()
			errs = append(errs, fmt.Errorf("save the load profile of %s: %w", e.name, err))
		}
	}
	return errors.Join(errs...)
}
