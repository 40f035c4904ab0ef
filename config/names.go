package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// layout is what the names of the POLICY_ variables say: which policies there are, and how many further metrics
// (METRIC_2_, METRIC_3_, …) each has.
type layout struct {
	indices []int       // the policies' numbers, sorted
	metrics map[int]int // policy number -> how many further metrics it has (METRIC_2_ … METRIC_<k+1>_), for those with any
}

// policyIndices finds every policy number used by a POLICY_<n>_<SETTING> variable, and every further metric used
// by a POLICY_<n>_METRIC_<m>_<SETTING> one, and checks each name: an unknown setting suggests the nearest one, the
// policy numbers must run 0, 1, 2, … and each policy's metric numbers 2, 3, … up to MaxMetrics, without a gap.
// It looks at each variable once, so that its cost is linear in the size of the environment.
func policyIndices(vars map[string]string) (layout, []error) {
	known, names := map[string]bool{}, SettingNames()
	for _, n := range names {
		known[n] = true
	}
	metricKnown, metricNames := map[string]bool{}, MetricSettingNames()
	for _, n := range metricNames {
		metricKnown[n] = true
	}
	var problems []error
	used := map[int]string{}                // policy number -> its first variable, to name in a gap problem
	metricsUsed := map[int]map[int]string{} // policy number -> metric number -> its first variable
	sharedMetrics := map[int]string{}       // metric number -> the first POLICY_DEFAULT_METRIC_<m>_ variable
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, "POLICY_") {
			continue
		}
		rest := strings.TrimPrefix(k, "POLICY_")
		head, name, _ := strings.Cut(rest, "_")
		var prefix string
		n, numbered := 0, false
		if head == "DEFAULT" {
			prefix = "POLICY_DEFAULT_"
		} else if i, err := strconv.Atoi(head); err == nil && i >= 0 && strconv.Itoa(i) == head {
			prefix, n, numbered = "POLICY_"+head+"_", i, true
		} else {
			problems = append(problems, &setting.Error{Name: k, Value: vars[k],
				Expected: "a name of the form POLICY_<n>_<SETTING> (n = 0, 1, 2, … without leading zeros) or POLICY_DEFAULT_<SETTING>"})
			continue
		}
		if after, ok := strings.CutPrefix(name, "METRIC_"); ok {
			m, err := metricNumber(k, vars[k], prefix, after, metricKnown, metricNames, known)
			switch {
			case err != nil:
				problems = append(problems, err)
			case strings.TrimSpace(vars[k]) == "":
				// An empty variable makes no metric: a form (Heroku's deploy button) may set every setting it shows.
			case numbered:
				if _, seen := used[n]; !seen {
					used[n] = k
				}
				if metricsUsed[n] == nil {
					metricsUsed[n] = map[int]string{}
				}
				if _, seen := metricsUsed[n][m]; !seen {
					metricsUsed[n][m] = k
				}
			default:
				if _, seen := sharedMetrics[m]; !seen {
					sharedMetrics[m] = k
				}
			}
			continue
		}
		if numbered && known[name] {
			if _, seen := used[n]; !seen {
				used[n] = k
			}
		}
		if !known[name] {
			problems = append(problems, &setting.Error{Name: k, Value: vars[k],
				Expected: fmt.Sprintf("a known setting: did you mean %s%s?", prefix, nearest(name, names))})
		}
	}
	var lay layout
	for n := range used {
		lay.indices = append(lay.indices, n)
	}
	sort.Ints(lay.indices)
	for i, n := range lay.indices {
		if n != i {
			first := used[n]
			problems = append(problems, &setting.Error{Name: first, Value: vars[first],
				Expected: fmt.Sprintf("policies numbered 0, 1, 2, … without gaps, but there is no POLICY_%d_… before POLICY_%d_…", i, n)})
			break
		}
	}
	most := 0 // the most further metrics any policy has
	for n, ms := range metricsUsed {
		numbers := make([]int, 0, len(ms))
		for m := range ms {
			numbers = append(numbers, m)
		}
		sort.Ints(numbers)
		count := 0
		for i, m := range numbers {
			if m != i+2 {
				// The metrics after the gap are not read: their numbers would not be the ones their problems name.
				first := ms[m]
				problems = append(problems, &setting.Error{Name: first, Value: vars[first],
					Expected: fmt.Sprintf("further metrics numbered METRIC_2_, METRIC_3_, … without gaps, but there is no POLICY_%d_METRIC_%d_… before POLICY_%d_METRIC_%d_… (metrics from METRIC_%d_ on are not read until the gap is closed)",
						n, i+2, n, m, m)})
				break
			}
			count++
		}
		if count > 0 {
			if lay.metrics == nil {
				lay.metrics = map[int]int{}
			}
			lay.metrics[n] = count
			most = max(most, count)
		}
	}
	shared := make([]int, 0, len(sharedMetrics))
	for m := range sharedMetrics {
		shared = append(shared, m)
	}
	sort.Ints(shared)
	for _, m := range shared {
		if m-1 > most {
			first := sharedMetrics[m]
			problems = append(problems, &setting.Error{Name: first, Value: vars[first],
				Expected: fmt.Sprintf("a policy with a METRIC_%d_ of its own: POLICY_DEFAULT_METRIC_%d_ settings fill in the METRIC_%d_ of the policies that have one (set at least POLICY_<n>_METRIC_%d_MODE), and make none", m, m, m, m)})
		}
	}
	return lay, problems
}

