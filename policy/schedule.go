package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	// Embedded zone data, so that CRON_TZ works in a minimal container image without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/setting"
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
}

// String returns the window as written.
func (w Window) String() string { return w.Spec }

// Start returns the activation of the window that is in force at t, and whether there is one: an activation s
// with s <= t < s+Duration. (Next returns the first activation strictly after its argument, so the first one
// after t-Duration is the one to look at.)
func (w Window) Start(t time.Time) (time.Time, bool) {
	if w.sched == nil {
		return time.Time{}, false
	}
	s := w.sched.Next(t.Add(-w.Duration))
	if s.IsZero() || s.After(t) {
		return time.Time{}, false
	}
	return s, true
}

// Active reports whether the window is in force at t.
func (w Window) Active(t time.Time) bool {
	_, ok := w.Start(t)
	return ok
}

// Next returns the window's first activation strictly after t (the zero time when there is none within five
// years), for showing when the bounds will next change.
func (w Window) Next(t time.Time) time.Time {
	if w.sched == nil {
		return time.Time{}
	}
	return w.sched.Next(t)
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
