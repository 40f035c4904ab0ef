package logdrain

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

// fixture reads a body under testdata (written by testdata/make_fixtures.py, as Logplex frames them) and parses it.
func fixture(t *testing.T, name string) []line {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return parseBody(body, nil)
}

// want is what a test expects of one parsed line; zero fields are not checked but for kind and request.
type want struct {
	kind    kind
	request bool
	process string // "" expects none
	dyno    string
	service float64 // seconds; NaN expects none
	queue   float64
	load    float64
	lost    int64
}

var none = math.NaN()

func check(t *testing.T, got []line, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		for i, l := range got {
			t.Logf("line %d: %s %q", i, l.kind, truncate(l.raw))
		}
		t.Fatalf("%d lines, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		l := got[i]
		where := fmt.Sprintf("line %d (%.60q)", i, l.raw)
		if l.kind != w.kind || l.request != w.request {
			t.Errorf("%s: kind %s request %v, want %s %v", where, l.kind, l.request, w.kind, w.request)
		}
		if string(l.process) != w.process {
			t.Errorf("%s: process %q, want %q", where, l.process, w.process)
		}
		if string(l.dyno) != w.dyno {
			t.Errorf("%s: dyno %q, want %q", where, l.dyno, w.dyno)
		}
		same := func(what string, has bool, got, want float64) {
			switch {
			case math.IsNaN(want) && has:
				t.Errorf("%s: %s %v, want none", where, what, got)
			case !math.IsNaN(want) && !has:
				t.Errorf("%s: no %s, want %v", where, what, want)
			case !math.IsNaN(want) && math.Abs(got-want) > 1e-12:
				t.Errorf("%s: %s %v, want %v", where, what, got, want)
			}
		}
		same("service", l.has&hasService != 0, l.service, w.service)
		same("queue", l.has&hasQueue != 0, l.queue, w.queue)
		same("load", l.has&hasLoad != 0, l.load, w.load)
		if l.lost != w.lost {
			t.Errorf("%s: lost %d, want %d", where, l.lost, w.lost)
		}
	}
}

func truncate(b []byte) []byte { return b[:min(len(b), 100)] }

func TestParseRouterLines(t *testing.T) {
	check(t, fixture(t, "router.logplex"), []want{
		{kind: kindRouter, request: true, process: "web", service: 0.023, queue: none, load: none},
		{kind: kindRouter, request: true, process: "web", service: 0, queue: none, load: none},     // connect= empty
		{kind: kindRouter, request: true, process: "web", service: 30, queue: none, load: none},    // H12
		{kind: kindRouter, request: true, process: "web", service: 0.041, queue: none, load: none}, // Router 2.0
		{kind: kindRouter, request: true, process: "web", service: 0.007, queue: none, load: none}, // service= inside the quoted path is not read
		{kind: kindRouter, request: true, process: "web", service: 0.120, queue: none, load: none},
		{kind: kindRouter, request: true, process: "web", service: none, queue: none, load: none}, // service= empty
		{kind: kindRouter, request: true, process: "", service: none, queue: none, load: none},    // H14: no dyno
		{kind: kindRouter, request: false, service: none, queue: none, load: none},                // not a request
	})
	// The timestamp is the syslog one, microseconds kept.
	l := fixture(t, "router.logplex")[0]
	if want := time.Date(2026, 3, 11, 16, 17, 50, 786555000, time.UTC).UnixNano(); l.t != want {
		t.Errorf("time %v, want %v", time.Unix(0, l.t).UTC(), time.Unix(0, want).UTC())
	}
}

