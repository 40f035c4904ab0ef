package predict_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/predict"
)

// monday is a Monday midnight UTC: day 0 of every history here.
var monday = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// boot is the ahead every test asks for, a dyno's boot time.
const boot = 2*time.Minute + 30*time.Second

// at is day d of the history at h:m:s.
func at(d, h, m, s int) time.Time {
	return monday.AddDate(0, 0, d).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
}

// ramp is a daily load: 10 at night, 100 from 9:00 to 17:00.
func ramp(t time.Time) float64 {
	if h := t.Hour(); h >= 9 && h < 17 {
		return 100
	}
	return 10
}

// weekdays is the ramp from Monday to Friday and the night's 10 all weekend.
func weekdays(t time.Time) float64 {
	if t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		return 10
	}
	return ramp(t)
}

// run feeds p a reading of load every minute in [from, to). When each is not nil it also calls Predict(now, boot)
// after each reading, as the daemon does at each evaluation (so shadow predictions are judged), and hands each its
// answer.
func run(t *testing.T, p *predict.Profile, from, to time.Time, load func(time.Time) float64, each func(now time.Time, v float64, ok bool)) {
	t.Helper()
	for now := from; now.Before(to); now = now.Add(time.Minute) {
		if !p.Observe(now, load(now)) {
			t.Fatalf("Observe(%v, %v) refused", now, load(now))
		}
		if each != nil {
			v, ok := p.Predict(now, boot)
			each(now, v, ok)
		}
	}
}

func expect(t *testing.T, p *predict.Profile, now time.Time, want float64, wantOK bool) {
	t.Helper()
	if v, ok := p.Predict(now, boot); v != want || ok != wantOK {
		t.Errorf("Predict(%s, %v) = %v, %v: want %v, %v (%s)", now.Format("Mon 2006-01-02 15:04:05"), boot, v, ok, want, wantOK, p.Status())
	}
}

// clone copies p through its encoding.
func clone(t *testing.T, p *predict.Profile) *predict.Profile {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	q := new(predict.Profile)
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return q
}

// A ramp at 9:00 every day is predicted from 3 days of history on, within the boot time of it and not before.
func TestDailyRamp(t *testing.T) {
	for _, slot := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour} {
		t.Run(slot.String(), func(t *testing.T) {
			p := predict.New(predict.Config{Slot: slot})
			run(t, p, at(0, 0, 0, 0), at(2, 8, 58, 0), ramp, nil)
			expect(t, p, at(2, 8, 58, 0), 0, false) // 2 days of history: none 3 days back
			run(t, p, at(2, 8, 58, 0), at(4, 8, 58, 0), ramp, nil)
			expect(t, p, at(3, 8, 58, 0), 100, true) // exactly 3 days, 0 to 2
			expect(t, p, at(4, 8, 58, 0), 100, true) // 4 days: the 9:00 level, 2 minutes ahead of it
			// The window is closed: ending at 9:00:00 it holds the 9:00 slot.
			expect(t, p, at(4, 8, 57, 30), 100, true)
			// Ending at 8:59:59 it does not. This is the assertion that catches Predict reading one second past a
			// past day's window (now+ahead+1s): it would see 9:00 and predict 100.
			expect(t, p, at(4, 8, 57, 29), 10, true)
			expect(t, p, at(4, 3, 0, 0), 10, true)
			expect(t, p, at(4, 16, 58, 0), 100, true) // the ramp's last minutes
			expect(t, p, at(4, 17, 0, 0), 10, true)   // it is over
			expect(t, p, at(4, 8, 58, 0), 100, true)  // asking again, or for other times, changed nothing
		})
	}
}

