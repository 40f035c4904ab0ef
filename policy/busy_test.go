package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/policy"
)

// busyPolicy scales worker on a queue size, one job per dyno, with busy protection on and nothing else in the way.
func busyPolicy(t *testing.T, kv ...string) *policy.Policy {
	t.Helper()
	return mustPolicy(t, append([]string{"PROCESS", "worker", "MIN", "0", "MODE", "ratio", "PER_DYNO", "1",
		"PROTECT_BUSY", "true"}, kv...)...)
}

// idle is the input for a process type at cur dynos with an empty queue: every policy here wants to go to 0.
func idle(at time.Duration, cur int, running ...policy.RunningJob) policy.Input {
	return policy.Input{Now: t0.Add(at), Current: cur, Size: "Standard-1X", Value: 0, ReadingOK: true, Running: running, RunningOK: true}
}

func job(dyno int, ranFor time.Duration) policy.RunningJob {
	return policy.RunningJob{Dyno: dyno, Started: t0.Add(-ranFor), What: "HardJob (queue default)"}
}

func TestBusyHoldsOnlyTheDynosAScaleDownStops(t *testing.T) {
	p := busyPolicy(t, "MIN", "1")
	cases := []struct {
		name    string
		cur     int
		running []policy.RunningJob
		want    int
		reason  policy.Reason
	}{
		{"a job on worker.2 holds 2 -> 1", 2, []policy.RunningJob{job(2, time.Minute)}, 2, policy.ReasonBusy},
		{"a job on worker.1 does not hold 2 -> 1: worker.1 stays", 2, []policy.RunningJob{job(1, time.Minute)}, 1, policy.ReasonAtMin},
		{"5 -> 1 with worker.3 busy goes to 3: worker.4 and worker.5 are idle", 5, []policy.RunningJob{job(3, time.Minute), job(1, time.Hour)}, 3, policy.ReasonBusy},
		{"the highest busy dyno decides", 5, []policy.RunningJob{job(2, time.Minute), job(4, time.Second)}, 4, policy.ReasonBusy},
		{"a job on a dyno above the formation (already stopping) does not hold", 2, []policy.RunningJob{job(3, time.Minute)}, 1, policy.ReasonAtMin},
		{"a young job of an unknown dyno does not hold", 3, []policy.RunningJob{job(0, 10*time.Second)}, 1, policy.ReasonAtMin},
		{"a job of an unknown dyno past the 30s grace holds everything", 3, []policy.RunningJob{job(0, 31*time.Second)}, 3, policy.ReasonBusy},
		{"no running job: the scale-down goes", 3, nil, 1, policy.ReasonAtMin},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := policy.Decide(p, new(policy.State), idle(0, c.cur, c.running...))
			if d.Desired != c.want || d.Reason != c.reason {
				t.Fatalf("%d -> %d (%s), want %d (%s): %s", d.Current, d.Desired, d.Reason, c.want, c.reason, d.Explain())
			}
			if c.reason == policy.ReasonBusy && (!d.BusyHeld || d.BusyWanted != 1) {
				t.Errorf("BusyHeld %v, BusyWanted %d: want true and 1", d.BusyHeld, d.BusyWanted)
			}
		})
	}
}

func TestBusyExplainsTheJobAndTheDyno(t *testing.T) {
	p := busyPolicy(t, "MIN", "1")
	d := policy.Decide(p, new(policy.State), idle(0, 2, job(2, 3*time.Minute+10*time.Second)))
	got := d.Explain()
	for _, want := range []string{"2 -> 1", "worker.2", "HardJob (queue default)", "3m10s", "holding at 2", "PROTECT_BUSY_MAX=1h"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation %q lacks %q", got, want)
		}
	}
	d = policy.Decide(p, new(policy.State), idle(0, 2, job(0, time.Minute)))
	if got := d.Explain(); !strings.Contains(got, "cannot tell") || !strings.Contains(got, "30s") {
		t.Errorf("explanation of a job of an unknown dyno: %q", got)
	}
}

func TestBusyScaleToZeroWaitsToo(t *testing.T) {
	p := busyPolicy(t)
	d := policy.Decide(p, new(policy.State), idle(0, 1, job(1, time.Minute)))
	if d.Desired != 1 || d.Reason != policy.ReasonBusy {
		t.Fatalf("1 -> %d (%s), want a hold at 1 (busy): %s", d.Desired, d.Reason, d.Explain())
	}
	d = policy.Decide(p, new(policy.State), idle(0, 1))
	if d.Desired != 0 {
		t.Fatalf("idle: 1 -> %d (%s), want 0", d.Desired, d.Reason)
	}
}

func TestBusyHoldsForcedScaleDownsToo(t *testing.T) {
	// MAX=3 with 5 dynos lowers at once, except the busy worker.5 is not stopped.
	p := busyPolicy(t, "MAX", "3")
	d := policy.Decide(p, new(policy.State), policy.Input{Now: t0, Current: 5, Value: 9, ReadingOK: true, Running: []policy.RunningJob{job(5, time.Minute)}, RunningOK: true})
	if d.Desired != 5 || d.Reason != policy.ReasonBusy || d.BusyReason != policy.ReasonLowerToMax {
		t.Fatalf("5 -> %d (%s, before: %s), want 5 (busy, before: lower_to_max): %s", d.Desired, d.Reason, d.BusyReason, d.Explain())
	}
}

