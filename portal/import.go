package portal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
)

// ExportMessage is one message of a WhatsApp chat export, ready to import.
type ExportMessage struct {
	Time     time.Time
	Sender   string // as written in the export
	Text     string
	FileName string // attachment, when the export included it
	// Load reads the attachment (nil when there is none). It is called only for a message
	// being imported, so an import holds one attachment in memory rather than the whole zip.
	Load func() ([]byte, error)
}

// ImportReport says what an import did.
type ImportReport struct {
	Imported, AlreadyThere, Newer int
}

// ImportExport adds the messages of a chat export that are older than the room's first
// bridged message, with their original times, and archives them marked source: export.
// ownNames are the names the export uses for the logged-in user. Messages imported before
// are skipped, so importing the same export twice changes nothing. On error the report
// counts what was done before it.
func (p *Portal) ImportExport(ctx context.Context, msgs []ExportMessage, ownNames []string) (*ImportReport, error) {
	p.importMu.Lock()
	defer p.importMu.Unlock()
	report := &ImportReport{}
	if err := p.ensureRoom(ctx); err != nil {
		return report, err
	}
	cutoff, err := p.m.deps.DB.Messages.Earliest(ctx, p.row.PortalKey)
	if err != nil {
		return report, err
	}
	if cutoff.IsZero() {
		cutoff = time.Now()
	}
	wa, _ := p.m.deps.Logins.WhatsApp(p.row.Receiver)
	seen := map[string]int{}
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		if !m.Time.Before(cutoff) {
			report.Newer++
			continue
		}
		imported, err := p.importOne(ctx, wa, m, exportID(m, seen), ownNames)
		if err != nil {
			return report, fmt.Errorf("message %d (%s, %s): %w", i+1, m.Time.Format(time.DateTime), m.Sender, err)
		}
		if imported {
			report.Imported++
		} else {
			report.AlreadyThere++
		}
	}
	return report, nil
}

// exportID names an imported message by what it says, so that importing the export again
// finds it. Exports without seconds (Android's) can hold the same words from the same
// sender twice in one minute ("ok", "ok"): the count of identical earlier ones tells them
// apart. The first keeps the bare hash, which is what imports before the count used.
func exportID(m ExportMessage, seen map[string]int) string {
	sum := sha256.Sum256([]byte(m.Time.UTC().Format(time.RFC3339) + "\x00" + m.Sender + "\x00" + m.Text + "\x00" + m.FileName))
	id := "export." + hex.EncodeToString(sum[:10])
	n := seen[id]
	seen[id] = n + 1
	if n == 0 {
		return id
	}
	return fmt.Sprintf("%s.%d", id, n)
}

// importOne sends one message to the room unless an earlier import did; imported is false
// when it was already there.
func (p *Portal) importOne(ctx context.Context, wa WhatsApp, m ExportMessage, waID string, ownNames []string) (imported bool, err error) {
	key := p.row.PortalKey
	if existing, err := p.m.deps.DB.Messages.GetPart(ctx, key, waID, ""); err != nil {
		return false, err
	} else if existing != nil {
		return false, nil
	}
	as, senderJID, prefix, err := p.exportSender(ctx, wa, m.Sender, ownNames)
	if err != nil {
		return false, err
	}
	entry := &archive.Entry{Kind: archive.KindMessage, Account: string(key.Receiver), Chat: key.ChatJID, ChatName: p.row.Name,
		MessageID: waID, Sender: senderJID, SenderName: m.Sender, Source: "export", Time: m.Time,
		Message: &archive.Message{Text: m.Text, Type: string(event.MsgText)}}
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: prefix + m.Text}
	var data []byte
	if m.Load != nil {
		if data, err = m.Load(); err != nil {
			return false, fmt.Errorf("failed to read %s from the export: %w", m.FileName, err)
		}
		mime := http.DetectContentType(data)
		up, err := p.m.matrix.Upload(ctx, as, p.RoomID(), data, mime, m.FileName)
		if err != nil {
			return false, fmt.Errorf("failed to upload %s: %w", m.FileName, err)
		}
		content = &event.MessageEventContent{MsgType: event.MsgFile, Body: m.FileName, FileName: m.FileName,
			URL: up.URL, Info: &event.FileInfo{MimeType: mime, Size: len(data)}}
		if up.File != nil {
			content.File = &event.EncryptedFileInfo{EncryptedFile: *up.File.Attachment(), URL: up.File.URL}
		}
		if strings.HasPrefix(mime, "image/") {
			content.MsgType = event.MsgImage
		}
		if m.Text != "" {
			content.Body = prefix + m.Text
		}
		entry.Message.Type = string(content.MsgType)
		entry.Message.Media = []archive.MediaRef{{MimeType: mime, FileName: m.FileName}}
	}
	marker, err := p.archiveImported(ctx, entry, data)
	if err != nil {
		return false, err
	}
	evtID, err := p.m.matrix.SendMessage(ctx, as, p.RoomID(), event.EventMessage, content, SendOptions{
		Timestamp: m.Time, TransactionID: txnID(key, waID, 0),
	})
	if err != nil {
		return false, fmt.Errorf("failed to send: %w", err)
	}
	if err := p.m.deps.DB.Messages.Put(ctx, &database.Message{PortalKey: key, WAID: waID, MXID: evtID,
		SenderJID: senderJID, FromMe: senderJID == ownJIDString(wa), Timestamp: m.Time}); err != nil {
		return false, err
	}
	p.recordedDirectly(waID)
	if marker != "" {
		// A leftover marker is harmless: the message row now says the message is done.
		if err := p.m.deps.DB.KV.Delete(ctx, marker); err != nil {
			p.log.Warn().Err(err).Str("message_id", waID).Msg("Failed to clear an import's archive marker")
		}
	}
	return true, nil
}