// Weekdays high and weekends low: Monday morning is predicted high from the weekly profile although the daily one
// (the minimum over Sunday, Saturday and Friday) is low, and Sunday low. Saturday is predicted high by the daily
// profile (Wednesday to Friday had the ramp): the prediction is the larger of the two and only raises. What bounds
// that cost is the switch-off: by 10:00 on Saturday predictions are off.
func TestWeekly(t *testing.T) {
	p := predict.New(predict.Config{})
	dailyOnly := predict.New(predict.Config{Days: 7}) // fewer than 14 days: no weekly profile
	checks := []struct {
		name        string
		now         time.Time
		want, daily float64
	}{
		{"Monday 8:58, week 3", at(14, 8, 58, 0), 100, 10},
		{"Tuesday 8:58", at(15, 8, 58, 0), 100, 10}, // the daily minimum still holds Sunday
		{"Thursday 8:58", at(17, 8, 58, 0), 100, 100},
		{"Saturday 8:58: the daily profile's ramp", at(19, 8, 58, 0), 100, 100},
		{"Sunday 8:58", at(20, 8, 58, 0), 10, 10},
		{"Sunday 13:00", at(20, 13, 0, 0), 10, 10},
		{"Monday 8:58, week 4", at(21, 8, 58, 0), 100, 10},
	}
	var from time.Time = monday
	var offSaturday time.Time
	predicting := func(now time.Time, v float64, ok bool) {
		if !p.Enabled() && offSaturday.IsZero() && now.After(at(19, 0, 0, 0)) {
			offSaturday = now
		}
	}
	for _, c := range checks {
		run(t, p, from, c.now, weekdays, predicting)
		run(t, dailyOnly, from, c.now, weekdays, nil)
		from = c.now
		expect(t, p, c.now, c.want, true)
		expect(t, dailyOnly, c.now, c.daily, true)
	}
	if offSaturday.IsZero() || offSaturday.After(at(19, 10, 0, 0)) {
		t.Errorf("switched off on Saturday at %v: want by 10:00, within an hour of the ramp that did not come", offSaturday)
	}
}

// Predict(now) reads only what was observed before now: a reading at or after now, at any time within a day of it,
// cannot change it. Which assertion catches which mistake:
//   - reading the current day (e.g. the daily loop starting 0 days back): history "quiet yesterday, nothing
//     today", where today's window holds nothing before the reading (no prediction at all) and something after;
//   - not clamping ahead below a day minus a slot, so that yesterday's window reaches the slot holding now: the same
//     history at ahead 24h, where a huge reading now would lift yesterday's quiet peak above the minimum;
//   - a ring too short to keep two whole weeks while readings come in for a day after now: history "Monday", whose
//     prediction is the weekly one alone (the daily minimum holds the weekend), lost with the oldest week's slots;
//   - reading a second past a past day's window: TestDailyRamp's 8:57:29 case.
func TestSeesOnlyThePast(t *testing.T) {
	quietYesterday := func(t time.Time) float64 {
		if t.Before(at(3, 0, 0, 0)) {
			return ramp(t)
		}
		return 10
	}
	histories := []struct {
		name     string
		load     func(time.Time) float64
		from, to time.Time // readings every minute in [from, to)
		now      time.Time
	}{
		{"Monday, weekly profile, readings up to now", weekdays, at(0, 0, 0, 0), at(14, 8, 58, 0), at(14, 8, 58, 0)},
		{"daily profile, quiet yesterday, nothing today", quietYesterday, at(0, 0, 0, 0), at(4, 0, 0, 0), at(4, 8, 58, 0)},
	}
	xs := []time.Duration{0, 1, time.Second, 2 * time.Minute, boot, boot + time.Second, 7 * time.Minute, time.Hour,
		8 * time.Hour, 24*time.Hour - 5*time.Minute, 24*time.Hour - time.Second}
	for _, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			p := predict.New(predict.Config{})
			run(t, p, h.from, h.to, h.load, nil)
			for _, ahead := range []time.Duration{boot, time.Hour, 24 * time.Hour, 48 * time.Hour} {
				before, ok := p.Predict(h.now, ahead)
				if !ok {
					t.Fatalf("no prediction before: %s", p.Status())
				}
				for _, x := range xs {
					for _, v := range []float64{0, 1e9} {
						q := clone(t, p)
						if !q.Observe(h.now.Add(x), v) {
							t.Fatalf("Observe(now+%v) refused", x)
						}
						if after, ok := q.Predict(h.now, ahead); after != before || !ok {
							t.Errorf("ahead %v: Predict(now) = %v before Observe(now+%v, %v), %v, %v after", ahead, before, x, v, after, ok)
						}
					}
				}
			}
		})
	}
}

