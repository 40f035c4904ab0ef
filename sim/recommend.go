package sim

import (
	"fmt"
	"strconv"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

// Recommended is dynopilot's one recommended web policy for the app a model describes: the environment lines a user
// copies, the policy they make and what its metrics read (Contender runs it).
type Recommended struct {
	Env     []string      // POLICY_0_ lines, KEY=VALUE, in the order a person reads them
	Policy  *PolicyConfig // the policy those lines make, read as the daemon reads them
	Reading Reading       // what the first metric reads: the request rate
	Also    []Reading     // what the further metrics read: request queue time
}

// recommendedWindow is what the recommended policy's readings cover: the evaluation interval, so that no request
// goes unseen and none is seen twice.
const recommendedWindow = 10 * time.Second

// Recommend returns the recommended web policy for the app m describes, bounded by MIN 1 and maxDynos. Every value
// follows from what a user knows about the app (its latency objective, what one dyno handles, how long a dyno
// takes to boot), none from a trace:
//
//   - Metric 1, the request rate in ratio mode: PER_DYNO is what one dyno completes flat out, and SAFETY=1 adds the
//     square root of the load in spare dynos (square-root staffing: the spare capacity that keeps the chance of
//     queueing about the same at 2 dynos and at 60). It sets the level, and because it recommends an absolute count
//     it follows a rising load at once (UP_COOLDOWN=0, as HPA has none).
//   - Metric 2, the p95 request queue time in step mode: it sees what the rate cannot, traffic that arrives in
//     clumps within a second and a PER_DYNO that is too high. With L the objective, F = ln(20) × the service time
//     (the p95 of the service alone) and H = L − F the latency queueing may use, it adds a dyno each evaluation
//     while queueing uses more than H/2, holds while it uses H/10 to H/2, and lets a dyno go below H/10. These are
//     the thresholds the queue-time anchors get too: they come from the objective alone.
//   - The largest recommendation wins, and a metric that cannot be read blocks a scale-down (multi-metric rule).
//   - DOWN_STABILIZATION=5m (the engine's default): a scale-down goes only as low as the highest recommendation of
//     the last 5 minutes, which keeps the dynos through the dips of a noisy load.
//   - PREDICT=true with PREDICT_AHEAD = boot + 30 s: the rate's daily and weekly profile raises the floor before a
//     recurring ramp, early enough for a dyno started then to boot and for the reading (15 s late over 10 s) and one
//     evaluation (10 s) to pass.
//
// delay is how late the readings are reported (the goal bench and `dynopilot simulate` use 15 s).
func Recommend(m Model, maxDynos int, delay time.Duration) (*Recommended, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if maxDynos < 1 || maxDynos > policy.MaxQuantity {
		return nil, fmt.Errorf("max %d: expected a whole number from 1 to %d", maxDynos, policy.MaxQuantity)
	}
	head := m.params().headroom()
	env := []string{
		"POLICY_0_MIN=1",
		fmt.Sprintf("POLICY_0_MAX=%d", maxDynos),
		"POLICY_0_MEASURE=rate",
		"POLICY_0_WINDOW=" + recommendedWindow.String(),
		"POLICY_0_MODE=ratio",
		"POLICY_0_PER_DYNO=" + strconv.FormatFloat(m.Capacity, 'g', -1, 64),
		"POLICY_0_SAFETY=1",
		"POLICY_0_METRIC_2_MEASURE=queue-time",
		"POLICY_0_METRIC_2_MODE=step",
		"POLICY_0_METRIC_2_UP_ABOVE=" + latencySetting(head/2, time.Millisecond),
		"POLICY_0_METRIC_2_DOWN_BELOW=" + latencySetting(head/10, time.Millisecond),
		"POLICY_0_INTERVAL=10s",
		"POLICY_0_UP_COOLDOWN=0",
		"POLICY_0_DOWN_STABILIZATION=5m",
		"POLICY_0_PREDICT=true",
		"POLICY_0_PREDICT_AHEAD=" + (m.Boot + 30*time.Second).Round(time.Second).String(),
	}
	pc, err := LoadPolicy(env, 0)
	if err != nil {
		return nil, fmt.Errorf("the recommended policy for this model: %w", err)
	}
	r := Reading{Kind: ReadingRate, Window: recommendedWindow, Delay: delay}
	also := []Reading{{Kind: ReadingQueueTime, Window: recommendedWindow, Delay: delay}}
	return &Recommended{Env: env, Policy: pc, Reading: r, Also: also}, nil
}

// Contender is the policy as the simulator runs it: the engine, reading what its metrics read.
func (r *Recommended) Contender() Contender {
	return Engine("dynopilot", "dynopilot", r.Policy, r.Reading, r.Also...)
}
