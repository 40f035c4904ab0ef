package logdrain

import (
	"bytes"
	"math"
	"time"
)

// kind is what a drain line is, as counted in dynopilot_drain_lines_total{kind}.
type kind uint8

const (
	kindRouter  kind = iota // Heroku's router (app-name "heroku", PROCID "router"): one line per request, and the continuations of split lines
	kindRuntime             // the rest of what Heroku itself sends: runtime metrics (sample#…), dyno state changes, R errors, releases, Logplex's own notices
	kindApp                 // the app's own output (app-name "app": its dynos' stdout and stderr, add-on lines)
	kindLost                // messages Logplex says it dropped (Error L10: "N messages dropped"): counted N, not 1
	kindInvalid             // garbage: a frame or a stretch of the body that is not an RFC 5424 message
	numKinds
)

var kindNames = [numKinds]string{"router", "runtime", "app", "lost", "invalid"}

func (k kind) String() string { return kindNames[k] }

// line is one message of a drain body as parsed. Its slices alias the body.
type line struct {
	kind    kind
	t       int64  // the syslog timestamp in Unix nanoseconds; 0 when the message has none ("-")
	request bool   // a router line for one request (see parseRouter)
	process []byte // the process type the line is of (web for web.1): dyno= of a router line, the PROCID of an app line, source= of runtime metrics; nil when none
	dyno    []byte // runtime metrics: the dyno the sample is of (source=, else the PROCID)
	has     uint8  // which of service, queue and load are set
	service float64
	queue   float64
	load    float64
	lost    int64  // kindLost: the number of messages dropped
	raw     []byte // the frame's message, or the stretch of garbage, for logs
}

const (
	hasService uint8 = 1 << iota // service: the router's service= in seconds
	hasQueue                     // queue: a HireFire "[hirefire:router] queue=Nms" in seconds
	hasLoad                      // load: sample#load_avg_1m
)

// parseBody appends the lines of a whole drain body to out and returns it (see parser).
func parseBody(body []byte, out []line) []line {
	p := parser{body: body}
	for p.more() {
		out = p.read(out, math.MaxInt)
	}
	return out
}

// parser reads the lines of a drain body a few at a time, so that the memory a body takes beyond its bytes is
// bounded whatever it holds. The body is a sequence of octet-counted frames (RFC 6587: "<length> <message>"), each
// message RFC 5424 without structured data, as Logplex sends them. It never fails: whitespace between frames is
// skipped; a message that is not RFC 5424 is one kindInvalid line and the next frame is read after it (its length is
// trusted); a stretch of bytes that is not a frame header ("<digits> <") is one kindInvalid line, and reading goes on
// at the next plausible frame header.
type parser struct {
	body  []byte
	i     int
	lines int64 // lines read so far, invalid ones included
}

func (p *parser) more() bool { return p.i < len(p.body) }

// read appends at most n lines to out.
func (p *parser) read(out []line, n int) []line {
	body, i, before := p.body, p.i, len(out)
	for ; i < len(body) && n > 0; n-- {
		for i < len(body) && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t') {
			i++
		}
		if i == len(body) {
			break
		}
		start, end, ok := frameAt(body, i)
		if !ok {
			next := resync(body, i+1)
			out = append(out, line{kind: kindInvalid, raw: body[i:next]})
			i = next
			continue
		}
		out = append(out, parseMessage(body[start:end]))
		i = end
	}
	p.lines += int64(len(out) - before)
	p.i = i
	return out
}

// maxLengthDigits bounds the frame length header: 8 digits are more than any body dynopilot accepts.
const maxLengthDigits = 8

// frameAt reads a frame header "<length> " at i, followed by the message's '<'; it returns where the message
// starts and ends.
func frameAt(body []byte, i int) (start, end int, ok bool) {
	n, j := 0, i
	for j < len(body) && j-i <= maxLengthDigits && isDigit(body[j]) {
		n = n*10 + int(body[j]-'0')
		j++
	}
	if j == i || j-i > maxLengthDigits || j+1 >= len(body) || body[j] != ' ' || body[j+1] != '<' || n == 0 || n > len(body)-(j+1) {
		return 0, 0, false
	}
	return j + 1, j + 1 + n, true
}

