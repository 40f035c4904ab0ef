package fake

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const contentType = "application/json; charset=utf-8"

// typePattern is what Heroku's schema allows as a process type.
var typePattern = regexp.MustCompile(`^[-\w]{1,128}$`)

// ServeHTTP answers the API (see the package comment for endpoints and precedence) and the control API:
//
//	GET    /_fake/requests  the API requests received, oldest first (JSON list of Request)
//	DELETE /_fake/requests  empties that list
//	GET    /_fake/faults    pending faults
//	POST   /_fake/faults    {"status":503,"count":3} | {"latency":"2s","count":3} | {"reset":true}
//	GET    /_fake/pool      {"remaining":N,"pool":SIZE}
//	POST   /_fake/pool      {"remaining":N}
//	POST   /_fake/scale     {"app":"…","type":"…","quantity":N}: a person scaling by hand (see Scale)
//	GET    /_fake/apps      every app with its formation
//
// A control body that does not fit gets 400 with a message saying what was expected.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := uuid.NewString()
	w.Header().Set("Request-Id", requestID)
	w.Header().Set("Content-Type", contentType)
	var status int
	if r.URL.Path == "/_fake" || strings.HasPrefix(r.URL.Path, "/_fake/") {
		status = s.serveControl(w, r)
	} else {
		status = s.serveAPI(w, r, requestID)
	}
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
		slog.String("request_id", requestID), slog.Duration("duration", time.Since(start)))
}

// answer is what the API decided under the lock, written out after it is released.
type answer struct {
	status    int
	body      any
	remaining int
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, requestID string) int {
	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	rec := Request{Time: s.opts.Now(), Method: r.Method, Path: r.URL.Path, RequestID: requestID}
	if len(body) > maxLoggedBody {
		rec.Body = string(body[:maxLoggedBody])
	} else {
		rec.Body = string(body)
	}
	latency, failWith := s.takeFaults()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			s.record(rec) // status 0: nobody is listening any more, and nothing changed
			return 0
		case <-t.C:
		}
	}
	a := s.answer(r, body, bodyErr, failWith)
	rec.Status = write(w, r, a)
	s.record(rec)
	return rec.Status
}

// takeFaults counts this request against the pending faults and returns those that apply to it.
func (s *Server) takeFaults() (time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var latency time.Duration
	var status int
	if s.faults.delayCount > 0 {
		s.faults.delayCount--
		latency = s.faults.latency
	}
	if s.faults.statusCount > 0 {
		s.faults.statusCount--
		status = s.faults.status
	}
	return latency, status
}

func (s *Server) answer(r *http.Request, body []byte, bodyErr error, failWith int) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	status, v := s.route(r, body, bodyErr, failWith)
	if status == http.StatusTooManyRequests {
		s.answered429++
	}
	s.refill()
	return answer{status: status, body: v, remaining: s.remaining()}
}

type route int

const (
	noRoute route = iota
	getAccount
	getRateLimits
	getAuthorization
	infoApp
	listFormation
	batchUpdateFormation
	infoFormation
	updateFormation
)

// match finds the endpoint for a method and path, and the path's parameters.
func match(method, path string) (route, []string) {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if slices.Contains(seg, "") {
		return noRoute, nil
	}
	get, patch := method == http.MethodGet, method == http.MethodPatch
	switch {
	case len(seg) == 1 && seg[0] == "account" && get:
		return getAccount, nil
	case len(seg) == 2 && seg[0] == "account" && seg[1] == "rate-limits" && get:
		return getRateLimits, nil
	case len(seg) == 3 && seg[0] == "oauth" && seg[1] == "authorizations" && get:
		return getAuthorization, seg[2:]
	case len(seg) == 2 && seg[0] == "apps" && get:
		return infoApp, seg[1:2]
	case len(seg) == 3 && seg[0] == "apps" && seg[2] == "formation" && get:
		return listFormation, seg[1:2]
	case len(seg) == 3 && seg[0] == "apps" && seg[2] == "formation" && patch:
		return batchUpdateFormation, seg[1:2]
	case len(seg) == 4 && seg[0] == "apps" && seg[2] == "formation" && get:
		return infoFormation, []string{seg[1], seg[3]}
	case len(seg) == 4 && seg[0] == "apps" && seg[2] == "formation" && patch:
		return updateFormation, []string{seg[1], seg[3]}
	}
	return noRoute, nil
}

