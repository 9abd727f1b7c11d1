package archivecmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/cliflags"
)

// Exit codes, as the other commands of causeway use them.
const (
	exitFailure = 1
	exitUsage   = 2
)

// archiveCommand is one verb of `causeway archive`.
type archiveCommand struct {
	name    string
	args    string
	summary string
	run     func(c *archiveCLI, ctx context.Context, args []string) int
}

// archiveCommands in the order usage lists them.
var archiveCommands = []archiveCommand{
	{"status", "[--checkpoint-out FILE]", "size, latest signed checkpoint, media, legal holds", (*archiveCLI).status},
	{"verify", "[--checkpoint FILE] [--key KEY]", "recompute the tree, check every checkpoint, body and media file", (*archiveCLI).verify},
	{"gaps", "[--from DATE] [--to DATE]", "the completeness ledger: windows with no capture, and why", (*archiveCLI).gaps},
	{"export", "[--chat JID] [--user JID] [--from DATE] [--to DATE] --out FILE.zip [--actor WHO]", "write a self-verifying bundle (audited)", (*archiveCLI).export},
	{"verify-bundle", "FILE.zip [--key KEY]", "check an export bundle offline; needs no config", (*archiveCLI).verifyBundle},
	{"hold", "add (--chat JID | --user JID) --reason TEXT [--by WHO] | remove ID --reason TEXT [--by WHO] | list [--all]", "legal holds (audited)", (*archiveCLI).hold},
	{"dispose", "--before DATE [--by WHO]", "remove bodies and media past retention that no hold covers (audited)", (*archiveCLI).dispose},
}

const archiveUsageText = `Usage: causeway archive COMMAND -c config.yaml [options]

Inspect and manage the records archive. Every command except verify-bundle reads the config
(-c, default config.yaml) to find the database and the archive directory.

Commands:
%s
DATE is YYYY-MM-DD (midnight UTC; as --to, the end of that day) or an RFC 3339 time.
KEY is a checkpoint verifier key (name+hash+base64) or a file holding one, such as
keys/archive-signing.pub in the archive directory. A key kept apart from the database
catches a database whose checkpoints were re-signed with a substituted key.

status, verify, gaps and hold list open the archive read-only and are safe next to a
running bridge, on SQLite and PostgreSQL alike.

export, hold add/remove and dispose append audit entries. Only one process may append to
an archive at a time: each numbers new entries from its own copy of the log head, so two
writers would collide and the bridge's archive would stop accepting entries. Writers take
a lease in the database that ends when their archive closes, or when their process dies:
at once seen from the same machine, 30 s after its last renewal seen from another. While
a bridge with the archive enabled runs, these commands refuse with "open for writing".
Use the bot's "archive" commands in the management room instead, or stop the bridge.

Exit status: 0 success, 1 verification found problems or the operation failed,
2 bad usage or config.
`

// NewLogger makes the logger a command logs to: the one the causeway binary uses everywhere, so the
// config's logging section means the same for every subcommand.
type NewLogger func(cfg config.Logging, w io.Writer) zerolog.Logger

// Run is `causeway archive`.
func Run(args []string, stdout, stderr io.Writer, newLogger NewLogger) int {
	c := &archiveCLI{stdout: stdout, stderr: stderr, newLogger: newLogger}
	if len(args) == 0 {
		c.usage(stderr)
		return exitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		c.usage(stdout)
		return 0
	}
	for _, cmd := range archiveCommands {
		if cmd.name == args[0] {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c.cmd = cmd
			return cmd.run(c, ctx, args[1:])
		}
	}
	fmt.Fprintf(stderr, "causeway archive: unknown command %q\n\n", args[0])
	c.usage(stderr)
	return exitUsage
}

// archiveCLI is one invocation: where it writes and which command runs.
type archiveCLI struct {
	stdout, stderr io.Writer
	newLogger      NewLogger
	cmd            archiveCommand
}

