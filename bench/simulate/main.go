// Command simulate measures and tunes the backtest simulator: by default it times a 7-day trace at one-second
// resolution through dynopilot and every comparison contender; -crosscheck prints the model's agreement with the
// request-by-request simulation; -tune searches policy settings against the anchors and the oracle.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/sim"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var (
		doTune  = flag.Bool("tune", false, "search settings (-set KEY=a|b ...) over -trace FILE:SCALE ...")
		envFile = flag.String("env-file", "", "base POLICY_0_ settings")
		window  = flag.Duration("window", 30*time.Second, "reading window")
		delay   = flag.Duration("delay", 15*time.Second, "reading delay")
		reading = flag.String("reading", "latency", "reading kind")
		sets    multi
		traces  multi
	)
	flag.Var(&sets, "set", "KEY=v1|v2|... (repeatable)")
	flag.Var(&traces, "trace", "FILE:SCALE (repeatable)")
	flag.Parse()
	ctx := context.Background()
	if flag.NArg() > 0 && flag.Arg(0) == "run" {
		os.Exit(sim.Command(ctx, flag.Args()[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	if *doTune {
		base, err := readEnv(*envFile)
		if err != nil {
			fail(err)
		}
		ts, err := parseTraces(traces)
		if err != nil {
			fail(err)
		}
		kind, err := sim.ParseReadingKind(*reading)
		if err != nil {
			fail(err)
		}
		r := sim.Reading{Kind: kind, Window: *window, Delay: *delay}
		if err := tune(ctx, os.Stdout, base, sets, ts, sim.DefaultModel(), r); err != nil {
			fail(err)
		}
		return
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "simulate:", err)
	os.Exit(1)
}
