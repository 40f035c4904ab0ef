package predict

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"time"
)

const (
	daySeconds  = 86400
	defaultSlot = 5 * time.Minute
	defaultDays = 14

	dailyDays   = 3 // a daily ramp is one seen on each of the last 3 days: two could be a coincidence
	weeklyWeeks = 2 // a weekly one on the same weekday in each of the last 2 weeks: one week could be one event
	maxDays     = 7 * weeklyWeeks

	// missBelow: a slot whose observed peak is below 0.75 × the expected one is a miss, i.e. the prediction
	// overshot what came by a third or more. Overshooting by less is the ordinary noise of a load from one day or
	// week to the next, and costs at most a quarter of the predicted load's dynos for the length of a slot.
	missBelow = 0.75
	// judgeWindow: predictions are switched off and on by the outcomes of the last 12 judged slots, an hour at
	// 5-minute slots: long enough that one odd slot is noise, short enough that a profile that stopped holding
	// altogether (every slot a miss) costs half an hour of needless dynos before offAt switches it off.
	judgeWindow = 12
	// offAt: 6 misses of 12 (half of an hour) is not noise but a profile that no longer holds, e.g. a holiday.
	offAt = 6
	// onAt: back on at 2 misses of 12 at most, well below offAt so that a profile that half holds does not switch
	// on and off every few slots; 2 leaves room for the noise a profile that holds still has.
	onAt = 2

	// remembered is how many slots from now on a shadow prediction is noted for judging. What a slot is expected
	// at depends only on past days, so a slot further ahead is noted by a later Predict, once it is this near.
	remembered = 32
)

// Config configures a Profile; its zero value means the defaults.
type Config struct {
	// Slot is the width of a profile slot, default 5m. It must cut a day into whole seconds (1m, 5m, 10m, 15m,
	// 1h, …); zero or anything else means 5m.
	Slot time.Duration
	// Days is how many previous days are kept besides today, default 14: two weeks, so that "the same time last
	// week" has two samples. It is held within 3..14: the profiles read 1 to 3, 7 and 14 days back, so fewer than 3
	// can never predict, fewer than 14 turns the weekly profile off, and more than 14 is never read.
	Days int
}

// Profile learns a load's daily and weekly profile. Make one with New; the zero value is only a target for
// UnmarshalBinary. It is not safe for concurrent use: its owner serializes the calls.
type Profile struct {
	slot   int64     // seconds per slot; divides a day
	perDay int64     // slots per day
	days   int       // previous days kept besides today
	peaks  []float32 // ring: the peak observed in slot s is at s mod len; -1 when nothing was observed in it
	have   bool      // something was observed: last and lastAt mean something
	last   int64     // the newest slot observed: the ring holds slots last-len+1 .. last
	lastAt time.Time // the newest observation's time: an older one is out of order

	shadow    [remembered]expected // what slots from now on are expected at, by slot mod remembered
	misses    uint16               // outcomes of the last judgeWindow judged slots, newest in bit 0; 1 is a miss
	judged    int                  // how many of those bits are outcomes
	off       bool
	lastMiss  expected // the last slot judged a miss, and what it was expected at
	lastSaw   float32  // what it saw
	noHistory bool     // the last Predict lacked the history for any profile
}

type expected struct {
	slot int64
	want float32 // 0: nothing expected, nothing to judge
}

// New returns an empty Profile for c.
func New(c Config) *Profile {
	slot := int64(c.Slot / time.Second)
	if c.Slot%time.Second != 0 || slot <= 0 || daySeconds%slot != 0 {
		slot = int64(defaultSlot / time.Second)
	}
	days := c.Days
	if days <= 0 {
		days = defaultDays
	}
	return newProfile(slot, min(max(days, dailyDays), maxDays))
}

func newProfile(slot int64, days int) *Profile {
	p := &Profile{slot: slot, perDay: daySeconds / slot, days: days}
	// Today and days whole previous days: the oldest window a weekly prediction reads stays whole all day long, and
	// readings up to a day after now cannot push out what Predict(now) reads.
	p.peaks = make([]float32, int64(days+1)*p.perDay)
	for i := range p.peaks {
		p.peaks[i] = -1
	}
	return p
}

