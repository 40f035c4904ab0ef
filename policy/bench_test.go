package policy_test

import (
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

// BenchmarkDecide is the common path: target mode with the spec's defaults (cooldowns, a 2m down stabilization),
// no schedule, one evaluation every 15 s with a varying reading. It must stay under 1µs and allocate nothing.
func BenchmarkDecide(b *testing.B) {
	p := mustPolicy(b, "TARGET", "300ms", "MAX", "20", "UP_COOLDOWN", "1m", "DOWN_COOLDOWN", "5m", "DOWN_STABILIZATION", "2m")
	values := []float64{0.25, 0.31, 0.45, 0.2, 0.62, 0.3, 0.1, 0.29}
	var st policy.State
	in := policy.Input{Now: t0, Current: 4, Size: "Standard-1X", LastScale: t0.Add(-time.Hour), ReadingOK: true}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.Now = in.Now.Add(15 * time.Second)
		in.Value = values[i%len(values)]
		d := policy.Decide(p, &st, in)
		if d.Desired != in.Current {
			in.Current, in.LastScale = d.Desired, in.Now
		}
	}
}

// BenchmarkDecideSchedule adds two schedule windows in a zone with daylight saving; the run crosses its changes of
// offset (a million evaluations 15 s apart cover half a year). Each window caches its answer until it next opens or
// closes, so this too must stay under 1µs and allocate nothing (it took about 4µs searching cron's next activation
// from hours back on every decision).
func BenchmarkDecideSchedule(b *testing.B) {
	p := mustPolicy(b, "TARGET", "300ms", "MAX", "20", "UP_COOLDOWN", "1m", "DOWN_COOLDOWN", "5m", "DOWN_STABILIZATION", "2m",
		"SCHEDULE", "CRON_TZ=Europe/Berlin 0 8 * * MON-FRI for 10h min=4; CRON_TZ=Europe/Berlin 0 22 * * * for 8h max=3")
	var st policy.State
	in := policy.Input{Now: t0, Current: 4, Size: "Standard-1X", LastScale: t0.Add(-time.Hour), ReadingOK: true, Value: 0.3}
	b.ReportAllocs()
	for b.Loop() {
		in.Now = in.Now.Add(15 * time.Second)
		policy.Decide(p, &st, in)
	}
}
