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

// policyIndices finds every policy number used by a POLICY_<n>_<SETTING> variable and checks each name: an unknown
// setting suggests the nearest one, and the numbers must run 0, 1, 2, … without a gap.
func policyIndices(vars map[string]string) ([]int, []error) {
	known := map[string]bool{}
	names := SettingNames()
	for _, n := range names {
		known[n] = true
	}
	var problems []error
	used := map[int]string{} // policy number -> its first variable, to name in a gap problem
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
		if head == "DEFAULT" {
			prefix = "POLICY_DEFAULT_"
		} else if n, err := strconv.Atoi(head); err == nil && n >= 0 && strconv.Itoa(n) == head {
			prefix = "POLICY_" + head + "_"
			if _, seen := used[n]; known[name] && !seen {
				used[n] = k
			}
		} else {
			problems = append(problems, &setting.Error{Name: k, Value: vars[k],
				Expected: "a name of the form POLICY_<n>_<SETTING> (n = 0, 1, 2, … without leading zeros) or POLICY_DEFAULT_<SETTING>"})
			continue
		}
		if !known[name] {
			problems = append(problems, &setting.Error{Name: k, Value: vars[k],
				Expected: fmt.Sprintf("a known setting: did you mean %s%s?", prefix, nearest(name, names))})
		}
	}
	var indices []int
	for n := range used {
		indices = append(indices, n)
	}
	sort.Ints(indices)
	for i, n := range indices {
		if n != i {
			first := used[n]
			problems = append(problems, &setting.Error{Name: first, Value: vars[first],
				Expected: fmt.Sprintf("policies numbered 0, 1, 2, … without gaps, but there is no POLICY_%d_… before POLICY_%d_…", i, n)})
			break
		}
	}
	return indices, problems
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
