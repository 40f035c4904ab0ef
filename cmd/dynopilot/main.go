// Command dynopilot is the autoscaler for Heroku. main only dispatches subcommands; each lives in its own file.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dynopilot/dynopilot/sim"
)

const usage = `dynopilot: autoscaling for Heroku apps

Usage:
  dynopilot [run]              run the daemon (configured by environment variables)
  dynopilot check [--json]     validate the configuration and show what would be decided now; never scales
  dynopilot demo [flags]       the whole daemon against an in-process fake Heroku with synthetic load
  dynopilot simulate [flags]   replay a traffic trace through a policy and the anchors' policies
  dynopilot version            version, commit and Go version

Configuration: see config.example.env and the README.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	// SIGTERM is what Heroku sends, possibly more than once; a second signal changes nothing.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch cmd {
	case "run":
		return runDaemon(ctx, args, os.Environ(), stdout, stderr)
	case "check":
		return runCheck(ctx, args, os.Environ(), stdout, stderr)
	case "demo":
		return runDemo(ctx, args, stdout, stderr)
	case "simulate":
		return sim.Command(ctx, args, os.Environ(), stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "dynopilot: unknown command %q\n\n%s", cmd, usage)
	return 2
}