// A holiday: the profile is learned, then the ramp does not come. Within an hour of 9:00 predictions are off and
// Predict says so; they stay off while the ramp is missing, come back on once the profile agrees with the load again
// (the evening's night level), and the next day's ramp is predicted (by the weekly profile: the daily minimum holds
// the holiday) and judged right.
func TestSwitchesOffWhenWrong(t *testing.T) {
	p := predict.New(predict.Config{})
	// On ordinary days no slot is a miss, not even the quiet one before the ramp (it is judged by what was expected
	// in it, not by the window's peak) nor the first one after it.
	run(t, p, at(0, 0, 0, 0), at(15, 0, 0, 0), ramp, func(now time.Time, v float64, ok bool) {
		if s := p.Status(); !strings.HasPrefix(s, "predictions on: 0 of the last") {
			t.Fatalf("at %v on an ordinary day: %s", now, s)
		}
	})
	var off, on time.Time
	holiday := func(time.Time) float64 { return 10 }
	run(t, p, at(15, 0, 0, 0), at(16, 0, 0, 0), holiday, func(now time.Time, v float64, ok bool) {
		switch {
		case !p.Enabled() && off.IsZero():
			off = now
			if s := p.Status(); !strings.Contains(s, "predictions off: 6 of the last 12 judged slots missed") ||
				!strings.Contains(s, "expected 100, saw 10") {
				t.Errorf("Status when off: %q", s)
			}
		case p.Enabled() && !off.IsZero() && on.IsZero():
			on = now
		}
		if !p.Enabled() && (v != 0 || ok) {
			t.Fatalf("Predict(%v) = %v, %v while off: want 0, false", now, v, ok)
		}
	})
	// Slots are judged by the first reading after them. Off at 9:30: the 9:00 to 9:25 slots are the 6 misses of 12
	// that switch it off. On at 17:50: from 17:00 the slots expect the night's 10 and see it, and the 17:45 slot is
	// the 10th of those, leaving 2 misses in the last 12.
	if want := at(15, 9, 30, 0); !off.Equal(want) {
		t.Errorf("switched off at %v: want %v, within the hour after 9:00", off, want)
	}
	if want := at(15, 17, 50, 0); !on.Equal(want) {
		t.Errorf("back on at %v: want %v (off as long as the ramp is missing, on once 10 slots agree)", on, want)
	}
	run(t, p, at(16, 0, 0, 0), at(16, 8, 58, 0), ramp, func(time.Time, float64, bool) {})
	expect(t, p, at(16, 8, 58, 0), 100, true)
	run(t, p, at(16, 8, 58, 0), at(17, 0, 0, 0), ramp, func(now time.Time, v float64, ok bool) {
		if !p.Enabled() {
			t.Fatalf("switched off at %v the day after the holiday: %s", now, p.Status())
		}
	})
}

// A slot is a miss when its peak is below 0.75 of what was expected in it: a ramp that comes at 74 of the 100 expected
// switches predictions off within the hour, one at 75 is no miss at all.
func TestMissBelowThreeQuarters(t *testing.T) {
	learned := predict.New(predict.Config{})
	run(t, learned, at(0, 0, 0, 0), at(15, 0, 0, 0), ramp, func(time.Time, float64, bool) {})
	for _, level := range []float64{74, 75} {
		t.Run(fmt.Sprint(level), func(t *testing.T) {
			p := clone(t, learned)
			weaker := func(now time.Time) float64 { return min(ramp(now), level) }
			run(t, p, at(15, 0, 0, 0), at(15, 10, 0, 0), weaker, func(time.Time, float64, bool) {})
			if off := !p.Enabled(); off != (level < 75) {
				t.Errorf("ramp at %v: off %v at 10:00: %s", level, off, p.Status())
			}
			if miss := strings.Contains(p.Status(), "last miss"); miss != (level < 75) {
				t.Errorf("ramp at %v: %s", level, p.Status())
			}
		})
	}
}

// The first day of readings after a gap does not read the days before the gap as yesterday: the slots the gap
// skipped hold nothing, although the ring's places for them held the ramp two weeks earlier.
func TestGapForgetsStaleSlots(t *testing.T) {
	p := predict.New(predict.Config{})
	run(t, p, at(0, 0, 0, 0), at(7, 0, 0, 0), ramp, nil)
	run(t, p, at(19, 0, 0, 0), at(19, 8, 58, 0), ramp, nil) // days 16 to 18 share the ring with days 1 to 3
	expect(t, p, at(19, 8, 58, 0), 0, false)
	run(t, p, at(60, 0, 0, 0), at(60, 8, 58, 0), ramp, nil) // longer than the ring
	expect(t, p, at(60, 8, 58, 0), 0, false)
}

