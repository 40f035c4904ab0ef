package policy_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

// scenario is one random situation: a policy, a history of evaluations, and the evaluation under test. Fuzzing and
// the seeded property test both build it from plain numbers, so that any failure the fuzzer finds replays.
type scenario struct {
	Mode, MinQ, MaxQ        uint8
	Target, Tolerance       float64
	Value, Higher           float64
	Current                 uint16
	OK                      bool
	UpCD, DownCD            uint16
	UpStab, DownStab        uint16
	StepUp, StepDown        uint8
	SizeIdx, Fallback, Sche uint8
	LastAgo                 int32
	At                      uint32
	History                 []byte
}

var sizes = []string{"Standard-1X", "Eco", "Performance-M", "", "standard-2x", "Private-L", "Shield-S", "Basic"}

var schedules = []string{
	"",
	"0 8 * * * for 10h min=%a",
	"0 * * * * for 20m max=%a",
	"CRON_TZ=Europe/Berlin */5 * * * * for 3m min=%a max=%b",
	"CRON_TZ=America/New_York 0 9 * * MON-FRI for 8h min=%a; 30 * * * * for 10m max=%b",
	"0 0 * * * for 24h min=%b; 0 0 * * * for 24h max=%a",
}

func finiteOr(v, or float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return or
	}
	return v
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// policy builds the scenario's settings; every combination is valid.
func (s scenario) settings() []string {
	mx := 1 + int(s.MaxQ)%40
	mn := int(s.MinQ) % (mx + 1)
	target := math.Abs(finiteOr(s.Target, 1))
	if target == 0 {
		target = 1
	}
	tol := math.Mod(math.Abs(finiteOr(s.Tolerance, 0.1)), 1)
	kv := []string{"APP", "a", "PROCESS", "web", "MIN", strconv.Itoa(mn), "MAX", strconv.Itoa(mx),
		"TOLERANCE", num(tol), "ACTIVATION", num(float64(s.Fallback%4) * target / 4),
		"UP_COOLDOWN", strconv.Itoa(int(s.UpCD)%600) + "s", "DOWN_COOLDOWN", strconv.Itoa(int(s.DownCD)%1200) + "s",
		"UP_STABILIZATION", strconv.Itoa(int(s.UpStab)%300) + "s", "DOWN_STABILIZATION", strconv.Itoa(int(s.DownStab)%600) + "s",
		"MAX_STEP_UP", strconv.Itoa(int(s.StepUp) % 4), "MAX_STEP_DOWN", strconv.Itoa(int(s.StepDown) % 4),
		"FALLBACK_AFTER", strconv.Itoa(1 + int(s.Fallback)%3),
	}
	switch s.Mode % 3 {
	case 0:
		kv = append(kv, "MODE", "target", "TARGET", num(target))
	case 1:
		kv = append(kv, "MODE", "step", "UP_ABOVE", num(target), "DOWN_BELOW", num(target/2),
			"UP_BY", strconv.Itoa(1+int(s.StepUp)%3), "DOWN_BY", strconv.Itoa(1+int(s.StepDown)%3))
	case 2:
		kv = append(kv, "MODE", "ratio", "PER_DYNO", num(target), "SAFETY", strconv.Itoa(int(s.StepUp)%3))
	}
	if q := int(s.Fallback) % (mx + 1); q > 0 {
		kv = append(kv, "FALLBACK_QUANTITY", strconv.Itoa(q))
	}
	if s.SizeIdx%16 >= 8 {
		kv = append(kv, "SIZE_LIMIT", strconv.Itoa(1+int(s.SizeIdx)%13))
	}
	if sch := schedules[int(s.Sche)%len(schedules)]; sch != "" {
		a, b := int(s.Sche/8)%12, int(s.Sche/8)%7+int(s.MaxQ)%5
		kv = append(kv, "SCHEDULE", strings.NewReplacer("%a", strconv.Itoa(min(a, b)), "%b", strconv.Itoa(max(a, b))).Replace(sch))
	}
	return kv
}

