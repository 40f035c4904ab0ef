package scaler

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// Pusher sends the registry to a Prometheus Pushgateway, for worker dynos that nothing can scrape.
type Pusher struct {
	p        *push.Pusher
	interval time.Duration
	log      *slog.Logger
}

// NewPusher pushes g to url as job "dynopilot", grouped by the dyno's name (DYNO) so a restart replaces its own
// group. Credentials in the URL are used for basic auth.
// The credentials are taken out of the URL, because client_golang puts the URL in its errors.
func NewPusher(rawURL string, g prometheus.Gatherer, interval time.Duration, logger *slog.Logger) (*Pusher, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("PUSHGATEWAY_URL: expected an http(s) URL")
	}
	user := u.User
	u.User = nil
	instance := os.Getenv("DYNO")
	if instance == "" {
		instance, _ = os.Hostname()
	}
	p := push.New(u.String(), "dynopilot").Gatherer(g).Grouping("instance", instance)
	if user != nil {
		pass, _ := user.Password()
		p = p.BasicAuth(user.Username(), pass)
	}
	return &Pusher{p: p, interval: interval, log: logger}, nil
}

// Run pushes at once, then every interval until ctx is done, then once more so the last decisions are not lost.
func (p *Pusher) Run(ctx context.Context) {
	if err := p.Push(ctx); err != nil {
		p.log.Warn("push to the Pushgateway failed", "err", err)
	}
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			if err := p.Push(fctx); err != nil {
				p.log.Warn("last push to the Pushgateway failed", "err", err)
			}
			return
		case <-t.C:
			if err := p.Push(ctx); err != nil {
				p.log.Warn("push to the Pushgateway failed", "err", err)
			}
		}
	}
}

// Push sends the metrics once.
func (p *Pusher) Push(ctx context.Context) error {
	if err := p.p.PushContext(ctx); err != nil {
		return fmt.Errorf("pushing metrics: %w", err)
	}
	return nil
}
