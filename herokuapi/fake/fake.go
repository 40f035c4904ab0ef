// Package fake is an in-process fake of the part of the Heroku Platform API that dynopilot uses, written from the
// wire format alone (it shares no code with the real client in herokuapi), so that the client, the daemon's
// end-to-end tests and `dynopilot demo` run against something that answers like Heroku does: same paths, JSON
// shapes, headers, status codes and error ids, and the same account-wide pool of request tokens.
//
// Endpoints (all under the v3 media type, `{app}` is an app's name or id, `{type}` a process type or formation id):
//
//	GET   /apps/{app}/formation          list
//	GET   /apps/{app}/formation/{type}   info
//	PATCH /apps/{app}/formation/{type}   {"quantity":N, "dyno_size":{"name":"…"}} ("size":"…" also accepted)
//	PATCH /apps/{app}/formation          {"updates":[{"type":"web","quantity":N,…},…]}, all or nothing
//	GET   /account
//	GET   /account/rate-limits           {"remaining":N}; takes no token
//	GET   /oauth/authorizations/{id}     access_token.expires_in counts down with Options.Now; null = never expires
//
// Every answer carries Request-Id (a fresh UUID), RateLimit-Remaining and
// `Content-Type: application/json; charset=utf-8`; errors are `{"id","message","url"}`. GET answers carry an ETag
// and a matching If-None-Match gets 304 with an empty body (it still takes a token).
//
// Precedence, first match wins, for every request not under /_fake/:
//
//  1. injected latency (Server.Delay): the request waits first; a client that gives up meanwhile is recorded with
//     status 0 and changes nothing;
//  2. injected failure (Server.Fail): answers in place of everything below and takes no token, like an outage in
//     front of the API would;
//  3. 406 not_acceptable without `Accept: application/vnd.heroku+json; version=3`;
//  4. 401 unauthorized without the bearer token (HTTP basic auth with the token as password is also accepted,
//     as Heroku does);
//  5. 429 rate_limit when the pool is empty; otherwise one token is taken (except by /account/rate-limits), even
//     by a request that then fails below;
//  6. 404 not_found for an unknown route or method;
//  7. 400 bad_request for a body that is not JSON;
//  8. 404 not_found for an unknown app ("Couldn't find that app."), then for an unknown process type
//     ("Couldn't find that formation.");
//  9. 422 invalid_params for a bad quantity or size, past the size's per-process-type limit (package dynosize) or
//     past 100 dynos in the app.
//
// Control API, no token needed, not counted, not recorded: GET /_fake/requests (DELETE clears it),
// GET|POST /_fake/faults, GET|POST /_fake/pool, POST /_fake/scale, POST /_fake/deploy, GET /_fake/apps. See
// Server.ServeHTTP.
package fake

import (
	"crypto/sha1"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dynopilot/dynopilot/internal/dynosize"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultPool            = 4500              // Heroku's per-account pool of request tokens
	DefaultRefillPerMinute = 75.0              // tokens returned per minute, up to the pool size
	DefaultKeepRequests    = 10000             // requests kept in the log
	DefaultSize            = "Standard-1X"     // size of a Process that names none
	DefaultEmail           = "dev@example.com" // the account's email in GET /account
	appDynoLimit           = 100               // dynos per app across all process types (Cedar; Fir: dynosize.FirLimit)
	maxBodyBytes           = 1 << 20           // larger request bodies are refused with 400
	maxLoggedBody          = 4 << 10           // request bodies kept in the log are cut to this
	sizeNamespace          = "https://api.heroku.com/dyno-sizes/"
)

// Options configures a Server. The zero value is usable: any token, Heroku's default pool and refill, real time.
type Options struct {
	// Token is the one bearer token accepted. Empty accepts any non-empty token (a request without one still
	// gets 401), which suits demos; tests should set it.
	Token string
	// Pool is the size of the account's token pool, and what it starts with (default 4500).
	Pool int
	// RefillPerMinute is how many tokens come back per minute, continuously, up to Pool (default 75).
	RefillPerMinute float64
	// Now is the clock for refills, timestamps, token expiry and the request log (default time.Now); inject one to
	// make refill deterministic without sleeping.
	Now func() time.Time
	// Logger gets one line per request (never the token). Nil logs nothing.
	Logger *slog.Logger
	// KeepRequests bounds the request log (default 10,000): older requests are dropped first.
	KeepRequests int
	// Email is the account's email in GET /account (default "dev@example.com").
	Email string
}