// run replays the history into a State and checks every invariant of the evaluation under test.
func (s scenario) run(t *testing.T) {
	p, err := load(t, s.settings()...).Parse()
	if err != nil {
		t.Fatalf("scenario settings %q: %v", s.settings(), err)
	}
	now := t0.Add(time.Duration(s.At%(8*24*3600)) * time.Second)
	size := sizes[int(s.SizeIdx)%len(sizes)]
	cur := int(s.Current) % 150
	in := policy.Input{Now: now, Current: cur, Size: size, Value: s.Value, ReadingOK: s.OK}
	if s.LastAgo != math.MinInt32 {
		in.LastScale = now.Add(-time.Duration(s.LastAgo%7200) * time.Second)
	}

	ref := max(p.Target, p.UpAbove, p.PerDyno) // the mode's reference (the others are 0)
	var st policy.State
	at := now
	history := s.History[:min(len(s.History), 300)]
	for i := len(history) - 1; i >= 0; i-- { // history[0] is the evaluation just before now
		at = at.Add(-time.Duration(1+int(history[i])%30) * time.Second)
	}
	for _, b := range history {
		at = at.Add(time.Duration(1+int(b)%30) * time.Second)
		policy.Decide(p, &st, policy.Input{Now: at, Current: cur, Size: size, Value: ref * float64(b) / 64, ReadingOK: b%17 != 0, LastScale: in.LastScale})
	}

	before := st
	d := policy.Decide(p, &st, in)
	check(t, p, in, d)

	// Monotonic: from the same state, a higher reading never gives a lower quantity.
	if d.ReadingOK {
		higher := in
		higher.Value = in.Value + math.Abs(finiteOr(s.Higher, 1))
		if !math.IsInf(higher.Value, 0) {
			st2 := before
			d2 := policy.Decide(p, &st2, higher)
			check(t, p, higher, d2)
			if d2.Desired < d.Desired {
				t.Errorf("value %v gives %d (%s) but the higher %v gives %d (%s)", in.Value, d.Desired, d.Explain(), higher.Value, d2.Desired, d2.Explain())
			}
		}
	}
	// Deterministic: the same state and input give the same decision.
	st3 := before
	d3 := policy.Decide(p, &st3, in)
	d3.Value, d.Value = 0, 0 // NaN != NaN
	if d3 != d || st3 != st {
		t.Errorf("the same input from the same state decided differently: %+v vs %+v", d3, d)
	}
}

// check asserts what must hold of every decision.
func check(t *testing.T, p *policy.Policy, in policy.Input, d policy.Decision) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format+"\n  input %+v\n  decision %d -> %d %s %s [%d, %d] limit %d: %s", append(args, in, d.Current, d.Desired, d.Action, d.Reason, d.Min, d.Max, d.SizeLimit, d.Explain())...)
	}
	if d.Desired < d.Min || d.Desired > d.Max || d.Desired > d.SizeLimit || d.Min < 0 || d.Min > d.Max {
		fail("outside the effective bounds")
	}
	lo, hi, limit, _ := p.Bounds(in.Now, in.Size)
	if d.Min != lo || d.Max != hi || d.SizeLimit != limit {
		fail("bounds differ from Bounds(): %d %d %d", lo, hi, limit)
	}
	if !slices.Contains(policy.Reasons(), d.Reason) || d.Reason == policy.ReasonDryRun {
		fail("reason %q is not in the vocabulary", d.Reason)
	}
	if (d.Action == policy.ActionUp) != (d.Desired > d.Current) || (d.Action == policy.ActionDown) != (d.Desired < d.Current) {
		fail("action does not match the move")
	}
	readingOK := in.ReadingOK && !math.IsNaN(in.Value) && !math.IsInf(in.Value, 0) && in.Value >= 0 // a negative value is a failed reading
	if d.ReadingOK != readingOK {
		fail("ReadingOK = %v", d.ReadingOK)
	}
	if !readingOK && d.Desired < d.Current && !(d.Current > d.Max && d.Desired == d.Max) {
		fail("scaled down on a failed reading")
	}
	if !in.LastScale.IsZero() {
		last := in.LastScale
		if last.After(in.Now) {
			last = in.Now
		}
		since := in.Now.Sub(last)
		if since < p.UpCooldown && d.Desired > d.Current && !(d.Current < d.Min && d.Desired == d.Min) && d.Reason != policy.ReasonFallback {
			fail("scaled up inside UP_COOLDOWN without being forced by the bounds")
		}
		if since < p.DownCooldown && d.Desired < d.Current && !(d.Current > d.Max && d.Desired == d.Max) {
			fail("scaled down inside DOWN_COOLDOWN without being forced by the bounds")
		}
	}
	inBounds := d.Current >= d.Min && d.Current <= d.Max
	if inBounds && d.Reason != policy.ReasonFallback && p.MaxStepUp > 0 && d.Desired-d.Current > p.MaxStepUp {
		fail("moved up past MAX_STEP_UP=%d", p.MaxStepUp)
	}
	if inBounds && p.MaxStepDown > 0 && d.Current-d.Desired > p.MaxStepDown {
		fail("moved down past MAX_STEP_DOWN=%d", p.MaxStepDown)
	}
	if e := d.Explain(); e == "" || strings.Contains(e, "%!") {
		fail("Explain() = %q", e)
	}
}

