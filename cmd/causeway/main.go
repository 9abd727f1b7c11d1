// Command causeway runs the Causeway WhatsApp <-> Matrix bridge.
//
//	causeway -c config.yaml                        run the bridge
//	causeway -c config.yaml -g -r registration.yaml  generate the appservice registration
//	causeway --version                             print version, commit and Go version
//	causeway SUBCOMMAND ...                        see `causeway help`
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

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/buildinfo"
	"codeberg.org/causeway/causeway/internal/gcdefault"
	"codeberg.org/causeway/causeway/internal/importcmd"
	"codeberg.org/causeway/causeway/internal/secretfile"
)

// Exit codes: 1 when running failed, 2 when the command line or the config is wrong.
const (
	exitFailure = 1
	exitUsage   = 2
)

// subcommands are the verbs after `causeway`; the bridge itself runs when none is given.
var subcommands = map[string]struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}{
	"archive": {"inspect, verify, export and manage the records archive", runArchive},
	"import":  {importcmd.Summary, importcmd.Run},
}

func main() {
	gcdefault.Set(os.Getenv)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if sub, ok := subcommands[args[0]]; ok {
			return sub.run(args[1:], stdout, stderr)
		}
		if args[0] == "demo" {
			// Its own program now, so that this binary links no simulator; people who learnt
			// `causeway demo` are told where it went rather than "unknown command".
			fmt.Fprintln(stderr, "causeway: the demo is its own program: go run ./cmd/causeway-demo (in a source checkout)")
			return exitUsage
		}
	}
	fs := flag.NewFlagSet("causeway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("c", "config.yaml", "path to the config file")
	generate := fs.Bool("g", false, "generate the appservice registration (see -r) and write its tokens into the config")
	regPath := fs.String("r", "registration.yaml", "where -g writes the registration")
	showVersion := fs.Bool("version", false, "print version, commit and Go version, then exit")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "causeway: unknown command %q\n", fs.Arg(0))
		usage(fs, stderr)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildinfo.Get().String())
		fmt.Fprintln(stdout, whatsAppVersionLine(*configPath))
		return 0
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "causeway: bad config: %v\n", err)
		return exitUsage
	}
	if *generate {
		return generateRegistration(cfg, *configPath, *regPath, stdout, stderr)
	}
	return runBridge(cfg, *configPath, stderr)
}

// whatsAppVersionLine says which WhatsApp Web version the bridge announces: the config's, when the
// config sets one, else the built-in one, which a running bridge replaces with the current one it
// fetches at start (its `ping` shows that).
func whatsAppVersionLine(configPath string) string {
	if cfg, err := config.Load(configPath); err == nil && cfg.WhatsApp.Version != "" {
		return "WhatsApp Web version " + cfg.WhatsApp.Version + " (whatsapp.version in " + configPath + ")"
	}
	return "WhatsApp Web version " + bridge.BuiltInWhatsAppVersion() + " built in; a running bridge uses the current one it fetches at start (see `ping`)"
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: causeway [-c config.yaml] [-g -r registration.yaml] [--version]\n")
	fmt.Fprintf(w, "       causeway COMMAND [options]\n\nOptions:\n")
	fs.PrintDefaults()
	if len(subcommands) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for name, sub := range subcommands {
			fmt.Fprintf(w, "  %-10s %s\n", name, sub.summary)
		}
	}
}

func generateRegistration(cfg *config.Config, configPath, regPath string, stdout, stderr io.Writer) int {
	reg := cfg.Registration()
	if err := config.SaveRegistration(reg, regPath); err != nil {
		fmt.Fprintf(stderr, "causeway: %v\n", err)
		return exitFailure
	}
	if err := cfg.WriteTokens(configPath); err != nil {
		fmt.Fprintf(stderr, "causeway: registration written, but the tokens could not be saved in the config: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "Wrote %s and saved its tokens in %s (now mode 0600: only you may read it).\n"+
		"Add %s to your homeserver's appservice config files and restart the homeserver.\n", regPath, configPath, regPath)
	return 0
}

func runBridge(cfg *config.Config, configPath string, stderr io.Writer) int {
	log := newLogger(cfg.Logging, stderr)
	secretfile.WarnIfExposed(log, configPath, "the appservice tokens")
	br, err := bridge.New(cfg, log, bridge.Options{})
	if err != nil {
		log.Error().Err(err).Msg("Cannot start")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := br.Run(ctx); err != nil {
		log.Error().Err(err).Msg("Bridge failed")
		return exitFailure
	}
	return 0
}
