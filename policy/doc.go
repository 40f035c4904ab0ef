// Package policy decides how many dynos one process type needs: given a policy, the formation's current quantity,
// the latest reading and the time, Decide returns the desired quantity and the one reason for it. It is pure (no
// I/O, no goroutines, no clock, no logging) so that the daemon, `dynopilot check` and the backtest simulator all
// take exactly the same decision from the same facts, and every decision can be replayed in a test.
//
// # Modes
//
//   - target: desired = ceil(current × value / TARGET), unchanged while value/TARGET is within 1 ± TOLERANCE
//     (Kubernetes HPA's rule). The rule is proportional to the current quantity, so at zero dynos it has nothing to
//     be proportional to: from zero, a value above ACTIVATION recommends max(MIN, 1) and target tracking takes over
//     from there on the next evaluation; a value at or below ACTIVATION stays at zero (reason below_activation).
//     From one dyno, target mode recommends zero only when the value is exactly 0 (an empty queue), so MIN=0 with
//     target mode means "scale to zero when idle".
//   - step: value > UP_ABOVE recommends current + UP_BY; value < DOWN_BELOW recommends current − DOWN_BY; between
//     them (inclusive) nothing changes (HireFire's and Judoscale's thresholds).
//   - ratio: desired = ceil(value / PER_DYNO) (HireFire's jobs-per-dyno), or with SAFETY set,
//     ceil(R + SAFETY*sqrt(R)) where R = value / PER_DYNO: the square-root staffing rule, for a request rate read
//     against a dyno's full capacity.
//
// Each mode's rules (its recommendation, reference, explanation and required settings) are in mode.go, in one
// table that Decide, Explain and Parse consult: nothing else switches on the mode.
//
// In every mode, from zero dynos a value must exceed ACTIVATION before anything but the bounds moves the quantity
// (KEDA's activation); step and ratio then recommend at least one dyno. Going back to zero is the mode's own
// business (a value of 0 in target and ratio mode, DOWN_BELOW in step mode), which gives hysteresis around zero.
//
// A negative reading, NaN and ±Inf count as failed readings: no latency, size or rate can be negative, so a
// negative value is a broken query or exporter, never a reason to scale down. Every recommendation is clamped to
// MaxQuantity in floating point before it becomes an int, so no reading can overflow.
//
// # The pipeline, and which reason wins
//
// Every decision carries exactly one Reason: the one naming the last stage that changed the quantity, in this
// order (a stage that changes nothing leaves the reason of the stage before it):
//
//  1. ENABLED=false: hold, disabled (nothing else is looked at).
//  2. A failed or missing reading (with several metrics: every metric's): hold, reading_failed; once FALLBACK_AFTER readings in a row have failed and
//     FALLBACK_QUANTITY is set, fallback: FALLBACK_QUANTITY acts as a floor, like MIN, at once (it ignores
//     cooldowns, stabilization and MAX_STEP_UP, and it only ever raises). A quantity outside the bounds is still
//     brought inside them (step 8); nothing else happens on a failed reading.
//  3. The mode's recommendation: above_target, below_target, within_tolerance (target); above_threshold,
//     below_threshold, within_thresholds (step); ratio (ratio); activation, below_activation (from zero). With
//     several metrics (Policy.Also) each recommends by its own rule and the largest wins, with its reason
//     (Decision.Metric names it); a metric whose reading failed recommends nothing and holds a scale-down:
//     reading_failed at the current quantity when the others would go lower. Then the prediction (Input.Predicted,
//     when the policy predicts) raises the recommendation if it is higher: predicted. It never lowers it.
//  4. Stabilization (as HPA): up only to the lowest, down only to the highest recommendation within
//     UP_STABILIZATION / DOWN_STABILIZATION, the current one included: stabilizing.
//  5. The effective bounds as a limit on the move: a move that would overshoot them stops at them (at_max, at_min;
//     schedule when a schedule window set the bound, size_limit when the dyno size's limit did). Applied before
//     the cooldowns so that a move the bounds forbid anyway is reported as such, not as a cooldown.
//  6. Cooldowns, counted from Input.LastScale (the later of the formation's updated_at and the daemon's own last
//     successful PATCH, so a person's manual scale restarts them): up_cooldown, down_cooldown. A LastScale ahead
//     of Now (clock skew) counts as Now, so a cooldown never lasts longer than itself.
//  7. MAX_STEP_UP / MAX_STEP_DOWN cap the change: max_step.
//  8. The effective bounds as a force: a quantity that is outside them is brought inside at once, whatever held
//     it in steps 4 to 7 (raise_to_min, lower_to_max; schedule, size_limit as in step 5).
//
// Hence the result always lies within the effective bounds; a scale-down on a failed reading happens only when
// the quantity is above the effective max; and inside a cooldown the quantity changes only when the bounds (or the
// fallback floor) force it.
//
// dry_run is the daemon's to give (Decide never returns it); disabled is returned by Decide too, so that the
// daemon need not special-case it.
//
// # Effective bounds
//
// The highest min and the highest max of the schedule windows active now replace MIN and MAX (a window may set
// either or both); if min then exceeds max, max becomes min. The dyno size's limit (dynosize.Limit, or SIZE_LIMIT
// when set) caps both. A window is active at t when one of its activations s satisfies s <= t < s+duration; the
// cron expression is evaluated in its CRON_TZ zone (UTC without one, never the machine's local zone), so a window
// at 08:00 Europe/Berlin starts at 08:00 Berlin time on both sides of a daylight-saving change, and its duration
// is real elapsed time. As with cron, an activation whose local time does not exist (02:30 on the night clocks go
// forward) does not happen that day.
//
// # State
//
// State is the small value the caller keeps per policy and passes back on every call: the number of failed readings
// in a row and the recent recommendations for stabilization. It holds nothing about what was applied: the
// current quantity and the last scale event always come from the caller (the formation and successful PATCHes),
// so a PATCH that failed cannot leave the engine believing it scaled; the next evaluation simply decides again.
// See State for the history's capacity and why it stays safe past it.
package policy
