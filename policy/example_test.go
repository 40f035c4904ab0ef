package policy_test

import (
	"fmt"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

func ExampleDecide() {
	p, err := policy.Settings{
		App: "shop", Process: "web", Enabled: "true",
		Min: "2", Max: "20", UpCooldown: "1m", DownCooldown: "5m", UpStabilization: "0", DownStabilization: "2m",
		MaxStepUp: "3", MaxStepDown: "0", FallbackAfter: "3", RuleSettings: policy.RuleSettings{Mode: "target", Target: "300ms", Tolerance: "0.1", UpBy: "1", DownBy: "1", Activation: "0"}}.Parse()
	if err != nil {
		fmt.Println(err)
		return
	}
	var st policy.State // one per policy, kept by the caller between evaluations
	now := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

	d := policy.Decide(p, &st, policy.Input{
		Now: now, Current: 3, Size: "Standard-1X", LastScale: now.Add(-10 * time.Minute),
		Value: 0.62, ReadingOK: true, // p95 request queue time in seconds
	})
	fmt.Println(d.Action, d.Desired, d.Reason)
	fmt.Println(d.Explain())

	// 15 seconds later, after the PATCH: the formation shows 6 dynos, scaled just now.
	now = now.Add(15 * time.Second)
	d = policy.Decide(p, &st, policy.Input{Now: now, Current: 6, Size: "Standard-1X", LastScale: now, Value: 0.5, ReadingOK: true})
	fmt.Println(d.Action, d.Desired, d.Reason)
	fmt.Println(d.Explain())
	// Output:
	// up 6 max_step
	// value 0.62s is 2.07x the 0.3s target: 3 -> 7, capped by MAX_STEP_UP=3 to 6
	// hold 6 up_cooldown
	// value 0.5s is 1.67x the 0.3s target: 6 -> 10, but UP_COOLDOWN=1m0s since the last scale event has 1m0s left: holding at 6
}
