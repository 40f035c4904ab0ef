package herokuapi

import (
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// instruments are the client's Prometheus metrics. Endpoints are route templates so that app names never become
// label values (they are not secret, but they would multiply series).
type instruments struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	remaining prometheus.GaugeFunc
	expiry    *optionalGauge
}

func newInstruments(reg prometheus.Registerer, l *Limiter) (*instruments, error) {
	in := &instruments{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynopilot_heroku_requests_total",
			Help: "Heroku Platform API requests by method, route template and status code (\"error\" when no answer came).",
		}, []string{"method", "endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dynopilot_heroku_request_duration_seconds",
			Help:    "Duration of Heroku Platform API requests, one observation per attempt.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"method", "endpoint"}),
		remaining: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dynopilot_heroku_ratelimit_remaining",
			Help: "Request tokens left in the account's pool as the rate limiter believes: the API's last count (RateLimit-Remaining or GET /account/rate-limits) less requests not yet answered, plus the refill since; 0 after a 429 until the pool is read again.",
		}, func() float64 { return math.Floor(max(0, l.Remaining())) }),
		expiry: &optionalGauge{desc: prometheus.NewDesc(
			"dynopilot_heroku_token_expires_in_seconds",
			"Seconds until the API token expires; absent when unknown or when the token never expires.",
			nil, nil)},
	}
	if reg == nil {
		return in, nil
	}
	for _, c := range []prometheus.Collector{in.requests, in.duration, in.remaining, in.expiry} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// optionalGauge is a gauge that is exported only once a value is known, so a dashboard never mistakes "unknown"
// for "expires now".
type optionalGauge struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	value float64
	known bool
}

func (g *optionalGauge) set(v float64, known bool) {
	g.mu.Lock()
	g.value, g.known = v, known
	g.mu.Unlock()
}

func (g *optionalGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *optionalGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	v, known := g.value, g.known
	g.mu.Unlock()
	if known {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v)
	}
}
