package scaler

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// instruments are the decision metrics of the spec ("Published metrics"); the Heroku client and the sources
// register their own.
type instruments struct {
	info    *prometheus.GaugeVec
	reading *prometheus.GaugeVec
	target  *prometheus.GaugeVec
	// Beyond the spec's list, for policies on several metrics and policies that predict.
	metricReading *prometheus.GaugeVec
	predicted     *prometheus.GaugeVec
	quantity      *prometheus.GaugeVec
	desired       *prometheus.GaugeVec
	min, max      *prometheus.GaugeVec
	decisions     *prometheus.CounterVec
	events        *prometheus.CounterVec
	lastScale     *prometheus.GaugeVec
	evaluation    prometheus.Histogram
	refresh       prometheus.Gauge
	cost          *prometheus.GaugeVec
	dryRun        prometheus.Gauge
	buildInfo     *prometheus.GaugeVec

	// Beyond the spec's list: what the dashboard's cooldown and cost panels and the "not evaluating" alert need.
	lastEval     *prometheus.GaugeVec
	interval     *prometheus.GaugeVec
	cooldownLeft *prometheus.GaugeVec
	price        *prometheus.GaugeVec
}

// newInstruments creates and registers the decision metrics; leading tells dynopilot_leader whether this instance
// leads now.
func newInstruments(reg prometheus.Registerer, version string, leading func() bool) (*instruments, error) {
	pol := []string{"policy"}
	g := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	in := &instruments{
		info:    g("dynopilot_policy_info", "Configured policies: always 1, labelled with what the policy scales and how.", []string{"policy", "app", "process", "source", "mode"}),
		reading: g("dynopilot_reading", "Last value read for the policy (latencies in seconds); for a policy on several metrics, its own metric's (metric 1).", pol),
		target:  g("dynopilot_target", "The value the policy holds the reading to (target mode), or its up threshold (step mode), or the amount per dyno (ratio mode); for a policy on several metrics, its own metric's (metric 1).", pol),
		metricReading: g("dynopilot_metric_reading", "Last value read for each metric of a policy on several metrics (metric 1 is the policy's own, 2 METRIC_2_, …; latencies in seconds). Not published for a policy on one metric: dynopilot_reading is its reading.",
			[]string{"policy", "metric"}),
		predicted: g("dynopilot_predicted_quantity", "For a policy that predicts (PREDICT): the dynos its learned load profile needs ahead of now, a floor under its decisions (0 when it predicts none).", pol),
		quantity:  g("dynopilot_quantity", "Dynos in the formation now.", pol),
		desired:   g("dynopilot_desired_quantity", "Dynos the last decision wanted.", pol),
		min:       g("dynopilot_min_quantity", "Effective minimum now (schedules applied).", pol),
		max:       g("dynopilot_max_quantity", "Effective maximum now (schedules and the dyno size's limit applied).", pol),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynopilot_decisions_total", Help: "Decisions taken, by action and reason."}, []string{"policy", "action", "reason"}),
		events:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynopilot_scale_events_total", Help: "Formation changes attempted, by direction and result."}, []string{"policy", "direction", "result"}),
		lastScale: g("dynopilot_last_scale_timestamp_seconds", "Unix time of the last scale event (by dynopilot or a person), what cooldowns count from.", pol),
		evaluation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dynopilot_evaluation_duration_seconds", Help: "Duration of one evaluation tick: readings, decisions and the PATCH.",
			Buckets: []float64{0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		refresh:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "dynopilot_formation_refresh_interval_seconds", Help: "How often each app's formation is re-read, after fitting all apps into the API budget."}),
		cost:         g("dynopilot_estimated_cost_dollars_per_hour", "Current quantity times the dyno size's list price per hour.", pol),
		dryRun:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "dynopilot_dry_run", Help: "1 when DYNOPILOT_DRY_RUN is on: decisions are published but never applied."}),
		buildInfo:    g("dynopilot_build_info", "Always 1, labelled with the build.", []string{"version", "goversion"}),
		lastEval:     g("dynopilot_last_evaluation_timestamp_seconds", "Unix time the policy was last evaluated.", pol),
		interval:     g("dynopilot_evaluation_interval_seconds", "How often the policy is evaluated (for cron specs, the current gap between runs).", pol),
		cooldownLeft: g("dynopilot_cooldown_remaining_seconds", "Seconds until the cooldown in the direction the policy wants to move ends (0 when none holds it).", pol),
		price:        g("dynopilot_dyno_price_dollars_per_hour", "List price of one dyno of the formation's size, per hour.", pol),
	}
	in.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	for _, c := range []prometheus.Collector{in.info, in.reading, in.target, in.metricReading, in.predicted, in.quantity, in.desired, in.min, in.max,
		in.decisions, in.events, in.lastScale, in.evaluation, in.refresh, in.cost, in.dryRun, in.buildInfo,
		in.lastEval, in.interval, in.cooldownLeft, in.price,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dynopilot_leader", Help: "1 on the instance that leads (the only one that changes formations), 0 on a standby."},
			func() float64 {
				if leading() {
					return 1
				}
				return 0
			})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return in, nil
}