// Process is one process type of an app as given to AddApp or parsed by ParseApp.
type Process struct {
	Type     string // matches ^[-\w]{1,128}$, e.g. "web"
	Quantity int    // 0 or more, within the size's limit
	Size     string // a Heroku dyno size, any case; empty means DefaultSize
	Command  string // empty means "bin/<type>"
}

// App identifies an app: Heroku accepts either field wherever an app is named.
type App struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Formation is the state of one process type as the fake holds it. It marshals to exactly the JSON Heroku sends.
type Formation struct {
	ID        string
	App       App
	Type      string
	Command   string
	Quantity  int
	Size      string    // canonical dyno size name, e.g. "Standard-1X"
	CreatedAt time.Time // UTC, whole seconds
	UpdatedAt time.Time // UTC, whole seconds; changes only when Quantity or Size does
}

// Request is one API request as the fake received and answered it.
type Request struct {
	Time      time.Time `json:"time"` // arrival, by Options.Now
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Status    int       `json:"status"`         // 0 when the client gave up during an injected latency
	Body      string    `json:"body,omitempty"` // request body as received, cut to 4 KiB
	RequestID string    `json:"request_id"`     // the Request-Id header of the answer
}

// Server is the fake API: an http.Handler safe for concurrent use. Create it with New.
type Server struct {
	opts      Options
	accountID string
	created   time.Time

	mu          sync.Mutex
	apps        []*appState
	tokens      float64   // tokens in the pool, fractional while refilling
	refilled    time.Time // when tokens was last brought up to date
	auths       map[string]authorization
	sizeIDs     map[string]string // dyno_size id (lower case) to name, for every size ever answered with
	faults      faults
	requests    []Request // oldest first, at most opts.KeepRequests
	answered429 int       // 429s answered since New; unlike requests, never cut or cleared
}

type appState struct {
	App
	formations []*Formation // in the order they were added
	deploying  bool         // a release phase or preboot is under way: formation changes are refused (422)
}

type authorization struct {
	created time.Time
	expires *time.Time // nil: never expires
	tokenID string
}

type faults struct {
	status      int
	statusCount int
	latency     time.Duration
	delayCount  int
}

