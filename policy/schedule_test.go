package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/policy"
)

func TestParseScheduleValid(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		windows  int
		zone     string
		duration time.Duration
	}{
		{"", 0, "", 0},
		{"  ;  ; ", 0, "", 0},
		{"0 8 * * MON-FRI for 10h min=4", 1, "UTC", 10 * time.Hour},
		{"CRON_TZ=Europe/Berlin 0 8 * * MON-FRI for 10h min=4", 1, "Europe/Berlin", 10 * time.Hour},
		{"TZ=America/New_York 30 17 * * * for 90m max=2 min=1", 1, "America/New_York", 90 * time.Minute},
		{"@daily for 1h max=0", 1, "UTC", time.Hour},
		{"CRON_TZ=Asia/Tokyo @weekly for 2h min=3", 1, "Asia/Tokyo", 2 * time.Hour},
		{"0 8 * * * for 1h min=2;0 20 * * * for 1h max=1;", 2, "UTC", time.Hour},
		{"*/15 * * * * for 5m min=2", 1, "UTC", 5 * time.Minute},
		{"0 12 29 2 * for 1h min=2", 1, "UTC", time.Hour},
	} {
		windows, err := policy.ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.spec, err)
			continue
		}
		if len(windows) != tc.windows {
			t.Errorf("ParseSchedule(%q) = %d windows, want %d", tc.spec, len(windows), tc.windows)
			continue
		}
		if tc.windows > 0 && (windows[0].Location.String() != tc.zone || windows[0].Duration != tc.duration) {
			t.Errorf("ParseSchedule(%q)[0] = zone %s for %s, want %s for %s", tc.spec, windows[0].Location, windows[0].Duration, tc.zone, tc.duration)
		}
	}
}

// TestParseScheduleErrors: every malformed window is an error naming SCHEDULE and the bad window, never a panic
// (robfig/cron panics on a bare "CRON_TZ=" or a zone without a following space).
func TestParseScheduleErrors(t *testing.T) {
	for _, tc := range []struct {
		spec, expected string
	}{
		{"CRON_TZ=", "time zone"},
		{"CRON_TZ= 0 8 * * * for 1h min=2", "time zone"},
		{"TZ=", "time zone"},
		{"CRON_TZ=Europe/Berlin", "for <duration>"},
		{"CRON_TZ=Mars/Olympus 0 8 * * * for 1h min=2", "known time zone"},
		{"CRON_TZ=Local 0 8 * * * for 1h min=2", "known time zone"},
		{"CRON_TZ=../../etc/passwd 0 8 * * * for 1h min=2", "known time zone"},
		{"0 8 * * * min=2", "for <duration>"},
		{"0 8 * * * for", "for <duration>"},
		{"for 1h min=2", "cron expression before"},
		{"0 8 * * for 1h min=2", "5-field cron"},
		{"0 8 * * * * for 1h min=2", "5-field cron"},
		{"0 25 * * * for 1h min=2", "5-field cron"},
		{"0 8 * * FUNDAY for 1h min=2", "5-field cron"},
		{"@every 1h for 10m min=2", "no fixed start"},
		{"0 0 31 2 * for 1h min=2", "never"},
		{"0 0 30 2 * for 1h min=2", "never"},
		{"@fortnightly for 1h min=2", "5-field cron"},
		{"0 8 CRON_TZ=UTC * * for 1h min=2", "CRON_TZ= only first"},
		{"CRON_TZ=UTC TZ=Europe/Berlin 0 8 * * * for 1h min=2", "CRON_TZ= only first"},
		{"0 8 * * * for 0s min=2", "duration > 0"},
		{"0 8 * * * for -1h min=2", "duration > 0"},
		{"0 8 * * * for soon min=2", "duration > 0"},
		{"0 8 * * * for 1h", "min=N and/or max=N"},
		{"0 8 * * * for 1h min=x", "min=N"},
		{"0 8 * * * for 1h max=-1", "max=N"},
		{"0 8 * * * for 1h min=1 min=2", "at most once"},
		{"0 8 * * * for 1h min=5 max=3", "min (5) at most max (3)"},
		{"0 8 * * * for 1h size=3", "only min=N and max=N"},
	} {
		windows, err := policy.ParseSchedule(tc.spec)
		if err == nil {
			t.Errorf("ParseSchedule(%q) = %v, want an error", tc.spec, windows)
			continue
		}
		leaves := setting.Flatten(err)
		var se *setting.Error
		if len(leaves) != 1 || !errors.As(leaves[0], &se) {
			t.Errorf("ParseSchedule(%q): %v, want one *setting.Error", tc.spec, err)
			continue
		}
		if se.Name != "SCHEDULE" || se.Value != strings.TrimSpace(tc.spec) || !strings.Contains(se.Expected, tc.expected) {
			t.Errorf("ParseSchedule(%q): %v; want SCHEDULE, the window and %q", tc.spec, se, tc.expected)
		}
	}
}

