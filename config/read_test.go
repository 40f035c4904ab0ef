package config

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

// TestPolicyFields: every policy setting is one readPolicy can read as caarlos0/env does. A field of another kind
// (an int, a tag option such as ,required) must be read by the settings' Parse as a string, or readPolicy taught it.
func TestPolicyFields(t *testing.T) {
	fields, err := policyFields()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fields {
		names = append(names, f.name)
	}
	slices.Sort(names)
	if want := SettingNames(); !slices.Equal(names, want) {
		t.Errorf("policyFields names %q, SettingNames %q", names, want)
	}
}

// withDefaultsAsBefore is how Load read a policy before readPolicy: the whole environment, POLICY_DEFAULT_X filling
// prefix+X wherever unset, parsed by caarlos0/env under prefix.
func withDefaultsAsBefore(vars map[string]string, prefix string) map[string]string {
	local := maps.Clone(vars)
	for _, name := range SettingNames() {
		if v, ok := vars["POLICY_DEFAULT_"+name]; ok {
			if _, set := vars[prefix+name]; !set {
				local[prefix+name] = v
			}
		}
	}
	return local
}

// TestReadPolicyAsCaarlos0Env: readPolicy fills the block exactly as caarlos0/env did from the policy's variables
// with POLICY_DEFAULT_ applied, and returns the same value for every one of the policy's settings, over random
// environments: each setting unset, empty, blank or set, for the policy, another policy and POLICY_DEFAULT_.
func TestReadPolicyAsCaarlos0Env(t *testing.T) {
	fields, err := policyFields()
	if err != nil {
		t.Fatal(err)
	}
	names := SettingNames()
	values := []string{"", " ", "3", "10s", "x y"}
	rng := rand.New(rand.NewPCG(17, 1))
	for i := range 2000 {
		vars := map[string]string{"PATH": "/bin", "POLICY_X_MIN": "2"}
		for _, name := range names {
			for _, prefix := range []string{"POLICY_0_", "POLICY_1_", "POLICY_DEFAULT_"} {
				if rng.IntN(3) == 0 {
					vars[prefix+name] = values[rng.IntN(len(values))]
				}
			}
		}
		prefix := []string{"POLICY_0_", "POLICY_1_"}[i%2]

		before := withDefaultsAsBefore(vars, prefix)
		var want policyBlock
		if err := env.ParseWithOptions(&want, env.Options{Environment: before, Prefix: prefix}); err != nil {
			t.Fatal(err)
		}
		local, got := readPolicy(vars, prefix, fields)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("environment %v, %s: readPolicy read\n%+v\ncaarlos0/env\n%+v", vars, prefix, got, want)
		}
		for _, name := range names { // what Load reads from local: APP, PROCESS, TIMEOUT and the values it reports
			w, wset := before[prefix+name]
			g, gset := local[prefix+name]
			if g != w || gset != wset {
				t.Fatalf("environment %v: %s%s is %q (set %v), was %q (set %v)", vars, prefix, name, g, gset, w, wset)
			}
		}
		for k := range local {
			if !strings.HasPrefix(k, prefix) {
				t.Fatalf("readPolicy returned %s for %s", k, prefix)
			}
		}
	}
}

// TestLoadIsLinear: loading four times the policies, each with a second metric, allocates about four times the bytes
// (sixteen times when every policy copied the whole environment and had caarlos0/env convert the process
// environment again). Bytes, not
// time, so that a busy machine cannot fail it. The process environment holds the variables, as in the daemon.
func TestLoadIsLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 2,000 policies")
	}
	environ := func(n int) []string {
		environ := []string{"HEROKU_API_KEY=k", "POLICY_DEFAULT_MAX=4"}
		for i := range n {
			p := fmt.Sprintf("POLICY_%d_", i)
			environ = append(environ, p+"APP=app-"+fmt.Sprint(i), p+"PROCESS=web", p+"SOURCE=hirefire",
				p+"SOURCE_URL=https://x.example/hirefire/t/info", p+"TARGET=1", p+"METRIC_2_NAME=queue", p+"METRIC_2_TARGET=2")
		}
		return environ
	}
	allocated := func(n int) (bytes uint64) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			vars := environ(n)
			for _, kv := range vars {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := Load(vars); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			bytes = after.TotalAlloc - before.TotalAlloc
		})
		return bytes
	}
	s, l := allocated(400), allocated(1600)
	t.Logf("400 policies: %d bytes, 1600: %d bytes", s, l)
	if ratio := float64(l) / float64(s); ratio > 6 {
		t.Errorf("4 times the policies allocated %.1f times the bytes (%d, %d): not linear", ratio, s, l)
	}
}

// TestPolicyPrefixAlone: a variable named just POLICY_0_ is one problem naming it. (caarlos0/env also reported it
// as two problems that named no variable: "no parser found for field "Decision" of type "policy.Settings"".)
func TestPolicyPrefixAlone(t *testing.T) {
	_, err := Load([]string{"POLICY_0_=x", "POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=hirefire",
		"POLICY_0_SOURCE_URL=http://shop.example/hirefire/t/info", "POLICY_0_MAX=4", "POLICY_0_TARGET=1"})
	if err == nil || err.Error() != `POLICY_0_="x": expected a known setting: did you mean POLICY_0_APP?` {
		t.Errorf("got %v", err)
	}
}
