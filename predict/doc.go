// Package predict is predictive pre-scaling: it learns the daily and weekly profile of an app's load (a reading
// such as the request rate, in the reading's units, not dynos) from its recent history, so that the floor can be
// raised ahead of a recurring ramp by the boot time instead of reacting to it once it has come. The caller feeds a
// Profile its readings with Observe and asks Predict for the peak expected in [now, now+ahead], ahead being the
// boot time; it converts that load to dynos itself.
//
// Like package policy it is pure (no I/O, no clock, no goroutines, no package-level mutable state), so the daemon,
// the simulator and a test all get the same answer from the same readings.
//
// # What is predicted
//
// Time is cut into slots (5 minutes by default) aligned to the Unix epoch, so slots are UTC-based and a day (86400
// s) is a whole number of them. Each slot keeps the peak reading seen in it. The window on a past day d for
// [now, now+ahead] is [now − d×24h, now − d×24h + ahead], every slot overlapping it counted. Two profiles read it:
//
//   - daily: the minimum over the last 3 days of each day's peak in its window. The minimum, so that only what
//     came on every one of those days is predicted: one busy day is not a pattern.
//   - weekly: the same over the same weekday in each of the last 2 weeks (7 and 14 days back). It is what predicts a
//     Monday morning after a quiet weekend, when the daily minimum is the weekend's.
//
// Each profile needs each of its days to have something observed in the window; the prediction is the larger of
// the profiles that have it, and with neither there is none. Only the daily one runs before two weeks of history.
// Because both take the larger, the first day of a break in a pattern is predicted like the days before it (the
// Saturday after a working week is predicted from Wednesday to Friday's ramp): that cost is what the switch-off
// below bounds.
//
// # Only the past, and only raising
//
// Predict(now, …) reads only slots of previous days, all of which ended before now (ahead is clamped below a day
// minus a slot so that yesterday's window never reaches the slot holding now): a reading taken at or after now
// cannot change it. The load it returns is finite and not negative, and it is meant as a floor only: the caller
// takes max(what the reactive policy wants, dynos for the predicted load), so a prediction can bring dynos early,
// never take them away. Undershooting therefore costs nothing the reactive policy would not have done anyway.
//
// # Switching itself off
//
// A profile stops holding (a holiday, a changed business): then every prediction is dynos paid for nothing. So
// each time Predict predicts, it also notes for each slot of the window what the profiles expect in that slot
// itself (not the window's peak, which would charge the quiet slot before every ramp with the ramp), and when an
// observation arrives in a later slot, the slot is judged: a miss if its observed peak is below 0.75 × the
// expected one. When 6 of the last 12 judged slots are misses, Predict returns (0, false) while it goes on
// predicting in the shadow and judging; it switches back on when at most 2 of the last 12 are misses. Why these
// numbers is in predict.go, next to them.
//
// # Memory
//
// A Profile is fixed-size: one float32 per slot for today and Days previous days (15 × 288 × 4 bytes ≈ 17 KB at the
// defaults) and half a kilobyte of shadow predictions. The slots are a ring indexed by slot number whose newest slot
// is remembered, so a slot older than the ring or skipped by a gap in the readings is known to hold nothing rather
// than an old week's value. Observe and Predict allocate nothing. MarshalBinary keeps a profile across restarts.
package predict
