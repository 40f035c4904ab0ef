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
// Each second is in one of three regimes:
//
//   - Below capacity (arrivals λ < n*C) with no backlog: stationary M/M/c. A request waits with the Erlang C
//     probability Pw; the wait, when there is one, is exponential with rate c/S - λ, independent of the request's
//     own service time, so P(latency > x) has a closed form (see statLatSurv). The mean queue does not jump to its
//     steady value: it relaxes towards it with the M/M/c relaxation time S/(sqrt(c)-sqrt(λS))², so a load that has
//     just risen close to capacity does not show the queue it would take minutes to build, and the waiting tail is
//     scaled to the queue actually there (Little's law).
//   - At or above capacity, or with a backlog: requests that cannot be served wait in a backlog B (with the queue
//     already there). B changes by λ - n*C per second: it builds at the excess and drains at n*C - λ, exactly. A
//     request arriving behind B waits B/(n*C) before its own service; B changes linearly through the second, so the
//     second's arrivals wait amounts spread evenly between its start and end values.
//   - No dyno serving: every arrival waits beyond any bound (the latency grid's top); the backlog keeps growing.
//
// Latency is service plus waiting. Each second's distribution is put on a fixed grid of latencies, four edges per
// octave, with the objective exactly on an edge; minutes, readings and the whole run are sums of seconds, so the
// share of a minute's requests above the objective is exact and quantiles are interpolated between edges on the
// logarithm of the survival function (exact for exponential tails).
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
//   - dynopilot: the policy from the environment, run by Engine: policy.Decide at t=0 and on every INTERVAL
//     activation, with the reading, the formation quantity and the time of the last scale this simulated daemon
//     made; the runner applies Decision.Desired. No rule of the engine is repeated here.
//   - hpa, judoscale, hirefire, heroku: see Anchors; each is a policy configuration run by the same engine
//     (HPA's rate limit is the one wrapper).
//   - static: the smallest fixed count with no breach minute (see Static).
//   - oracle: the offline optimum knowing the trace and the boot time (see Oracle).
//
// Contenders run in parallel, one goroutine each; the per-second loop allocates nothing.
package sim
