package logdrain

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// traceHeader is sim.TraceHeader (a test holds them equal; sim is not imported, to keep this package below it).
const traceHeader = "t_seconds,rate_per_second"

// traffic is an app's requests per minute of syslog time, every router request line of the app whatever its dyno,
// over the last trafficMinutes minutes: a ring, 4 bytes a minute.
type traffic struct {
	counts [trafficMinutes]uint32
	head   int64 // the latest minute held: the slots of the minutes before it back to head-trafficMinutes+1 are current
	first  int64 // the earliest minute of a line recorded, while recorded is true
	record bool
}

// advance moves the ring to minute m, zeroing the minutes it passes.
func (t *traffic) advance(m int64) {
	if m <= t.head {
		return
	}
	if m-t.head >= trafficMinutes {
		clear(t.counts[:])
	} else {
		for x := t.head + 1; x <= m; x++ {
			t.counts[floorMod(x, trafficMinutes)] = 0
		}
	}
	t.head = m
}

func (t *traffic) held(m int64) bool { return m <= t.head && m > t.head-trafficMinutes }

// seen records that the drain delivered a line of minute m: the trace starts at the first such minute, and shows 0
// for a minute without requests from then on.
func (t *traffic) seen(m, _ int64) {
	if t.held(m) && (!t.record || m < t.first) {
		t.first, t.record = m, true
	}
}

// add counts one request in minute m.
func (t *traffic) add(m, _ int64) {
	if t.held(m) {
		if c := &t.counts[floorMod(m, trafficMinutes)]; *c < math.MaxUint32 {
			*c++
		}
	}
}

// complete returns the counts of the complete minutes held, from the first recorded, and the first's number.
func (t *traffic) complete(nowMinute int64) ([]uint32, int64) {
	t.advance(nowMinute)
	if !t.record {
		return nil, 0
	}
	first := max(t.first, nowMinute-trafficMinutes+1)
	var out []uint32
	for m := first; m < nowMinute; m++ {
		out = append(out, t.counts[floorMod(m, trafficMinutes)])
	}
	return out, first
}

// TrafficHandler serves GET /api/traffic/{app}.csv (mounted at "/api/traffic/"): the app's requests per minute in
// the trace format of `dynopilot simulate --trace` (sim.ReadTrace): the header "t_seconds,rate_per_second", then a
// row every 60 s from t=0 at the first minute the drain delivered a line of (or a week ago, what is kept) through the
// last complete minute, without gaps: a minute without requests is 0. Rates are requests/second (the minute's
// requests / 60). The absolute start is in the Dynopilot-Trace-Start header (RFC 3339). A trace needs two rows:
// before two complete minutes are recorded the answer is 404 saying so, as it is for an app not received.
func (s *Store) TrafficHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method "+r.Method+" not allowed: GET the trace", http.StatusMethodNotAllowed)
			return
		}
		name := r.PathValue("app")
		if name == "" {
			name = strings.TrimPrefix(r.URL.Path, "/api/traffic/")
		}
		name, isCSV := strings.CutSuffix(name, ".csv")
		a := s.app(name)
		if !isCSV || a == nil || strings.Contains(name, "/") {
			http.Error(w, fmt.Sprintf("no traffic is recorded for %q: expected /api/traffic/APP.csv for one of %s", name, strings.Join(s.names, ", ")), http.StatusNotFound)
			return
		}
		now := s.now()
		nowMinute := floorDiv(now.UnixNano(), int64(time.Minute))
		a.mu.Lock()
		counts, first := a.traffic.complete(nowMinute)
		a.mu.Unlock()
		if len(counts) < 2 {
			http.Error(w, fmt.Sprintf("only %d complete minute(s) of traffic recorded for %s so far: a trace needs two; try again in a few minutes", len(counts), a.name), http.StatusNotFound)
			return
		}
		var buf bytes.Buffer
		buf.Grow(16 * (len(counts) + 1))
		buf.WriteString(traceHeader + "\n")
		for i, c := range counts {
			buf.WriteString(strconv.Itoa(i * 60))
			buf.WriteByte(',')
			buf.WriteString(strconv.FormatFloat(float64(c)/60, 'f', -1, 64))
			buf.WriteByte('\n')
		}
		start := time.Unix(first*60, 0).UTC()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", a.name+".csv"))
		w.Header().Set("Dynopilot-Trace-Start", start.Format(time.RFC3339))
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(buf.Bytes())
	})
}