// Observe records a reading of the load taken at 'at'. Readings arrive in time order; one older than the newest
// so far, NaN, ±Inf or negative is ignored and Observe returns false. Each slot keeps the peak reading seen in it.
// The first reading in a new slot closes the previous one, which is then judged against its shadow prediction,
// and forgets the slots it skipped and what they held a ring ago.
func (p *Profile) Observe(at time.Time, value float64) bool {
	if math.IsNaN(value) || math.IsInf(value, 0) || value < 0 || (p.have && at.Before(p.lastAt)) {
		return false
	}
	s, n := floorDiv(at.Unix(), p.slot), int64(len(p.peaks))
	if !p.have || s > p.last {
		from := s - n + 1
		if p.have {
			p.judge(p.last)
			from = max(from, p.last+1)
		}
		for j := from; j <= s; j++ {
			p.peaks[mod(j, n)] = -1
		}
	}
	i := mod(s, n)
	p.peaks[i] = max(p.peaks[i], float32(min(value, math.MaxFloat32)))
	p.have, p.last, p.lastAt = true, s, at
	return true
}

// judge compares the closed slot s with what it was expected at, and switches predictions off or on.
func (p *Profile) judge(s int64) {
	e := &p.shadow[mod(s, remembered)]
	if e.slot != s || e.want <= 0 {
		return
	}
	want, saw := e.want, p.peaks[mod(s, int64(len(p.peaks)))]
	*e = expected{}
	p.misses = p.misses << 1 & (1<<judgeWindow - 1)
	if float64(saw) < missBelow*float64(want) {
		p.misses |= 1
		p.lastMiss, p.lastSaw = expected{s, want}, saw
	}
	p.judged = min(p.judged+1, judgeWindow)
	switch n := bits.OnesCount16(p.misses); {
	case !p.off && n >= offAt:
		p.off = true
	case p.off && n <= onAt:
		p.off = false
	}
}

// Predict returns the peak load expected in [now, now+ahead], from what was observed before now only, and whether
// a prediction is made: false with 0 when there is not enough history, or when predictions are switched off
// because recent ones were wrong (they go on in the shadow, to be judged). The load is finite and not negative; it
// is meant as a floor only (see the package comment). ahead is held within 0 and a day minus a slot.
func (p *Profile) Predict(now time.Time, ahead time.Duration) (float64, bool) {
	cur := floorDiv(now.Unix(), p.slot)
	k := min(floorDiv(now.Add(min(max(ahead, 0), 24*time.Hour)).Unix(), p.slot)-cur, p.perDay-1)
	daily, dailyOK := p.recurring(cur, k, 1, dailyDays)
	weekly, weeklyOK := p.recurring(cur, k, 7, weeklyWeeks)
	p.noHistory = !dailyOK && !weeklyOK
	if p.noHistory {
		return 0, false
	}
	// Note what each slot of the window is expected at, for judging it once it is over. A slot before the newest
	// observed one is over already.
	for s := max(cur, p.last); s <= cur+min(k, remembered-1); s++ {
		var want float32
		if dailyOK {
			want, _ = p.recurring(s, 0, 1, dailyDays) // false: a day has nothing in slot s, and 0 is expected
		}
		if weeklyOK {
			w, _ := p.recurring(s, 0, 7, weeklyWeeks)
			want = max(want, w)
		}
		if e := &p.shadow[mod(s, remembered)]; e.slot == s {
			e.want = max(e.want, want)
		} else {
			*e = expected{s, want}
		}
	}
	if p.off {
		return 0, false
	}
	var peak float32
	if dailyOK {
		peak = daily
	}
	if weeklyOK {
		peak = max(peak, weekly)
	}
	return float64(peak), true
}

