package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/chatexport"
	"codeberg.org/causeway/causeway/internal/importapi"
	"codeberg.org/causeway/causeway/portal"
)

// maxAttachment bounds one attachment read from an export into memory.
const maxAttachment = 2 << 30

func (b *Bridge) addImportCommand(cs *commandSet) {
	cs.add(&command{name: "import", args: "[TIME ZONE | cancel]", minLevel: config.LevelUser, handler: b.cmdImport,
		help: "In a WhatsApp chat's room: import the chat export (the zip from WhatsApp's **Export chat**) you last sent to the room, for the time before the bridge. " +
			"Give the phone's time zone (e.g. `Europe/Berlin`) when it is not the bridge's; `import cancel` stops an import under way."})
}

func (b *Bridge) cmdImport(ctx context.Context, ce *commandEvent) string {
	p, err := b.portals.ByRoom(ctx, ce.roomID)
	if err != nil || p == nil || p.Key().Receiver != ce.sender {
		return fmt.Sprintf("Send the exported zip to one of your WhatsApp chats' rooms, then `%s import` there.", commandPrefix)
	}
	if len(ce.args) == 1 && strings.EqualFold(ce.args[0], "cancel") {
		if !b.imports.cancel(p.Key()) {
			return "No import is running in this room."
		}
		return "Cancelling the import. What was imported stays; importing the same export again resumes it."
	}
	loc, err := importapi.Location(strings.Join(ce.args, ""))
	if err != nil {
		return "Sorry: " + err.Error()
	}
	zip, err := b.latestZip(ctx, ce.roomID, ce.sender, ce.eventID)
	if err != nil {
		return "Sorry: " + err.Error()
	}
	// An export with years of photos takes minutes: answer now and post the report when it
	// is ready, rather than hold up the homeserver's transaction (which it would retry).
	started := b.jobs.Go(context.WithoutCancel(ctx), "import", func(ctx context.Context) {
		b.reply(ctx, ce.roomID, b.importFromRoom(ctx, ce.sender, p, zip, loc))
	})
	if !started {
		return errStopping.Error()
	}
	return fmt.Sprintf("Importing %s; I will post the report here.", zip.name)
}

func (b *Bridge) importFromRoom(ctx context.Context, user id.UserID, p *portal.Portal, zip *roomZip, loc *time.Location) string {
	f, size, err := b.fetchZip(ctx, zip)
	if err != nil {
		return "Could not download the zip: " + err.Error()
	}
	defer dropSpool(f)
	rep, err := b.importExport(ctx, user, p, f, size, loc)
	if err != nil {
		return "Sorry: " + err.Error()
	}
	return rep.Text(20)
}

// errNotAnExport marks a zip the parser refused: the caller's mistake, not the bridge's.
var errNotAnExport = errors.New("that is not a WhatsApp chat export")