// archiveImported records an imported message before it is sent, once: an import that
// stopped between archiving a message and sending it (a homeserver outage, an interrupted
// CLI) must not archive it again when the export is imported again. A marker in kv_store,
// committed with the entry, remembers that until the message row does; archiveImported
// returns the marker's key for the caller to clear then.
func (p *Portal) archiveImported(ctx context.Context, entry *archive.Entry, data []byte) (string, error) {
	a := p.m.deps.Archive
	if a == nil {
		return "", nil
	}
	marker := "import_archived|" + string(p.row.Receiver) + "|" + p.row.ChatJID + "|" + entry.MessageID
	if done, err := p.m.deps.DB.KV.Get(ctx, marker); err != nil {
		return "", err
	} else if done != "" {
		return marker, nil
	}
	if data != nil {
		sha, size, err := a.PutMedia(ctx, bytes.NewReader(data))
		if err != nil {
			return "", fmt.Errorf("failed to archive %s: %w", entry.Message.Media[0].FileName, err)
		}
		entry.Message.Media[0].SHA256, entry.Message.Media[0].Size = sha, size
	}
	mark := func(ctx context.Context) error { return p.m.deps.DB.KV.Set(ctx, marker, "1") }
	var err error
	if c, ok := a.(entryCommitter); ok {
		_, err = c.AppendWith(ctx, entry, mark)
	} else if _, err = a.Append(ctx, entry); err == nil {
		err = mark(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("failed to archive: %w", err)
	}
	return marker, nil
}

func ownJIDString(wa WhatsApp) string {
	if wa == nil {
		return ""
	}
	return wa.OwnJID().ToNonAD().String()
}

// exportSender picks who says an imported message: the user's own ghost for their names
// (the bot in a direct chat, see ownSpeaker), the contact's ghost in a direct chat, and
// otherwise the bot, naming the sender.
func (p *Portal) exportSender(ctx context.Context, wa WhatsApp, sender string, ownNames []string) (as id.UserID, senderJID, prefix string, err error) {
	for _, own := range ownNames {
		if own != "" && strings.EqualFold(strings.TrimSpace(sender), own) && wa != nil {
			if !p.row.IsGroup {
				return p.ownSpeaker(), wa.OwnJID().ToNonAD().String(), "", nil
			}
			ghost, err := p.joinedGhost(ctx, wa.OwnJID())
			return ghost, wa.OwnJID().ToNonAD().String(), "", err
		}
	}
	if !p.row.IsGroup {
		ghost, err := p.joinedGhost(ctx, p.chat)
		return ghost, p.chat.String(), "", err
	}
	return p.m.matrix.BotMXID(), "", sender + ": ", nil
}