func TestBusyUnreadableRunningJobsNeverScaleDown(t *testing.T) {
	p := busyPolicy(t, "PROTECT_BUSY_MAX", "1m")
	st := new(policy.State)
	for _, at := range []time.Duration{0, time.Minute, time.Hour} {
		in := idle(at, 3)
		in.RunningOK = false
		d := policy.Decide(p, st, in)
		if d.Desired != 3 || d.Reason != policy.ReasonBusy || !d.BusyUnknown {
			t.Fatalf("at %v: 3 -> %d (%s, unknown %v), want a hold: %s", at, d.Desired, d.Reason, d.BusyUnknown, d.Explain())
		}
	}
	// A scale-up never waits for anything.
	in := idle(2*time.Hour, 3)
	in.Value, in.RunningOK = 6, false
	if d := policy.Decide(p, st, in); d.Desired != 6 {
		t.Fatalf("scale-up with unreadable jobs: 3 -> %d (%s), want 6", d.Desired, d.Reason)
	}
}

func TestBusyMaxThenGoesAhead(t *testing.T) {
	p := busyPolicy(t, "MIN", "1", "PROTECT_BUSY_MAX", "1h")
	st := new(policy.State)
	long := job(2, time.Minute)
	for _, at := range []time.Duration{0, 30 * time.Minute, 59*time.Minute + 59*time.Second} {
		d := policy.Decide(p, st, idle(at, 2, long))
		if d.Desired != 2 || d.Reason != policy.ReasonBusy || d.BusyFor != at {
			t.Fatalf("at %v: 2 -> %d (%s) held for %v, want a hold for %v", at, d.Desired, d.Reason, d.BusyFor, at)
		}
	}
	// The hold survives a restart: the state is saved and restored as the daemon does.
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var restored policy.State
	if err := restored.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	d := policy.Decide(p, &restored, idle(time.Hour, 2, long))
	if d.Desired != 1 || !d.BusyOverridden || d.BusyHeld {
		t.Fatalf("after PROTECT_BUSY_MAX: 2 -> %d (%s, overridden %v), want 1, overridden", d.Desired, d.Reason, d.BusyOverridden)
	}
	if got := d.Explain(); !strings.Contains(got, "scaling down anyway") || !strings.Contains(got, "worker.2") {
		t.Errorf("explanation %q does not say that worker.2 is stopped anyway", got)
	}
}

func TestBusyHoldStartsAgainAfterItEnds(t *testing.T) {
	p := busyPolicy(t, "MIN", "1", "PROTECT_BUSY_MAX", "10m")
	st := new(policy.State)
	policy.Decide(p, st, idle(0, 2, job(2, time.Minute)))
	// The job ends and no scale-down is wanted for a while (load came back): the hold is over.
	in := idle(5*time.Minute, 2)
	in.Value = 2
	if d := policy.Decide(p, st, in); d.Desired != 2 || d.Reason == policy.ReasonBusy {
		t.Fatalf("loaded: %d (%s), want 2 for the load", d.Desired, d.Reason)
	}
	// A new long job 9 minutes later is held afresh, not cut short by the earlier hold.
	d := policy.Decide(p, st, idle(9*time.Minute, 2, job(2, time.Minute)))
	if d.Desired != 2 || d.Reason != policy.ReasonBusy || d.BusyFor != 0 {
		t.Fatalf("new hold: 2 -> %d (%s) held for %v, want a fresh hold", d.Desired, d.Reason, d.BusyFor)
	}
}

func TestBusyOffNeverHolds(t *testing.T) {
	p := busyPolicy(t, "MIN", "1", "PROTECT_BUSY", "false")
	in := idle(0, 2, job(2, time.Hour))
	in.RunningOK = false
	if d := policy.Decide(p, new(policy.State), in); d.Desired != 1 {
		t.Fatalf("PROTECT_BUSY=false: 2 -> %d (%s), want 1", d.Desired, d.Reason)
	}
}

func TestBusyStateVersion1StillReads(t *testing.T) {
	var st policy.State
	b, _ := st.MarshalBinary()
	v1 := append([]byte{1}, b[1:len(b)-8]...)
	if err := new(policy.State).UnmarshalBinary(v1); err != nil {
		t.Fatalf("a version 1 state (before PROTECT_BUSY): %v", err)
	}
}

func TestBusySettings(t *testing.T) {
	for _, c := range []struct{ setting, value, want string }{
		{"PROTECT_BUSY", "maybe", "true or false"},
		{"PROTECT_BUSY_MAX", "-1m", "a duration >= 0"},
	} {
		_, err := load(t, append(append([]string(nil), base...), c.setting, c.value)...).Parse()
		if err == nil || !strings.Contains(err.Error(), c.setting) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: %v, want an error naming it and saying %q", c.setting, c.value, err, c.want)
		}
	}
}
