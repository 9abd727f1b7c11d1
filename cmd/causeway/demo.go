package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"codeberg.org/causeway/causeway/internal/demo"
)

const demoUsageText = `Usage: causeway demo [--once] [--data DIR]

Runs Causeway on this machine with nothing else installed: a simulated WhatsApp network, a
local Dendrite homeserver (built from the Go module proxy on first use) and the bridge. It
logs a Matrix user in to WhatsApp with a simulated phone, plays a scripted conversation in
a direct chat and a group, checks every step on the other side, and prints how to look at
the result with any Matrix client. Without --once it keeps running until Ctrl-C.

Options:
`

// runDemo is `causeway demo`. The simulator wiring lives only behind this subcommand:
// nothing in a config file or the environment can make the bridge trust the simulator.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("causeway demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "exit after the scenario: status 0 only if every step was verified")
	data := fs.String("data", "", "keep everything in `DIR` (config.yaml, causeway.log, the archive, Dendrite); default: a temporary directory removed at exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, demoUsageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "causeway demo: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, demo.Options{DataDir: *data, Once: *once, Out: stdout}); err != nil {
		fmt.Fprintf(stderr, "causeway demo: %v\n", err)
		return exitFailure
	}
	return 0
}