// Readings that are not a load, or older than the newest, are refused and change nothing.
func TestObserveRefusesBadReadings(t *testing.T) {
	clean, dirty := predict.New(predict.Config{}), predict.New(predict.Config{})
	for now := at(0, 0, 0, 0); now.Before(at(4, 8, 58, 0)); now = now.Add(time.Minute) {
		clean.Observe(now, ramp(now))
		if !dirty.Observe(now, ramp(now)) {
			t.Fatalf("Observe(%v) refused", now)
		}
		for _, bad := range []struct {
			at time.Time
			v  float64
		}{{now, math.NaN()}, {now, math.Inf(1)}, {now, math.Inf(-1)}, {now, -1}, {now.Add(-1), 1e6}, {now.Add(-24 * time.Hour), 1e6}} {
			if dirty.Observe(bad.at, bad.v) {
				t.Fatalf("Observe(%v, %v) after a reading at %v accepted", bad.at, bad.v, now)
			}
		}
	}
	if !dirty.Observe(at(4, 8, 57, 0), 10) {
		t.Error("a second reading at the newest one's time refused")
	}
	for now := at(4, 8, 58, 0); now.Before(at(5, 0, 0, 0)); now = now.Add(5 * time.Minute) {
		a, aok := clean.Predict(now, boot)
		b, bok := dirty.Predict(now, boot)
		if a != b || aok != bok {
			t.Fatalf("Predict(%v) = %v, %v without the bad readings, %v, %v with them", now, a, aok, b, bok)
		}
	}
}

// Whatever the readings, a prediction is finite, not negative, at most the largest reading accepted, and 0 when
// there is none.
func TestPredictionIsFiniteAndNotNegative(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []float64{0, 1, 10, 100, 1e300, math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1), -5, 3.5}
	p := predict.New(predict.Config{})
	now, largest, predicted := monday, 0.0, 0
	for range 40000 {
		now = now.Add(time.Duration(r.IntN(90)-5) * time.Second) // now and then backwards
		if r.IntN(2000) == 0 {
			now = now.Add(time.Duration(r.IntN(20*24)) * time.Hour) // a gap
		}
		v := values[r.IntN(len(values))]
		if p.Observe(now, v) {
			largest = max(largest, min(v, math.MaxFloat32))
		}
		ahead := time.Duration(r.Int64N(int64(60*time.Hour))) - 10*time.Hour
		got, ok := p.Predict(now, ahead)
		if math.IsNaN(got) || math.IsInf(got, 0) || got < 0 || got > largest || (!ok && got != 0) {
			t.Fatalf("Predict(%v, %v) = %v, %v (largest reading %v)", now, ahead, got, ok, largest)
		}
		if ok {
			predicted++
		}
	}
	if predicted == 0 {
		t.Error("no prediction at all: the test exercises nothing")
	}
}

// A profile decoded from its encoding predicts, judges and encodes exactly as the original, whether decoded into the
// zero Profile or into one made by New with the same Config.
func TestMarshalRoundTrip(t *testing.T) {
	p := predict.New(predict.Config{})
	each := func(time.Time, float64, bool) {}
	run(t, p, at(0, 0, 0, 0), at(15, 0, 0, 0), ramp, each)
	run(t, p, at(15, 0, 0, 0), at(15, 12, 0, 0), func(time.Time) float64 { return 10 }, each) // off, misses, shadows
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 18000 {
		t.Errorf("encoded in %d bytes: want about the ring's 17 kB", len(b))
	}
	copies := []*predict.Profile{new(predict.Profile), predict.New(predict.Config{Slot: 5 * time.Minute, Days: 14})}
	for _, q := range copies {
		if err := q.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if again, _ := q.MarshalBinary(); !bytes.Equal(again, b) || q.Status() != p.Status() || q.Enabled() != p.Enabled() {
			t.Fatalf("decoded profile differs: %q, want %q", q.Status(), p.Status())
		}
	}
	for now := at(15, 12, 0, 0); now.Before(at(17, 0, 0, 0)); now = now.Add(time.Minute) {
		p.Observe(now, ramp(now))
		want, wantOK := p.Predict(now, boot)
		for i, q := range copies {
			q.Observe(now, ramp(now))
			if got, ok := q.Predict(now, boot); got != want || ok != wantOK || q.Enabled() != p.Enabled() {
				t.Fatalf("copy %d: Predict(%v) = %v, %v, want %v, %v", i, now, got, ok, want, wantOK)
			}
		}
	}
}

