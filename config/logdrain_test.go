package config_test

import (
	"slices"
	"strings"
	"testing"
)

func TestLogDrainNeedsTheDrainToken(t *testing.T) {
	policy := []string{"POLICY_0_APP=shop", "POLICY_0_PROCESS=web", "POLICY_0_SOURCE=logdrain", "POLICY_0_TARGET=300ms", "POLICY_0_MAX=6",
		"POLICY_1_APP=shop", "POLICY_1_PROCESS=worker", "POLICY_1_SOURCE=logdrain", "POLICY_1_MEASURE=load", "POLICY_1_TARGET=2", "POLICY_1_MAX=4",
		"POLICY_2_APP=cart", "POLICY_2_PROCESS=web", "POLICY_2_SOURCE=hirefire", "POLICY_2_SOURCE_URL=https://cart.example/hirefire/t/info", "POLICY_2_TARGET=1", "POLICY_2_MAX=4"}
	_, problems := load(t, append([]string{"HEROKU_API_KEY=k"}, policy...)...)
	if len(problems) != 2 || !strings.Contains(problems[0], "POLICY_0_SOURCE=\"logdrain\": expected DYNOPILOT_DRAIN_TOKEN to be set") {
		t.Errorf("SOURCE=logdrain without DYNOPILOT_DRAIN_TOKEN: %q", problems)
	}
	cfg, problems := load(t, append([]string{"HEROKU_API_KEY=k", "DYNOPILOT_DRAIN_TOKEN=Drain5ecret"}, policy...)...)
	if len(problems) != 0 {
		t.Fatalf("problems: %q", problems)
	}
	if apps := cfg.DrainApps(); !slices.Equal(apps, []string{"shop"}) {
		t.Errorf("DrainApps() = %q, want [shop]", apps)
	}
	if s := cfg.Global.String(); strings.Contains(s, "Drain5ecret") {
		t.Errorf("the drain token shows in %q", s)
	}
}