// recurring returns the lowest, over the days step, 2×step, … count×step back, of each day's peak in the slots
// cur..cur+k moved back by that many days: the level the load reached in that window on every one of those days.
// It is false when one of those days has nothing observed in its window.
func (p *Profile) recurring(cur, k, step, count int64) (float32, bool) {
	low := float32(math.MaxFloat32)
	for d := step; d <= count*step; d += step {
		from, peak := cur-d*p.perDay, float32(-1)
		for s := from; s <= from+k; s++ {
			peak = max(peak, p.peak(s))
		}
		if peak < 0 {
			return 0, false
		}
		low = min(low, peak)
	}
	return low, true
}

// peak returns the peak observed in slot s, or -1 when the ring holds nothing for it: never observed, skipped, or
// older than the ring.
func (p *Profile) peak(s int64) float32 {
	n := int64(len(p.peaks))
	if !p.have || s > p.last || s <= p.last-n {
		return -1
	}
	return p.peaks[mod(s, n)]
}

// Enabled reports whether predictions are on: false once recent shadow predictions missed too often.
func (p *Profile) Enabled() bool { return !p.off }

// Status returns a short sentence for a person: whether predictions are on and why, and the last miss.
func (p *Profile) Status() string {
	n := bits.OnesCount16(p.misses)
	s := fmt.Sprintf("predictions on: %d of the last %d judged slots missed (%d switch them off)", n, p.judged, offAt)
	if p.off {
		s = fmt.Sprintf("predictions off: %d of the last %d judged slots missed, the profile no longer holds (a holiday?); "+
			"back on when at most %d of %d miss", n, p.judged, onAt, judgeWindow)
	}
	if p.noHistory {
		s += fmt.Sprintf("; no prediction at the last call: the window needs readings on each of the last %d days or "+
			"the same weekday of the last %d weeks", dailyDays, weeklyWeeks)
	}
	if p.lastMiss.want > 0 {
		at := time.Unix(p.lastMiss.slot*p.slot, 0).UTC().Format("Mon 2006-01-02 15:04 UTC")
		s += fmt.Sprintf("; last miss: the slot at %s expected %.4g, saw %.4g", at, p.lastMiss.want, p.lastSaw)
	}
	return s
}

// The encoding: version, slot seconds (4), days, flags, last slot (8), last reading's Unix seconds (8) and
// nanoseconds (4), misses (2), judged, last miss slot (8), expected and seen (4+4), number of shadow predictions;
// then each shadow prediction's slot and expected load (8+4), then the ring's float32s. Big-endian throughout.
const (
	version = 1
	header  = 1 + 4 + 1 + 1 + 8 + 8 + 4 + 2 + 1 + 8 + 4 + 4 + 1
)

const (
	flagHave = 1 << iota
	flagOff
	flagNoHistory
)

