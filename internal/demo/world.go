// Package demo is the world `dynopilot demo` runs in: a fake Heroku with two apps, and synthetic load with a daily
// cycle and spikes played fast, whose latency and queue respond to the dynos the daemon gives them. The first app's
// web latency is read as Prometheus would report it; the second app has no Prometheus at all: its router writes
// log lines, which the demo sends to dynopilot's own log drain endpoint, as Heroku would. It exists so that a
// newcomer sees real decisions within seconds, with no credentials and no network.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/metrics"
)

// App is the demo app's name in the fake Heroku.
const App = "demo-shop"

// DrainApp is the demo's second app: a web process scaled on its router's log lines, delivered through a log drain.
const DrainApp = "demo-api"

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
	procs   map[procKey]*proc
	logged  time.Time // the end of the last second whose router lines RouterLog returned
	request int       // numbers request ids
}

// procKey names one process type of one app.
type procKey struct{ app, typ string }

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
	drainShare     = 0.5 // DrainApp's traffic, as a share of App's
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
	f.AddApp(DrainApp, fake.Process{Type: "web", Quantity: 1, Size: "Standard-1X", Command: "node server.js"})
	w := &World{opts: o, heroku: f, start: now.Add(-o.Day / 4), last: now, logged: now.Truncate(time.Second),
		rng: rand.New(rand.NewPCG(o.Seed, 7)), procs: map[procKey]*proc{
			{App, "web"}: {serving: 2, seen: 2}, {App, "worker"}: {serving: 1, seen: 1}, {DrainApp, "web"}: {serving: 1, seen: 1},
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
	for k, p := range w.procs {
		f, ok := w.heroku.Formation(k.app, k.typ)
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
		out := float64(w.procs[procKey{App, "worker"}].serving) * jobsPerDyno * dt
		w.backlog = math.Max(0, w.backlog+in-out)
		t = t.Add(time.Duration(dt * float64(time.Second)))
	}
	w.last = now
}

// WebLatency is the web's p95 request latency in seconds, as a Prometheus histogram_quantile would report it.
func (w *World) WebLatency() metrics.Source {
	return source(func(now time.Time) float64 {
		return w.p95(w.rate(now), w.procs[procKey{App, "web"}].serving) * (1 + 0.05*w.rng.NormFloat64())
	}, w)
}

// p95 is the p95 latency in seconds of web dynos serving rate requests per second. Callers hold mu.
func (w *World) p95(rate float64, serving int) float64 {
	rho := rate / math.Max(float64(serving)*webPerDyno, 1e-9)
	if rho >= 0.97 { // overloaded: requests queue in the router until they time out at 30s
		return math.Min(30, webService*(1+30*(rho-0.97)+1/(1-0.97)))
	}
	// p95 of an M/M/1-like queue per dyno: service time stretched by 1/(1-rho), 3x for the tail
	return webService * (1 + 3*rho/(1-rho))
}

// RouterLog returns, as a Logplex drain delivers them (application/logplex-1: octet-counted RFC 5424 frames), the
// router's lines for DrainApp's requests of every whole second since the last call, at most a minute of them, and
// a runtime-metrics load line for each of its web dynos. Each request's service time is drawn so that the lines'
// p95 follows the same model as WebLatency.
func (w *World) RouterLog(now time.Time) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.advance(now)
	end := now.Truncate(time.Second)
	if end.Sub(w.logged) > time.Minute {
		w.logged = end.Add(-time.Minute)
	}
	serving := w.procs[procKey{DrainApp, "web"}].serving
	var b bytes.Buffer
	frame := func(line string) { fmt.Fprintf(&b, "%d %s", len(line), line) }
	for t := w.logged; t.Before(end); t = t.Add(time.Second) {
		rate := w.rate(t) * drainShare
		mean := w.p95(rate, serving) / math.Log(20) // an exponential whose p95 is the model's
		n := int(rate) + w.rng.IntN(2)
		for range n {
			w.request++
			service := -mean * math.Log(1-w.rng.Float64())
			at := t.Add(time.Duration(w.rng.Float64() * float64(time.Second)))
			frame(fmt.Sprintf(`<158>1 %s host heroku router - at=info method=GET path="/api/items" host=%s.herokuapp.com request_id=demo-%d fwd="203.0.113.9" dyno=web.%d connect=0ms service=%dms status=200 bytes=1543 protocol=https`,
				at.UTC().Format(time.RFC3339Nano), DrainApp, w.request, 1+w.request%max(serving, 1), max(1, int(service*1000))))
		}
	}
	for d := 1; d <= serving; d++ {
		load := w.rate(end) * drainShare / (float64(serving) * webPerDyno)
		frame(fmt.Sprintf("<45>1 %s host heroku web.%d - source=web.%d dyno=heroku.1.demo sample#load_avg_1m=%.2f sample#load_avg_5m=%.2f sample#load_avg_15m=%.2f",
			end.UTC().Format(time.RFC3339Nano), d, d, load, load, load))
	}
	w.logged = end
	return b.Bytes()
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
