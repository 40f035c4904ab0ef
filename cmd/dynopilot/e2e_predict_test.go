package main_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/pgstate"
	"github.com/dynopilot/dynopilot/predict"
)

// TestTheLearnedLoadProfileSurvivesARestart: a policy that predicts learns its load's profile from its readings;
// a deploy (SIGTERM, a new process on the same state database) goes on with what the last process learned rather
// than starting anew. A profile needs days of readings to predict, so what was learned is read from the state
// database after the second process stopped, and asked what it would predict three days on, given two more days
// of readings: the load of the first process's readings (7) if the second process kept them, only the second's (3)
// if it started anew.
func TestTheLearnedLoadProfileSurvivesARestart(t *testing.T) {
	t.Parallel()
	h := startHerokuApps(t, "shop:web=2:Standard-1X,worker=4:Standard-1X")
	r := newReading(t, 7)
	state := stateURL(t)
	env := baseEnv(h, r, "DYNOPILOT_STATE_URL="+state, "POLICY_0_PROCESS=worker", "POLICY_0_MODE=ratio", "POLICY_0_PER_DYNO=1",
		"POLICY_0_MAX=10", "POLICY_0_PREDICT=true")
	start := time.Now()

	first := startDaemon(t, env)
	waitFor(t, "the scale to 7", 20*time.Second, func() bool { return h.quantity(t, "worker") == 7 })
	if m := first.metrics(t); !strings.Contains(m, `dynopilot_predicted_quantity{policy="shop/worker"} 0`) {
		t.Errorf("/metrics lacks dynopilot_predicted_quantity 0 for a policy with nothing learned yet")
	}
	var body struct {
		Policies []struct {
			Predict *struct {
				On     bool
				Status string
			}
		}
	}
	getJSON(t, first.url+"/api/policies", &body)
	if p := body.Policies[0].Predict; p == nil || !p.On || !strings.Contains(p.Status, "no prediction at the last call") {
		t.Errorf("/api/policies predict %+v: want on, with nothing to predict from yet", p)
	}
	stop(t, first) // a deploy: what was learned is saved as the process stops

	r.set(3)
	second := startDaemon(t, env)
	waitFor(t, "the second process's reading of 3", 20*time.Second, func() bool {
		return strings.Contains(second.metrics(t), `dynopilot_reading{policy="shop/worker"} 3`)
	})
	if !strings.Contains(second.p.output(), `msg="read the policy's learned load profile" policy=shop/worker`) {
		t.Errorf("the second process did not read the learned load profile")
	}
	stop(t, second)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := pgstate.Open(ctx, pgstate.Options{URL: state})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, found, err := st.Load(ctx, "predict/shop/worker")
	if err != nil || !found {
		t.Fatalf("no load profile saved: found %v, %v", found, err)
	}
	p := predict.New(predict.Config{})
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for d := 1; d <= 2; d++ {
		p.Observe(start.Add(time.Duration(d)*24*time.Hour), 100)
	}
	load, ok := p.Predict(start.Add(3*24*time.Hour), 10*time.Minute)
	if !ok || load != 7 {
		t.Errorf("the saved profile predicts %v (%v): want the first process's 7, kept by the second", load, ok)
	}
}

// stop sends SIGTERM to a daemon and waits for it to exit.
func stop(t *testing.T, d *daemon) {
	t.Helper()
	d.p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGTERM")
	}
}