func TestParseRuntimeLines(t *testing.T) {
	check(t, fixture(t, "runtime.logplex"), []want{
		{kind: kindRuntime, process: "web", dyno: "web.1", load: 2.46, service: none, queue: none},
		{kind: kindRuntime, service: none, queue: none, load: none}, // memory
		{kind: kindRuntime, process: "web", dyno: "web.2", load: 1.06, service: none, queue: none},
		{kind: kindRuntime, process: "worker", dyno: "worker.1", load: 0.31, service: none, queue: none},
		{kind: kindRuntime, process: "web", dyno: "web.1", load: 0.80, service: none, queue: none},
		{kind: kindRuntime, service: none, queue: none, load: none}, // state change
		{kind: kindRuntime, service: none, queue: none, load: none}, // api
		{kind: kindRuntime, service: none, queue: none, load: none}, // R14
	})
}

// source= names the dyno a runtime sample is of; without it the PROCID does.
func TestRuntimeDynoName(t *testing.T) {
	check(t, parseBody([]byte(fr("<45>1 2026-03-11T16:17:50Z host heroku web.1 - source=worker.2 sample#load_avg_1m=0.5")+
		fr("<45>1 2026-03-11T16:17:50Z host heroku web.3 - sample#load_avg_1m=0.25")), nil), []want{
		{kind: kindRuntime, process: "worker", dyno: "worker.2", load: 0.5, service: none, queue: none},
		{kind: kindRuntime, process: "web", dyno: "web.3", load: 0.25, service: none, queue: none},
	})
}

func TestParseAppLines(t *testing.T) {
	check(t, fixture(t, "app.logplex"), []want{
		{kind: kindApp, process: "web", queue: 0.012, service: none, load: none},
		{kind: kindApp, process: "web", queue: 0, service: none, load: none},
		{kind: kindApp, process: "web", queue: 0.250, service: none, load: none}, // after a log prefix
		{kind: kindApp, process: "worker", queue: 0.003, service: none, load: none},
		{kind: kindApp, service: none, queue: none, load: none},
		{kind: kindApp, service: none, queue: none, load: none}, // add-on metrics
		{kind: kindApp, service: none, queue: none, load: none}, // queue=soon
	})
}

func TestParseLogplexLoss(t *testing.T) {
	check(t, fixture(t, "l10.logplex"), []want{
		{kind: kindLost, lost: 13, service: none, queue: none, load: none},
		{kind: kindLost, lost: 500, service: none, queue: none, load: none}, // with a "-" for structured data
		{kind: kindLost, lost: 1, service: none, queue: none, load: none},   // the newer "drain '…' dropped N messages"
		{kind: kindRuntime, service: none, queue: none, load: none},
	})
}

// A line over 10,000 bytes arrives as two messages: the continuation is a router line but no request, and its
// service= (the split request's) gives no latency; the app line's continuation is just another app line.
func TestParseSplitLines(t *testing.T) {
	got := fixture(t, "split.logplex")
	check(t, got, []want{
		{kind: kindRouter, request: true, process: "", service: none, queue: none, load: none},
		{kind: kindRouter, request: false, service: none, queue: none, load: none},
		{kind: kindRouter, request: true, process: "", service: none, queue: none, load: none},
		{kind: kindRouter, request: false, service: none, queue: none, load: none}, // starts with at=1"
		{kind: kindRouter, request: true, process: "web", service: 0.005, queue: none, load: none},
		{kind: kindApp, service: none, queue: none, load: none},
		{kind: kindApp, service: none, queue: none, load: none},
	})
	if n := len(got[0].raw); n != 10000 {
		t.Errorf("the first part is %d bytes, want 10000", n)
	}
}

// Garbage between and inside frames is counted, and every frame around it is still read.
func TestParseGarbage(t *testing.T) {
	inv := want{kind: kindInvalid, service: none, queue: none, load: none}
	check(t, fixture(t, "garbage.logplex"), []want{
		inv,
		{kind: kindRouter, request: true, process: "web", service: 0.010, queue: none, load: none},
		inv, // binary junk
		inv, // a frame that is no syslog message
		{kind: kindRuntime, process: "web", dyno: "web.1", load: 1.5, service: none, queue: none},
		inv, // month 13
		inv, // "12abc <not a frame"
		{kind: kindApp, process: "web", queue: 0.040, service: none, load: none},
		{kind: kindRouter, request: true, process: "web", service: 0.020, queue: none, load: none},
		inv, // a length past the end
	})
}

