package scaler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/policy"
)

// Refusal backoff: a PATCH that Heroku refuses (a 4xx other than 429: a size limit, an app being deployed, a
// suspended account) would be refused again on the next tick, so the policy waits before asking again, from
// refusalBackoff doubling to refusalBackoffMax; a successful PATCH ends the wait.
const (
	refusalBackoff    = time.Minute
	refusalBackoffMax = 15 * time.Minute
)

// refusal is Heroku's last refusal of a PATCH for one policy, while it is being waited out.
type refusal struct {
	until   time.Time     // no PATCH for this policy before then
	delay   time.Duration // the wait after the last refusal; doubles with each one in a row
	message string        // the last refusal's message, to log a refusal once and not every time it repeats
}

// refusedAt reports whether the policy is waiting out a refusal at now.
func (e *entry) refusedAt(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return now.Before(e.refused.until)
}

// refused reports whether err is Heroku refusing the request itself (a 4xx other than 429), which asking again
// unchanged will not cure, as opposed to a failure on the way (429, 5xx, transport) worth retrying next tick.
func refused(err error) bool {
	var he *herokuapi.Error
	return errors.As(err, &he) && he.Status >= 400 && he.Status < 500 && he.Status != http.StatusTooManyRequests
}

// refusalMessage is what makes two refusals the same: status, id and message, without the Request-Id that
// differs every time.
func refusalMessage(err error) string {
	var he *herokuapi.Error
	if errors.As(err, &he) {
		return fmt.Sprintf("%d %s %s", he.Status, he.ID, he.Message)
	}
	return err.Error()
}

// apply sends the changes the group's decisions want: one PATCH for the app (a batch update when several process
// types change). A policy waiting out a refusal is left out, so that it does not block the others.
func (s *Scaler) apply(ctx context.Context, app string, evs []*evaluation, now time.Time) {
	var changing []*evaluation
	for _, ev := range evs {
		if !ev.changes() {
			continue
		}
		if ev.e.refusedAt(now) {
			s.log.Debug("holding a PATCH back while a refusal is waited out", "policy", ev.e.name, "from", ev.d.Current, "to", ev.d.Desired)
			continue
		}
		changing = append(changing, ev)
	}
	if len(changing) == 0 || s.opts.Preview {
		return
	}
	if s.opts.DryRun {
		for _, ev := range changing {
			s.scaleEvent(ev.e, ev.d, nil)
		}
		return
	}
	// A PATCH already decided is allowed to finish during shutdown: it is absolute, and abandoning it half-way
	// would leave us not knowing what happened.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.PatchTimeout)
	defer cancel()
	// Several instances: lead, confirmed with the database now, or do not PATCH. A leader that lost its lock without
	// knowing it yet finds out here, before it acts, not after.
	if s.opts.Leader != nil {
		if err := s.opts.Leader.Confirm(pctx); err != nil {
			s.log.Warn("not leading: no PATCH", "app", app, "err", err)
			return
		}
	}
	s.patch(pctx, app, changing)
}

// patch sends one PATCH for evs and records the outcome for each. A batch refused as invalid (422) may be refused
// for one entry alone (one process type past its size's limit), so it is split and each entry sent by itself:
// the others still scale.
func (s *Scaler) patch(ctx context.Context, app string, evs []*evaluation) {
	updates := make([]herokuapi.FormationUpdate, len(evs))
	for i, ev := range evs {
		updates[i] = herokuapi.FormationUpdate{Type: ev.f.Type, Quantity: ev.d.Desired}
	}
	err := s.cache.patch(ctx, app, updates)
	if deploying(err) {
		for _, ev := range evs {
			s.heldForDeploy(ev, err)
		}
		return
	}
	if err != nil && len(evs) > 1 && errors.Is(err, herokuapi.InvalidParams) {
		s.log.Warn("batch formation update refused; sending each process type by itself", "app", app, "err", err)
		for _, ev := range evs {
			s.patch(ctx, app, []*evaluation{ev})
		}
		return
	}
	for _, ev := range evs {
		s.patched(ev, err)
	}
}

// deploying reports whether err is Heroku refusing a formation change because the app is being deployed: "Cannot
// change formation for a preboot app until release phase and preboot complete". That ends by itself in minutes,
// so it is neither a refusal to back off from nor an error: the change waits for the next tick.
func deploying(err error) bool {
	var he *herokuapi.Error
	return errors.As(err, &he) && he.Status == http.StatusUnprocessableEntity &&
		(strings.Contains(he.Message, "preboot") || strings.Contains(he.Message, "release phase"))
}

// heldForDeploy records a change that Heroku refused because the app is being deployed: a hold with reason
// deploying, logged once per deploy, tried again on the next tick.
func (s *Scaler) heldForDeploy(ev *evaluation, err error) {
	e, d := ev.e, ev.d
	e.mu.Lock()
	again := e.deploying
	e.deploying = true
	e.mu.Unlock()
	out := s.decisionEvent(ev)
	out.To, out.Action, out.Reason = d.Current, string(policy.ActionHold), string(policy.ReasonDeploying)
	out.Explanation = fmt.Sprintf("Heroku is deploying %s (release phase or preboot) and refuses formation changes: %d -> %d waits for the next tick",
		e.Rules.App, d.Current, d.Desired)
	out.Error, out.Repeated = err.Error(), again
	s.emit(e, out)
}

// patched records the outcome of a PATCH for one policy: a success is believed, a failure never is.
func (s *Scaler) patched(ev *evaluation, err error) {
	e, now := ev.e, s.now()
	if err == nil {
		e.mu.Lock()
		e.lastPatch = now
		e.refused = refusal{}
		wasDeploying := e.deploying
		e.deploying = false
		e.mu.Unlock()
		if wasDeploying {
			s.log.Info("the deploy is over: formation changes go through again", "policy", e.name)
		}
		s.scaleEvent(e, ev.d, nil)
		return
	}
	if !refused(err) {
		s.scaleEvent(e, ev.d, err) // worth retrying: the next tick decides again from the formation
		return
	}
	e.mu.Lock()
	r := &e.refused
	r.delay = min(max(2*r.delay, refusalBackoff), refusalBackoffMax)
	r.until = now.Add(r.delay)
	again := r.message == refusalMessage(err)
	r.message = refusalMessage(err)
	until := r.until
	e.mu.Unlock()
	out := s.policyEvent(e, event.ScaleFailed, ev.d)
	out.Time, out.Error, out.RetryAt, out.Repeated = now, err.Error(), until, again
	s.emit(e, out)
}

// scaleEvent emits one attempted change: scaled (or, in a dry run, would have), or scale_failed with err.
func (s *Scaler) scaleEvent(e *entry, d policy.Decision, err error) {
	out := s.policyEvent(e, event.Scaled, d)
	out.Time = s.now()
	if err != nil {
		out.Type, out.Error = event.ScaleFailed, err.Error()
	}
	s.emit(e, out)
}
