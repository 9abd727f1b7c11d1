// Command causeway-demo tries Causeway on one machine: a simulated WhatsApp network, a local
// Dendrite and the bridge, playing a scripted conversation; with --bench or --bench-backfill it
// measures the relay or history backfill instead.
//
//	go run ./cmd/causeway-demo --once
//
// It is its own program, not a subcommand of causeway, because it links the simulator, builds
// Dendrite and overwrites whatsmeow.WACertPubKey: none of that may be in the binary operators run
// (cmd/causeway's TestProductionBinaryDeps checks).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"codeberg.org/causeway/causeway/internal/gcdefault"
	"codeberg.org/causeway/causeway/internal/harness/demo"
	"codeberg.org/causeway/causeway/internal/harness/mxcrypto"
)

// Exit codes, as causeway uses them: 1 when running failed, 2 when the command line is wrong.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	// The same as causeway's: the benchmark's bridge process (this binary, see runBenchBridge)
	// must collect the way the daemon does.
	gcdefault.Set(os.Getenv)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `Usage: causeway-demo [--once] [--encrypted=false] [--data DIR]
       causeway-demo --bench [--encrypted] [--archive=false] [--chats N] [--per-chat N] [--cpuprofile FILE] [--data DIR]
       causeway-demo --bench-backfill [--archive=false] [--chats N] [--per-chat N] [--data DIR]

Runs Causeway on this machine with nothing else installed: a simulated WhatsApp network, a
local Dendrite homeserver (built from the Go module proxy on first use) and the bridge. It
logs a Matrix user in to WhatsApp with a simulated phone, plays a scripted conversation in
a direct chat and a group, checks every step on the other side, and prints how to look at
the result with any Matrix client. Without --once it keeps running until Ctrl-C.

The portals are end-to-end encrypted unless --encrypted=false: the bridge encrypts and
decrypts with its own device, and so does the Matrix user, whose every check decrypts.
Encryption needs -tags goolm; a demo built without it builds itself again with it.

--bench runs the relay benchmark instead: after a warm-up that creates every room, N
contacts send N messages each through a bridge running in its own process into Dendrite
(on tmpfs unless --data), and it reports messages/s, p50/p99 latency, and the CPU time
per message of the bridge process and of Dendrite. With --encrypted the portals are
encrypted: compare the two runs for what encryption costs.

--bench-backfill measures history backfill: a phone whose history holds N chats of N
messages each (default 10 x 500) is linked, and it reports how many history messages per
second reach Dendrite in new rooms, the CPU per message, and checks every room's history.

Options:
`

// run is causeway-demo with its command line. The simulator wiring lives only in this program:
// nothing in a config file or the environment can make the bridge trust the simulator.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("causeway-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "exit after the scenario: status 0 only if every step was verified")
	data := fs.String("data", "", "keep everything in `DIR` (config.yaml, causeway.log, the archive, Dendrite); default: a temporary directory removed at exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	bench := fs.Bool("bench", false, "run the relay benchmark instead of the scenario")
	benchBackfill := fs.Bool("bench-backfill", false, "run the history backfill benchmark instead of the scenario")
	withArchive := fs.Bool("archive", true, "with --bench: the records archive on or off")
	database := fs.String("database", "sqlite", "with --bench: the bridge's database, `sqlite` or postgres (a throwaway PostgreSQL)")
	chats := fs.Int("chats", 20, "with --bench: contacts, each in their own chat")
	perChat := fs.Int("per-chat", 100, "with --bench: plain texts each contact sends")
	cpuProfile := fs.String("cpuprofile", "", "with --bench: write the bridge process's CPU profile of the burst to `FILE`")
	encrypted := fs.Bool("encrypted", true, "play in end-to-end encrypted portals; with --bench off unless given")
	// The benchmark's bridge process, which the benchmark starts from this same binary: not
	// for people, so not in the usage. It only trusts a simulator the benchmark described in
	// its data dir.
	if len(args) >= 2 && args[0] == demo.BridgeChildArg {
		return runBenchBridge(args[1], args[2:], stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "causeway-demo: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *benchBackfill && set["encrypted"] {
		fmt.Fprintln(stderr, "causeway-demo: --encrypted is for the scenario and --bench, not --bench-backfill")
		return exitUsage
	}
	if (*bench || *benchBackfill) && !set["encrypted"] {
		*encrypted = false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *encrypted && !mxcrypto.Available {
		err := execWithCrypto(ctx, args, stdout)
		if *bench {
			fmt.Fprintf(stderr, "causeway-demo --bench --encrypted: %v\n", err)
			return exitFailure
		}
		// The demo plays unencrypted and says so.
		fmt.Fprintf(stderr, "causeway-demo: could not build the demo with -tags goolm: %v\n", err)
	}
	if *bench || *benchBackfill {
		if *benchBackfill {
			if !set["chats"] {
				*chats = 10
			}
			if !set["per-chat"] {
				*perChat = 500
			}
		}
		if *database != "sqlite" && *database != "postgres" {
			fmt.Fprintf(stderr, "causeway-demo: --database must be sqlite or postgres, not %q\n", *database)
			return exitUsage
		}
		if *chats < 1 || *perChat < 1 {
			fmt.Fprintln(stderr, "causeway-demo: --chats and --per-chat must be at least 1")
			return exitUsage
		}
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "causeway-demo: cannot find my own binary to run the bridge: %v\n", err)
			return exitFailure
		}
		opts := demo.BenchOptions{
			DataDir: *data, Archive: *withArchive, Database: *database, Chats: *chats, PerChat: *perChat,
			CPUProfile: *cpuProfile, Executable: exe, Out: stdout, Encrypted: *encrypted,
		}
		if *benchBackfill {
			_, err = demo.RunBackfillBench(ctx, opts)
		} else {
			_, err = demo.RunBench(ctx, opts)
		}
		if err != nil {
			fmt.Fprintf(stderr, "causeway-demo --bench: %v\n", err)
			return exitFailure
		}
		return 0
	}
	if err := demo.Run(ctx, demo.Options{DataDir: *data, Once: *once, Out: stdout, Plaintext: !*encrypted}); err != nil {
		fmt.Fprintf(stderr, "causeway-demo: %v\n", err)
		return exitFailure
	}
	return 0
}

// runBenchBridge is the bridge process of --bench and --bench-backfill.
func runBenchBridge(dir string, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("causeway-demo "+demo.BridgeChildArg, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cpuProfile := fs.String("cpuprofile", "", "CPU profile between SIGUSR1 and SIGUSR2")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo.RunBridgeChild(ctx, demo.BridgeChildOptions{Dir: dir, CPUProfile: *cpuProfile}); err != nil {
		fmt.Fprintf(stderr, "causeway-demo --bench-bridge: %v\n", err)
		return exitFailure
	}
	return 0
}
