package sim

import (
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/predict"
)

// Engine is a contender driven by the real policy engine, as the daemon drives it: evaluated at t=0 and then at
// every activation of the INTERVAL schedule on the virtual clock, each evaluation is one policy.Decide with the
// reading, the formation quantity (booting dynos included, as Heroku counts them), the dyno size and the time of
// the last scale this simulated daemon made; the runner applies Decision.Desired at once. The first evaluation
// starts the policy's state as the daemon's start does (policy.State.Start). Cooldowns,
// stabilization, schedules, bounds, size limits and the fallback are the engine's alone: nothing here repeats them.
//
// A policy with several metrics reads r for its first and also for the others, in order (one Reading per rule in
// Policy.Also).
func Engine(name, kind string, pc *PolicyConfig, r Reading, also ...Reading) Contender {
	c := Contender{Name: name, Kind: kind, Reading: r, Also: also, Settings: withInterval(pc)}
	c.build = func(rc *runContext, self *Contender) (controller, error) {
		return newEngineController(pc, rc, nil, self.ObserveDecision)
	}
	return c
}

func withInterval(pc *PolicyConfig) map[string]string {
	s := maps.Clone(pc.Settings)
	if s == nil {
		s = map[string]string{}
	}
	if _, set := s["INTERVAL"]; !set {
		s["INTERVAL"] = pc.Interval
	}
	return s
}

type engineController struct {
	p         *policy.Policy
	st        policy.State
	sched     cron.Schedule
	start     time.Time
	size      string
	lastScale time.Time
	started   bool // State.Start was called, at the first evaluation
	// profile learns the load when the policy predicts (PREDICT), from the readings of its PredictMetric as they
	// come: what the simulated daemon has read, never the trace ahead of it.
	profile *predict.Profile
	// upLimit, when set, caps a scale-up from current (HPA's rate policy, which no policy setting expresses).
	upLimit func(current int) int
	observe func(policy.Input, policy.Decision)
}

func newEngineController(pc *PolicyConfig, rc *runContext, upLimit func(int) int, observe func(policy.Input, policy.Decision)) (*engineController, error) {
	s, err := parseSchedule(pc.Interval)
	if err != nil {
		return nil, err
	}
	e := &engineController{p: pc.Policy, sched: s, start: rc.start, size: rc.model.Size, upLimit: upLimit, observe: observe}
	if pc.Policy.Predict && pc.Policy.PredictMetric() >= 0 {
		e.profile = predict.New(predict.Config{})
	}
	return e, nil
}

func (e *engineController) first() int { return 0 }

func (e *engineController) next(t int) int {
	now := e.start.Add(time.Duration(t) * time.Second)
	n := e.sched.Next(now)
	if n.IsZero() {
		return -1
	}
	return int(math.Ceil(n.Sub(e.start).Seconds()))
}

func (e *engineController) decide(t, current int, readings []policy.Reading) int {
	in := policy.Input{
		Now:       e.start.Add(time.Duration(t) * time.Second),
		Current:   current,
		Size:      e.size,
		LastScale: e.lastScale,
		Value:     readings[0].Value,
		ReadingOK: readings[0].OK,
		Also:      readings[1:],
	}
	if e.profile != nil { // as the daemon: learn from this reading, then predict from the days before
		if r := readings[min(e.p.PredictMetric(), len(readings)-1)]; r.OK {
			e.profile.Observe(in.Now, r.Value)
		}
		if load, ok := e.profile.Predict(in.Now, e.p.PredictAhead); ok {
			in.Predicted = e.p.PredictedQuantity(load)
		}
	}
	if !e.started { // as the daemon does when it starts: no scale-down sooner than DOWN_STABILIZATION after it
		e.st.Start(e.p, in.Now, current)
		e.started = true
	}
	d := policy.Decide(e.p, &e.st, in)
	if e.observe != nil {
		e.observe(in, d)
	}
	desired := d.Desired
	if e.upLimit != nil && desired > current {
		desired = min(desired, e.upLimit(current))
	}
	if desired != current {
		e.lastScale = in.Now
	}
	return desired
}

