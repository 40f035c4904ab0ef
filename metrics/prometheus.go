package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// prometheusKind runs QUERY as an instant query (KEDA's Prometheus scaler does the same) and reads its one sample:
// an instant vector of exactly one series, or a scalar. Credentials come from the URL's userinfo as basic auth;
// a path is kept (https://host/api/prom for Grafana Cloud and similar).
//
// An empty result, or NaN (histogram_quantile over no traffic), is EMPTY: missing (ErrNoData, never a scale-down)
// or zero. Several series are an error that says how many: aggregate them in the query. ±Inf is an error
// (histogram_quantile above the largest bucket cannot say how high). A negative result is passed on as it is, for
// Instruments.Wrap to refuse: a query's latency or size below 0 is a broken query, not a reason to scale down.
//
// The credentials go only to the configured scheme and host: a redirect elsewhere is followed without them.
func prometheusKind() kind {
	return kind{
		name: KindPrometheus,
		backend: backend{
			globalURL:  "PROMETHEUS_URL",
			defaultURL: func(d Defaults) string { return d.PrometheusURL },
			schemes:    []string{"http", "https"},
			checkURL: func(raw string) error {
				_, _, _, err := prometheusAddress(raw)
				return err
			},
		},
		measures: []string{MeasureLatency, MeasureSize},
		query:    required,
		open: func(c *Connections, s Spec) (Source, error) {
			address, user, password, err := prometheusAddress(s.URL)
			if err != nil {
				return nil, err
			}
			var rt http.RoundTripper = c.http.Transport
			if user != "" || password != "" {
				home, err := url.Parse(address)
				if err != nil {
					return nil, err
				}
				rt = basicAuth{user: user, password: password, home: home, next: rt}
			}
			client, err := api.NewClient(api.Config{Address: address, Client: &http.Client{Transport: rt}})
			if err != nil {
				return nil, err
			}
			return &promQuery{
				api:    v1.NewAPI(client),
				query:  s.Query,
				empty:  s.Empty,
				logger: c.logger.With("source", s.label()),
			}, nil
		},
	}
}

// prometheusAddress splits a Prometheus URL into the API address (no userinfo, query or fragment) and credentials.
func prometheusAddress(raw string) (address, user, password string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "", "", errors.New("expected http(s)://[user:password@]host[:port][/path]")
	}
	if u.User != nil {
		user = u.User.Username()
		password, _ = u.User.Password()
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return strings.TrimSuffix(u.String(), "/"), user, password, nil
}

// basicAuth adds the URL's credentials to every request to the URL's own scheme and host (home), and to no other:
// a round tripper sees every request of a redirect chain, and net/http's dropping of Authorization on a redirect to
// another host does not apply to a header added here.
type basicAuth struct {
	user, password string
	home           *url.URL
	next           http.RoundTripper
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, b.home) {
		return b.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(req)
}

type promQuery struct {
	api    v1.API
	query  string
	empty  string
	logger *slog.Logger
}

func (s *promQuery) Read(ctx context.Context) (Reading, error) {
	now := time.Now()
	value, warnings, infos, err := s.api.Query(ctx, s.query, now)
	for _, w := range warnings {
		s.logger.Warn("prometheus query warning", "query", s.query, "warning", w)
	}
	for _, i := range infos {
		s.logger.Debug("prometheus query info", "query", s.query, "info", i)
	}
	if err != nil {
		return Reading{}, fmt.Errorf("query %q: %w", s.query, err)
	}
	switch v := value.(type) {
	case model.Vector:
		switch len(v) {
		case 0:
			return s.noSample(now, "an empty result")
		case 1:
			return s.sample(float64(v[0].Value), v[0].Timestamp.Time())
		}
		var series []string
		for _, sample := range v[:min(len(v), 3)] {
			series = append(series, sample.Metric.String())
		}
		more := ""
		if len(v) > 3 {
			more = ", …"
		}
		return Reading{}, fmt.Errorf("query %q returned %d series (%s%s): expected one; aggregate them, e.g. sum(…) or max(…)", s.query, len(v), strings.Join(series, ", "), more)
	case *model.Scalar:
		return s.sample(float64(v.Value), v.Timestamp.Time())
	case nil:
		return s.noSample(now, "no result")
	default:
		return Reading{}, fmt.Errorf("query %q returned a %s: expected an instant vector of one series or a scalar", s.query, value.Type())
	}
}

func (s *promQuery) sample(v float64, at time.Time) (Reading, error) {
	switch {
	case math.IsNaN(v):
		return s.noSample(at, "NaN")
	case math.IsInf(v, 0):
		return Reading{}, fmt.Errorf("query %q returned %v: expected a finite number (a histogram_quantile above the largest bucket?)", s.query, v)
	}
	return Reading{Value: v, At: at}, nil
}

// noSample applies EMPTY.
func (s *promQuery) noSample(at time.Time, what string) (Reading, error) {
	if s.empty == EmptyZero {
		return Reading{Value: 0, At: at}, nil
	}
	return Reading{}, fmt.Errorf("query %q returned %s (EMPTY=missing): %w", s.query, what, ErrNoData)
}
