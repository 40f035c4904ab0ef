package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	// Embedded zone data, so that CRON_TZ works in a minimal container image without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// Window is one schedule window: from each activation of its cron expression, for Duration, it may set the min
// and/or the max quantity (the highest of the active windows replace MIN and MAX). Windows let a policy get ahead
// of known traffic (office hours, a nightly batch) instead of fighting the metric.
type Window struct {
	Spec     string         // the window as written, for messages
	Location *time.Location // where the cron expression is read: CRON_TZ, or UTC without one
	Duration time.Duration  // how long the window lasts from each activation, in elapsed time
	Min, Max int            // the bounds it sets; meaningful only when SetsMin / SetsMax
	SetsMin  bool
	SetsMax  bool

	sched *cron.SpecSchedule
	// span caches Start's answer over a stretch of time. It is shared by every copy of the Window (Decide copies
	// it, and may run on one Policy from several goroutines: the simulator, `check`), hence a pointer to atomics.
	span *span
}

// String returns the window as written.
func (w Window) String() string { return w.Spec }

// Start returns the activation of the window that is in force at t, and whether there is one: an activation s
// with s <= t < s+Duration. (Next returns the first activation strictly after its argument, so the first one
// after t-Duration is the one to look at.)
//
// Searching for it walks cron's fields through time-zone lookups (microseconds), and the answer changes only when a
// window opens or closes: it is cached (see span), so that a decision between two changes costs nanoseconds.
func (w Window) Start(t time.Time) (time.Time, bool) {
	if w.sched == nil {
		return time.Time{}, false
	}
	if start, open, hit := w.cached(t); hit {
		if !open {
			return time.Time{}, false
		}
		return time.Unix(0, start).In(t.Location()), true // as Next answers: in its argument's location
	}
	if s := w.search(t); !s.IsZero() && !s.After(t) {
		return s, true
	}
	return time.Time{}, false
}

// Active reports whether the window is in force at t.
func (w Window) Active(t time.Time) bool {
	if w.sched == nil {
		return false
	}
	if _, open, hit := w.cached(t); hit {
		return open
	}
	s := w.search(t)
	return !s.IsZero() && !s.After(t)
}

// cached returns the answer at t from the window's span, when it holds one: the activation in force (Unix
// nanoseconds) if open.
func (w Window) cached(t time.Time) (start int64, open, hit bool) {
	if sec := t.Unix(); w.span == nil || sec <= -maxSpanSec || sec >= maxSpanSec {
		return 0, false, false
	}
	start, hit = w.span.get(t.UnixNano(), w.Duration)
	return start, hit && start != noStart, hit
}

// search returns the window's first activation strictly after t-Duration (zero when there is none within cron's
// five years), in force at t when it is not after t, and keeps in the span how long that answer holds (see span).
func (w Window) search(t time.Time) time.Time {
	s := w.sched.Next(t.Add(-w.Duration))
	if w.span == nil || s.IsZero() { // zero: no activation within five years of t, which says nothing of later times
		return s
	}
	if ts, ss := t.Unix(), s.Unix(); ts <= -maxSpanSec || ts >= maxSpanSec || ss <= -maxSpanSec || ss >= maxSpanSec {
		return s
	}
	tn, sn := t.UnixNano(), s.UnixNano()
	if s.After(t) {
		w.span.put(w.Duration, tn, sn, noStart)
	} else {
		w.span.put(w.Duration, tn, addSat(sn, w.Duration), sn)
	}
	return s
}

// span is one stretch of time [from, until) over which a window's Start has one answer: start, or noStart when the
// window is closed. It is what search learnt from one search at from, which found s, the first activation after
// from-Duration:
//
//   - s <= from: the window is open, and stays open from s for every t in [from, s+Duration): the first activation
//     after t-Duration is still s, since t-Duration lies in [from-Duration, s), where none comes before s.
//   - s > from: the window is closed until s, for the same reason.
//
// (That rests on cron's Next being the first matching time after its argument whatever the argument, daylight
// saving included; TestSpanAgreesWithSearch checks the cache against the search in zones with every kind of
// change.) A time before from (the clock went backwards) or from until on misses and is searched again, which
// moves the span.
//
// The fields are written under a sequence lock made of atomics: seq is odd while one writer (the one whose
// CompareAndSwap made it odd) writes, and a reader that sees seq odd or changed misses, so that no reader ever mixes
// two spans, and nobody waits or allocates. dur is the Duration the span was computed for: a copy of the Window
// given another Duration still shares the span, and must not use it.
type span struct {
	seq                     atomic.Uint64
	dur, from, until, start atomic.Int64
}

// noStart is span.start for a closed window: no activation is that far in the past (see maxSpanSec).
const noStart = math.MinInt64

// maxSpanSec bounds the times spans hold, in seconds either side of 1970 (285 years), well within what Unix
// nanoseconds can hold; a time outside is searched every time.
const maxSpanSec = 9_000_000_000

// get returns the cached answer at t (Unix nanoseconds) for a window of Duration d, if the span holds it.
func (c *span) get(t int64, d time.Duration) (start int64, hit bool) {
	seq := c.seq.Load()
	if seq&1 != 0 {
		return 0, false
	}
	dur, from, until, start := c.dur.Load(), c.from.Load(), c.until.Load(), c.start.Load()
	if c.seq.Load() != seq || dur != int64(d) || t < from || t >= until {
		return 0, false
	}
	return start, true
}