func (s scenario) randomize(r *rand.Rand) scenario {
	s.Mode, s.MinQ, s.MaxQ = uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256))
	s.Target = []float64{1, 0.3, 100, 1e-9, 1e12, r.Float64() * 10}[r.IntN(6)]
	s.Tolerance = []float64{0, 0.1, 0.5, r.Float64()}[r.IntN(4)]
	s.Value = []float64{0, -1, -0.001, math.NaN(), math.Inf(1), 1e300, s.Target, s.Target * r.Float64() * 4, r.ExpFloat64() * s.Target}[r.IntN(9)]
	s.Higher = []float64{0, 1e-9, s.Target * r.Float64(), 1e300}[r.IntN(4)]
	s.Current = uint16(r.IntN(256))
	s.OK = r.IntN(5) != 0
	s.UpCD, s.DownCD, s.UpStab, s.DownStab = uint16(r.IntN(1<<16)), uint16(r.IntN(1<<16)), uint16(r.IntN(1<<16)), uint16(r.IntN(1<<16))
	s.StepUp, s.StepDown, s.SizeIdx, s.Fallback, s.Sche = uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256))
	s.LastAgo = int32(r.IntN(8000)) - 400
	if r.IntN(6) == 0 {
		s.LastAgo = math.MinInt32
	}
	s.At = r.Uint32()
	s.History = make([]byte, r.IntN(120))
	for i := range s.History {
		s.History[i] = byte(r.IntN(256))
	}
	return s
}

// TestDecideProperties checks the invariants of check (bounds, no scale-down on a failed reading, cooldowns,
// steps, monotonic, deterministic) over random policies, histories and readings, with a fixed seed.
func TestDecideProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 10000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		s := scenario{}.randomize(r)
		t.Run("", func(t *testing.T) {
			s.run(t)
			if t.Failed() {
				t.Logf("scenario %d: %#v", i, s)
			}
		})
		if t.Failed() {
			return
		}
	}
}

// FuzzDecide checks the same invariants on inputs chosen by the fuzzer (go test -fuzz FuzzDecide ./policy).
func FuzzDecide(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 16; i++ {
		s := scenario{}.randomize(r)
		f.Add(s.Mode, s.MinQ, s.MaxQ, s.Target, s.Tolerance, s.Value, s.Higher, s.Current, s.OK, s.UpCD, s.DownCD,
			s.UpStab, s.DownStab, s.StepUp, s.StepDown, s.SizeIdx, s.Fallback, s.Sche, s.LastAgo, s.At, s.History)
	}
	f.Fuzz(func(t *testing.T, mode, minQ, maxQ uint8, target, tolerance, value, higher float64, current uint16, ok bool,
		upCD, downCD, upStab, downStab uint16, stepUp, stepDown, sizeIdx, fallback, sche uint8, lastAgo int32, at uint32, history []byte) {
		scenario{mode, minQ, maxQ, target, tolerance, value, higher, current, ok, upCD, downCD, upStab, downStab,
			stepUp, stepDown, sizeIdx, fallback, sche, lastAgo, at, history}.run(t)
	})
}

