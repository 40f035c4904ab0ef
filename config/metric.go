package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
	"github.com/dynopilot/dynopilot/metrics"
	"github.com/dynopilot/dynopilot/policy"
)

// MaxMetrics is how many metrics one policy may scale on: its own and METRIC_2_ … METRIC_8_. Each costs a reading
// per evaluation; eight is more than any combination worth scaling on (a load, a latency, a queue time, a backlog)
// and keeps a typo such as METRIC_20_ from silently making a policy of twenty metrics.
const MaxMetrics = 8

// metricBlock is everything read under one POLICY_<n>_METRIC_<m>_ prefix: a further metric's source and its rule.
type metricBlock struct {
	Source metrics.Settings
	Rule   policy.RuleSettings
}

// MetricSettingNames returns every setting a further metric (POLICY_<n>_METRIC_<m>_) may have, sorted: its
// source's and its rule's.
func MetricSettingNames() []string {
	var names []string
	collectTags(reflect.TypeOf(metricBlock{}), func(tag string, _ reflect.StructField) { names = append(names, tag) })
	sort.Strings(names)
	return names
}

// metricRead is one further metric as read from the environment.
type metricRead struct {
	number int               // 2, 3, …
	prefix string            // e.g. "POLICY_0_METRIC_2_"
	shared string            // e.g. "POLICY_DEFAULT_METRIC_2_"
	local  map[string]string // its variables as set, by itself or by POLICY_DEFAULT_METRIC_<m>_, under prefix
	block  metricBlock
	// inherited are the source settings whose value is the policy's: a further metric that reads the policy's
	// SOURCE (it sets none, or the same) takes every source setting it leaves unset from the policy.
	inherited map[string]bool
}

// readMetrics reads the policy's further metrics METRIC_2_ … METRIC_<count+1>_ from vars, each setting from its own
// variable, else POLICY_DEFAULT_METRIC_<m>_'s. A rule setting left unset takes its default (MODE target, …), never
// the policy's: a metric's thresholds are its own. A source setting left unset takes the policy's value when the
// metric reads the policy's SOURCE (so METRIC_2_MEASURE=queue-time reads the policy's log drain another way), and its
// default when it reads another.
func readMetrics(vars map[string]string, prefix string, count int, fields []blockField, own metrics.Settings) []metricRead {
	if count == 0 {
		return nil
	}
	ownValue := reflect.ValueOf(own)
	out := make([]metricRead, 0, count)
	for i := range count {
		m := metricRead{number: i + 2, prefix: fmt.Sprintf("%sMETRIC_%d_", prefix, i+2), shared: fmt.Sprintf("POLICY_DEFAULT_METRIC_%d_", i+2)}
		source, set := vars[m.prefix+"SOURCE"]
		if !set {
			source = vars[m.shared+"SOURCE"]
		}
		same := strings.TrimSpace(source) == "" || strings.EqualFold(strings.TrimSpace(source), strings.TrimSpace(own.Source))
		m.local = readBlock(vars, m.prefix, m.shared, fields, reflect.ValueOf(&m.block).Elem(), func(f blockField) string {
			if same && f.index[0] == 0 { // a source setting (metricBlock.Source)
				if v := ownValue.FieldByIndex(f.index[1:]).String(); v != "" {
					if m.inherited == nil {
						m.inherited = map[string]bool{}
					}
					m.inherited[f.name] = true
					return v
				}
			}
			return f.def
		})
		// QUANTILE belongs to the quantile measures: one the policy set for its latency is no setting of a rate.
		switch strings.ToLower(strings.TrimSpace(m.block.Source.Measure)) {
		case "", metrics.MeasureLatency, metrics.MeasureQueueTime:
		default:
			if m.inherited["QUANTILE"] {
				m.block.Source.Quantile = ""
				delete(m.inherited, "QUANTILE")
			}
		}
		out = append(out, m)
	}
	return out
}

// metricRules returns the further metrics' rule settings, for policy.Settings.ParseMetrics.
func metricRules(ms []metricRead) []policy.RuleSettings {
	if len(ms) == 0 {
		return nil
	}
	rules := make([]policy.RuleSettings, len(ms))
	for i, m := range ms {
		rules[i] = m.block.Rule
	}
	return rules
}

// source validates the metric's source settings for the policy's app and process type. A problem with a value the
// metric took from the policy is named with the metric's variable and says where the value came from, unless the
// policy's own problems (policyProblems, by setting) report that value already.
func (m metricRead) source(app, process, policyPrefix string, d metrics.Defaults, policyProblems map[string]bool) (metrics.Spec, []error) {
	if policyProblems["SOURCE"] && strings.TrimSpace(m.local[m.prefix+"SOURCE"]) == "" {
		return metrics.Spec{}, nil // it reads the policy's SOURCE, whose problem is reported
	}
	spec, err := m.block.Source.Parse(app, process, d)
	var errs []error
	for _, e := range setting.Flatten(err) {
		se, ok := e.(*setting.Error)
		if !ok {
			errs = append(errs, e)
			continue
		}
		c := *se
		if m.inherited[c.Name] {
			if policyProblems[c.Name] {
				continue
			}
			c.Expected += fmt.Sprintf(" (the value is the policy's %s%s: a further metric on the policy's SOURCE takes every source setting it does not set from the policy)", policyPrefix, c.Name)
		}
		c.Name = m.prefix + c.Name
		errs = append(errs, &c)
	}
	return spec, errs
}

// problemNames returns the names of the *setting.Error problems in errs, without prefix: the settings they concern.
func problemNames(errs []error, prefix string) map[string]bool {
	names := map[string]bool{}
	for _, e := range errs {
		if se, ok := e.(*setting.Error); ok {
			names[strings.TrimPrefix(se.Name, prefix)] = true
		}
	}
	return names
}

// loadMetrics validates the sources of the policy's further metrics, each TIMEOUT held to the interval as the
// policy's is (fitTimeout); a TIMEOUT the metric takes from the policy is shortened without a problem of its own,
// since the policy's reports it.
func loadMetrics(ms []metricRead, app, process, prefix, interval string, gap time.Duration, d metrics.Defaults, vars map[string]string, policyProblems map[string]bool) ([]metrics.Spec, []error) {
	var specs []metrics.Spec
	var errs []error
	for _, m := range ms {
		spec, problems := m.source(app, process, prefix, d, policyProblems)
		errs = append(errs, problems...)
		if len(problems) == 0 && interval != "" {
			errs = append(errs, fitTimeout(&spec, prefix, m.prefix, m.shared, interval, gap, vars, m.local)...)
		}
		specs = append(specs, spec)
	}
	return specs, errs
}
