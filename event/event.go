// Package event is dynopilot's one event path: what the scaler decides and does (decisions, scale events, failing
// readings, leadership changes, an expiring token) is published once, as an Event, to a Sink; a Bus fans each
// event out to its consumers (metrics, logs, the status history, notifiers), each on its own bounded queue and
// goroutine. Adding a consumer therefore touches no scaling code, and a slow or failing consumer never delays a
// decision or a PATCH: when its queue is full the event is dropped for that consumer and counted
// (dynopilot_events_dropped_total{consumer}).
//
// An Event is plain data: it carries the facts already formatted for people (the explanation sentence, an error
// already redacted by its producer), so that no consumer needs the policy, the Heroku client or the secrets.
package event

import (
	"context"
	"slices"
	"time"
)

// Type names what happened. The names are what users write in DYNOPILOT_WEBHOOK_EVENTS and
// DYNOPILOT_SLACK_EVENTS and what a webhook's "type" says, so they are part of the product contract.
type Type string

// The event types. Every type but Decision is worth telling someone about; Decision is published on every
// evaluation, for the status history and for the detectors that derive PinnedAtMax and ReadingFailing from the
// stream of decisions, and is never notified: no one wants a message per tick.
const (
	// Decision is one evaluation of one policy: From is the current quantity, To the desired one, Wanted what the
	// policy's mode recommended before bounds, cooldowns and steps; Failures and FallbackAfter tell how the source
	// is doing.
	Decision Type = "decision"
	// Scaled is a formation change that Heroku accepted (or, with DryRun, one that would have been sent).
	Scaled Type = "scaled"
	// ScaleFailed is a formation change that failed; Error says why.
	ScaleFailed Type = "scale_failed"
	// PinnedAtMax: the policy wants more dynos than its effective MAX allows. Published once when that starts.
	PinnedAtMax Type = "pinned_at_max"
	// PinnedAtMaxEnded: a policy that was pinned at MAX has not wanted more than MAX for a while (Since is when the
	// pinning started).
	PinnedAtMaxEnded Type = "pinned_at_max_ended"
	// ReadingFailing: FALLBACK_AFTER readings in a row have failed. Published once when that threshold is crossed.
	ReadingFailing Type = "reading_failing"
	// ReadingRecovered: a source that was failing gave a usable reading again (Since is when it started failing).
	ReadingRecovered Type = "reading_recovered"
	// LeadershipChanged: this instance started (Leader true) or stopped (Leader false) leading.
	LeadershipChanged Type = "leadership_changed"
	// TokenExpiring: the Heroku API token expires at ExpiresAt, soon enough that someone should renew it.
	TokenExpiring Type = "token_expiring"
)

// Types returns every event type, in the order they are documented.
func Types() []Type {
	return []Type{Decision, Scaled, ScaleFailed, PinnedAtMax, PinnedAtMaxEnded, ReadingFailing, ReadingRecovered,
		LeadershipChanged, TokenExpiring}
}

// Notifiable returns the types that may be sent to people or machines: all but Decision.
func Notifiable() []Type {
	return slices.DeleteFunc(Types(), func(t Type) bool { return t == Decision })
}

// Valid reports whether t is one of Types.
func (t Type) Valid() bool { return slices.Contains(Types(), t) }

// Event is one thing that happened. Which fields mean something depends on Type; a consumer shows those that
// are set. Policy events (all but LeadershipChanged and TokenExpiring) carry the policy's name and the
// decision's numbers.
type Event struct {
	Type Type
	Time time.Time // when it happened (the decision's time), set by the producer

	Policy  string // "app/process"
	App     string
	Process string

	From, To int    // current and desired quantity (for Scaled and ScaleFailed: the change)
	Wanted   int    // the mode's recommendation before bounds, stabilization, cooldowns and steps
	Min, Max int    // the effective bounds at the time
	Action   string // "up", "down" or "hold"
	Reason   string // the decision's reason, from the policy vocabulary (above_target, at_max, …)
	DryRun   bool   // Scaled: the change was only decided, DYNOPILOT_DRY_RUN is on

	Reading    float64 // the reading (latencies in seconds); meaningful only when HasReading
	HasReading bool    // false when the reading failed or was unusable
	Target     float64 // what the reading is compared with: TARGET, UP_ABOVE or PER_DYNO

	Failures      int // failed readings in a row, this one included (Decision, ReadingFailing)
	FallbackAfter int // the policy's FALLBACK_AFTER: failures in a row that make a source "failing"

	Explanation string    // the decision as one sentence with its numbers, as policy.Decision.Explain writes it
	Error       string    // what went wrong (ScaleFailed: the PATCH; Decision, ReadingFailing: the reading), already redacted by the producer: never a secret or a credential
	Since       time.Time // PinnedAtMaxEnded, ReadingRecovered: when the condition began

	Leader    bool      // LeadershipChanged: whether this instance leads now
	ExpiresAt time.Time // TokenExpiring: when the token stops working

	// What the daemon's own record of a decision (its metrics, the status table, the log) needs besides.
	Size         string        // the formation's dyno size
	PricePerHour float64       // list price of one dyno of Size
	CooldownLeft time.Duration // until a move in the wanted direction is allowed
	LastScale    time.Time     // the last scale event cooldowns count from
	ReadingAt    time.Time     // when the reading was true
	RunningError string        // Decision: why the running jobs could not be read (PROTECT_BUSY), already redacted
	NoFormation  bool          // Decision: the formation could not be read, so nothing was decided (a hold)
	Warning      string        // Decision: something a person should know, said at warning level (PROTECT_BUSY_MAX passed)
	HeldFor      time.Duration // Decision with reason busy: how long the scale-down has been held
	RetryAt      time.Time     // ScaleFailed: Heroku refused the change; no PATCH for this policy before then
	Repeated     bool          // ScaleFailed: the same refusal as the last one; Decision with reason deploying: the same deploy; said already

	// Decision: every metric's reading, the policy's own first, then its further metrics' (METRIC_2_, …). Reading,
	// HasReading and Target above are about the metric the decision is about (the one its explanation names), and
	// HasReading is false when any metric's reading failed.
	Metrics []MetricReading
	// Decision, for a policy that predicts (PREDICT): the quantity its learned load profile needs ahead of now (0 for
	// none), whether predictions are on, and what the prediction is doing, a sentence for a person.
	Predicted    int
	PredictionOn bool
	Prediction   string
}

// MetricReading is one metric's reading at a decision.
type MetricReading struct {
	Value  float64   // meaningful only when OK
	OK     bool      // false when the reading failed
	At     time.Time // when the value was true
	Target float64   // what the metric's readings are compared with: its TARGET, UP_ABOVE or PER_DYNO
	Error  string    // why the reading failed, already redacted
}

// Sink takes events. The Bus is a Sink (what producers publish to) and so is every consumer the Bus feeds.
//
// The Bus's Publish never blocks; a consumer's Publish runs on the consumer's own goroutine and may take its
// time (an HTTP POST with retries), but must return soon after ctx is done, which is how Bus.Close bounds a
// shutdown. Publish reports no error: a consumer handles its own failures (logs them, counts them), because the
// producer could do nothing about them and must not wait for them.
type Sink interface {
	Publish(ctx context.Context, e Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, e Event)

// Publish calls f.
func (f SinkFunc) Publish(ctx context.Context, e Event) { f(ctx, e) }