// MarshalBinary encodes the Profile for the state database, so that a restart keeps what it learned: about the
// ring's size (17 KB at the defaults).
func (p *Profile) MarshalBinary() ([]byte, error) {
	shadows := 0
	for _, e := range p.shadow {
		if e.want > 0 {
			shadows++
		}
	}
	var flags byte
	if p.have {
		flags |= flagHave
	}
	if p.off {
		flags |= flagOff
	}
	if p.noHistory {
		flags |= flagNoHistory
	}
	be := binary.BigEndian
	b := make([]byte, 0, header+12*shadows+4*len(p.peaks))
	b = be.AppendUint32(append(b, version), uint32(p.slot))
	b = be.AppendUint64(append(b, byte(p.days), flags), uint64(p.last))
	b = be.AppendUint32(be.AppendUint64(b, uint64(p.lastAt.Unix())), uint32(p.lastAt.Nanosecond()))
	b = be.AppendUint64(append(be.AppendUint16(b, p.misses), byte(p.judged)), uint64(p.lastMiss.slot))
	b = be.AppendUint32(be.AppendUint32(b, math.Float32bits(p.lastMiss.want)), math.Float32bits(p.lastSaw))
	b = append(b, byte(shadows))
	for _, e := range p.shadow {
		if e.want > 0 {
			b = be.AppendUint32(be.AppendUint64(b, uint64(e.slot)), math.Float32bits(e.want))
		}
	}
	for _, v := range p.peaks {
		b = be.AppendUint32(b, math.Float32bits(v))
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded. On a Profile made by New, the encoded slot and days must be
// the configured ones (a profile of other slots means nothing); the zero Profile takes them from the encoding.
// Anything wrong is an error naming it, and leaves p unchanged.
func (p *Profile) UnmarshalBinary(b []byte) error {
	be := binary.BigEndian
	if len(b) < header || b[0] != version {
		return fmt.Errorf("predict: profile of %d bytes: expected version %d and at least %d bytes", len(b), version, header)
	}
	slot, days := int64(be.Uint32(b[1:])), int(b[5])
	if slot <= 0 || daySeconds%slot != 0 || days < dailyDays || days > maxDays {
		return fmt.Errorf("predict: profile of %ds slots over %d days: expected slots that cut a day and %d..%d days", slot, days, dailyDays, maxDays)
	}
	if p.peaks != nil && (slot != p.slot || days != p.days) {
		return fmt.Errorf("predict: profile of %v slots over %d days, this one is configured for %v over %d days",
			time.Duration(slot)*time.Second, days, time.Duration(p.slot)*time.Second, p.days)
	}
	q := newProfile(slot, days)
	flags, shadows := b[6], int(b[header-1])
	if want := header + 12*shadows + 4*len(q.peaks); len(b) != want || flags >= 1<<3 {
		return fmt.Errorf("predict: profile of %d bytes with flags %#x and %d shadow predictions: expected %d bytes and flags below 8", len(b), flags, shadows, want)
	}
	q.have, q.off, q.noHistory = flags&flagHave != 0, flags&flagOff != 0, flags&flagNoHistory != 0
	q.last = int64(be.Uint64(b[7:]))
	sec, nsec := int64(be.Uint64(b[15:])), be.Uint32(b[23:])
	q.lastAt = time.Unix(sec, int64(nsec)).UTC()
	q.misses, q.judged = be.Uint16(b[27:]), int(b[29])
	q.lastMiss = expected{int64(be.Uint64(b[30:])), math.Float32frombits(be.Uint32(b[38:]))}
	q.lastSaw = math.Float32frombits(be.Uint32(b[42:]))
	if nsec >= 1e9 || q.misses >= 1<<judgeWindow || q.judged > judgeWindow || !valid(q.lastMiss.want) || !valid(q.lastSaw) {
		return fmt.Errorf("predict: profile's last reading %d.%09d s, misses %#x, %d judged, last miss %v/%v: expected nanoseconds below 1e9, %d outcomes and finite loads >= 0",
			sec, nsec, q.misses, q.judged, q.lastMiss.want, q.lastSaw, judgeWindow)
	}
	if q.have && q.last != floorDiv(sec, slot) {
		return fmt.Errorf("predict: profile's last slot %d is not its last reading's (%d s): expected %d", q.last, sec, floorDiv(sec, slot))
	}
	o := header
	for range shadows {
		e := expected{int64(be.Uint64(b[o:])), math.Float32frombits(be.Uint32(b[o+8:]))}
		x := &q.shadow[mod(e.slot, remembered)]
		if !valid(e.want) || e.want == 0 || x.want != 0 {
			return fmt.Errorf("predict: profile's shadow prediction %v for slot %d: expected a finite load > 0, one per slot mod %d", e.want, e.slot, remembered)
		}
		*x, o = e, o+12
	}
	for i := range q.peaks {
		q.peaks[i] = math.Float32frombits(be.Uint32(b[o+4*i:]))
		if !valid(q.peaks[i]) && q.peaks[i] != -1 {
			return fmt.Errorf("predict: profile's slot %d holds %v: expected a finite load >= 0, or -1 for nothing observed", i, q.peaks[i])
		}
	}
	*p = *q
	return nil
}

func valid(v float32) bool { return v >= 0 && !math.IsInf(float64(v), 0) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}