func (c *archiveCLI) usage(w io.Writer) {
	var sb strings.Builder
	for _, cmd := range archiveCommands {
		fmt.Fprintf(&sb, "  %-14s %s\n  %-14s   %s\n", cmd.name, cmd.summary, "", cmd.args)
	}
	fmt.Fprintf(w, archiveUsageText, sb.String())
}

// flags returns the command's flag set; withConfig adds -c.
func (c *archiveCLI) flags(withConfig bool) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("causeway archive "+c.cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: causeway archive %s %s\n\n%s.\n\nOptions:\n", c.cmd.name, c.cmd.args, c.cmd.summary)
		fs.PrintDefaults()
		fmt.Fprintln(c.stderr, "\nSee `causeway archive help` for dates, keys and running next to a bridge.")
	}
	var configPath *string
	if withConfig {
		configPath = fs.String("c", "config.yaml", "path to the config file")
	}
	return fs, configPath
}

// parse parses flags wherever they appear among the arguments (the standard package stops at the
// first positional one) and returns the positional ones. ok is false with the exit code to return.
func (c *archiveCLI) parse(fs *flag.FlagSet, args []string, positional int) (rest []string, code int, ok bool) {
	rest, err := cliflags.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0, false
	} else if err != nil {
		return nil, exitUsage, false
	}
	if len(rest) != positional {
		c.usageError(fs, "expected %d argument(s) besides the options, got %d: %q", positional, len(rest), rest)
		return nil, exitUsage, false
	}
	return rest, 0, true
}

func (c *archiveCLI) usageError(fs *flag.FlagSet, format string, args ...any) {
	fmt.Fprintf(c.stderr, "causeway archive %s: %s\n", c.cmd.name, fmt.Sprintf(format, args...))
	if fs != nil {
		fs.Usage()
	}
}

func (c *archiveCLI) fail(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "causeway archive %s: %s\n", c.cmd.name, fmt.Sprintf(format, args...))
	return exitFailure
}

// opened is an archive opened for one command, with what closing it takes.
type opened struct {
	cfg   *config.Config
	a     *archive.Archive
	close func() error
}

// open loads the config, opens the database and the archive: read-only unless write, in which case it
// takes the writer lease and fails at once if a bridge holds it.
func (c *archiveCLI) open(ctx context.Context, configPath string, write bool) (*opened, int) {
	cfg, err := config.Load(configPath)
	if err != nil {
		fmt.Fprintf(c.stderr, "causeway archive %s: bad config: %v\n", c.cmd.name, err)
		return nil, exitUsage
	}
	log := c.newLogger(cfg.Logging, c.stderr)
	if log.GetLevel() < zerolog.WarnLevel {
		// Progress messages would drown the report; warnings (a non-durable database) still matter.
		log = log.Level(zerolog.WarnLevel)
	}
	db, err := database.Open(ctx, cfg.Database, log)
	if err != nil {
		return nil, c.fail("%v", err)
	}
	o := &opened{cfg: cfg}
	if write {
		o.a, err = OpenWriter(ctx, cfg, db, log, "causeway archive "+c.cmd.name, false)
		o.close = func() error { return errors.Join(o.a.Close(), db.Close()) }
	} else {
		o.a, err = OpenReadOnly(ctx, cfg, db, log)
		o.close = db.Close
	}
	switch {
	case errors.Is(err, archive.ErrWriterBusy):
		_ = db.Close()
		return nil, c.fail("%v\nStop the bridge first, or use the bot's `archive %s` command in your management room.", err, c.cmd.name)
	case err != nil:
		_ = db.Close()
		return nil, c.fail("%v", err)
	}
	return o, 0
}

// finish closes what open opened; a write that cannot be closed cleanly (the final checkpoint) fails
// the command.
func (c *archiveCLI) finish(o *opened, code int) int {
	if err := o.close(); err != nil {
		fmt.Fprintf(c.stderr, "causeway archive %s: closing the archive: %v\n", c.cmd.name, err)
		return max(code, exitFailure)
	}
	return code
}

// osActor names whoever runs the command, for audit entries: the OS user on this host.
func osActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		name += "@" + host
	}
	return name
}