// New returns a Server with no apps, a full pool and no faults.
func New(opts Options) *Server {
	if opts.Pool <= 0 {
		opts.Pool = DefaultPool
	}
	if opts.RefillPerMinute <= 0 {
		opts.RefillPerMinute = DefaultRefillPerMinute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.KeepRequests <= 0 {
		opts.KeepRequests = DefaultKeepRequests
	}
	if opts.Email == "" {
		opts.Email = DefaultEmail
	}
	now := opts.Now()
	return &Server{
		opts:      opts,
		accountID: uuid.NewString(),
		created:   wireTime(now),
		tokens:    float64(opts.Pool),
		refilled:  now,
		auths:     map[string]authorization{},
		sizeIDs:   map[string]string{},
	}
}

// AddApp adds an app with a fresh UUID, or adds and replaces process types of an existing app of that name
// (keeping its id), and returns it. Invalid input (a bad type, a negative quantity, an unknown size, a quantity past
// a limit) is a bug in the caller and panics with the reason; validate user input with ParseApp first.
func (s *Server) AddApp(name string, procs ...Process) App {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(name)
	next := map[string]int{}
	if a != nil {
		next = a.quantities()
	}
	sizes := make([]string, len(procs))
	for i, p := range procs {
		size, err := checkProcess(p)
		if err != nil {
			panic(fmt.Sprintf("fake: AddApp(%q): %v", name, err))
		}
		sizes[i] = size
		next[p.Type] = p.Quantity
	}
	limit := appDynoLimit
	if generationOf(sizes) == firGeneration {
		limit = dynosize.FirLimit
	}
	if total := sum(next); total > limit {
		panic(fmt.Sprintf("fake: AddApp(%q): %d dynos in total, expected at most %d per app", name, total, limit))
	}
	if a == nil {
		a = &appState{App: App{ID: uuid.NewString(), Name: name}}
		s.apps = append(s.apps, a)
	}
	now := wireTime(s.opts.Now())
	for i, p := range procs {
		command := p.Command
		if command == "" {
			command = "bin/" + p.Type
		}
		f := &Formation{ID: uuid.NewString(), App: a.App, Type: p.Type, Command: command, Quantity: p.Quantity,
			Size: sizes[i], CreatedAt: now, UpdatedAt: now}
		s.sizeIDs[sizeID(f.Size)] = f.Size
		if j := slices.IndexFunc(a.formations, func(g *Formation) bool { return g.Type == p.Type }); j >= 0 {
			f.ID, f.CreatedAt = a.formations[j].ID, a.formations[j].CreatedAt
			a.formations[j] = f
		} else {
			a.formations = append(a.formations, f)
		}
	}
	return a.App
}

// Formation returns the state of one process type; app is a name or id.
func (s *Server) Formation(app, typ string) (Formation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(app)
	if a == nil {
		return Formation{}, false
	}
	f := a.formation(typ)
	if f == nil {
		return Formation{}, false
	}
	return *f, true
}

// Formations returns every process type of an app in the order they were added; app is a name or id.
func (s *Server) Formations(app string) ([]Formation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(app)
	if a == nil {
		return nil, false
	}
	return a.snapshot(), true
}

// Scale sets a quantity the way a person with the CLI or dashboard would, so that tests can check the daemon
// notices someone else's scale event: the same checks as the API (404 unknown app or type, 422 past a limit), and
// updated_at changes when the quantity does. It takes no token, ignores faults and is not recorded.
func (s *Server) Scale(app, typ string, quantity int) (Formation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, apiErr := s.scale(app, []update{{Type: typ, Quantity: &quantity}})
	if apiErr != nil {
		return Formation{}, fmt.Errorf("fake: scale %s/%s to %d: %w", app, typ, quantity, apiErr)
	}
	return f[0], nil
}

// Deploy opens (on) or closes a deploy window for app, as a release phase or preboot does on Heroku: while it is
// open every formation change of the app, by the API or by Scale, is refused with Heroku's 422 "Cannot change
// formation for a preboot app until release phase and preboot complete."
func (s *Server) Deploy(app string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(app)
	if a == nil {
		return fmt.Errorf("fake: deploy %s: %w", app, errNoApp())
	}
	a.deploying = on
	return nil
}

// SetPool sets the tokens left in the pool, clamped to [0, Options.Pool]; refill continues from there.
func (s *Server) SetPool(remaining int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refill()
	s.tokens = float64(min(max(remaining, 0), s.opts.Pool))
}

// Pool returns the tokens left in the pool now, as RateLimit-Remaining would report them.
func (s *Server) Pool() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refill()
	return s.remaining()
}

// Requests returns the API requests received (not control requests), oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// TooManyRequests returns how many 429s the API has answered since New, for an empty pool or injected (Fail):
// what a benchmark of the client's limiter must keep at 0. Unlike Requests, the count is neither cut at
// Options.KeepRequests nor cleared.
func (s *Server) TooManyRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered429
}