func TestParseFraming(t *testing.T) {
	m := "<190>1 2026-03-11T16:17:50Z host app web.1 - hello"
	f := fmt.Sprintf("%d %s", len(m), m)
	for _, tc := range []struct {
		name    string
		body    string
		app     int
		invalid int
	}{
		{"empty", "", 0, 0},
		{"one", f, 1, 0},
		{"back to back", f + f + f, 3, 0},
		{"newlines between", f + "\n" + f + "\r\n\n" + f + "\n", 3, 0},
		{"message ending in a newline", fmt.Sprintf("%d %s\n", len(m)+1, m) + f, 2, 0},
		{"no message after the header", m[:5] + "hello", 0, 1},
		{"length zero", "0 <" + f, 1, 1},
		{"length too long", fmt.Sprintf("%d %s", len(m)+1, m), 0, 1},
		{"length too short", fmt.Sprintf("%d %s", len(m)-2, m) + f, 2, 1}, // "…hel" is read, then "lo" is garbage
		{"nine digits", "123456789 " + m, 0, 1},
		{"empty MSG", fr("<190>1 2026-03-11T16:17:50Z host app web.1 -"), 1, 0},
		{"no MSGID", fr("<190>1 2026-03-11T16:17:50Z host app web.1"), 0, 1},
		{"nil timestamp", fr("<190>1 - host app web.1 - hello"), 1, 0},
		{"version 0", fr("<190>0 2026-03-11T16:17:50Z host app web.1 - hello"), 0, 1},
		{"version 10", fr("<190>10 2026-03-11T16:17:50Z host app web.1 - hello"), 1, 0},
		{"priority 192", fr("<192>1 2026-03-11T16:17:50Z host app web.1 - hi"), 0, 1},
		{"no priority", fr("<>1 2026-03-11T16:17:50Z host app web.1 - hi"), 0, 1},
		{"tab in a field", fr("<190>1 2026-03-11T16:17:50Z host app\tx web.1 - hi"), 0, 1},
		{"two spaces", fr("<190>1 2026-03-11T16:17:50Z host  app web.1 - hi"), 0, 1},
		{"a number then text", "20 Internal Server Error\n" + f + f, 2, 1}, // no '<': not a frame that would swallow the next
		{"only garbage", "what is this", 0, 1},
		{"only whitespace", " \n\r\t ", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var app, invalid int
			for _, l := range parseBody([]byte(tc.body), nil) {
				switch l.kind {
				case kindApp:
					app++
				case kindInvalid:
					invalid++
				default:
					t.Errorf("unexpected %s line %q", l.kind, l.raw)
				}
			}
			if app != tc.app || invalid != tc.invalid {
				t.Errorf("%d app and %d invalid lines, want %d and %d", app, invalid, tc.app, tc.invalid)
			}
		})
	}
}

// fr frames one message.
func fr(m string) string { return fmt.Sprintf("%d %s", len(m), m) }

