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

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
)

// ExportMessage is one message of a WhatsApp chat export, ready to import.
type ExportMessage struct {
	Time     time.Time
	Sender   string // as written in the export
	Text     string
	FileName string // attachment, when the export included it
	Data     []byte
}

// ImportReport says what an import did.
type ImportReport struct {
	Imported, AlreadyThere, Newer int
}

// ImportExport adds the messages of a chat export that are older than the room's first
// bridged message, with their original times, and archives them marked source: export.
// ownNames are the names the export uses for the logged-in user. Messages imported before
// are skipped, so importing the same export twice changes nothing.
func (p *Portal) ImportExport(ctx context.Context, msgs []ExportMessage, ownNames []string) (*ImportReport, error) {
	if err := p.ensureRoom(ctx); err != nil {
		return nil, err
	}
	key := p.row.PortalKey
	cutoff, err := p.m.deps.DB.Messages.Earliest(ctx, key)
	if err != nil {
		return nil, err
	}
	if cutoff.IsZero() {
		cutoff = time.Now()
	}
	wa, _ := p.m.deps.Logins.WhatsApp(key.Receiver)
	report := &ImportReport{}
	for i, m := range msgs {
		if !m.Time.Before(cutoff) {
			report.Newer++
			continue
		}
		sum := sha256.Sum256([]byte(m.Time.UTC().Format(time.RFC3339) + "\x00" + m.Sender + "\x00" + m.Text + "\x00" + m.FileName))
		waID := "export." + hex.EncodeToString(sum[:10])
		if existing, err := p.m.deps.DB.Messages.GetPart(ctx, key, waID, ""); err != nil {
			return report, err
		} else if existing != nil {
			report.AlreadyThere++
			continue
		}
		intent, senderJID, prefix, err := p.exportSender(ctx, wa, m.Sender, ownNames)
		if err != nil {
			return report, err
		}
		entry := &archive.Entry{Kind: archive.KindMessage, Account: string(key.Receiver), Chat: key.ChatJID, ChatName: p.row.Name,
			MessageID: waID, Sender: senderJID, SenderName: m.Sender, Source: "export", Time: m.Time,
			Message: &archive.Message{Text: m.Text, Type: "text"}}
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: prefix + m.Text}
		if m.Data != nil {
			mime := http.DetectContentType(m.Data)
			up, err := intent.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: m.Data, ContentLength: int64(len(m.Data)), ContentType: mime, FileName: m.FileName})
			if err != nil {
				return report, fmt.Errorf("failed to upload %s: %w", m.FileName, err)
			}
			content = &event.MessageEventContent{MsgType: event.MsgFile, Body: m.FileName, FileName: m.FileName,
				URL: up.ContentURI.CUString(), Info: &event.FileInfo{MimeType: mime, Size: len(m.Data)}}
			if strings.HasPrefix(mime, "image/") {
				content.MsgType = event.MsgImage
			}
			if m.Text != "" {
				content.Body = prefix + m.Text
			}
			entry.Message.Type = string(content.MsgType)
			if a := p.m.deps.Archive; a != nil {
				sha, size, err := a.PutMedia(ctx, bytes.NewReader(m.Data))
				if err != nil {
					return report, err
				}
				entry.Message.Media = []archive.MediaRef{{SHA256: sha, Size: size, MimeType: mime, FileName: m.FileName}}
			}
		}
		if a := p.m.deps.Archive; a != nil {
			if _, err := a.Append(ctx, entry); err != nil {
				return report, fmt.Errorf("failed to archive imported message %d: %w", i, err)
			}
		}
		resp, err := intent.SendMessageEvent(ctx, p.RoomID(), event.EventMessage, content, mautrix.ReqSendEvent{
			Timestamp: m.Time.UnixMilli(), TransactionID: txnID(key, waID, 0),
		})
		if err != nil {
			return report, fmt.Errorf("failed to send imported message %d: %w", i, err)
		}
		if err := p.m.deps.DB.Messages.Put(ctx, &database.Message{PortalKey: key, WAID: waID, MXID: resp.EventID,
			SenderJID: senderJID, FromMe: senderJID == ownJIDString(wa), Timestamp: m.Time}); err != nil {
			return report, err
		}
		report.Imported++
	}
	return report, nil
}

func ownJIDString(wa WhatsApp) string {
	if wa == nil {
		return ""
	}
	return wa.OwnJID().ToNonAD().String()
}

// exportSender picks who says an imported message: the user's own ghost for their names,
// the contact's ghost in a direct chat, and otherwise the bot, naming the sender.
func (p *Portal) exportSender(ctx context.Context, wa WhatsApp, sender string, ownNames []string) (*appservice.IntentAPI, string, string, error) {
	for _, own := range ownNames {
		if own != "" && strings.EqualFold(strings.TrimSpace(sender), own) && wa != nil {
			intent, err := p.joinedGhost(ctx, wa.OwnJID())
			return intent, wa.OwnJID().ToNonAD().String(), "", err
		}
	}
	if !p.row.IsGroup {
		intent, err := p.joinedGhost(ctx, p.chat)
		return intent, p.chat.String(), "", err
	}
	return p.m.bot, "", sender + ": ", nil
}

func (p *Portal) joinedGhost(ctx context.Context, jid types.JID) (*appservice.IntentAPI, error) {
	pup, err := p.m.deps.Puppets.Get(ctx, jid)
	if err != nil {
		return nil, err
	}
	intent := p.m.deps.Puppets.Intent(pup)
	return intent, intent.EnsureJoined(ctx, p.RoomID())
}