// ClearRequests empties the request log, so that a test can look at what one step sent.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// Fail makes the next count API requests answer status (400 to 599) with a Heroku-style error body, in place of
// anything else, taking no token. It replaces an earlier Fail; count 0 cancels it. Other values panic.
func (s *Server) Fail(status, count int) {
	if status < 400 || status > 599 || count < 0 {
		panic(fmt.Sprintf("fake: Fail(%d, %d): expected a status from 400 to 599 and a count of 0 or more", status, count))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.status, s.faults.statusCount = status, count
}

// Delay makes the next count API requests wait d before being answered; a client that gives up meanwhile (its
// context ends) gets nothing and changes nothing. It replaces an earlier Delay; count 0 cancels it.
func (s *Server) Delay(d time.Duration, count int) {
	if d < 0 || count < 0 {
		panic(fmt.Sprintf("fake: Delay(%v, %d): expected a duration and a count of 0 or more", d, count))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency, s.faults.delayCount = d, count
}

// ClearFaults cancels every pending Fail and Delay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}

// AddAuthorization registers an OAuth authorization for GET /oauth/authorizations/{id}. expiresIn is the token's
// lifetime in seconds from now (by Options.Now), counting down to 0; nil means it never expires (expires_in null).
func (s *Server) AddAuthorization(id string, expiresIn *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	a := authorization{created: wireTime(now), tokenID: uuid.NewString()}
	if expiresIn != nil {
		t := now.Add(time.Duration(*expiresIn) * time.Second)
		a.expires = &t
	}
	s.auths[id] = a
}

// The generations of Heroku apps: Cedar (the classic one) and Fir, whose dyno sizes are named like dyno-2c-4gb and
// whose limits are 255 dynos per process type and per app.
const (
	cedarGeneration = "cedar"
	firGeneration   = "fir"
)

// generationOf is the generation of an app whose process types have these sizes: Fir when they are Fir sizes.
func generationOf(sizes []string) string {
	for _, size := range sizes {
		if dynosize.Fir(size) {
			return firGeneration
		}
	}
	return cedarGeneration
}

// generation is the app's generation, from its formation's sizes.
func (a *appState) generation() string {
	sizes := make([]string, len(a.formations))
	for i, f := range a.formations {
		sizes[i] = f.Size
	}
	return generationOf(sizes)
}

// dynoLimit is how many dynos the app may run across its process types.
func (a *appState) dynoLimit() int {
	if a.generation() == firGeneration {
		return dynosize.FirLimit
	}
	return appDynoLimit
}

// appInfoJSON is GET /apps/{app} as far as dynopilot reads it: who the app is and its generation.
type appInfoJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CreatedAt  string `json:"created_at"`
	Generation struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"generation"`
}

func (a *appState) info(created time.Time) appInfoJSON {
	out := appInfoJSON{ID: a.ID, Name: a.Name, CreatedAt: created.Format(time.RFC3339)}
	out.Generation.Name = a.generation()
	out.Generation.ID = uuid.NewHash(sha1.New(), uuid.NameSpaceURL, []byte("https://api.heroku.com/generations/"+out.Generation.Name), 5).String()
	return out
}

// findApp matches a name exactly or an id without regard to case, as Heroku does. Caller holds s.mu.
func (s *Server) findApp(identity string) *appState {
	for _, a := range s.apps {
		if a.Name == identity || strings.EqualFold(a.ID, identity) {
			return a
		}
	}
	return nil
}

func (a *appState) formation(identity string) *Formation {
	for _, f := range a.formations {
		if f.Type == identity || strings.EqualFold(f.ID, identity) {
			return f
		}
	}
	return nil
}

func (a *appState) quantities() map[string]int {
	q := make(map[string]int, len(a.formations))
	for _, f := range a.formations {
		q[f.Type] = f.Quantity
	}
	return q
}

func (a *appState) snapshot() []Formation {
	out := make([]Formation, len(a.formations))
	for i, f := range a.formations {
		out[i] = *f
	}
	return out
}

// refill brings the pool up to date with the clock. Caller holds s.mu.
func (s *Server) refill() {
	now := s.opts.Now()
	if !now.After(s.refilled) {
		return // a clock that stands still or steps back gives nothing back
	}
	s.tokens = math.Min(float64(s.opts.Pool), s.tokens+now.Sub(s.refilled).Minutes()*s.opts.RefillPerMinute)
	s.refilled = now
}

// remaining is what RateLimit-Remaining reports: whole tokens. Caller holds s.mu.
func (s *Server) remaining() int { return int(math.Floor(s.tokens)) }

// takeToken refills, then takes one token if there is one. Caller holds s.mu.
func (s *Server) takeToken() bool {
	s.refill()
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= s.opts.KeepRequests {
		s.requests = slices.Delete(s.requests, 0, len(s.requests)-s.opts.KeepRequests+1)
	}
	s.requests = append(s.requests, r)
}

// sizeID is a dyno size's id: stable for a name, as Heroku's are.
func sizeID(canonical string) string {
	return uuid.NewHash(sha1.New(), uuid.NameSpaceURL, []byte(sizeNamespace+canonical), 5).String()
}

// canonicalSize returns Heroku's spelling of a known dyno size and its per-process-type limit.
func canonicalSize(name string) (string, int, bool) {
	info, ok := dynosize.Lookup(name)
	return info.Name, info.Limit, ok
}

// wireTime is a time as Heroku sends it: UTC, whole seconds.
func wireTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func sum(q map[string]int) int {
	n := 0
	for _, v := range q {
		n += v
	}
	return n
}
