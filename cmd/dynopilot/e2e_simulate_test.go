package main_test

import (
	"bufio"
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// writeLongTrace writes two weeks of one-second traffic, a daily cycle with Poisson noise (seeded) that keeps every
// second different from the last, so that `dynopilot simulate` takes seconds over it with every contender.
func writeLongTrace(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fortnight.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("t_seconds,rate_per_second\n")
	rng := rand.New(rand.NewPCG(14, 1))
	for s := range 14 * 86400 {
		mean := 300 - 200*math.Cos(2*math.Pi*float64(s%86400)/86400)
		rate := max(0, math.Round(mean+math.Sqrt(mean)*rng.NormFloat64()))
		w.WriteString(strconv.Itoa(s) + "," + strconv.Itoa(int(rate)) + "\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// SIGTERM (what Heroku sends) and Ctrl-C stop `dynopilot simulate` mid-run: it exits 1 soon after, says it stopped
// and which signal stopped it, and prints no report. The whole run over two weeks of one-second traffic takes about
// 5 s on the 2-core machine it was written on; the signal comes after half a second (loading the trace, or
// simulating), so a simulate that ignored it would go on, then print the table and exit 0.
func TestSimulateStopsOnSIGTERMAndCtrlC(t *testing.T) {
	build(t)
	trace := writeLongTrace(t)
	for _, c := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGTERM, "terminated"}, {syscall.SIGINT, "interrupt"}} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bins.dynopilot, "simulate", "--environment", "--trace", trace, "--reading", "queue-time")
			cmd.Env = []string{"POLICY_0_MAX=100", "POLICY_0_TARGET=400ms"}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			defer func() { cmd.Process.Kill(); <-done }()
			time.Sleep(500 * time.Millisecond) // loading the trace, or simulating
			sent := time.Now()
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10s after %v", c.sig)
			}
			took := time.Since(sent)
			code := cmd.ProcessState.ExitCode()
			want := "simulate: stopped before the run finished: " + c.name + " signal received; no report written\n"
			if code != 1 || stderr.String() != want || stdout.Len() != 0 {
				t.Fatalf("after %v: exit %d, stderr %q, stdout %q; want 1, %q and no report", c.sig, code, stderr.String(), stdout.String(), want)
			}
			if took > 5*time.Second {
				t.Errorf("exited %v after %v, want well within a second (5 s allowed for a busy machine)", took, c.sig)
			}
			t.Logf("exited %v after %v", took.Round(time.Millisecond), c.sig)
		})
	}
}
