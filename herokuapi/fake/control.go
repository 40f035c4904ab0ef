package fake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// faultsJSON is the state of pending faults, answered by GET and POST /_fake/faults.
type faultsJSON struct {
	Status       int    `json:"status"`        // 0: none
	StatusCount  int    `json:"status_count"`  // requests left to fail
	Latency      string `json:"latency"`       // a Go duration, "0s": none
	LatencyCount int    `json:"latency_count"` // requests left to delay
}

type poolJSON struct {
	Remaining int `json:"remaining"`
	Pool      int `json:"pool"`
}

type appJSON struct {
	App
	Formation []Formation `json:"formation"`
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) int {
	type endpoint struct {
		methods string // for the Allow header
		handle  map[string]func() (int, any)
	}
	endpoints := map[string]endpoint{
		"/_fake/requests": {"GET, DELETE", map[string]func() (int, any){
			http.MethodGet: func() (int, any) {
				reqs := s.Requests()
				if reqs == nil {
					reqs = []Request{}
				}
				return http.StatusOK, reqs
			},
			http.MethodDelete: func() (int, any) { s.ClearRequests(); return http.StatusNoContent, nil },
		}},
		"/_fake/faults": {"GET, POST", map[string]func() (int, any){
			http.MethodGet:  func() (int, any) { return http.StatusOK, s.faultState() },
			http.MethodPost: func() (int, any) { return s.postFaults(r) },
		}},
		"/_fake/pool": {"GET, POST", map[string]func() (int, any){
			http.MethodGet:  func() (int, any) { return http.StatusOK, poolJSON{s.Pool(), s.opts.Pool} },
			http.MethodPost: func() (int, any) { return s.postPool(r) },
		}},
		"/_fake/scale": {"POST", map[string]func() (int, any){
			http.MethodPost: func() (int, any) { return s.postScale(r) },
		}},
		"/_fake/deploy": {"POST", map[string]func() (int, any){
			http.MethodPost: func() (int, any) { return s.postDeploy(r) },
		}},
		"/_fake/apps": {"GET", map[string]func() (int, any){
			http.MethodGet: func() (int, any) { return http.StatusOK, s.appList() },
		}},
	}
	status, v := http.StatusNotFound, any(&Error{http.StatusNotFound, "not_found",
		fmt.Sprintf("No control endpoint %s: expected /_fake/requests, /_fake/faults, /_fake/pool, /_fake/scale, /_fake/deploy or /_fake/apps.", r.URL.Path), ""})
	if e, ok := endpoints[r.URL.Path]; ok {
		if h, ok := e.handle[r.Method]; ok {
			status, v = h()
		} else {
			w.Header().Set("Allow", e.methods)
			status, v = fail(&Error{http.StatusMethodNotAllowed, "method_not_allowed",
				fmt.Sprintf("%s %s: expected %s.", r.Method, r.URL.Path, e.methods), ""})
		}
	}
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(s.Pool())) // like every answer, though nothing was taken
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return status
	}
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"id":"internal_server_error","message":"fakeheroku could not encode its answer.","url":""}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
	return status
}

// decodeControl decodes a control body strictly: one JSON object, no unknown fields.
func decodeControl(r *http.Request, v any, expected string) *Error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil && dec.More() {
			err = errors.New("more than one JSON value")
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
	}
	if err != nil {
		return errBadRequest("%s %s: %v; expected %s.", r.Method, r.URL.Path, err, expected)
	}
	return nil
}

func (s *Server) faultState() faultsJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	return faultsJSON{Status: f.status, StatusCount: f.statusCount, Latency: f.latency.String(), LatencyCount: f.delayCount}
}