// Anchors are the comparison presets: the behaviour the anchors document, expressed as policy settings run by the
// same engine wherever a setting expresses it (which shows the engine models them), plus one small wrapper where
// none does (HPA's rate limit). They share the policy's MIN, MAX and SIZE_LIMIT and the model's reading delay, and
// nothing else of the policy's, so tuning dynopilot cannot move them.
// Thresholds come from the objective alone, so tuning dynopilot cannot move them: with L the p95 objective, F the
// p95 of the service time alone (ln 20 × mean service time) and H = L - F the headroom queueing may use:
//
//   - hpa: Kubernetes HPA. Target tracking on p95 latency over 30 s with TARGET = F + H/2,
//     TOLERANCE 0.1, evaluated every 15 s, no cooldowns, DOWN_STABILIZATION 5m, and scale-up limited to
//     max(4 dynos, 100%) per evaluation (the wrapper).
//   - judoscale: p95 request queue time per 10 s, checked every 10 s; up by a jump of 2 above H/2, down by 1 below
//     H/10; upscale frequency 45 s (UP_COOLDOWN, at least the boot time as Judoscale advises); downscale delay 10
//     minutes: the queue time must stay under the threshold for 10 minutes (DOWN_STABILIZATION) and downscales are
//     10 minutes apart (DOWN_COOLDOWN).
//   - hirefire: p95 request queue time per minute, checked every 60 s; up by 1 above H/2, down by 1 below H/10;
//     upscale timeout 1 minute, downscale timeout 5 minutes (UP_/DOWN_COOLDOWN).
//   - heroku: Heroku's own autoscaling: p95 response time per minute against the desired p95 (the objective L),
//     one dyno per event, events at least a minute apart (INTERVAL and UP_COOLDOWN 1m), scaling down more slowly:
//     only below F + H/2 and at least 2 minutes after the last event. Heroku's actual algorithm estimates the
//     dynos needed from the last hour's throughput and is not public; this is its documented behaviour in the
//     engine's threshold form.
func Anchors(base *policy.Policy, m Model, r Reading) ([]Contender, error) {
	p := m.params()
	floor, head := p.serviceP95(), p.headroom()
	secs := func(v float64) string { return latencySetting(v, time.Microsecond) }
	bounds := map[string]string{"MIN": fmt.Sprint(base.Min), "MAX": fmt.Sprint(base.Max)}
	if base.SizeLimit > 0 {
		bounds["SIZE_LIMIT"] = fmt.Sprint(base.SizeLimit)
	}
	type preset struct {
		name     string
		reading  Reading
		settings map[string]string
		upLimit  func(int) int
	}
	latency := Reading{Kind: ReadingLatency, Window: 30 * time.Second, Delay: r.Delay}
	presets := []preset{
		{"hpa", latency, map[string]string{"MODE": "target", "TARGET": secs(floor + head/2), "TOLERANCE": "0.1",
			"INTERVAL": "15s", "UP_COOLDOWN": "0", "DOWN_COOLDOWN": "0", "UP_STABILIZATION": "0", "DOWN_STABILIZATION": "5m"},
			func(current int) int { return current + max(4, current) }},
		{"judoscale", Reading{Kind: ReadingQueueTime, Window: 10 * time.Second, Delay: r.Delay}, map[string]string{"MODE": "step",
			"UP_ABOVE": secs(head / 2), "DOWN_BELOW": secs(head / 10), "UP_BY": "2", "DOWN_BY": "1", "INTERVAL": "10s",
			"UP_COOLDOWN": "45s", "DOWN_COOLDOWN": "10m", "UP_STABILIZATION": "0", "DOWN_STABILIZATION": "10m"}, nil},
		{"hirefire", Reading{Kind: ReadingQueueTime, Window: time.Minute, Delay: r.Delay}, map[string]string{"MODE": "step",
			"UP_ABOVE": secs(head / 2), "DOWN_BELOW": secs(head / 10), "UP_BY": "1", "DOWN_BY": "1", "INTERVAL": "60s",
			"UP_COOLDOWN": "1m", "DOWN_COOLDOWN": "5m", "UP_STABILIZATION": "0", "DOWN_STABILIZATION": "0"}, nil},
		{"heroku", Reading{Kind: ReadingLatency, Window: time.Minute, Delay: r.Delay}, map[string]string{"MODE": "step",
			"UP_ABOVE": secs(p.objective), "DOWN_BELOW": secs(floor + head/2), "UP_BY": "1", "DOWN_BY": "1", "INTERVAL": "1m",
			"UP_COOLDOWN": "1m", "DOWN_COOLDOWN": "2m", "UP_STABILIZATION": "0", "DOWN_STABILIZATION": "0"}, nil},
	}
	out := make([]Contender, 0, len(presets))
	for _, ps := range presets {
		env := []string{}
		for k, v := range bounds {
			env = append(env, "POLICY_0_"+k+"="+v)
		}
		for k, v := range ps.settings {
			env = append(env, "POLICY_0_"+k+"="+v)
		}
		pc, err := LoadPolicy(env, 0)
		if err != nil {
			return nil, fmt.Errorf("preset %s: %w", ps.name, err)
		}
		c := Contender{Name: ps.name, Kind: "anchor", Reading: ps.reading, Settings: withInterval(pc)}
		upLimit := ps.upLimit
		c.build = func(rc *runContext, self *Contender) (controller, error) {
			return newEngineController(pc, rc, upLimit, self.ObserveDecision)
		}
		out = append(out, c)
	}
	return out, nil
}