// TestNoFlapping: readings that stay within the tolerance (target mode) or between the thresholds (step mode)
// never change the quantity, however noisy, over many evaluations, whatever the cooldowns and stabilization.
func TestNoFlapping(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200; i++ {
		mx := 1 + r.IntN(40)
		mn := r.IntN(mx + 1)
		target := []float64{0.3, 1, 50, 1e-6, 1e9}[r.IntN(5)]
		tol := []float64{0, 0.05, 0.1, 0.3, 0.9}[r.IntN(5)]
		step := r.IntN(2) == 0
		kv := []string{"APP", "a", "PROCESS", "web", "MIN", strconv.Itoa(mn), "MAX", strconv.Itoa(mx), "TOLERANCE", num(tol),
			"UP_COOLDOWN", strconv.Itoa(r.IntN(120)) + "s", "DOWN_COOLDOWN", strconv.Itoa(r.IntN(600)) + "s",
			"UP_STABILIZATION", strconv.Itoa(r.IntN(120)) + "s", "DOWN_STABILIZATION", strconv.Itoa(r.IntN(600)) + "s"}
		if step {
			if tol == 0 {
				tol = 0.05
			}
			kv = append(kv, "MODE", "step", "UP_ABOVE", num(target*(1+tol)), "DOWN_BELOW", num(target*(1-tol)))
		} else {
			kv = append(kv, "MODE", "target", "TARGET", num(target))
		}
		p, err := load(t, kv...).Parse()
		if err != nil {
			t.Fatal(err)
		}
		cur := max(mn, 1+r.IntN(mx)) // within the bounds, and not zero (from zero, activation decides)
		var st policy.State
		now := t0
		last := now.Add(-time.Duration(r.IntN(3600)) * time.Second)
		for tick := 0; tick < 500; tick++ {
			now = now.Add(time.Duration(1+r.IntN(30)) * time.Second)
			noise := (2*r.Float64() - 1) * tol * 0.999
			d := policy.Decide(p, &st, policy.Input{Now: now, Current: cur, Size: "Standard-1X", Value: target * (1 + noise), ReadingOK: true, LastScale: last})
			if d.Desired != cur {
				t.Fatalf("policy %q, tick %d: value %v (target %v ± %v) moved %d -> %d: %s", kv, tick, target*(1+noise), target, tol, cur, d.Desired, d.Explain())
			}
		}
	}
}

// reference is stabilization done the obvious way, keeping every recommendation: HPA's rule.
type reference struct {
	at  []time.Time
	rec []int
}

func (r *reference) stabilize(now time.Time, rec, cur int, up, down time.Duration) int {
	r.at, r.rec = append(r.at, now), append(r.rec, rec)
	for len(r.at) > 0 && !r.at[0].After(now.Add(-max(up, down))) { // older than both windows: never counts again
		r.at, r.rec = r.at[1:], r.rec[1:]
	}
	lowest, highest := rec, rec
	for i := range r.at {
		if up > 0 && r.at[i].After(now.Add(-up)) {
			lowest = min(lowest, r.rec[i])
		}
		if down > 0 && r.at[i].After(now.Add(-down)) {
			highest = max(highest, r.rec[i])
		}
	}
	return max(lowest, min(cur, highest))
}

// TestStabilizationMatchesHPA: with evaluations at least window/63 apart, the fixed-size history is exact; with
// evaluations closer than that (more recommendations than slots), it is never less cautious than the exact rule:
// it never goes lower than the exact rule allows, nor higher.
func TestStabilizationMatchesHPA(t *testing.T) {
	up, down := time.Minute, 2*time.Minute
	p := mustPolicy(t, "MODE", "ratio", "PER_DYNO", "1", "MIN", "0", "MAX", "100", "UP_STABILIZATION", "1m", "DOWN_STABILIZATION", "2m")
	for _, tc := range []struct {
		name     string
		interval func(r *rand.Rand) time.Duration
		exact    bool
	}{
		{"15s ticks", func(*rand.Rand) time.Duration { return 15 * time.Second }, true},
		{"irregular ticks of 2s to 40s", func(r *rand.Rand) time.Duration { return 2*time.Second + time.Duration(r.IntN(38000))*time.Millisecond }, true},
		{"dense ticks of 10ms to 1s", func(r *rand.Rand) time.Duration {
			return 10*time.Millisecond + time.Duration(r.IntN(990))*time.Millisecond
		}, false},
		{"bursts", func(r *rand.Rand) time.Duration {
			if r.IntN(10) == 0 {
				return time.Duration(r.IntN(90)) * time.Second
			}
			return time.Duration(r.IntN(200)) * time.Millisecond
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			var st policy.State
			var ref reference
			now := t0
			cur := 50
			for i := 0; i < 5000; i++ {
				now = now.Add(tc.interval(r))
				rec := max(0, min(100, cur+r.IntN(21)-10))
				d := policy.Decide(p, &st, policy.Input{Now: now, Current: cur, Size: "Standard-1X", Value: float64(rec), ReadingOK: true})
				want := ref.stabilize(now, rec, cur, up, down)
				if d.Recommendation != rec {
					t.Fatalf("tick %d: recommendation %d, want %d", i, d.Recommendation, rec)
				}
				switch {
				case tc.exact && d.Stabilized != want:
					t.Fatalf("tick %d: stabilized %d, HPA's rule gives %d", i, d.Stabilized, want)
				case d.Stabilized < cur && d.Stabilized < want:
					t.Fatalf("tick %d: down to %d, below what the window allows (%d)", i, d.Stabilized, want)
				case d.Stabilized > cur && d.Stabilized > want:
					t.Fatalf("tick %d: up to %d, above what the window allows (%d)", i, d.Stabilized, want)
				}
				if r.IntN(20) == 0 {
					cur = d.Desired
				}
			}
		})
	}
}

