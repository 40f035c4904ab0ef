package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// hirefireMaxBody bounds how much of an answer is read: an info payload is a few hundred bytes.
const hirefireMaxBody = 1 << 20

// hirefireKind reads one entry (NAME, by default the process type) of an app's HireFire info endpoint, so that an
// app already instrumented for HireFire needs no change. The endpoint answers [{"name": "worker", "value": 12}, …];
// before December 2021 the field was "quantity", which is read too.
//
// The token goes where HireFire puts it: either in the path (https://app.example.com/hirefire/TOKEN/info, requested
// as is), or, for the newer endpoint that takes a HireFire-Token header, as the URL's password
// (https://:TOKEN@app.example.com/hirefire), which is sent as that header and never as basic auth. Either way it is
// redacted from every error and log.
func hirefireKind() kind {
	return kind{
		name: KindHireFire,
		backend: backend{ // no global default: every app has its own endpoint
			schemes: []string{"https", "http"},
			checkURL: func(raw string) error {
				_, _, err := hirefireRequestURL(raw)
				return err
			},
		},
		measures:  []string{MeasureLatency, MeasureSize},
		entryName: true,
		open: func(c *Connections, s Spec) (Source, error) {
			target, token, err := hirefireRequestURL(s.URL)
			if err != nil {
				return nil, err
			}
			client := &http.Client{Transport: c.http.Transport, CheckRedirect: keepTokenAtHome}
			return &hirefire{client: client, url: target, token: token, name: s.Name}, nil
		},
	}
}

// hirefireRequestURL splits a HireFire URL into the URL to request (without userinfo) and the header token.
func hirefireRequestURL(raw string) (target, token string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "", errors.New("expected https://HOST/hirefire/TOKEN/info or https://:TOKEN@HOST/hirefire")
	}
	if u.User != nil {
		password, ok := u.User.Password()
		if !ok || password == "" {
			return "", "", errors.New("put the HireFire token as the URL's password (https://:TOKEN@HOST/hirefire), or in the path (https://HOST/hirefire/TOKEN/info)")
		}
		token = password
		u.User = nil
	}
	return u.String(), token, nil
}

// keepTokenAtHome follows redirects as net/http does, but never sends the HireFire-Token header to another scheme
// or host (net/http drops only its own sensitive headers, such as Authorization, on such redirects).
func keepTokenAtHome(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if !sameOrigin(req.URL, via[0].URL) {
		req.Header.Del("HireFire-Token")
	}
	return nil
}

type hirefire struct {
	client *http.Client
	url    string
	token  string
	name   string
}

// hirefireEntry is one element of the payload; numbers are kept raw so that a string or null is an error, not 0.
type hirefireEntry struct {
	Name     string          `json:"name"`
	Value    json.RawMessage `json:"value"`
	Quantity json.RawMessage `json:"quantity"`
}

func (s *hirefire) Read(ctx context.Context) (Reading, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return Reading{}, err
	}
	req.Header.Set("Accept", "application/json")
	if s.token != "" {
		req.Header.Set("HireFire-Token", s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Reading{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, hirefireMaxBody))
	if err != nil {
		return Reading{}, fmt.Errorf("read the answer: %w", err)
	}
	at := time.Now()
	if resp.StatusCode != http.StatusOK {
		return Reading{}, fmt.Errorf("HTTP %s: expected 200 with a HireFire info payload; body starts %.120q", resp.Status, body)
	}
	v, err := hirefireValue(body, s.name)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Value: v, At: at}, nil
}

// hirefireValue reads the entry named name from an info payload.
func hirefireValue(body []byte, name string) (float64, error) {
	var entries []hirefireEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return 0, fmt.Errorf("answer is not a HireFire info payload ([{\"name\":…,\"value\":…}]): %w", err)
	}
	var found []hirefireEntry
	var names []string
	for _, e := range entries {
		names = append(names, strconv.Quote(e.Name))
		if e.Name == name {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		if len(names) > 20 {
			names = append(names[:20], "…")
		}
		return 0, fmt.Errorf("no entry named %q: the payload has %s", name, orNothing(strings.Join(names, ", ")))
	case 1:
	default:
		return 0, fmt.Errorf("%d entries named %q: expected one", len(found), name)
	}
	field, raw := "value", found[0].Value
	if len(raw) == 0 {
		field, raw = "quantity", found[0].Quantity
	}
	if len(raw) == 0 {
		return 0, fmt.Errorf("entry %q has neither value nor quantity", name)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("entry %q has %s %.40s: expected a number ≥ 0", name, field, raw)
	}
	return v, nil
}

func orNothing(s string) string {
	if s == "" {
		return "no entries"
	}
	return s
}