func (s *Server) postFaults(r *http.Request) (int, any) {
	const expected = `{"status":503,"count":3}, {"latency":"2s","count":3} (both at once are allowed) or {"reset":true}`
	var body struct {
		Status  *int    `json:"status"`
		Latency *string `json:"latency"`
		Count   *int    `json:"count"`
		Reset   bool    `json:"reset"`
	}
	if err := decodeControl(r, &body, expected); err != nil {
		return fail(err)
	}
	bad := func(format string, args ...any) (int, any) {
		return fail(errBadRequest("POST /_fake/faults: "+format+"; expected "+expected+".", args...))
	}
	if body.Reset {
		if body.Status != nil || body.Latency != nil || body.Count != nil {
			return bad("reset clears every fault and takes no other field")
		}
		s.ClearFaults()
		return http.StatusOK, s.faultState()
	}
	if body.Status == nil && body.Latency == nil {
		return bad("no status, latency or reset given")
	}
	if body.Count == nil || *body.Count < 1 {
		return bad("count must be given, 1 or more")
	}
	if body.Status != nil && (*body.Status < 400 || *body.Status > 599) {
		return bad("status %d is not an error status (400 to 599)", *body.Status)
	}
	var latency time.Duration
	if body.Latency != nil {
		d, err := time.ParseDuration(*body.Latency)
		if err != nil || d <= 0 {
			return bad("latency %q is not a positive Go duration such as 2s or 500ms", *body.Latency)
		}
		latency = d
	}
	if body.Status != nil {
		s.Fail(*body.Status, *body.Count)
	}
	if body.Latency != nil {
		s.Delay(latency, *body.Count)
	}
	return http.StatusOK, s.faultState()
}

func (s *Server) postPool(r *http.Request) (int, any) {
	expected := fmt.Sprintf(`{"remaining":N} with N from 0 to %d`, s.opts.Pool)
	var body struct {
		Remaining *int `json:"remaining"`
	}
	if err := decodeControl(r, &body, expected); err != nil {
		return fail(err)
	}
	if body.Remaining == nil || *body.Remaining < 0 || *body.Remaining > s.opts.Pool {
		got := "nothing"
		if body.Remaining != nil {
			got = fmt.Sprint(*body.Remaining)
		}
		return fail(errBadRequest("POST /_fake/pool: remaining is %s; expected %s.", got, expected))
	}
	s.SetPool(*body.Remaining)
	return http.StatusOK, poolJSON{s.Pool(), s.opts.Pool}
}

func (s *Server) postScale(r *http.Request) (int, any) {
	const expected = `{"app":"NAME or ID","type":"web","quantity":N}`
	var body struct {
		App      string `json:"app"`
		Type     string `json:"type"`
		Quantity *int   `json:"quantity"`
	}
	if err := decodeControl(r, &body, expected); err != nil {
		return fail(err)
	}
	if body.App == "" || body.Type == "" || body.Quantity == nil {
		return fail(errBadRequest("POST /_fake/scale: app, type and quantity are all required; expected %s.", expected))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, err := s.scale(body.App, []update{{Type: body.Type, Quantity: body.Quantity}})
	if err != nil {
		return fail(err)
	}
	return http.StatusOK, fs[0]
}

func (s *Server) postDeploy(r *http.Request) (int, any) {
	const expected = `{"app":"NAME or ID","deploying":true}`
	var body struct {
		App       string `json:"app"`
		Deploying *bool  `json:"deploying"`
	}
	if err := decodeControl(r, &body, expected); err != nil {
		return fail(err)
	}
	if body.App == "" || body.Deploying == nil {
		return fail(errBadRequest("POST /_fake/deploy: app and deploying are both required; expected %s.", expected))
	}
	if err := s.Deploy(body.App, *body.Deploying); err != nil {
		return fail(errNoApp())
	}
	return http.StatusOK, map[string]any{"app": body.App, "deploying": *body.Deploying}
}

func (s *Server) appList() []appJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]appJSON, len(s.apps))
	for i, a := range s.apps {
		out[i] = appJSON{App: a.App, Formation: a.snapshot()}
	}
	return out
}
