package archivecmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"codeberg.org/causeway/causeway/archive"
)

func (c *archiveCLI) status(ctx context.Context, args []string) int {
	fs, configPath := c.flags(true)
	cpOut := fs.String("checkpoint-out", "", "also write the latest signed checkpoint to this `file`, to keep outside the database for verify --checkpoint")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	o, code := c.open(ctx, *configPath, false)
	if o == nil {
		return code
	}
	st, err := o.a.Status(ctx)
	if err != nil {
		return c.finish(o, c.fail("%v", err))
	}
	WriteStatus(c.stdout, st)
	if !o.cfg.Archive.Enabled {
		fmt.Fprintln(c.stdout, "Note: archive.enabled is false in the config; the bridge is not capturing.")
	}
	if *cpOut != "" {
		if st.Latest == nil {
			return c.finish(o, c.fail("no checkpoint has been issued yet, so there is none to write to %s", *cpOut))
		}
		if err = os.WriteFile(*cpOut, st.Latest.Note, 0o644); err != nil {
			return c.finish(o, c.fail("write the checkpoint: %v", err))
		}
		fmt.Fprintf(c.stdout, "Wrote the checkpoint at size %d to %s.\n", st.Latest.Size, *cpOut)
	}
	return c.finish(o, 0)
}

func (c *archiveCLI) verify(ctx context.Context, args []string) int {
	fs, configPath := c.flags(true)
	cpFile := fs.String("checkpoint", "", "a signed checkpoint `file` kept outside the database; the log must still hold the history it vouches for")
	keyArg := fs.String("key", "", "verify checkpoints with this verifier `key` (or key file) instead of the one next to the archive")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	var opts archive.VerifyOptions
	if *cpFile != "" {
		data, err := os.ReadFile(*cpFile)
		if err != nil {
			c.usageError(nil, "--checkpoint: %v", err)
			return exitUsage
		}
		opts.Checkpoint = data
	}
	key, ok := c.readKey(*keyArg)
	if !ok {
		return exitUsage
	}
	opts.TrustedKey = key
	o, code := c.open(ctx, *configPath, false)
	if o == nil {
		return code
	}
	rep, err := o.a.Verify(ctx, opts)
	if err != nil {
		return c.finish(o, c.fail("%v", err))
	}
	WriteVerify(c.stdout, o.a.Origin(), rep)
	if !rep.OK() {
		return c.finish(o, exitFailure)
	}
	return c.finish(o, 0)
}

// timeFlag is a --from/--to style flag taking DATE or RFC 3339.
type timeFlag struct {
	t        time.Time
	endOfDay bool
}

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) (err error) {
	f.t, err = ParseTime(s, f.endOfDay)
	return err
}

func (c *archiveCLI) gaps(ctx context.Context, args []string) int {
	fs, configPath := c.flags(true)
	from, to := &timeFlag{}, &timeFlag{endOfDay: true}
	fs.Var(from, "from", "start of the window (`DATE`; default: the first archived entry)")
	fs.Var(to, "to", "end of the window, exclusive (`DATE`; default: now)")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	if !from.t.IsZero() && !to.t.IsZero() && !from.t.Before(to.t) {
		c.usageError(fs, "--from %s is not before --to %s", from, to)
		return exitUsage
	}
	o, code := c.open(ctx, *configPath, false)
	if o == nil {
		return code
	}
	if from.t.IsZero() {
		st, err := o.a.Status(ctx)
		if err != nil {
			return c.finish(o, c.fail("%v", err))
		}
		from.t = st.First
	}
	if to.t.IsZero() {
		to.t = time.Now().UTC()
	}
	gaps, err := o.a.Gaps(ctx, from.t, to.t)
	if err != nil {
		return c.finish(o, c.fail("%v", err))
	}
	WriteGaps(c.stdout, from.t, to.t, gaps)
	return c.finish(o, 0)
}