// route applies the precedence of the package comment. Caller holds s.mu.
func (s *Server) route(r *http.Request, body []byte, bodyErr error, failWith int) (int, any) {
	if failWith != 0 {
		return fail(errInjected(failWith))
	}
	if !acceptsV3(r.Header.Values("Accept")) {
		return fail(errNotAcceptable())
	}
	if !s.authorized(r) {
		return fail(errUnauthorized())
	}
	rt, args := match(r.Method, r.URL.Path)
	if rt != getRateLimits && !s.takeToken() {
		return fail(errRateLimit())
	}
	if bodyErr != nil {
		return fail(errBadRequest("Could not read the request body: %v.", bodyErr))
	}
	switch rt {
	case getAccount:
		return http.StatusOK, s.account()
	case getRateLimits:
		s.refill()
		return http.StatusOK, rateLimitJSON{Remaining: s.remaining()}
	case getAuthorization:
		return s.authorization(args[0])
	case infoApp:
		a := s.findApp(args[0])
		if a == nil {
			return fail(errNoApp())
		}
		return http.StatusOK, a.info(s.created)
	case listFormation:
		a := s.findApp(args[0])
		if a == nil {
			return fail(errNoApp())
		}
		return http.StatusOK, a.snapshot()
	case infoFormation:
		a := s.findApp(args[0])
		if a == nil {
			return fail(errNoApp())
		}
		f := a.formation(args[1])
		if f == nil || !typePattern.MatchString(args[1]) {
			return fail(errNoFormation())
		}
		return http.StatusOK, *f
	case updateFormation:
		fs, err := s.patch(args[0], body, func() ([]pending, *Error) {
			var p pendingJSON
			if err := decodeParams(body, &p); err != nil {
				return nil, err
			}
			return []pending{p.pending(args[1])}, nil
		})
		if err != nil {
			return fail(err)
		}
		return http.StatusOK, fs[0]
	case batchUpdateFormation:
		fs, err := s.patch(args[0], body, func() ([]pending, *Error) {
			var b struct {
				Updates *[]pendingJSON `json:"updates"`
			}
			if err := decodeParams(body, &b); err != nil {
				return nil, err
			}
			if b.Updates == nil {
				return nil, errInvalid("Missing required params: updates.")
			}
			ps := make([]pending, len(*b.Updates))
			for i, u := range *b.Updates {
				if u.Type == "" {
					return nil, errInvalid("Missing required params: type (in update %d).", i)
				}
				ps[i] = u.pending(u.Type)
			}
			return ps, nil
		})
		if err != nil {
			return fail(err)
		}
		return http.StatusOK, fs
	}
	return fail(errNoRoute())
}

func fail(e *Error) (int, any) { return e.Status, e }

// acceptsV3 reports whether an Accept header asks for version 3 of Heroku's media type.
func acceptsV3(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(part)
			if err != nil || mt != "application/vnd.heroku+json" {
				continue
			}
			if version := params["version"]; version == "3" || strings.HasPrefix(version, "3.") {
				return true
			}
		}
	}
	return false
}

// authorized checks the bearer token (or basic auth with the token as password), in constant time.
func (s *Server) authorized(r *http.Request) bool {
	var token string
	if h := r.Header.Get("Authorization"); len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		token = strings.TrimSpace(h[len("Bearer "):])
	} else if _, password, ok := r.BasicAuth(); ok {
		token = password
	}
	if token == "" {
		return false
	}
	if s.opts.Token == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.Token)) == 1
}

// pendingJSON is one formation update as sent: the single PATCH body, or one element of "updates".
type pendingJSON struct {
	Type     string          `json:"type"`
	Quantity json.RawMessage `json:"quantity"`
	Size     *string         `json:"size"` // deprecated, still accepted
	DynoSize *struct {
		ID   *string `json:"id"`
		Name *string `json:"name"`
	} `json:"dyno_size"`
}

