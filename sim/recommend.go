package sim

import (
	"fmt"
	"time"
)

// Recommended is dynopilot's one recommended web policy for the app a model describes, as the environment lines a
// user copies and the contender the simulator runs.
type Recommended struct {
	Env       []string  // POLICY_0_ lines, KEY=VALUE
	Reading   Reading   // what the first metric reads
	Contender Contender // the policy, run by the engine
}

// Recommend returns the recommended policy for model m with the given MAX. (Placeholder: the step policy on queue
// time; replaced by the multi-metric policy.)
func Recommend(m Model, maxDynos int) (*Recommended, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	p := m.params()
	up := time.Duration(0.5 / p.mu * 1e9)
	env := []string{
		"POLICY_0_MIN=1",
		fmt.Sprintf("POLICY_0_MAX=%d", maxDynos),
		"POLICY_0_MODE=step",
		"POLICY_0_UP_ABOVE=" + up.String(),
		"POLICY_0_DOWN_BELOW=" + (up / 10).String(),
	}
	pc, err := LoadPolicy(env, 0)
	if err != nil {
		return nil, err
	}
	r := Reading{Kind: ReadingQueueTime, Window: 10 * time.Second, Delay: 15 * time.Second}
	return &Recommended{Env: env, Reading: r, Contender: Engine("dynopilot", "dynopilot", pc, r)}, nil
}
