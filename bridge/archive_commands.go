package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/archivecmd"
)

const archiveCommandHelp = "The records archive (records officers): " +
	"`archive status`, `archive verify`, `archive gaps FROM TO`, " +
	"`archive export [chat JID] [user JID] [from DATE] [to DATE]`, " +
	"`archive hold add chat|user JID REASON`, `archive hold remove ID REASON`, `archive hold list [all]`, " +
	"`archive dispose BEFORE`. DATE is YYYY-MM-DD or RFC 3339."

// addArchiveCommands adds the `archive` command: what `causeway archive` does on the host, for records
// officers in their management room. The bridge already holds the archive's writer lease, so the
// writing actions run here while the bridge is up, where the CLI would be refused.
func (b *Bridge) addArchiveCommands(cs *commandSet) {
	cs.add(&command{name: "archive", args: "status|verify|gaps|export|hold|dispose ...", help: archiveCommandHelp,
		minLevel: config.LevelRecords, handler: b.cmdArchive})
}

func (b *Bridge) cmdArchive(ctx context.Context, ce *commandEvent) string {
	if b.archive == nil {
		return "The records archive is disabled on this bridge (`archive.enabled` is false in its config)."
	}
	if len(ce.args) == 0 {
		return archiveCommandHelp
	}
	sub, args := strings.ToLower(ce.args[0]), ce.args[1:]
	switch sub {
	case "status":
		return b.archiveStatus(ctx)
	case "gaps":
		return b.archiveGaps(ctx, args)
	case "hold", "holds":
		return b.archiveHold(ctx, ce, args)
	case "verify", "export", "dispose":
		// These read the whole log and may take minutes on a large archive: answer now, and post the
		// result when it is ready rather than hold up the homeserver's transaction.
		work, err := b.archiveJob(sub, ce, args)
		if err != "" {
			return err
		}
		started := b.jobs.Go(context.WithoutCancel(ctx), "archive "+sub, func(ctx context.Context) {
			b.reply(ctx, ce.roomID, work(ctx))
		})
		if !started {
			return errStopping.Error()
		}
		return fmt.Sprintf("Working on `archive %s`; I will post the result here.", sub)
	}
	return fmt.Sprintf("Unknown archive action `%s`. %s", sub, archiveCommandHelp)
}

// archiveJob checks the arguments of a long-running action and returns the work, or a usage message.
func (b *Bridge) archiveJob(sub string, ce *commandEvent, args []string) (func(context.Context) string, string) {
	actor := ce.sender.String()
	switch sub {
	case "verify":
		if len(args) > 0 {
			return nil, "`archive verify` takes no arguments here; to check against a checkpoint kept elsewhere, " +
				"run `causeway archive verify --checkpoint FILE` on the host."
		}
		return b.archiveVerify, ""
	case "export":
		f, err := parseExportWords(args)
		if err != nil {
			return nil, fmt.Sprintf("%v. Usage: `archive export [chat JID] [user JID] [from DATE] [to DATE]`; with no filter, everything.", err)
		}
		return func(ctx context.Context) string { return b.archiveExport(ctx, ce, f, actor) }, ""
	default: // dispose
		if len(args) != 1 {
			return nil, "Usage: `archive dispose BEFORE` (a date such as 2016-01-01): disposes of content from before it that is past retention and under no hold."
		}
		before, err := archivecmd.ParseTime(args[0], false)
		if err != nil {
			return nil, err.Error()
		}
		return func(ctx context.Context) string {
			rep, err := b.archive.Dispose(ctx, before, actor)
			if err != nil {
				return archiveFailure(ctx, "dispose", err)
			}
			var sb strings.Builder
			archivecmd.WriteDisposal(&sb, before, rep)
			return codeBlock("Disposal done.", sb.String())
		}, ""
	}
}

// codeBlock keeps the reports' columns and line breaks, and keeps JIDs and hashes from being read as
// Markdown.
func codeBlock(headline, text string) string {
	return headline + "\n\n```\n" + strings.TrimRight(text, "\n") + "\n```"
}

func archiveFailure(ctx context.Context, action string, err error) string {
	zerolog.Ctx(ctx).Err(err).Str("action", action).Msg("Archive command failed")
	return fmt.Sprintf("`archive %s` failed: %v", action, err)
}

func (b *Bridge) archiveStatus(ctx context.Context) string {
	st, err := b.archive.Status(ctx)
	if err != nil {
		return archiveFailure(ctx, "status", err)
	}
	var sb strings.Builder
	archivecmd.WriteStatus(&sb, st)
	return codeBlock("**Records archive**", sb.String())
}

func (b *Bridge) archiveVerify(ctx context.Context) string {
	rep, err := b.archive.Verify(ctx, archive.VerifyOptions{})
	if err != nil {
		return archiveFailure(ctx, "verify", err)
	}
	var sb strings.Builder
	archivecmd.WriteVerify(&sb, b.archive.Origin(), rep)
	headline := "**The archive verified**: nothing was removed, altered or reordered."
	if !rep.OK() {
		headline = fmt.Sprintf("**Verification FAILED** with %d problem(s).", len(rep.Problems))
	}
	return codeBlock(headline, sb.String())
}