// pending is an update whose formation has not been looked up and whose values have not been checked yet, so
// that an unknown formation gets its 404 before a bad value gets its 422.
type pending struct {
	identity string
	quantity json.RawMessage // nil: unchanged
	size     *string         // a size name; nil: unchanged
	sizeID   *string         // a dyno_size id; nil: unchanged
}

func (p pendingJSON) pending(identity string) pending {
	u := pending{identity: identity, quantity: p.Quantity, size: p.Size}
	if p.DynoSize != nil {
		u.size, u.sizeID = p.DynoSize.Name, p.DynoSize.ID
		if u.size == nil && u.sizeID == nil {
			u.size = p.Size
		}
	}
	return u
}

// patch is both PATCH endpoints: 400 for a body that is not JSON, 404 for the app, then decode (422 for a body of
// the wrong shape), 404 for each formation, 422 for each value, then scale. Caller holds s.mu.
func (s *Server) patch(app string, body []byte, decode func() ([]pending, *Error)) ([]Formation, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errBadRequest("Request body is empty: expected a JSON object.")
	}
	if !json.Valid(body) {
		return nil, errBadRequest("Request body is not valid JSON: %s.", jsonSyntaxError(body))
	}
	a := s.findApp(app)
	if a == nil {
		return nil, errNoApp()
	}
	ps, err := decode()
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if !typePattern.MatchString(p.identity) || a.formation(p.identity) == nil {
			return nil, errNoFormation()
		}
	}
	updates := make([]update, len(ps))
	for i, p := range ps {
		u := update{Type: p.identity}
		if p.quantity != nil {
			q, err := parseQuantity(p.quantity)
			if err != nil {
				return nil, err
			}
			u.Quantity = &q
		}
		switch {
		case p.size != nil:
			name, _, ok := canonicalSize(*p.size)
			if !ok {
				return nil, errInvalid("Invalid dyno size %q: expected a Heroku dyno size such as Standard-1X.", *p.size)
			}
			u.Size = name
		case p.sizeID != nil:
			name := s.sizeByID(*p.sizeID)
			if name == "" {
				return nil, errInvalid("Invalid dyno size id %q: expected the id of a dyno size.", *p.sizeID)
			}
			u.Size = name
		}
		updates[i] = u
	}
	return s.scale(app, updates)
}

// sizeByID finds a size by its id among every size the fake has answered with. Caller holds s.mu.
func (s *Server) sizeByID(id string) string {
	return s.sizeIDs[strings.ToLower(id)]
}

// decodeParams decodes a body already known to be JSON; a body of the wrong shape is invalid_params.
func decodeParams(body []byte, v any) *Error {
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errInvalid("Invalid params: %s must be %s, got a JSON %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return errInvalid("Invalid params: expected a JSON object.")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map", "ptr":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	}
	return "a " + goKind
}

func jsonSyntaxError(body []byte) string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err.Error()
	}
	return "unknown error"
}

// parseQuantity accepts a JSON integer of 0 or more, nothing else (no fractions, strings or null).
func parseQuantity(raw json.RawMessage) (int, *Error) {
	text := strings.TrimSpace(string(raw))
	q, err := strconv.Atoi(text)
	if err != nil || q < 0 {
		return 0, errInvalid("Invalid quantity %s: expected a whole number of 0 or more.", text)
	}
	return q, nil
}

// update is a checked change to one formation; nil Quantity or empty Size leave that part as it is.
type update struct {
	Type     string
	Quantity *int
	Size     string // canonical
}