func (c *archiveCLI) export(ctx context.Context, args []string) int {
	fs, configPath := c.flags(true)
	var f archive.ExportFilter
	from, to := &timeFlag{}, &timeFlag{endOfDay: true}
	fs.StringVar(&f.Chat, "chat", "", "only this chat `JID` (and the completeness entries of its window)")
	fs.StringVar(&f.User, "user", "", "only what this `JID` sent, their 1:1 chat and what their bridged account saw")
	fs.Var(from, "from", "only events from this `DATE` on")
	fs.Var(to, "to", "only events before this `DATE`")
	out := fs.String("out", "", "write the bundle to this zip `file` (required)")
	actor := fs.String("actor", osActor(), "who is exporting, recorded in the export's audit entry")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	if *out == "" {
		c.usageError(fs, "--out is required")
		return exitUsage
	}
	f.From, f.To = from.t, to.t
	// Write next to the destination and rename, so a failed export never leaves a bundle that looks whole.
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".tmp-*")
	if err != nil {
		return c.fail("create %s: %v", *out, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	o, code := c.open(ctx, *configPath, true)
	if o == nil {
		_ = tmp.Close()
		return code
	}
	rep, err := o.a.Export(ctx, f, *actor, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		return c.finish(o, c.fail("%v", err))
	}
	WriteExport(c.stdout, rep)
	fmt.Fprintf(c.stdout, "Wrote %s. Check it anywhere with: causeway archive verify-bundle %s\n", *out, filepath.Base(*out))
	return c.finish(o, 0)
}

func (c *archiveCLI) verifyBundle(_ context.Context, args []string) int {
	fs, _ := c.flags(false)
	keyArg := fs.String("key", "", "the verifier `key` (or key file) your records office holds; the bundle must be signed with it")
	rest, code, ok := c.parse(fs, args, 1)
	if !ok {
		return code
	}
	key, ok := c.readKey(*keyArg)
	if !ok {
		return exitUsage
	}
	opts := archive.BundleOptions{TrustedKey: key}
	f, err := os.Open(rest[0])
	if err != nil {
		return c.fail("%v", err)
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return c.fail("%v", err)
	}
	rep, err := archive.VerifyBundle(f, info.Size(), opts)
	if err != nil {
		return c.fail("%s: %v", rest[0], err)
	}
	WriteBundle(c.stdout, rep)
	if !rep.OK() {
		return exitFailure
	}
	return 0
}

func (c *archiveCLI) hold(ctx context.Context, args []string) int {
	if len(args) == 0 {
		c.usageError(nil, "say add, remove or list\nUsage: causeway archive hold %s", c.cmd.args)
		return exitUsage
	}
	verb, args := args[0], args[1:]
	c.cmd.name = "hold " + verb
	fs, configPath := c.flags(true)
	switch verb {
	case "add":
		c.cmd.args = "(--chat JID | --user JID) --reason TEXT [--by WHO]"
		chat := fs.String("chat", "", "hold everything in this chat `JID`")
		usr := fs.String("user", "", "hold everything this `JID` sent, their 1:1 chat and what their bridged account saw")
		reason := fs.String("reason", "", "why (required; recorded in the audit entry)")
		by := fs.String("by", osActor(), "who places the hold")
		if _, code, ok := c.parse(fs, args, 0); !ok {
			return code
		}
		scope, jid := archive.HoldChat, *chat
		if *usr != "" {
			scope, jid = archive.HoldUser, *usr
		}
		if (*chat == "") == (*usr == "") || *reason == "" {
			c.usageError(fs, "give exactly one of --chat and --user, and --reason")
			return exitUsage
		}
		return c.withWriter(ctx, *configPath, func(a *archive.Archive) error {
			h, err := a.AddHold(ctx, scope, jid, *reason, *by)
			if err == nil {
				fmt.Fprintf(c.stdout, "Placed hold %d on %s %s: %s\nDisposal now leaves everything it covers alone until `hold remove %d`.\n",
					h.ID, h.Scope, h.JID, h.Reason, h.ID)
			}
			return err
		})
	case "remove":
		c.cmd.args = "ID --reason TEXT [--by WHO]"
		reason := fs.String("reason", "", "why the hold is lifted (required; recorded in the audit entry)")
		by := fs.String("by", osActor(), "who lifts the hold")
		rest, code, ok := c.parse(fs, args, 1)
		if !ok {
			return code
		}
		id, err := strconv.ParseUint(rest[0], 10, 64)
		if err != nil || *reason == "" {
			c.usageError(fs, "give the hold's numeric ID (see `hold list`) and --reason")
			return exitUsage
		}
		return c.withWriter(ctx, *configPath, func(a *archive.Archive) error {
			err := a.RemoveHold(ctx, id, *reason, *by)
			if errors.Is(err, archive.ErrHoldNotFound) {
				return fmt.Errorf("hold %d is not an active hold (see `causeway archive hold list --all`)", id)
			} else if err == nil {
				fmt.Fprintf(c.stdout, "Removed hold %d.\n", id)
			}
			return err
		})
	case "list":
		c.cmd.args = "[--all]"
		all := fs.Bool("all", false, "include removed holds")
		if _, code, ok := c.parse(fs, args, 0); !ok {
			return code
		}
		o, code := c.open(ctx, *configPath, false)
		if o == nil {
			return code
		}
		holds, err := o.a.ListHolds(ctx, *all)
		if err != nil {
			return c.finish(o, c.fail("%v", err))
		}
		WriteHolds(c.stdout, holds, *all)
		return c.finish(o, 0)
	}
	c.usageError(nil, "unknown hold command %q: say add, remove or list", verb)
	return exitUsage
}

func (c *archiveCLI) dispose(ctx context.Context, args []string) int {
	fs, configPath := c.flags(true)
	before := &timeFlag{}
	fs.Var(before, "before", "dispose of content from before this `DATE` that is past its retention (required)")
	by := fs.String("by", osActor(), "who orders the disposal, recorded in its audit entry")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	if before.t.IsZero() {
		c.usageError(fs, "--before is required")
		return exitUsage
	}
	return c.withWriter(ctx, *configPath, func(a *archive.Archive) error {
		rep, err := a.Dispose(ctx, before.t, *by)
		if err == nil {
			WriteDisposal(c.stdout, before.t, rep)
		}
		return err
	})
}

// withWriter runs fn on the archive opened for writing.
func (c *archiveCLI) withWriter(ctx context.Context, configPath string, fn func(*archive.Archive) error) int {
	o, code := c.open(ctx, configPath, true)
	if o == nil {
		return code
	}
	if err := fn(o.a); err != nil {
		return c.finish(o, c.fail("%v", err))
	}
	return c.finish(o, 0)
}

// readKey reads a --key value (a verifier key or a file holding one); empty stays empty.
func (c *archiveCLI) readKey(arg string) (string, bool) {
	if arg == "" {
		return "", true
	}
	key, err := ReadKey(arg)
	if err != nil {
		c.usageError(nil, "%v", err)
		return "", false
	}
	return key, true
}
