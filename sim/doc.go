// Package sim is dynopilot's backtest simulator: it replays a traffic trace through a model of an app's dynos,
// drives the real policy engine (package policy) on a virtual clock, runs the anchors' documented policies beside
// it, and reports what would have happened: breaches of the latency objective, p95 and p99 latency, dyno-hours,
// cost and scale events, for dynopilot, the anchors, the smallest static count and the offline optimum. It is how
// dynopilot's defaults are chosen and how a team tries a policy before trusting it with production.
//
// # The model
//
// Time advances in whole seconds. A trace gives the mean arrival rate of each second (a coarser trace holds each
// row's rate for its step). The app has n serving dynos; each completes up to C requests per second (Model.Capacity)
// by serving k = C*S requests at once, each taking an exponentially distributed time of mean S (Model.ServiceTime,
// 1/C by default, so k = 1). All dynos share one queue in front of them: n*k servers behind one FIFO line, an M/M/c
// queue with c = n*k. (Heroku's router picks a dyno at random and each dyno queues for itself, which is worse at
// the same utilisation: choose C and S for the concurrency your dynos really have.)
//
// The state carried from second to second is x, the expected number of requests in the system (in service and
// waiting). It follows the stationary-fluid balance dx/dt = λ - c/S * ρ(x), where ρ(x) is the utilisation at which a
// stationary M/M/c queue holds x on average, so the servers deliver what such a queue would; each second solves it
// implicitly (x' = x + λ - c/S ρ(x')), using a per-c table of the M/M/c mean against utilisation. Consequences:
//
//   - At a steady load x settles exactly at the M/M/c mean: queueing theory holds in steady state.
//   - A burst raises x by its excess arrivals at once, and the seconds after it see that queue; a load that has just
//     risen close to capacity shows the queue built so far, not the one it would take minutes to build.
//   - Under a sustained overload ρ(x) tends to 1, so x builds at λ - n*C and drains at n*C - λ.
//
// What the requests arriving in a second experience follows from x over the second. Up to the mean queue at 97%
// utilisation they wait as in the stationary queue at utilisation ρ(x): with the Erlang C probability, for an
// exponential time of rate c/S*(1-ρ), independently of their own exponential service, so P(latency > t) has a closed
// form. Beyond it, the excess is a backlog they wait behind first: FIFO, they wait until everything ahead has been
// served, counting the capacity each coming second will have (dynos already booting, or a known schedule), then as
// in the queue at 97%. The backlog changes linearly through the second, so arrivals' delays spread evenly between
// its start and end values. With no dyno serving, arrivals wait beyond any bound (the latency grid's top). The wait
// behind a backlog is found in one step per change of the serving count on the way (a dyno booted, a schedule's
// next count), never one per second waited, so a backlog days long costs what a short one does: any trace at any
// load simulates as fast as a comfortable one (BenchmarkWeekSustainedOverload).
//
// # The router's timeout (H12)
//
// Heroku's router gives up on a request that has not started its answer 30 s (RouterTimeout) after it was handed
// to a dyno, the time queued in the dyno included: it answers the client 503 and logs an H12 error. The dyno does
// not know and serves the request in its turn, so timed-out requests still take their share of capacity: the
// queue above is unchanged by the timeout. What changes is what is reported:
//
//   - Requests whose latency would pass 30 s are H12 errors: Result.H12, the "H12 errors" column (count and share
//     of all requests), h12_errors in the JSON, and on the chart the minutes they happened in. Requests that
//     arrive with no dyno serving are among them.
//   - In the percentiles (the run's p95 and p99, each minute's p95, and a latency reading, which the router's logs
//     give the daemon as service=30000ms) an H12 counts at 30 s, the moment the client got its answer: a p95 is at
//     most 30 s, however long the backlog behind it. Counting them at 30 s, rather than leaving them out, keeps a
//     run whose requests fail from looking faster than one whose requests are slow.
//   - They are above any objective (which must be under 30 s), so they count towards breach minutes as before.
//   - Queue time (a queue-time reading) is what the app measures when it starts a request, and it starts the
//     timed-out ones too: it is not capped, as an app's request-queue metric is not.
//
// Latency is service plus waiting. Each second's distribution is put on a fixed grid of latencies, three edges per
// octave, with the objective exactly on an edge; minutes, readings and the whole run are sums of seconds, so the
// share of a minute's requests above the objective is exact (to within the 0.05% of a second's requests left off
// the ends of its stretch of the grid) and quantiles are interpolated between edges on the logarithm of the
// survival function, which is exact for exponential tails.
//
// A minute is a breach when more than 5% of its requests take longer than the objective: its p95 is above the
// objective. p95 and p99 in the report are over every request of the run.
//
// Dynos: scaling up starts dynos that serve Model.Boot (default 45 s) later; scaling down stops dynos at once,
// booting ones first (Heroku stops the highest-numbered dynos, the newest). Dyno-hours count booting dynos, as
// Heroku bills them; cost is dyno-hours at the dyno size's list price (package dynosize).
//
// What a controller reads (Reading): the p95 latency, the p95 queueing delay (request queue time; for a worker,
// its queue latency), the mean number waiting (a worker's queue size) or the mean arrival rate, over a window of
// seconds, reported late by a delay: a reading taken at t covers [t-delay-window, t-delay). A window without
// requests reads 0; before any second of the window has happened there is no reading (the engine holds).
//
// # Agreement with a request-by-request simulation
//
// CrossCheck runs the same schedules through a discrete-event simulation of every request (Poisson arrivals,
// exponential service, one FIFO queue, seeded) and compares minute by minute. The numbers are in the README; the
// tests hold the model to them.
//
// # Contenders
//
//   - dynopilot: the recommended policy for the model (Recommend) or one given as POLICY_ settings, run by Engine:
//     policy.Decide at t=0 and on every INTERVAL activation, with the readings, the formation quantity and the
//     time of the last scale this simulated daemon made; the runner applies Decision.Desired. No rule of the
//     engine is repeated here.
//   - hpa, judoscale, hirefire, heroku: see Anchors; each is a policy configuration run by the same engine
//     (HPA's rate limit is the one wrapper).
//   - static: the smallest fixed count with no breach minute (see Static).
//   - oracle: the offline optimum knowing the trace and the boot time, within the bounds the policy keeps to at
//     every second: MIN and MAX as its SCHEDULE windows replace them, and the size limit (see PolicyOracle).
//
// Contenders run in parallel, one goroutine each; the per-second loop allocates nothing. A run stops within
// milliseconds when its context is done (Run returns a *StoppedError), which is how SIGTERM and Ctrl-C stop
// `dynopilot simulate`.
package sim