// UnmarshalBinary refuses what it cannot trust with an error naming it, and leaves the profile as it was.
func TestUnmarshalRefusesGarbage(t *testing.T) {
	p := predict.New(predict.Config{})
	run(t, p, at(0, 0, 0, 0), at(4, 9, 0, 0), ramp, func(time.Time, float64, bool) {}) // shadows pending
	good, _ := p.MarshalBinary()
	const header = 47
	if good[header-1] == 0 {
		t.Fatal("no shadow prediction to spoil")
	}
	spoil := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	putF := func(b []byte, o int, v float32) []byte {
		binary.BigEndian.PutUint32(b[o:], math.Float32bits(v))
		return b
	}
	cases := []struct {
		name string
		b    []byte
		into *predict.Profile
		want string
	}{
		{"empty", nil, nil, "0 bytes: expected version 1"},
		{"another version", spoil(func(b []byte) []byte { b[0] = 2; return b }), nil, "expected version 1"},
		{"truncated", good[:len(good)-1], nil, fmt.Sprintf("expected %d bytes", len(good))},
		{"one byte more", append(bytes.Clone(good), 0), nil, fmt.Sprintf("expected %d bytes", len(good))},
		{"slots that do not cut a day", spoil(func(b []byte) []byte { binary.BigEndian.PutUint32(b[1:], 7*60); return b }), nil, "420s slots"},
		{"too few days", spoil(func(b []byte) []byte { b[5] = 2; return b }), nil, "over 2 days"},
		{"an unknown flag", spoil(func(b []byte) []byte { b[6] |= 8; return b }), nil, "flags 0x9"},
		{"nanoseconds", spoil(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 1e9); return b }), nil, "nanoseconds below 1e9"},
		{"a last slot that is not the last reading's", spoil(func(b []byte) []byte { b[14]++; return b }), nil, "is not its last reading's"},
		{"13 judged", spoil(func(b []byte) []byte { b[29] = 13; return b }), nil, "13 judged"},
		{"a shadow prediction of NaN", spoil(func(b []byte) []byte { return putF(b, header+8, float32(math.NaN())) }), nil, "shadow prediction NaN"},
		{"a slot holding NaN", spoil(func(b []byte) []byte { return putF(b, len(b)-4, float32(math.NaN())) }), nil, "holds NaN"},
		{"a slot holding -2", spoil(func(b []byte) []byte { return putF(b, len(b)-8, -2) }), nil, "holds -2"},
		{"a slot holding +Inf", spoil(func(b []byte) []byte { return putF(b, len(b)-8, float32(math.Inf(1))) }), nil, "holds +Inf"},
		{"another configuration", good, predict.New(predict.Config{Slot: 10 * time.Minute}), "configured for 10m0s over 14 days"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.into
			if q == nil {
				q = clone(t, p)
			}
			before, _ := q.MarshalBinary()
			err := q.UnmarshalBinary(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v: want one containing %q", err, c.want)
			}
			if after, _ := q.MarshalBinary(); !bytes.Equal(after, before) {
				t.Error("the refused encoding changed the profile")
			}
		})
	}
}

// FuzzUnmarshalBinary: no input panics, and what is accepted encodes back to itself.
func FuzzUnmarshalBinary(f *testing.F) {
	p := predict.New(predict.Config{Slot: time.Hour, Days: 3})
	for now := monday; now.Before(at(4, 9, 0, 0)); now = now.Add(7 * time.Minute) {
		p.Observe(now, ramp(now))
		p.Predict(now, boot)
	}
	good, _ := p.MarshalBinary()
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var q predict.Profile
		if q.UnmarshalBinary(b) != nil {
			return
		}
		if again, _ := q.MarshalBinary(); !bytes.Equal(again, b) {
			t.Fatal("accepted encoding does not encode back to itself")
		}
		q.Observe(at(100, 0, 0, 0), 1)
		if v, _ := q.Predict(at(100, 0, 0, 0), boot); math.IsNaN(v) || v < 0 {
			t.Fatalf("Predict = %v", v)
		}
	})
}

// Observe and Predict allocate nothing.
func TestObservePredictAllocateNothing(t *testing.T) {
	p := predict.New(predict.Config{})
	run(t, p, at(0, 0, 0, 0), at(15, 0, 0, 0), ramp, nil)
	now := at(15, 0, 0, 0)
	if n := testing.AllocsPerRun(2000, func() {
		now = now.Add(15 * time.Second)
		p.Observe(now, ramp(now))
		p.Predict(now, boot)
	}); n != 0 {
		t.Errorf("%v allocations per Observe and Predict", n)
	}
}

// BenchmarkObservePredict is one evaluation of the daemon: a reading every 15 s and a prediction over the boot
// time, on a profile with two weeks of history (daily and weekly profiles both read).
func BenchmarkObservePredict(b *testing.B) {
	p := predict.New(predict.Config{})
	now := monday
	for ; now.Before(at(15, 0, 0, 0)); now = now.Add(time.Minute) {
		p.Observe(now, ramp(now))
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(15 * time.Second)
		p.Observe(now, ramp(now))
		p.Predict(now, boot)
	}
}