func TestParseScheduleEveryBadWindow(t *testing.T) {
	_, err := policy.ParseSchedule("0 8 * * * for 1h min=2; CRON_TZ= 1 2 3 4 5 for 1h min=1; 0 9 * * * for 1h max=3; 61 * * * * for 1m min=1")
	leaves := setting.Flatten(err)
	if len(leaves) != 2 || !strings.Contains(leaves[0].Error(), "CRON_TZ= 1 2 3 4 5") || !strings.Contains(leaves[1].Error(), "61 * * * *") {
		t.Errorf("ParseSchedule: %v, want the two bad windows", err)
	}
}

func TestWindowActiveHalfOpen(t *testing.T) {
	windows, err := policy.ParseSchedule("0 8 * * * for 2h min=2")
	if err != nil {
		t.Fatal(err)
	}
	w := windows[0]
	start := time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at     time.Time
		active bool
	}{
		{start.Add(-time.Nanosecond), false},
		{start, true},
		{start.Add(time.Nanosecond), true},
		{start.Add(2*time.Hour - time.Nanosecond), true},
		{start.Add(2 * time.Hour), false},
		{start.Add(24 * time.Hour), true},
		// Another zone's clock does not matter: the instant does.
		{start.In(time.FixedZone("X", -7*3600)), true},
	} {
		if got := w.Active(tc.at); got != tc.active {
			t.Errorf("Active(%s) = %v, want %v", tc.at, got, tc.active)
		}
	}
	// A window longer than its period is always active.
	long, err := policy.ParseSchedule("0 * * * * for 2h min=1")
	if err != nil {
		t.Fatal(err)
	}
	if !long[0].Active(start.Add(17 * time.Minute)) {
		t.Error("an hourly window lasting 2h is not active")
	}
}

// FuzzParseSchedule: whatever the text, ParseSchedule returns windows or *setting.Errors, never panics, and every
// window it returns can be evaluated.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"CRON_TZ=", "CRON_TZ=Europe/Berlin", "TZ=UTC 0 8 * * * for 1h min=2", "0 8 * * MON-FRI for 10h min=4; @daily for 1h max=1",
		"CRON_TZ=Europe/Berlin 0 8 * * * for 10h min=4", "0 0 31 2 * for 1h min=1", "@every 1s for 1h min=1", "1-70/0 * * * * for 1h min=1"} {
		f.Add(s)
	}
	at := time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		windows, err := policy.ParseSchedule(spec)
		if err != nil {
			for _, e := range setting.Flatten(err) {
				var se *setting.Error
				if !errors.As(e, &se) || se.Name != "SCHEDULE" {
					t.Fatalf("problem %v (%T) is not a SCHEDULE *setting.Error", e, e)
				}
			}
			return
		}
		for _, w := range windows {
			if w.Duration <= 0 || (!w.SetsMin && !w.SetsMax) || w.Location == nil {
				t.Fatalf("window %+v", w)
			}
			w.Active(at)
		}
	})
}