func TestParseTime(t *testing.T) {
	base := time.Date(2026, 3, 11, 16, 17, 53, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time // zero: invalid
	}{
		{"2026-03-11T16:17:53+00:00", base},
		{"2026-03-11T16:17:53Z", base},
		{"2026-03-11t16:17:53z", base},
		{"2026-03-11T16:17:53-00:00", base},
		{"2026-03-11T16:17:53.786555+00:00", base.Add(786555 * time.Microsecond)},
		{"2026-03-11T16:17:53.7+00:00", base.Add(700 * time.Millisecond)},
		{"2026-03-11T16:17:53.123456789Z", base.Add(123456789)},
		{"2026-03-11T16:17:53.1234567891Z", base.Add(123456789)}, // past nanoseconds: dropped
		{"2026-03-11T17:17:53+01:00", base},
		{"2026-03-11T11:47:53-04:30", base},
		{"2026-03-11T16:17:53", time.Time{}},
		{"2026-03-11T16:17:53.Z", time.Time{}},
		{"2026-13-11T16:17:53Z", time.Time{}},
		{"2026-02-30T16:17:53Z", time.Time{}},
		{"2026-03-11T24:00:00Z", time.Time{}},
		{"2026-03-11 16:17:53Z", time.Time{}},
		{"2026-03-11T16:17:53+0100", time.Time{}},
		{"2026-03-11T16:17:53+01:60", time.Time{}},
		{"20x6-03-11T16:17:53Z", time.Time{}},
		{"", time.Time{}},
	} {
		got, ok := parseTime([]byte(tc.in))
		switch {
		case tc.want.IsZero() && ok:
			t.Errorf("parseTime(%q) = %v, want invalid", tc.in, time.Unix(0, got).UTC())
		case !tc.want.IsZero() && !ok:
			t.Errorf("parseTime(%q) invalid, want %v", tc.in, tc.want)
		case ok && got != tc.want.UnixNano():
			t.Errorf("parseTime(%q) = %v, want %v", tc.in, time.Unix(0, got).UTC(), tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64 // NaN: invalid
	}{
		{"23ms", 0.023}, {"0ms", 0}, {"30000ms", 30}, {"23", 0.023}, {"23.5ms", 0.0235}, {"1.2s", 1.2},
		{"300us", 0.0003}, {"300µs", 0.0003}, {".5ms", 0.0005},
		{"", none}, {"ms", none}, {"-3ms", none}, {"1e3ms", none}, {"1.2.3ms", none}, {"12 ms", none}, {"NaNms", none},
	} {
		got, ok := parseDuration([]byte(tc.in))
		if math.IsNaN(tc.want) {
			if ok {
				t.Errorf("parseDuration(%q) = %v, want invalid", tc.in, got)
			}
		} else if !ok || math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("parseDuration(%q) = %v %v, want %v", tc.in, got, ok, tc.want)
		}
	}
	if v, ok := parseNumber([]byte("2.46")); !ok || v != 2.46 {
		t.Errorf("parseNumber(2.46) = %v, want exactly 2.46", v)
	}
	if v, ok := parseNumber([]byte(strings.Repeat("9", 400))); ok {
		t.Errorf("parseNumber(400 nines) = %v, want invalid (not finite)", v)
	}
}

func TestProcessOf(t *testing.T) {
	for in, want := range map[string]string{
		"web.1": "web", "web.12": "web", "worker": "worker", "run.4821": "run", "my-worker_2.3": "my-worker_2",
		"web.": "web.", // no numeric suffix: not a process type (a dot)
		"":     "", "web.1x": "", "we b.1": "", ".1": "",
	} {
		got := string(processOf([]byte(in)))
		if in == "web." {
			want = ""
		}
		if got != want {
			t.Errorf("processOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPairs(t *testing.T) {
	p := pairs{s: []byte(`a=1 b="x y" =c d bare e="unterminated \"quote f=2`)}
	var got []string
	for {
		k, v, ok := p.next()
		if !ok {
			break
		}
		got = append(got, string(k)+"="+string(v))
	}
	want := []string{"a=1", "b=x y", `e=unterminated \"quote f=2`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("pairs = %q, want %q", got, want)
	}
}

func TestTraceHeaderIsSims(t *testing.T) {
	if traceHeader != sim.TraceHeader {
		t.Errorf("traceHeader %q, sim.TraceHeader %q", traceHeader, sim.TraceHeader)
	}
}

func TestFixturesHaveNoSurprise(t *testing.T) {
	// Every fixture but garbage.logplex parses without an invalid line: their frames are as Logplex sends them.
	for _, name := range []string{"router.logplex", "runtime.logplex", "app.logplex", "l10.logplex", "split.logplex"} {
		for _, l := range fixture(t, name) {
			if l.kind == kindInvalid || bytes.Contains(l.raw, []byte{0}) {
				t.Errorf("%s: invalid line %q", name, truncate(l.raw))
			}
		}
	}
}