// importExport imports the export zip in r into p's room for user. It is the one code path of
// the bot's import command and the provisioning endpoint.
func (b *Bridge) importExport(ctx context.Context, user id.UserID, p *portal.Portal, r io.ReaderAt, size int64, loc *time.Location) (*importapi.Report, error) {
	log := zerolog.Ctx(ctx).With().Stringer("user_id", user).Str("chat_jid", b.logJID(p.Key().ChatJID)).Logger()
	ctx, done := b.imports.start(ctx, p.Key())
	defer done()
	maxMessages := b.cfg.Bridge.Import.MaxMessages
	res, err := chatexport.ReadLimited(ctx, r, size, loc, chatexport.Limits{MaxMessages: maxMessages})
	switch {
	case errors.Is(err, chatexport.ErrTooManyMessages):
		return nil, fmt.Errorf("%w: nothing was imported; split the export or raise bridge.import.max_messages (%d): %w", errTooLarge, maxMessages, err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("the import was cancelled before anything was imported: %w", ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errNotAnExport, err)
	}
	zone := loc.String()
	if loc == time.Local {
		abbr, _ := time.Now().Zone()
		zone = "the bridge's local time (" + abbr + ")"
	}
	rep := &importapi.Report{User: string(user), Chat: p.Key().ChatJID, RoomID: string(p.RoomID()), Format: res.Format, TimeZone: zone}
	for _, u := range res.Unparsed {
		rep.Unparsed = append(rep.Unparsed, importapi.Unparsed{Line: u.Line, Text: u.Text, Reason: u.Reason})
	}
	rep.UnparsedTotal = res.UnparsedTotal
	msgs := exportMessages(res, rep, b.uploadLimit(ctx))
	var ownNames []string
	if u, err := b.getUser(ctx, user, false); err == nil && u != nil {
		u.mu.Lock()
		ownNames = []string{u.row.WAPushName, "+" + u.row.WAPhone}
		u.mu.Unlock()
	}
	log.Info().Int("messages", len(msgs)).Int("unparsed", len(res.Unparsed)).Str("format", res.Format).
		Str("time_zone", zone).Msg("Importing a chat export")
	pr, err := p.ImportExport(ctx, msgs, ownNames)
	rep.Imported, rep.AlreadyThere, rep.Newer = pr.Imported, pr.AlreadyThere, pr.Newer
	if cause := context.Cause(ctx); cause == errImportCancelled {
		log.Info().Int("imported", pr.Imported).Msg("The user cancelled the import")
		return nil, fmt.Errorf("the import was cancelled after %d new messages (importing the export again resumes it)", pr.Imported)
	}
	if err != nil {
		log.Err(err).Int("imported", pr.Imported).Msg("The import stopped")
		return nil, fmt.Errorf("the import stopped after %d new messages (importing the export again resumes it): %w", pr.Imported, err)
	}
	log.Info().Int("imported", rep.Imported).Int("already_there", rep.AlreadyThere).Int("newer", rep.Newer).Msg("Imported a chat export")
	rep.RoomID = string(p.RoomID())
	return rep, nil
}

// errTooLarge marks an export over the bridge's limits: the caller's to split.
var errTooLarge = errors.New("the export is too large to import")

// uploadLimit is the largest file the homeserver takes (its /media/v3/config), within
// maxAttachment. An attachment above it is not read at all: reading a 10 GB file from a
// 10 MB zip only for the homeserver to refuse it would take the bridge's memory first.
func (b *Bridge) uploadLimit(ctx context.Context) int64 {
	resp, err := b.bot.GetMediaConfig(ctx)
	if err != nil || resp.UploadSize <= 0 {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("The homeserver did not say how large an upload may be; using the bridge's own bound")
		return maxAttachment
	}
	return min(resp.UploadSize, maxAttachment)
}

// exportMessages turns the parsed export into what a portal imports, leaving out system
// lines, and notes in rep the attachments the zip lacks or that are over limit (bytes).
func exportMessages(res *chatexport.Result, rep *importapi.Report, limit int64) []portal.ExportMessage {
	msgs := make([]portal.ExportMessage, 0, len(res.Messages))
	for _, m := range res.Messages {
		if m.System {
			continue
		}
		em := portal.ExportMessage{Time: m.Time, Sender: m.Sender, Text: m.Text}
		switch f, ok := res.Files[m.Attachment]; {
		case m.Attachment != "" && ok && f.UncompressedSize64 > uint64(limit):
			rep.TooLarge = append(rep.TooLarge, m.Attachment)
			em.Text = strings.TrimSpace(fmt.Sprintf("%s [%s (%d MiB) is larger than the homeserver takes (%d MiB) and was not imported]",
				em.Text, m.Attachment, f.UncompressedSize64>>20, limit>>20))
		case m.Attachment != "" && ok:
			em.FileName = m.Attachment
			em.Load = func() ([]byte, error) {
				rc, err := f.Open()
				if err != nil {
					return nil, err
				}
				defer rc.Close()
				// The zip's reader fails past the declared size, which was checked above.
				return io.ReadAll(io.LimitReader(rc, limit))
			}
		case m.Attachment != "":
			rep.MissingFiles = append(rep.MissingFiles, m.Attachment)
			em.Text = strings.TrimSpace(em.Text + " [" + m.Attachment + " was not in the export]")
		case m.Omitted:
			em.Text = strings.TrimSpace(em.Text + " [media not included in the export]")
		}
		msgs = append(msgs, em)
	}
	rep.Messages = len(msgs)
	return msgs
}

// errImportCancelled is the cause of an import's end when its user cancelled it.
var errImportCancelled = errors.New("cancelled by the user")

// importRuns are the imports under way, one per portal at most at a time that can be
// cancelled (the portal serialises imports of one chat), so `import cancel` can end one.
type importRuns struct {
	mu   sync.Mutex
	runs map[database.PortalKey]context.CancelCauseFunc
}

// start registers an import of key's chat; done unregisters it.
func (r *importRuns) start(ctx context.Context, key database.PortalKey) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	r.mu.Lock()
	if r.runs == nil {
		r.runs = make(map[database.PortalKey]context.CancelCauseFunc)
	}
	r.runs[key] = cancel
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.runs, key)
		r.mu.Unlock()
		cancel(nil)
	}
}

// cancel ends the import of key's chat and reports whether one was running.
func (r *importRuns) cancel(key database.PortalKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cancel, ok := r.runs[key]
	if ok {
		cancel(errImportCancelled)
	}
	return ok
}