// scale applies updates to an app all or nothing: 404 for an unknown app or formation, 422 for a negative quantity,
// past the size's per-process-type limit or past the app's limit. updated_at changes only where quantity or size
// does. It returns the updated formations in the order first named. Caller holds s.mu.
func (s *Server) scale(app string, updates []update) ([]Formation, *Error) {
	a := s.findApp(app)
	if a == nil {
		return nil, errNoApp()
	}
	if a.deploying {
		return nil, errInvalid("Cannot change formation for a preboot app until release phase and preboot complete.")
	}
	type state struct {
		quantity int
		size     string
	}
	next := map[*Formation]state{}
	var order []*Formation
	for _, u := range updates {
		f := a.formation(u.Type)
		if f == nil || !typePattern.MatchString(u.Type) {
			return nil, errNoFormation()
		}
		st, seen := next[f]
		if !seen {
			st = state{f.Quantity, f.Size}
			order = append(order, f)
		}
		if u.Quantity != nil {
			if *u.Quantity < 0 {
				return nil, errInvalid("Invalid quantity %d: expected a whole number of 0 or more.", *u.Quantity)
			}
			st.quantity = *u.Quantity
		}
		if u.Size != "" {
			st.size = u.Size
		}
		next[f] = st
	}
	total := 0
	for _, f := range a.formations {
		st, ok := next[f]
		if !ok {
			total += f.Quantity
			continue
		}
		total += st.quantity
		if _, limit, _ := canonicalSize(st.size); st.quantity > limit {
			return nil, errInvalid("Cannot scale to more than %d %s size dynos per process type.", limit, st.size)
		}
	}
	if limit := a.dynoLimit(); total > limit {
		return nil, errInvalid("Cannot scale to more than %d dynos per app (this update would make %d).", limit, total)
	}
	now := wireTime(s.opts.Now())
	out := make([]Formation, len(order))
	for i, f := range order {
		if st := next[f]; st.quantity != f.Quantity || st.size != f.Size {
			f.Quantity, f.Size, f.UpdatedAt = st.quantity, st.size, now
			s.sizeIDs[sizeID(f.Size)] = f.Size
		}
		out[i] = *f
	}
	return out, nil
}

// checkProcess validates a process given to AddApp or ParseApp and returns its canonical size.
func checkProcess(p Process) (string, error) {
	if !typePattern.MatchString(p.Type) {
		return "", fmt.Errorf("process type %q: expected letters, digits, '_' or '-' (1 to 128)", p.Type)
	}
	if p.Quantity < 0 {
		return "", fmt.Errorf("process type %q: quantity %d: expected 0 or more", p.Type, p.Quantity)
	}
	size := p.Size
	if size == "" {
		size = DefaultSize
	}
	name, limit, ok := canonicalSize(size)
	if !ok {
		return "", fmt.Errorf("process type %q: dyno size %q: expected a Heroku dyno size such as Standard-1X", p.Type, p.Size)
	}
	if p.Quantity > limit {
		return "", fmt.Errorf("process type %q: quantity %d: expected at most %d %s dynos per process type", p.Type, p.Quantity, limit, name)
	}
	return name, nil
}

func (s *Server) account() accountJSON {
	return accountJSON{
		AllowTracking: true, CreatedAt: timeJSON(s.created), Email: s.opts.Email, ID: s.accountID,
		LastLogin: timeJSON(s.created), Name: "Fake Heroku", UpdatedAt: timeJSON(s.created), Verified: true,
	}
}

func (s *Server) authorization(id string) (int, any) {
	a, ok := s.auths[id]
	if !ok {
		return fail(errNoAuthorization())
	}
	var out authorizationJSON
	out.ID, out.Description, out.Scope = id, "fakeheroku", []string{"global"}
	out.CreatedAt, out.UpdatedAt = timeJSON(a.created), timeJSON(a.created)
	out.AccessToken.ID = a.tokenID
	if a.expires != nil {
		left := max(int(a.expires.Sub(s.opts.Now())/time.Second), 0)
		out.AccessToken.ExpiresIn = &left
	}
	out.User.Email, out.User.ID = s.opts.Email, s.accountID
	return http.StatusOK, out
}

// write sends an answer with RateLimit-Remaining, and an ETag on successful GETs (304 when If-None-Match has it).
func write(w http.ResponseWriter, r *http.Request, a answer) int {
	h := w.Header()
	h.Set("RateLimit-Remaining", strconv.Itoa(a.remaining))
	data, err := json.Marshal(a.body)
	if err != nil {
		a.status = http.StatusInternalServerError
		data = []byte(`{"id":"internal_server_error","message":"fakeheroku could not encode its answer.","url":""}`)
	}
	if r.Method == http.MethodGet && a.status == http.StatusOK {
		sum := sha256.Sum256(data)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		h.Set("ETag", etag)
		if etagMatches(r.Header.Values("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return http.StatusNotModified
		}
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(data)
	return a.status
}

func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == etag || tag == "*" {
				return true
			}
		}
	}
	return false
}
