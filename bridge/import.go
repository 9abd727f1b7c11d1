package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/chatexport"
	"codeberg.org/causeway/causeway/internal/importcmd"
	"codeberg.org/causeway/causeway/portal"
)

// maxAttachment bounds one attachment read from an export into memory.
const maxAttachment = 2 << 30

func (b *Bridge) addImportCommand(cs *commandSet) {
	cs.add(&command{name: "import", args: "[TIME ZONE]", minLevel: config.LevelUser, handler: b.cmdImport,
		help: "In a WhatsApp chat's room: import the chat export (the zip from WhatsApp's **Export chat**) you last sent to the room, for the time before the bridge. " +
			"Give the phone's time zone (e.g. `Europe/Berlin`) when it is not the bridge's."})
}

func (b *Bridge) cmdImport(ctx context.Context, ce *commandEvent) string {
	p, err := b.portals.ByRoom(ctx, ce.roomID)
	if err != nil || p == nil || p.Key().Receiver != ce.sender {
		return fmt.Sprintf("Send the exported zip to one of your WhatsApp chats' rooms, then `%s import` there.", commandPrefix)
	}
	loc, err := importcmd.Location(strings.Join(ce.args, ""))
	if err != nil {
		return "Sorry: " + err.Error()
	}
	zipEvt, err := b.latestZip(ctx, ce.roomID, ce.sender, ce.eventID)
	if err != nil {
		return "Sorry: " + err.Error()
	}
	content := zipEvt.Content.AsMessage()
	uri, err := content.URL.Parse()
	if err != nil {
		return "The zip's URL is not valid: " + err.Error()
	}
	// An export with years of photos takes minutes: answer now and post the report when it
	// is ready, rather than hold up the homeserver's transaction (which it would retry).
	started := b.jobs.Go(context.WithoutCancel(ctx), "import", func(ctx context.Context) {
		b.reply(ctx, ce.roomID, b.importFromRoom(ctx, ce.sender, p, uri, loc))
	})
	if !started {
		return errStopping.Error()
	}
	return fmt.Sprintf("Importing %s; I will post the report here.", content.FileName)
}

func (b *Bridge) importFromRoom(ctx context.Context, user id.UserID, p *portal.Portal, uri id.ContentURI, loc *time.Location) string {
	data, err := b.bot.DownloadBytes(ctx, uri)
	if err != nil {
		return "Could not download the zip: " + err.Error()
	}
	rep, err := b.importExport(ctx, user, p, bytes.NewReader(data), int64(len(data)), loc)
	if err != nil {
		return "Sorry: " + err.Error()
	}
	return rep.Text(20)
}

// errNotAnExport marks a zip the parser refused: the caller's mistake, not the bridge's.
var errNotAnExport = errors.New("that is not a WhatsApp chat export")

// importExport imports the export zip in r into p's room for user. It is the one code path of
// the bot's import command and the provisioning endpoint.
func (b *Bridge) importExport(ctx context.Context, user id.UserID, p *portal.Portal, r io.ReaderAt, size int64, loc *time.Location) (*importcmd.Report, error) {
	log := zerolog.Ctx(ctx).With().Stringer("user_id", user).Str("chat_jid", p.Key().ChatJID).Logger()
	res, err := chatexport.Read(r, size, loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotAnExport, err)
	}
	zone := loc.String()
	if loc == time.Local {
		abbr, _ := time.Now().Zone()
		zone = "the bridge's local time (" + abbr + ")"
	}
	rep := &importcmd.Report{User: string(user), Chat: p.Key().ChatJID, RoomID: string(p.RoomID()), Format: res.Format, TimeZone: zone}
	for _, u := range res.Unparsed {
		rep.Unparsed = append(rep.Unparsed, importcmd.Unparsed{Line: u.Line, Text: u.Text, Reason: u.Reason})
	}
	msgs := exportMessages(res, rep)
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
	if err != nil {
		log.Err(err).Int("imported", pr.Imported).Msg("The import stopped")
		return nil, fmt.Errorf("the import stopped after %d new messages (importing the export again resumes it): %w", pr.Imported, err)
	}
	log.Info().Int("imported", rep.Imported).Int("already_there", rep.AlreadyThere).Int("newer", rep.Newer).Msg("Imported a chat export")
	rep.RoomID = string(p.RoomID())
	return rep, nil
}

// exportMessages turns the parsed export into what a portal imports, leaving out system
// lines, and notes in rep the attachments the zip lacks.
func exportMessages(res *chatexport.Result, rep *importcmd.Report) []portal.ExportMessage {
	msgs := make([]portal.ExportMessage, 0, len(res.Messages))
	for _, m := range res.Messages {
		if m.System {
			continue
		}
		em := portal.ExportMessage{Time: m.Time, Sender: m.Sender, Text: m.Text}
		switch f, ok := res.Files[m.Attachment]; {
		case m.Attachment != "" && ok:
			em.FileName = m.Attachment
			em.Load = func() ([]byte, error) {
				rc, err := f.Open()
				if err != nil {
					return nil, err
				}
				defer rc.Close()
				return io.ReadAll(io.LimitReader(rc, maxAttachment))
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

// latestZip finds the zip the command came with (as its caption), or else the newest zip
// file the user sent to the room.
func (b *Bridge) latestZip(ctx context.Context, room id.RoomID, sender id.UserID, commandEvent id.EventID) (*event.Event, error) {
	if evt, err := b.bot.GetEvent(ctx, room, commandEvent); err == nil {
		_ = evt.Content.ParseRaw(event.EventMessage)
		if c := evt.Content.AsMessage(); c.MsgType == event.MsgFile && strings.HasSuffix(strings.ToLower(c.FileName), ".zip") {
			return evt, nil
		}
	}
	resp, err := b.bot.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		return nil, fmt.Errorf("could not read the room: %w", err)
	}
	for _, evt := range resp.Chunk {
		if evt.Sender != sender || evt.Type.Type != event.EventMessage.Type {
			continue
		}
		_ = evt.Content.ParseRaw(event.EventMessage)
		c := evt.Content.AsMessage()
		name := c.FileName
		if name == "" {
			name = c.Body
		}
		if c.MsgType == event.MsgFile && strings.HasSuffix(strings.ToLower(name), ".zip") && !strings.HasPrefix(c.Body, commandPrefix) {
			return evt, nil
		}
	}
	return nil, fmt.Errorf("no .zip file from you among the room's last 100 events; send the export first")
}