// resync returns the first position at or after from where a frame header starts (digits not preceded by a digit,
// a space, '<', and a length that fits in the body), or len(body).
func resync(body []byte, from int) int {
	for from < len(body) {
		k := bytes.Index(body[from:], []byte(" <"))
		if k < 0 {
			break
		}
		sp := from + k
		d := sp
		for d > from && isDigit(body[d-1]) {
			d--
		}
		if d < sp && (d == 0 || !isDigit(body[d-1])) {
			if _, _, ok := frameAt(body, d); ok {
				return d
			}
		}
		from = sp + 2
	}
	return len(body)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseMessage parses one RFC 5424 message as Logplex frames it: "<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID
// MSGID MSG", with no STRUCTURED-DATA (a "-" where it would be is read as the start of MSG, which is harmless to what
// is looked for in it), and classifies it.
func parseMessage(msg []byte) line {
	invalid := line{kind: kindInvalid, raw: msg}
	j, ok := header(msg)
	if !ok {
		return invalid
	}
	var ts, app, procid []byte
	if ts, j, ok = field(msg, j, false); !ok {
		return invalid
	}
	if _, j, ok = field(msg, j, false); !ok { // HOSTNAME: "host" from Logplex
		return invalid
	}
	if app, j, ok = field(msg, j, false); !ok {
		return invalid
	}
	if procid, j, ok = field(msg, j, false); !ok {
		return invalid
	}
	if _, j, ok = field(msg, j, true); !ok { // MSGID: "-"
		return invalid
	}
	text := bytes.TrimRight(msg[j:], "\r\n")
	l := line{raw: msg}
	if !(len(ts) == 1 && ts[0] == '-') {
		if l.t, ok = parseTime(ts); !ok {
			return invalid
		}
	}
	switch {
	case string(app) == "heroku" && string(procid) == "router":
		l.kind = kindRouter
		parseRouter(text, &l)
	case string(app) == "heroku" && string(procid) == "logplex":
		l.kind = kindRuntime
		if n, ok := droppedMessages(text); ok {
			l.kind, l.lost = kindLost, n
		}
	case string(app) == "heroku":
		l.kind = kindRuntime
		parseRuntime(text, procid, &l)
	default:
		l.kind = kindApp
		if k := bytes.Index(text, hirefireQueue); k >= 0 {
			if v, ok := parseDuration(valueAt(text, k+len(hirefireQueue))); ok {
				l.queue, l.has = v, hasQueue
				l.process = processOf(procid)
			}
		}
	}
	return l
}

var hirefireQueue = []byte("[hirefire:router] queue=")

// header reads "<PRI>VERSION " (PRI 0 to 191, VERSION 1 to 99) and returns where the timestamp starts.
func header(msg []byte) (int, bool) {
	if len(msg) < 4 || msg[0] != '<' {
		return 0, false
	}
	j, pri := 1, 0
	for j < len(msg) && j <= 3 && isDigit(msg[j]) {
		pri = pri*10 + int(msg[j]-'0')
		j++
	}
	if j == 1 || j >= len(msg) || msg[j] != '>' || pri > 191 {
		return 0, false
	}
	j++
	v := j
	for j < len(msg) && j-v < 2 && isDigit(msg[j]) {
		j++
	}
	if j == v || msg[v] == '0' || j >= len(msg) || msg[j] != ' ' {
		return 0, false
	}
	return j + 1, true
}

// field reads one header field (printable ASCII, no space) at j followed by a space, or by the end of the message
// when last is true; it returns the field and where the next one starts.
func field(msg []byte, j int, last bool) ([]byte, int, bool) {
	k := j
	for k < len(msg) && msg[k] > ' ' && msg[k] < 0x7f {
		k++
	}
	switch {
	case k == j:
		return nil, 0, false
	case k < len(msg) && msg[k] == ' ':
		return msg[j:k], k + 1, true
	case k == len(msg) && last:
		return msg[j:k], k, true
	}
	return nil, 0, false
}

// parseTime parses an RFC 3339 timestamp as RFC 5424 allows it: YYYY-MM-DDTHH:MM:SS, an optional fraction (up to 9
// digits are kept), and Z or a ±HH:MM offset. It returns Unix nanoseconds.
func parseTime(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return 0, false
	}
	j, nanos := 19, 0
	if b[j] == '.' {
		j++
		k := j
		scale := 100_000_000
		for j < len(b) && isDigit(b[j]) {
			nanos += int(b[j]-'0') * scale
			scale /= 10
			j++
		}
		if j == k {
			return 0, false
		}
	}
	offset := 0
	switch {
	case j == len(b)-1 && (b[j] == 'Z' || b[j] == 'z'):
	case j == len(b)-6 && (b[j] == '+' || b[j] == '-') && b[j+3] == ':':
		oh, ok1 := digits(b[j+1 : j+3])
		om, ok2 := digits(b[j+4 : j+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = (oh*60 + om) * 60
		if b[j] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
	if t.Day() != day { // 31 April
		return 0, false
	}
	return t.UnixNano() - int64(offset)*int64(time.Second), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// pairs iterates over the key=value pairs of a logfmt text such as Heroku's router and runtime lines. Pairs are
// separated by spaces; a value may be double-quoted, with backslash escapes, and then holds spaces (an unterminated
// quote runs to the end of the text, as in the first part of a split line); a token without '=' is skipped.
type pairs struct {
	s []byte
	i int
}

func (p *pairs) next() (key, value []byte, ok bool) {
	s := p.s
	for p.i < len(s) {
		for p.i < len(s) && s[p.i] == ' ' {
			p.i++
		}
		k := p.i
		for p.i < len(s) && s[p.i] != '=' && s[p.i] != ' ' {
			p.i++
		}
		if p.i >= len(s) || s[p.i] == ' ' || p.i == k {
			for p.i < len(s) && s[p.i] != ' ' { // skip the rest of a token that is no pair ("=x", a bare word)
				p.i++
			}
			continue
		}
		key = s[k:p.i]
		p.i++ // '='
		if p.i < len(s) && s[p.i] == '"' {
			p.i++
			v := p.i
			for p.i < len(s) && s[p.i] != '"' {
				if s[p.i] == '\\' {
					p.i++
				}
				p.i++
			}
			p.i = min(p.i, len(s))
			value = s[v:p.i]
			p.i++ // the closing quote
			return key, value, true
		}
		v := p.i
		for p.i < len(s) && s[p.i] != ' ' {
			p.i++
		}
		return key, s[v:p.i], true
	}
	return nil, nil, false
}

// parseRouter reads a router line. It is one request when its first pair is at= with a word (info, error) as value,
// or, for a router that orders its fields otherwise, when it has both method= and status=. The continuation of a
// line Logplex split at 10,000 bytes starts inside a value and is neither: it is counted as a router line but is no
// request and gives no latency. dyno=web.1 gives the process; service=23ms the latency (an empty or absent
// service= gives none, as on an H12 line's connect=).
func parseRouter(text []byte, l *line) {
	p := pairs{s: text}
	first, at, method, status, dyno, serviceSeen := true, false, false, false, false, false
	var service []byte
	for {
		key, value, ok := p.next()
		if !ok {
			break
		}
		if first {
			at = string(key) == "at" && isWord(value)
			first = false
		}
		switch string(key) { // the first of a key counts
		case "dyno":
			if !dyno {
				l.process, dyno = processOf(value), true
			}
		case "service":
			if !serviceSeen {
				service, serviceSeen = value, true
			}
		case "method":
			method = true
		case "status":
			status = true
		}
	}
	l.request = at || (method && status)
	if !l.request {
		l.process = nil
		return
	}
	if v, ok := parseDuration(service); ok {
		l.service, l.has = v, hasService
	}
}

func isWord(b []byte) bool {
	for _, c := range b {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return len(b) > 0
}

var loadKey = []byte("sample#load_avg_1m=")

// parseRuntime reads the load of a runtime-metrics line ("source=web.1 dyno=heroku.… sample#load_avg_1m=2.46 …").
func parseRuntime(text, procid []byte, l *line) {
	if !bytes.Contains(text, loadKey) {
		return
	}
	p := pairs{s: text}
	dyno := procid
	var load []byte
	for {
		key, value, ok := p.next()
		if !ok {
			break
		}
		switch string(key) {
		case "source":
			dyno = value
		case "sample#load_avg_1m":
			load = value
		}
	}
	v, ok := parseNumber(load)
	if !ok || len(dyno) == 0 || len(dyno) > maxName {
		return
	}
	if l.process = processOf(dyno); l.process != nil {
		l.dyno, l.load, l.has = dyno, v, hasLoad
	}
}

// droppedMessages reads Logplex's loss notices: "Error L10 (output buffer overflow): 500 messages dropped since …",
// the newer "… drain 'd.…' dropped 1 messages since …", and L12/L13 ("N messages dropped/lost").
func droppedMessages(text []byte) (int64, bool) {
	if !bytes.HasPrefix(bytes.TrimLeft(text, "- "), []byte("Error L1")) {
		return 0, false
	}
	k := bytes.Index(text, []byte(" messages "))
	if k < 0 {
		return 0, false
	}
	d := k
	for d > 0 && isDigit(text[d-1]) {
		d--
	}
	if d == k || k-d > 12 {
		return 0, false
	}
	n, _ := digits(text[d:k])
	return int64(n), true
}

// maxName bounds a dyno or process name (Heroku's process types match ^[-\w]{1,128}$).
const maxName = 128

// processOf is the process type of a dyno name: web for web.1, run for run.4821, the name itself when it has no
// numeric suffix; nil for an empty name or one that is no process type.
func processOf(dyno []byte) []byte {
	p := dyno
	if k := bytes.LastIndexByte(dyno, '.'); k > 0 {
		if _, ok := digits(dyno[k+1:]); ok && k+1 < len(dyno) {
			p = dyno[:k]
		}
	}
	if len(p) == 0 || len(p) > maxName {
		return nil
	}
	for _, c := range p {
		if !(c == '-' || c == '_' || isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return nil
		}
	}
	return p
}

// valueAt returns the value starting at k, up to the next space.
func valueAt(text []byte, k int) []byte {
	e := k
	for e < len(text) && text[e] != ' ' {
		e++
	}
	return text[k:e]
}

// parseDuration reads a duration as the router and HireFire write it, in seconds: "23ms", "23" (milliseconds too),
// "23.5ms", "1.2s", "300us" or "300µs".
func parseDuration(b []byte) (float64, bool) {
	num, unit := b, 1e-3
	switch {
	case bytes.HasSuffix(b, []byte("ms")):
		num = b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("us")):
		num, unit = b[:len(b)-2], 1e-6
	case bytes.HasSuffix(b, []byte("µs")):
		num, unit = b[:len(b)-len("µs")], 1e-6
	case bytes.HasSuffix(b, []byte("s")):
		num, unit = b[:len(b)-1], 1
	}
	v, ok := parseNumber(num)
	return v * unit, ok
}

// parseNumber reads a plain decimal number of 0 or more ("2.46", "23", ".5"), the only form Heroku writes.
func parseNumber(b []byte) (float64, bool) {
	var mant uint64
	exp, digitsSeen, dot := 0, 0, false
	for _, c := range b {
		switch {
		case isDigit(c):
			if digitsSeen < 18 {
				mant = mant*10 + uint64(c-'0')
				if dot {
					exp--
				}
			} else if !dot {
				exp++
			}
			digitsSeen++
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digitsSeen == 0 {
		return 0, false
	}
	v := float64(mant)
	if exp < 0 {
		v /= pow10[-exp] // exact powers: 2.46 reads as the float64 nearest 2.46
	} else if exp > 0 {
		v *= math.Pow10(exp)
	}
	return v, !math.IsInf(v, 0)
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}
