package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/chatexport"
	"codeberg.org/causeway/causeway/portal"
)

func (b *Bridge) addImportCommand(cs *commandSet) {
	cs.add(&command{name: "import", minLevel: config.LevelUser, handler: b.cmdImport,
		help: "In a WhatsApp chat's room: import the chat export (the zip from WhatsApp's **Export chat**) you last sent to the room, for the time before the bridge."})
}

func (b *Bridge) cmdImport(ctx context.Context, ce *commandEvent) string {
	p, err := b.portals.ByRoom(ctx, ce.roomID)
	if err != nil || p == nil || p.Key().Receiver != ce.sender {
		return fmt.Sprintf("Send the exported zip to one of your WhatsApp chats' rooms, then `%s import` there.", commandPrefix)
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
	data, err := b.bot.DownloadBytes(ctx, uri)
	if err != nil {
		return "Could not download the zip: " + err.Error()
	}
	res, err := chatexport.Read(bytes.NewReader(data), int64(len(data)), time.Local)
	if err != nil {
		return "That is not a WhatsApp chat export: " + err.Error()
	}
	msgs := make([]portal.ExportMessage, 0, len(res.Messages))
	for _, m := range res.Messages {
		if m.System {
			continue
		}
		em := portal.ExportMessage{Time: m.Time, Sender: m.Sender, Text: m.Text}
		if f, ok := res.Files[m.Attachment]; ok && m.Attachment != "" {
			rc, err := f.Open()
			if err == nil {
				em.Data, err = io.ReadAll(io.LimitReader(rc, 2<<30))
				rc.Close()
			}
			if err != nil {
				return fmt.Sprintf("Could not read %s from the zip: %v", m.Attachment, err)
			}
			em.FileName = m.Attachment
		} else if m.Omitted {
			em.Text = strings.TrimSpace(em.Text + " [media not included in the export]")
		}
		msgs = append(msgs, em)
	}
	var ownNames []string
	if u, err := b.getUser(ctx, ce.sender, false); err == nil && u != nil {
		u.mu.Lock()
		ownNames = []string{u.row.WAPushName, "+" + u.row.WAPhone}
		u.mu.Unlock()
	}
	report, err := p.ImportExport(ctx, msgs, ownNames)
	if err != nil {
		return "The import stopped: " + err.Error()
	}
	reply := fmt.Sprintf("Imported %d messages from the export (%d were already here, %d are newer than the bridge's history and were left out).",
		report.Imported, report.AlreadyThere, report.Newer)
	if len(res.Unparsed) > 0 {
		reply += fmt.Sprintf("\n\n%d lines could not be read:\n", len(res.Unparsed))
		for i, u := range res.Unparsed {
			if i == 20 {
				reply += fmt.Sprintf("* … and %d more\n", len(res.Unparsed)-20)
				break
			}
			reply += fmt.Sprintf("* line %d: %s\n", u.Line, u.Reason)
		}
	}
	return reply
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