// put replaces the span, unless another goroutine is replacing it at this moment (its span is as good).
func (c *span) put(d time.Duration, from, until, start int64) {
	seq := c.seq.Load()
	if seq&1 != 0 || !c.seq.CompareAndSwap(seq, seq+1) {
		return
	}
	c.dur.Store(int64(d))
	c.from.Store(from)
	c.until.Store(until)
	c.start.Store(start)
	c.seq.Store(seq + 2)
}

// addSat is t+d in Unix nanoseconds, saturating at the largest time instead of wrapping around.
func addSat(t int64, d time.Duration) int64 {
	if d > 0 && t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return t + int64(d)
}

// cronParser reads the five standard fields and the @daily-style descriptors. Windows have no seconds field.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a SCHEDULE setting: windows separated by ';', each
// `[CRON_TZ=Zone] <5-field cron> for <duration> [min=N] [max=N]`. Empty parts are ignored. Every bad window is
// reported (as a *setting.Error named SCHEDULE whose value is the bad window), never a panic.
func ParseSchedule(spec string) ([]Window, error) {
	var (
		windows []Window
		errs    setting.List
	)
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		w, problem := parseWindow(part)
		if problem != "" {
			errs.Add(&setting.Error{Name: "SCHEDULE", Value: part, Expected: problem})
			continue
		}
		windows = append(windows, w)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return windows, nil
}

const windowForm = "`[CRON_TZ=Zone] <5-field cron> for <duration> [min=N] [max=N]`"

// parseWindow returns the window, or what is wrong with it (a phrase completing "expected ...").
func parseWindow(part string) (w Window, problem string) {
	w = Window{Spec: part, Location: time.UTC}
	fields := strings.Fields(part)

	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		zone := fields[0][strings.IndexByte(fields[0], '=')+1:]
		if zone == "" {
			return w, "a time zone after CRON_TZ=, such as CRON_TZ=Europe/Berlin"
		}
		loc, err := time.LoadLocation(zone)
		if err != nil || loc == time.Local {
			return w, fmt.Sprintf("a known time zone after CRON_TZ= (%q is not one; for example Europe/Berlin or America/New_York)", zone)
		}
		w.Location = loc
		fields = fields[1:]
	}

	forAt := -1
	for i, f := range fields {
		if f == "for" {
			forAt = i
			break
		}
	}
	if forAt < 0 || forAt+1 >= len(fields) {
		return w, "\"for <duration>\" after the cron expression: " + windowForm
	}
	cronFields := fields[:forAt]
	if len(cronFields) == 0 {
		return w, "a cron expression before \"for\": " + windowForm
	}
	for _, f := range cronFields {
		if strings.Contains(f, "=") {
			return w, fmt.Sprintf("CRON_TZ= only first, and cron fields without '=' (%q): %s", f, windowForm)
		}
	}
	if strings.HasPrefix(cronFields[0], "@every") {
		return w, "a cron expression or @hourly/@daily/@weekly/@monthly/@yearly: @every has no fixed start, so it cannot open a window"
	}
	sched, err := parseCron(strings.Join(cronFields, " "))
	if err != nil {
		return w, fmt.Sprintf("a valid 5-field cron expression (minute hour day-of-month month day-of-week): %v", err)
	}
	sched.Location = w.Location
	w.sched = sched
	w.span = &span{}
	// An expression that never matches (0 0 31 2 *) would make every evaluation search five years of days for
	// nothing: it is a mistake, say so now. Every valid date matches within eight years (29 February).
	if ref := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); sched.Next(ref).IsZero() && sched.Next(ref.AddDate(4, 0, 0)).IsZero() {
		return w, "a cron expression that matches some date (this one never does)"
	}

	d, err := time.ParseDuration(fields[forAt+1])
	if err != nil || d <= 0 {
		return w, fmt.Sprintf("a duration > 0 after \"for\", such as 10h (not %q)", fields[forAt+1])
	}
	w.Duration = d

	for _, opt := range fields[forAt+2:] {
		key, val, _ := strings.Cut(opt, "=")
		n, err := strconv.Atoi(val)
		bad := err != nil || n < 0 || n > MaxQuantity
		switch {
		case key == "min" && !w.SetsMin:
			if bad {
				return w, fmt.Sprintf("min=N with N a whole number from 0 to %d (not %q)", MaxQuantity, opt)
			}
			w.Min, w.SetsMin = n, true
		case key == "max" && !w.SetsMax:
			if bad {
				return w, fmt.Sprintf("max=N with N a whole number from 0 to %d (not %q)", MaxQuantity, opt)
			}
			w.Max, w.SetsMax = n, true
		case key == "min" || key == "max":
			return w, fmt.Sprintf("%s= at most once per window", key)
		default:
			return w, fmt.Sprintf("only min=N and max=N after the duration (not %q): %s", opt, windowForm)
		}
	}
	if !w.SetsMin && !w.SetsMax {
		return w, "min=N and/or max=N: a window that sets neither changes nothing"
	}
	if w.SetsMin && w.SetsMax && w.Min > w.Max {
		return w, fmt.Sprintf("min (%d) at most max (%d) within one window", w.Min, w.Max)
	}
	return w, ""
}

// parseCron wraps robfig/cron's parser, which can panic on input it does not expect (a bare "CRON_TZ=" slices out
// of range): a malformed SCHEDULE must be an error, never a crash of the daemon.
func parseCron(expr string) (sched *cron.SpecSchedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("unparseable %q", expr)
		}
	}()
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, err
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("%q has no fixed start", expr)
	}
	return spec, nil
}
