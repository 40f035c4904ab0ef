package policy

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// HistoryCapacity is how many slots State keeps for past recommendations (see State).
const HistoryCapacity = 64

// State is what Decide remembers between evaluations of one policy: failed readings in a row (for the fallback)
// and recent recommendations (for stabilization). The caller keeps one State per policy (its zero value is ready)
// and passes it to every Decide; copying a State copies everything (it is a plain value without pointers), which
// is how the simulator forks one.
//
// State deliberately records nothing about what was applied: the current quantity and the last scale event come
// from the caller on every call, so a PATCH that failed cannot leave the engine believing it scaled.
//
// The history is a fixed ring of HistoryCapacity slots, never allocated. Time is cut into buckets of
// max(UP_STABILIZATION, DOWN_STABILIZATION)/(HistoryCapacity-1), and each slot holds the lowest and the highest
// recommendation of one bucket with the time of the latest one. When evaluations are further apart than a bucket
// (15s evaluations with windows up to about 15 minutes) every recommendation has its own slot and stabilization is
// exact. When they are closer, recommendations in the same bucket share a slot, and the slot counts as inside a
// window for as long as its latest recommendation does, so a recommendation may be remembered up to one bucket
// longer than its window, never shorter: the engine can be slower to scale down (or up) by at most
// window/63, never faster than the window allows. A slot is only reused for a bucket HistoryCapacity buckets later,
// by which time everything in it is outside both windows.
type State struct {
	failures int // failed readings in a row

	// busySince is when a scale-down began to be held for busy dynos (Unix nanoseconds, 0: none is held), so that
	// PROTECT_BUSY_MAX counts across ticks and restarts.
	busySince int64

	n, next int // slots in use; where the next slot goes
	slots   [HistoryCapacity]slot

	// The last size asked for and its limit: dynosize.Limit lower-cases the name, which allocates, and the size of
	// a formation rarely changes.
	sizeName  string
	sizeLimit int
}

type slot struct {
	at     int64 // Unix nanoseconds of the latest recommendation in the slot
	lo, hi int32 // lowest and highest recommendation in the slot (quantities are <= MaxQuantity)
}

// Failures returns how many readings in a row have failed.
func (s *State) Failures() int { return s.failures }

// limit returns the size limit for size through the one-entry cache.
func (s *State) limit(p *Policy, size string) int {
	if p.SizeLimit > 0 {
		return p.limitFor(size)
	}
	if s.sizeLimit == 0 || s.sizeName != size {
		s.sizeName, s.sizeLimit = size, p.limitFor(size)
	}
	return s.sizeLimit
}

// failed counts a failed reading, saturating.
func (s *State) failed() int {
	if s.failures < 1<<30 {
		s.failures++
	}
	return s.failures
}

// bucketWidth is the width of a history bucket for these windows, 0 when stabilization is off.
func bucketWidth(up, down time.Duration) int64 {
	w := max(up, down)
	if w <= 0 {
		return 0
	}
	return int64(w/(HistoryCapacity-1)) + 1 // at least the exact width, so that 63 buckets cover the window
}

// Start prepares a State for a process that has just started and finds the formation at current: the
// down-stabilization window starts full of current, as if the process had watched current being recommended for a
// whole window. A process that restarts (a deploy, Heroku's daily restart) therefore scales down no sooner than
// DOWN_STABILIZATION after it starts, as the process before it would not have either. The up window is left empty:
// a restart may make a scale-up sooner, never a scale-down.
func (s *State) Start(p *Policy, now time.Time, current int) {
	if p.DownStabilization <= 0 {
		return
	}
	current = min(max(current, 0), MaxQuantity)
	s.record(now, MaxQuantity, current, bucketWidth(p.UpStabilization, p.DownStabilization))
}

// Resume prepares a State read back from storage for deciding again at now, after a time in which nobody decided
// (a failover: the old leader died, the new one took over). Nothing was read in that gap, so the newest
// recommendation remembered is taken to have held through it: the down-stabilization window counts from now for it,
// as it would have for an uninterrupted process that kept seeing it. A scale-down is thus never sooner than an
// uninterrupted process's, and later by at most the gap; the up window is left as it was.
func (s *State) Resume(p *Policy, now time.Time) {
	if p.DownStabilization <= 0 || s.n == 0 {
		return
	}
	newest := s.slots[(s.next+HistoryCapacity-1)%HistoryCapacity]
	s.record(now, MaxQuantity, int(newest.hi), bucketWidth(p.UpStabilization, p.DownStabilization))
}

