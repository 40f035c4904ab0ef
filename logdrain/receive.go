package logdrain

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// batch is the reusable memory of one POST: its body and its parsed lines.
type batch struct {
	body  bytes.Buffer
	lines []line
}

// maxMsgCount bounds the Logplex-Msg-Count believed of a refused batch.
const maxMsgCount = 100_000

// ServeHTTP serves POST /drain/{app} (mounted by the caller at "/drain/"); see the package documentation for the
// answers.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method "+r.Method+" not allowed: Heroku log drains POST", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="dynopilot drain", charset="UTF-8"`)
		http.Error(w, "unauthorized: add the drain as https://user:DYNOPILOT_DRAIN_TOKEN@HOST/drain/APP (basic auth, the token as password)", http.StatusUnauthorized)
		return
	}
	name := drainApp(r)
	a := s.app(name)
	if a == nil {
		http.Error(w, fmt.Sprintf("no drain is received for app %q: only apps with a logdrain policy are (%s)", name, strings.Join(s.names, ", ")), http.StatusNotFound)
		return
	}
	if r.ContentLength > s.maxBody {
		s.refuse(w, r, a, r.ContentLength)
		return
	}

	var key uint64
	id := r.Header.Get("Logplex-Frame-Id")
	if id != "" {
		key = maphash.String(s.seed, id)
		a.mu.Lock()
		state := a.frames.claim(key)
		a.mu.Unlock()
		switch state {
		case frameDone:
			w.WriteHeader(http.StatusNoContent) // a retry of a batch counted already
			return
		case frameInFlight:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "this Logplex-Frame-Id is being received on another connection: retry", http.StatusTooManyRequests)
			return
		}
	}

	b, _ := s.buffers.Get().(*batch)
	if b == nil {
		b = new(batch)
	}
	defer s.release(b)
	b.body.Reset()
	if r.ContentLength > 0 {
		b.body.Grow(int(r.ContentLength))
	}
	_, err := b.body.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		if id != "" {
			a.mu.Lock()
			a.frames.release(key)
			a.mu.Unlock()
		}
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			s.refuse(w, r, a, -1)
			return
		}
		s.log.Debug("drain: body not read in full", "app", a.name, "err", err)
		http.Error(w, "the body could not be read in full: nothing was counted, retry", http.StatusServiceUnavailable)
		return
	}

	// Parse a chunk of lines with no lock held, then apply it under the app's lock, until the body is read: a
	// reading waits at most for one chunk's apply, and a body of garbage takes no more memory than a body of lines.
	var counts [numKinds]int64
	var firstInvalid string
	var lastNotice []byte
	received := s.now()
	now := received.UnixNano()
	debug := s.log.Enabled(r.Context(), slog.LevelDebug)
	p := parser{body: b.body.Bytes()}
	for p.more() {
		b.lines = p.read(b.lines[:0], chunkLines)
		for i := range b.lines {
			switch l := &b.lines[i]; l.kind {
			case kindLost:
				counts[kindLost] += l.lost
				lastNotice = l.raw
			case kindInvalid:
				counts[kindInvalid]++
				if debug && firstInvalid == "" {
					firstInvalid = strconv.Quote(string(l.raw[:min(len(l.raw), 120)]))
				}
			default:
				counts[l.kind]++
			}
		}
		a.mu.Lock()
		s.apply(a, b.lines, now)
		a.mu.Unlock()
	}
	lines := p.lines

	a.mu.Lock()
	a.receive(lines-counts[kindInvalid], now)
	for k, n := range counts {
		a.lines[k] += n
	}
	if id != "" {
		a.frames.done(key)
	}
	var warnLost, notices int64
	if counts[kindLost] > 0 {
		a.lastLost = now
		a.lostUnlogged += counts[kindLost]
		a.noticesUnlogged++
		if now-a.lostLogged >= int64(lossLogEvery) {
			warnLost, notices = a.lostUnlogged, a.noticesUnlogged
			a.lostLogged, a.lostUnlogged, a.noticesUnlogged = now, 0, 0
		}
	}
	a.mu.Unlock()
	if warnLost > 0 {
		s.log.Warn("drain: Logplex dropped messages before they reached dynopilot", "app", a.name, "messages", warnLost,
			"batches_with_notices", notices, "last_notice", lossNotice(lastNotice))
	}

	for k, n := range counts {
		if n > 0 {
			a.counters[k].Add(float64(n))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	if debug {
		attrs := []any{"app", a.name, "bytes", b.body.Len(), "frame_id", id}
		for k, n := range counts {
			attrs = append(attrs, kind(k).String(), n)
		}
		if firstInvalid != "" {
			attrs = append(attrs, "first_invalid", firstInvalid)
		}
		s.log.Debug("drain: batch received", attrs...)
	}
}

const (
	chunkLines   = 256         // lines parsed before they are applied
	lossLogEvery = time.Minute // Logplex's loss notices are logged at most this often per app, with the count since
)

// lossNotice is the text of a Logplex loss notice from "Error L".
func lossNotice(raw []byte) string {
	if k := bytes.Index(raw, []byte("Error L")); k >= 0 {
		raw = raw[k:]
	}
	return string(bytes.TrimSpace(raw))
}

// release gives a batch's memory back for reuse, unless a huge body made it too large to keep.
func (s *Store) release(b *batch) {
	if b.body.Cap() > 1<<20 {
		return
	}
	clear(b.lines) // no reference to the body outlives the request
	b.lines = b.lines[:0]
	s.buffers.Put(b)
}

// refuse answers 413 to a body over MaxBody and counts its messages, as Logplex-Msg-Count gives them, as lost.
func (s *Store) refuse(w http.ResponseWriter, r *http.Request, a *appState, size int64) {
	n, err := strconv.ParseInt(r.Header.Get("Logplex-Msg-Count"), 10, 64)
	if err != nil || n < 0 {
		n = 0
	}
	n = min(n, maxMsgCount)
	now := s.now().UnixNano()
	a.mu.Lock()
	a.lines[kindLost] += n
	a.lastLost = now
	a.mu.Unlock()
	a.counters[kindLost].Add(float64(n))
	s.log.Warn("drain: batch refused for its size; its messages are lost", "app", a.name, "bytes", size, "max_bytes", s.maxBody, "messages", n)
	w.Header().Set("Connection", "close")
	http.Error(w, fmt.Sprintf("body over %d bytes: refused", s.maxBody), http.StatusRequestEntityTooLarge)
}

// authorized reports whether r carries basic auth whose password is the token, compared in constant time (of
// SHA-256 digests, so that not even the token's length shows).
func (s *Store) authorized(r *http.Request) bool {
	_, password, ok := r.BasicAuth()
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(password))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// drainApp is the app a drain POST names: the {app} of a "/drain/{app}" pattern, else the path after "/drain/".
func drainApp(r *http.Request) string {
	if name := r.PathValue("app"); name != "" {
		return name
	}
	name := strings.TrimPrefix(r.URL.Path, "/drain/")
	name = strings.TrimSuffix(name, "/")
	if strings.Contains(name, "/") {
		return ""
	}
	return name
}

// frames remembers the last frameIDs Logplex-Frame-Ids of an app (as 64-bit hashes), to count a retried batch once.
type frames struct {
	ids  map[uint64]frameState
	ring [frameIDs]uint64
	seq  uint64 // claims made so far; the claim of sequence number q is in ring[q%frameIDs]
}

type frameState struct {
	seq  uint64
	done bool
}

const (
	frameNew = iota
	frameInFlight
	frameDone
)

// claim records a frame id as being received, unless it is known: then it says whether it was counted already.
func (f *frames) claim(key uint64) int {
	if st, ok := f.ids[key]; ok {
		if st.done {
			return frameDone
		}
		return frameInFlight
	}
	slot := f.seq % frameIDs
	if f.seq >= frameIDs {
		old := f.ring[slot]
		if st, ok := f.ids[old]; ok && st.seq == f.seq-frameIDs {
			delete(f.ids, old)
		}
	}
	f.ring[slot] = key
	f.ids[key] = frameState{seq: f.seq}
	f.seq++
	return frameNew
}

// release forgets a claim whose batch was not counted, so that its retry is.
func (f *frames) release(key uint64) { delete(f.ids, key) }

// done marks a claimed frame as counted.
func (f *frames) done(key uint64) {
	if st, ok := f.ids[key]; ok {
		st.done = true
		f.ids[key] = st
	}
}