func (b *Bridge) archiveGaps(ctx context.Context, args []string) string {
	if len(args) != 2 {
		return "Usage: `archive gaps FROM TO`, dates as YYYY-MM-DD (TO includes that day) or RFC 3339."
	}
	from, err := archivecmd.ParseTime(args[0], false)
	if err != nil {
		return err.Error()
	}
	to, err := archivecmd.ParseTime(args[1], true)
	if err != nil {
		return err.Error()
	}
	if !from.Before(to) {
		return fmt.Sprintf("FROM (%s) must be before TO (%s).", args[0], args[1])
	}
	gaps, err := b.archive.Gaps(ctx, from, to)
	if err != nil {
		return archiveFailure(ctx, "gaps", err)
	}
	var sb strings.Builder
	archivecmd.WriteGaps(&sb, from, to, gaps)
	return codeBlock("**Completeness ledger**", sb.String())
}

// parseExportWords reads `chat JID user JID from DATE to DATE`, in any order, each optional; the CLI's
// --chat style is accepted too.
func parseExportWords(args []string) (archive.ExportFilter, error) {
	var f archive.ExportFilter
	if len(args)%2 != 0 {
		return f, errors.New("each filter takes one value")
	}
	for i := 0; i < len(args); i += 2 {
		val := args[i+1]
		var err error
		switch strings.TrimLeft(strings.ToLower(args[i]), "-") {
		case "chat":
			f.Chat = val
		case "user":
			f.User = val
		case "from":
			f.From, err = archivecmd.ParseTime(val, false)
		case "to":
			f.To, err = archivecmd.ParseTime(val, true)
		default:
			err = fmt.Errorf("unknown export filter `%s`: use chat, user, from or to", args[i])
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// archiveExport writes the bundle to a temporary file (bundles carry media and can be large), uploads
// it as the bot and posts it as a file in the officer's room.
func (b *Bridge) archiveExport(ctx context.Context, ce *commandEvent, f archive.ExportFilter, actor string) string {
	tmp, err := os.CreateTemp("", "causeway-export-*.zip")
	if err != nil {
		return archiveFailure(ctx, "export", err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	rep, err := b.archive.Export(ctx, f, actor, tmp)
	if err != nil {
		return archiveFailure(ctx, "export", err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		return archiveFailure(ctx, "export", err)
	}
	name := fmt.Sprintf("causeway-export-%d-%s.zip", rep.Index, time.Now().UTC().Format("20060102T150405Z"))
	upload, err := b.botUpload(ctx, ce.roomID, tmp, size, "application/zip", name)
	var sb strings.Builder
	archivecmd.WriteExport(&sb, rep)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Int64("size", size).Msg("Failed to upload an archive export")
		return codeBlock(fmt.Sprintf("The export was made and recorded, but uploading it (%d bytes) failed: %v. "+
			"Run `causeway archive export` on the host instead.", size, err), sb.String())
	}
	content := &event.MessageEventContent{
		MsgType:  event.MsgFile,
		Body:     name,
		FileName: name,
		Info:     &event.FileInfo{MimeType: "application/zip", Size: int(size)},
	}
	upload.into(content)
	if _, err = b.botSend(ctx, ce.roomID, event.EventMessage, content); err != nil {
		return archiveFailure(ctx, "export", fmt.Errorf("send the bundle: %w", err))
	}
	return codeBlock(fmt.Sprintf("Export `%s` is attached above. Check it anywhere with `causeway archive verify-bundle %s`.", name, name), sb.String())
}

func (b *Bridge) archiveHold(ctx context.Context, ce *commandEvent, args []string) string {
	const usage = "Usage: `archive hold add chat|user JID REASON`, `archive hold remove ID REASON` or `archive hold list [all]`."
	if len(args) == 0 {
		return usage
	}
	actor := ce.sender.String()
	switch strings.ToLower(args[0]) {
	case "list":
		all := len(args) > 1 && strings.EqualFold(args[1], "all")
		holds, err := b.archive.ListHolds(ctx, all)
		if err != nil {
			return archiveFailure(ctx, "hold list", err)
		}
		var sb strings.Builder
		archivecmd.WriteHolds(&sb, holds, all)
		return codeBlock("**Legal holds**", sb.String())
	case "add":
		if len(args) < 4 || (args[1] != string(archive.HoldChat) && args[1] != string(archive.HoldUser)) {
			return usage
		}
		h, err := b.archive.AddHold(ctx, archive.HoldScope(args[1]), args[2], strings.Join(args[3:], " "), actor)
		if err != nil {
			return archiveFailure(ctx, "hold add", err)
		}
		return fmt.Sprintf("Placed hold **%d** on %s `%s`: %s. Disposal leaves everything it covers alone until `archive hold remove %d`.",
			h.ID, h.Scope, h.JID, h.Reason, h.ID)
	case "remove":
		if len(args) < 3 {
			return usage
		}
		id, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil {
			return fmt.Sprintf("`%s` is not a hold ID; see `archive hold list`.", args[1])
		}
		err = b.archive.RemoveHold(ctx, id, strings.Join(args[2:], " "), actor)
		if errors.Is(err, archive.ErrHoldNotFound) {
			return fmt.Sprintf("Hold %d is not an active hold; see `archive hold list all`.", id)
		} else if err != nil {
			return archiveFailure(ctx, "hold remove", err)
		}
		return fmt.Sprintf("Removed hold %d.", id)
	}
	return usage
}