// record remembers recommendations made at now: lo counts for the up window, hi for the down window (both are
// the one recommendation, except for Start's seed).
func (s *State) record(now time.Time, lo, hi int, width int64) {
	if width <= 0 {
		return
	}
	t := now.UnixNano()
	rlo, rhi := int32(lo), int32(hi)
	if s.n > 0 {
		last := &s.slots[(s.next+HistoryCapacity-1)%HistoryCapacity]
		// Same bucket, or time went backwards: fold into the newest slot (remembering longer is the safe side).
		if t <= last.at || floorDiv(t, width) == floorDiv(last.at, width) {
			last.lo, last.hi = min(last.lo, rlo), max(last.hi, rhi)
			last.at = max(last.at, t)
			return
		}
	}
	s.slots[s.next] = slot{at: t, lo: rlo, hi: rhi}
	s.next = (s.next + 1) % HistoryCapacity
	if s.n < HistoryCapacity {
		s.n++
	}
}

// window returns the lowest recommendation within up and the highest within down (rec, made now, included).
func (s *State) window(now time.Time, rec int, up, down time.Duration) (lowest, highest int) {
	lowest, highest = rec, rec
	t := now.UnixNano()
	upCut, downCut := cutoff(t, up), cutoff(t, down)
	for i := 0; i < s.n; i++ {
		sl := &s.slots[i]
		if up > 0 && sl.at > upCut {
			lowest = min(lowest, int(sl.lo))
		}
		if down > 0 && sl.at > downCut {
			highest = max(highest, int(sl.hi))
		}
	}
	return lowest, highest
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// cutoff is t-d, saturating instead of wrapping around.
func cutoff(t int64, d time.Duration) int64 {
	if c := t - int64(d); c <= t {
		return c
	}
	return math.MinInt64
}

// stateVersion is the first byte of State's binary form; a change of layout takes a new one. Version 1 (without
// busySince) is still read, so that an upgrade keeps the state its predecessor saved.
const stateVersion = 2

// stateSize is the length of State's binary form in each version.
func stateSize(version byte) int {
	const v1 = 1 + 4*3 + HistoryCapacity*16
	switch version {
	case 1:
		return v1
	case 2:
		return v1 + 8
	}
	return -1
}

// MarshalBinary encodes the State, so that a daemon can keep it across restarts and hand it to the instance that
// leads after it (a failover then decides exactly as an uninterrupted process would). The encoding is fixed-size,
// about a kilobyte: HistoryCapacity slots whatever the traffic.
func (s *State) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, stateSize(stateVersion))
	b = append(b, stateVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(s.failures))
	b = binary.BigEndian.AppendUint32(b, uint32(s.n))
	b = binary.BigEndian.AppendUint32(b, uint32(s.next))
	for _, sl := range s.slots {
		b = binary.BigEndian.AppendUint64(b, uint64(sl.at))
		b = binary.BigEndian.AppendUint32(b, uint32(sl.lo))
		b = binary.BigEndian.AppendUint32(b, uint32(sl.hi))
	}
	b = binary.BigEndian.AppendUint64(b, uint64(s.busySince))
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded, in this version or an earlier one. Anything else (another
// version, a wrong length, counts out of range) is an error that leaves s unchanged: a State that cannot be
// trusted is not used.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || len(b) != stateSize(b[0]) {
		return fmt.Errorf("policy state: %d bytes of version %d: expected %d bytes of version %d (or %d of version 1)",
			len(b), firstByte(b), stateSize(stateVersion), stateVersion, stateSize(1))
	}
	var t State
	t.failures = int(binary.BigEndian.Uint32(b[1:]))
	t.n = int(binary.BigEndian.Uint32(b[5:]))
	t.next = int(binary.BigEndian.Uint32(b[9:]))
	if t.failures < 0 || t.failures > 1<<30 || t.n < 0 || t.n > HistoryCapacity || t.next < 0 || t.next >= HistoryCapacity {
		return fmt.Errorf("policy state: failures %d, %d slots in use, next %d: expected counts within 0..%d", t.failures, t.n, t.next, HistoryCapacity)
	}
	for i := range t.slots {
		o := 13 + i*16
		t.slots[i] = slot{at: int64(binary.BigEndian.Uint64(b[o:])), lo: int32(binary.BigEndian.Uint32(b[o+8:])), hi: int32(binary.BigEndian.Uint32(b[o+12:]))}
	}
	if b[0] >= 2 {
		t.busySince = int64(binary.BigEndian.Uint64(b[stateSize(1):]))
		if t.busySince < 0 {
			return fmt.Errorf("policy state: busy since %d: expected a time >= 0", t.busySince)
		}
	}
	*s = t
	return nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
