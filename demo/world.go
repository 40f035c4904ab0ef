// Package demo is the world `dynopilot demo` runs in: a fake Heroku with one app, and synthetic load with a daily
// cycle and spikes played fast, whose latency and queue respond to the dynos the daemon gives them. It exists so
// that a newcomer sees real decisions within seconds, with no credentials and no network.
package demo

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/metrics"
)

// App is the demo app's name in the fake Heroku.
const App = "demo-shop"

// Options shapes the synthetic load.
type Options struct {
	Day      time.Duration // how long one simulated day lasts in real time (default 10m)
	Load     float64       // multiplies the load (default 1); 3 or more pins the web at its maximum
	BootTime time.Duration // real time a new dyno takes to serve (default 8s)
	Seed     uint64
}

// World is the demo app's traffic and work, advanced in real time.
type World struct {
	opts   Options
	heroku *fake.Server
	start  time.Time

	mu      sync.Mutex
	rng     *rand.Rand
	last    time.Time
	backlog float64 // jobs waiting for the worker
	spikeTo time.Time
	nextSpk time.Time
	procs   map[string]*proc
}

// proc follows one process type's serving dynos: added dynos serve after booting, removed ones stop at once.
type proc struct {
	serving int
	boots   []time.Time // when each booting dyno starts serving
	seen    int         // quantity last seen in the formation
}

// Web capacity and service time of one dyno, and the worker's throughput.
const (
	webPerDyno     = 40.0 // requests per second one web dyno serves
	webService     = 0.06 // seconds per request with no queueing
	jobsPerDyno    = 15.0 // jobs per second one worker dyno finishes
	baseRate       = 60.0 // requests per second at the day's average
	jobsPerRequest = 0.25
)

// New returns the world and adds the demo app to f: web=2, worker=1, both Standard-1X. The day starts
// mid-morning with traffic rising past what two web dynos serve well, so the first scale-up comes within seconds.
func New(f *fake.Server, o Options, now time.Time) *World {
	if o.Day <= 0 {
		o.Day = 10 * time.Minute
	}
	if o.Load <= 0 {
		o.Load = 1
	}
	if o.BootTime <= 0 {
		o.BootTime = 8 * time.Second
	}
	f.AddApp(App, fake.Process{Type: "web", Quantity: 2, Size: "Standard-1X", Command: "bundle exec puma -C config/puma.rb"},
		fake.Process{Type: "worker", Quantity: 1, Size: "Standard-1X", Command: "bundle exec sidekiq"})
	w := &World{opts: o, heroku: f, start: now.Add(-o.Day / 4), last: now, rng: rand.New(rand.NewPCG(o.Seed, 7)), procs: map[string]*proc{
		"web": {serving: 2, seen: 2}, "worker": {serving: 1, seen: 1},
	}}
	w.nextSpk = now.Add(w.spikeGap())
	return w
}

func (w *World) spikeGap() time.Duration {
	return time.Duration(float64(w.opts.Day) * (0.15 + 0.2*w.rng.Float64()))
}

// rate is requests per second at t: a daily cycle about 4x between night and afternoon, plus spikes.
func (w *World) rate(t time.Time) float64 {
	phase := 2 * math.Pi * t.Sub(w.start).Seconds() / w.opts.Day.Seconds()
	r := baseRate * (1 - 0.6*math.Cos(phase)) * w.opts.Load
	if t.Before(w.spikeTo) {
		r *= 2.5
	}
	return r
}

// advance moves the world to now. Callers hold mu.
func (w *World) advance(now time.Time) {
	for typ, p := range w.procs {
		f, ok := w.heroku.Formation(App, typ)
		if !ok {
			continue
		}
		if f.Quantity > p.seen {
			for i := p.seen; i < f.Quantity; i++ {
				p.boots = append(p.boots, now.Add(w.opts.BootTime))
			}
		} else if f.Quantity < p.seen {
			drop := p.seen - f.Quantity
			if n := min(drop, len(p.boots)); n > 0 { // booting dynos go first
				p.boots = p.boots[:len(p.boots)-n]
				drop -= n
			}
			p.serving = max(0, p.serving-drop)
		}
		p.seen = f.Quantity
		kept := p.boots[:0]
		for _, b := range p.boots {
			if !b.After(now) {
				p.serving++
			} else {
				kept = append(kept, b)
			}
		}
		p.boots = kept
	}
	if !now.Before(w.nextSpk) {
		w.spikeTo = now.Add(time.Duration(float64(w.opts.Day) * 0.03))
		w.nextSpk = now.Add(w.spikeGap())
	}
	// the worker's backlog, integrated in steps of at most a second
	for t := w.last; t.Before(now); {
		dt := math.Min(1, now.Sub(t).Seconds())
		in := w.rate(t) * jobsPerRequest * dt
		out := float64(w.procs["worker"].serving) * jobsPerDyno * dt
		w.backlog = math.Max(0, w.backlog+in-out)
		t = t.Add(time.Duration(dt * float64(time.Second)))
	}
	w.last = now
}

// WebLatency is the web's p95 request latency in seconds, as a Prometheus histogram_quantile would report it.
func (w *World) WebLatency() metrics.Source {
	return source(func(now time.Time) float64 {
		n := float64(w.procs["web"].serving)
		rho := w.rate(now) / math.Max(n*webPerDyno, 1e-9)
		if rho >= 0.97 { // overloaded: requests queue in the router until they time out at 30s
			return math.Min(30, webService*(1+30*(rho-0.97)+1/(1-0.97)))
		}
		// p95 of an M/M/1-like queue per dyno: service time stretched by 1/(1-rho), 3x for the tail
		return webService * (1 + 3*rho/(1-rho)) * (1 + 0.05*w.rng.NormFloat64())
	}, w)
}

// QueueSize is the number of jobs waiting for the worker.
func (w *World) QueueSize() metrics.Source {
	return source(func(time.Time) float64 { return math.Floor(w.backlog) }, w)
}

type sourceFunc struct {
	w    *World
	read func(time.Time) float64
}

func source(f func(time.Time) float64, w *World) metrics.Source { return sourceFunc{w: w, read: f} }

// Read advances the world to now and reads.
func (s sourceFunc) Read(ctx context.Context) (metrics.Reading, error) {
	if err := ctx.Err(); err != nil {
		return metrics.Reading{}, err
	}
	now := time.Now()
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.advance(now)
	return metrics.Reading{Value: math.Max(0, s.read(now)), At: now}, nil
}
