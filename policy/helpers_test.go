package policy_test

import (
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/dynopilot/dynopilot/policy"
)

// t0 is a Monday noon in UTC, the time most decisions are taken at.
var t0 = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

// load reads Settings the way the configuration loader does: caarlos0/env with the POLICY_0_ prefix, so that the
// tags' defaults are the ones tested. kv are setting/value pairs without the prefix.
func load(t testing.TB, kv ...string) policy.Settings {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("load: odd number of arguments %q", kv)
	}
	environ := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		environ["POLICY_0_"+kv[i]] = kv[i+1]
	}
	var s policy.Settings
	if err := env.ParseWithOptions(&s, env.Options{Environment: environ, Prefix: "POLICY_0_"}); err != nil {
		t.Fatalf("env: %v", err)
	}
	return s
}

// base is a policy that reacts at once (no cooldowns, no stabilization) so each test turns on only what it tests.
var base = []string{
	"APP", "shop", "PROCESS", "web", "MAX", "10", "TARGET", "1",
	"UP_COOLDOWN", "0", "DOWN_COOLDOWN", "0", "DOWN_STABILIZATION", "0",
}

// mustPolicy parses base overridden by kv and fails the test on any problem.
func mustPolicy(t testing.TB, kv ...string) *policy.Policy {
	t.Helper()
	p, err := load(t, append(append([]string(nil), base...), kv...)...).Parse()
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}
