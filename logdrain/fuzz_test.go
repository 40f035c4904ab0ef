package logdrain

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// framesAround are well-formed frames of every kind, put before and after what the fuzzer makes.
var framesAround = []byte(fr(`<158>1 2026-03-11T16:17:50.786555+00:00 host heroku router - at=info method=GET path="/cart" host=h request_id=1 fwd="203.0.113.9" dyno=web.1 connect=0ms service=23ms status=200 bytes=1 protocol=https`) +
	fr(`<45>1 2026-03-11T16:17:50+00:00 host heroku web.1 - source=web.1 dyno=heroku.1.x sample#load_avg_1m=2.46`) +
	fr(`<190>1 2026-03-11T16:17:50+00:00 host app web.2 - [hirefire:router] queue=12ms`) +
	fr(`<172>1 2026-03-11T16:17:54+00:00 host heroku logplex - Error L10 (output buffer overflow): 13 messages dropped since 2026-03-11T16:17:26+00:00.`))

// FuzzBody feeds whole bodies to the parser: it never panics, each line has one kind, and whatever comes before or
// between well-formed frames never changes how they are read:
//
//   - a body's lines are its own: every line comes from the body, and lost counts only on loss notices;
//   - well-formed frames before any body are read the same (nothing is read ahead);
//   - garbage without digits between well-formed frames is one invalid line at most, and the frames after it are
//     all read (it holds no frame header to resynchronise on);
//   - a frame of anything (its length right) is exactly one line, and the frames after it are all read.
func FuzzBody(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*.logplex"))
	for _, name := range names {
		body, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, []byte("GET / HTTP/1.1\r\n"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte("12 <1>1 - - - - -"), []byte("999 <158>1"))
	f.Add([]byte("0 <\n\n 5 <abcde"), []byte("\x00\xff <"))
	around := parseBody(framesAround, nil)
	f.Fuzz(func(t *testing.T, body, garbage []byte) {
		lines := parseBody(body, nil)
		covered := 0
		for _, l := range lines {
			if l.kind >= numKinds {
				t.Fatalf("kind %d", l.kind)
			}
			if (l.kind != kindLost && l.lost != 0) || l.lost < 0 {
				t.Fatalf("%s line with lost %d", l.kind, l.lost)
			}
			if len(l.raw) == 0 {
				t.Fatalf("%s line of nothing", l.kind)
			}
			if l.kind == kindInvalid && (l.has != 0 || l.request || l.process != nil) {
				t.Fatalf("an invalid line gives readings: %+v", l)
			}
			covered += len(l.raw)
		}
		if covered > len(body) {
			t.Fatalf("lines cover %d bytes of a body of %d", covered, len(body))
		}

		// Nothing is read ahead: well-formed frames before the body are read as alone.
		got := parseBody(append(bytes.Clone(framesAround), body...), nil)
		same(t, "before the body", got[:len(around)], around)

		// Garbage without digits holds no frame header: one invalid line at most, and the frames after it are read.
		g := bytes.Map(func(r rune) rune {
			if '0' <= r && r <= '9' {
				return -1
			}
			return r
		}, garbage)
		got = parseBody(bytes.Join([][]byte{framesAround, g, framesAround}, nil), nil)
		wantInvalid := 0
		if len(bytes.TrimLeft(g, " \n\r\t")) > 0 {
			wantInvalid = 1
		}
		if len(got) != 2*len(around)+wantInvalid {
			t.Fatalf("garbage %q between frames: %d lines, want %d", g, len(got), 2*len(around)+wantInvalid)
		}
		same(t, "before garbage", got[:len(around)], around)
		same(t, "after garbage", got[len(around)+wantInvalid:], around)

		// A frame of anything is one line, and the frames after it are read.
		inner := append([]byte("<"), garbage...)
		framed := fmt.Appendf(nil, "%d %s", len(inner), inner)
		got = parseBody(bytes.Join([][]byte{framesAround, framed, framesAround}, nil), nil)
		if len(got) != 2*len(around)+1 {
			t.Fatalf("frame %q: %d lines, want %d", framed, len(got), 2*len(around)+1)
		}
		same(t, "after a frame of anything", got[len(around)+1:], around)
	})
}

func same(t *testing.T, what string, got, want []line) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if g.kind != w.kind || g.request != w.request || g.t != w.t || g.has != w.has || g.service != w.service ||
			g.queue != w.queue || g.load != w.load || g.lost != w.lost || !bytes.Equal(g.process, w.process) ||
			!bytes.Equal(g.dyno, w.dyno) || !bytes.Equal(g.raw, w.raw) {
			t.Fatalf("%s: line %d is %+v, want %+v", what, i, g, w)
		}
	}
}