// TestDecideHandBuiltPolicies: the simulator may build a Policy without Parse; whatever the fields, Decide must not
// panic and must keep the result within the effective bounds.
func TestDecideHandBuiltPolicies(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	ints := []int{math.MinInt, -1, 0, 1, 3, 99, math.MaxInt}
	floats := []float64{math.NaN(), math.Inf(-1), -1, 0, 1e-300, 0.5, 1, 1e300, math.Inf(1)}
	durs := []time.Duration{math.MinInt64, -time.Second, 0, time.Second, time.Hour, math.MaxInt64}
	pick := func(xs []int) int { return xs[r.IntN(len(xs))] }
	pickF := func() float64 { return floats[r.IntN(len(floats))] }
	pickD := func() time.Duration { return durs[r.IntN(len(durs))] }
	rule := func() policy.Rule {
		return policy.Rule{Mode: []policy.Mode{policy.ModeTarget, policy.ModeStep, policy.ModeRatio, "bogus"}[r.IntN(4)],
			Target: pickF(), Tolerance: pickF(), UpAbove: pickF(), DownBelow: pickF(), UpBy: pick(ints), DownBy: pick(ints),
			PerDyno: pickF(), Safety: pickF(), Activation: pickF()}
	}
	for i := 0; i < 5000; i++ {
		p := &policy.Policy{
			App: "a", Process: "web", Enabled: r.IntN(8) != 0, Min: pick(ints), Max: pick(ints),
			Rule: rule(), Predict: r.IntN(2) == 0, UpCooldown: pickD(), DownCooldown: pickD(), UpStabilization: pickD(),
			DownStabilization: pickD(), MaxStepUp: pick(ints), MaxStepDown: pick(ints), FallbackAfter: pick(ints),
			FallbackQuantity: pick(ints), SizeLimit: pick(ints), Schedule: []policy.Window{{Min: pick(ints), Max: pick(ints), SetsMin: true, SetsMax: true}},
		}
		for range r.IntN(3) {
			p.Also = append(p.Also, rule())
		}
		var st policy.State
		now := t0
		for k := 0; k < 5; k++ {
			now = now.Add(pickD() / 1e9)
			in := policy.Input{Now: now, Current: pick(ints), Size: sizes[r.IntN(len(sizes))], Value: pickF(), ReadingOK: r.IntN(4) != 0,
				LastScale: now.Add(pickD()), Predicted: pick(ints)}
			for range r.IntN(3) {
				in.Also = append(in.Also, policy.Reading{Value: pickF(), OK: r.IntN(4) != 0})
			}
			without := in
			without.Predicted = 0
			stWithout := st
			d := policy.Decide(p, &st, in)
			if w := policy.Decide(p, &stWithout, without); w.Desired > d.Desired {
				t.Fatalf("policy %+v input %+v: the prediction lowered the decision from %d to %d", *p, in, w.Desired, d.Desired)
			}
			failed := !in.ReadingOK
			for m := range len(p.Also) {
				failed = failed || m >= len(in.Also) || !in.Also[m].OK
			}
			if failed && in.Current >= 0 && in.Current <= d.Max && d.Desired < d.Current {
				t.Fatalf("policy %+v input %+v: a metric's reading failed, yet %d -> %d", *p, in, d.Current, d.Desired)
			}
			if d.Reason == policy.ReasonDisabled { // a disabled policy touches nothing
				if d.Desired != d.Current {
					t.Fatalf("disabled policy moved %d -> %d", d.Current, d.Desired)
				}
				continue
			}
			if d.Desired < d.Min || d.Desired > d.Max || d.Desired > d.SizeLimit || d.Desired < 0 || d.Desired > policy.MaxQuantity {
				t.Fatalf("policy %+v input %+v: desired %d outside [%d, %d] limit %d", *p, in, d.Desired, d.Min, d.Max, d.SizeLimit)
			}
			_ = d.Explain()
		}
	}
}