// metricNumber checks what follows METRIC_ in the name k (prefix is its POLICY_<n>_ or POLICY_DEFAULT_), e.g.
// "2_TARGET", and returns the metric's number, from 2 to MaxMetrics.
func metricNumber(k, v, prefix, after string, metricKnown map[string]bool, metricNames []string, policyKnown map[string]bool) (int, error) {
	head, name, ok := strings.Cut(after, "_")
	m, err := strconv.Atoi(head)
	problem := func(expected string, args ...any) (int, error) {
		return 0, &setting.Error{Name: k, Value: v, Expected: fmt.Sprintf(expected, args...)}
	}
	switch {
	case !ok || err != nil || strconv.Itoa(m) != head:
		return problem("a name of the form %sMETRIC_<m>_<SETTING>, m = 2 to %d without leading zeros (the policy's further metrics)", prefix, MaxMetrics)
	case m == 1:
		return problem("a further metric, numbered 2 to %d: metric 1 is the policy's own, set with %s%s", MaxMetrics, prefix, name)
	case m < 2:
		return problem("a further metric, numbered 2 to %d", MaxMetrics)
	case m > MaxMetrics:
		return problem("at most %d metrics per policy: its own and METRIC_2_ to METRIC_%d_", MaxMetrics, MaxMetrics)
	case !metricKnown[name] && policyKnown[name]:
		return problem("a setting of a further metric (its source's or its rule's: %s): %s is the policy's, %s%s",
			strings.Join(metricNames, ", "), name, prefix, name)
	case !metricKnown[name]:
		return problem("a known setting: did you mean %sMETRIC_%d_%s?", prefix, m, nearest(name, metricNames))
	}
	return m, nil
}

// nearest returns the candidate closest to s by edit distance.
func nearest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := distance(s, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// named turns caarlos0/env's errors, which name Go fields, into *setting.Error naming the variable. The library's own
// message is dropped: it quotes the value as written (strconv's "parsing \"…\""), and only setting.Error knows how
// to show a value without its secrets.
func named(err error, t reflect.Type, prefix string, vars map[string]string) []error {
	byField := map[string]string{}
	collectTags(t, func(tag string, f reflect.StructField) { byField[f.Name] = tag })
	var out []error
	for _, e := range setting.Flatten(err) {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := prefix + byField[pe.Name]
			out = append(out, &setting.Error{Name: name, Value: vars[name], Expected: expectation(pe.Type)})
			continue
		}
		out = append(out, e)
	}
	return out
}

func expectation(t reflect.Type) string {
	switch t.String() {
	case "bool":
		return "true or false"
	case "int":
		return "a whole number"
	case "time.Duration":
		return "a duration such as 90s or 5m"
	}
	return "a value of type " + t.String()
}

// collectTags calls fn for every env-tagged field of t, walking nested structs.
func collectTags(t reflect.Type, fn func(tag string, f reflect.StructField)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("env"), ","); tag != "" {
			fn(tag, f)
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Time" {
			collectTags(f.Type, fn)
		}
	}
}

func toMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
