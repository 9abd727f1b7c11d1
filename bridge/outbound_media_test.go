package bridge_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/portal"
)

// TestOutboundMediaArchived: every file a Matrix user sends to WhatsApp is in the records
// archive by content, so the record shows what an official sent after WhatsApp's copy expired.
func TestOutboundMediaArchived(t *testing.T) {
	f := newDM(t, "outmedia_alice", "4915551801", "4915551802")
	ctx := context.Background()
	mx, room, c := f.alice.mx, f.room, f.contact
	tests := []struct {
		name, mime, file, msgtype string
		typ                       event.Type
		data                      []byte
		arrived                   func(*events.Message) bool
	}{
		{"image", "image/gif", "pic.gif", "m.image", event.EventMessage, bytes.Repeat([]byte("GIF89a outbound image "), 100),
			func(m *events.Message) bool { return m.Message.GetImageMessage() != nil }},
		{"file", "text/plain", "minutes.txt", "m.file", event.EventMessage, []byte("minutes of the meeting, outbound"),
			func(m *events.Message) bool { return m.Message.GetDocumentMessage() != nil }},
		{"audio", "audio/ogg", "voice.ogg", "m.audio", event.EventMessage, bytes.Repeat([]byte("OggS outbound voice "), 50),
			func(m *events.Message) bool { return m.Message.GetAudioMessage() != nil }},
		{"sticker", "image/webp", "sticker.webp", "", event.EventSticker, bytes.Repeat([]byte("RIFF outbound sticker "), 40),
			func(m *events.Message) bool { return m.Message.GetStickerMessage() != nil }},
	}
	sent := map[string]id.EventID{}
	for _, tt := range tests {
		up, err := mx.UploadBytesWithName(ctx, tt.data, tt.mime, tt.file)
		if err != nil {
			t.Fatal(err)
		}
		content := map[string]any{"body": tt.file, "url": up.ContentURI.CUString(),
			"info": map[string]any{"mimetype": tt.mime, "size": len(tt.data), "w": 64, "h": 64}}
		if tt.msgtype != "" {
			content["msgtype"] = tt.msgtype
		}
		resp, err := mx.SendMessageEvent(ctx, room, tt.typ, content)
		if err != nil {
			t.Fatal(err)
		}
		sent[tt.name] = resp.EventID
		waitWA(t, c, tt.name, tt.arrived)
	}
	a := lastBridge.br.Archive()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgID := portal.MessageIDFor(sent[tt.name])
			var entry *archive.Entry
			// The phone has it, so the entry was committed before the send.
			deadline := time.Now().Add(10 * time.Second)
			for entry == nil && time.Now().Before(deadline) {
				for _, e := range archiveEntries(t) {
					if e.Kind == archive.KindOutboundSend && e.MessageID == msgID {
						entry = e
					}
				}
				if entry == nil {
					time.Sleep(200 * time.Millisecond)
				}
			}
			if entry == nil || entry.Message == nil || len(entry.Message.Media) != 1 {
				t.Fatalf("archive entry of the sent %s: %+v, want one with the file", tt.name, entry)
			}
			sum := sha256.Sum256(tt.data)
			ref := entry.Message.Media[0]
			if ref.SHA256 != hex.EncodeToString(sum[:]) || ref.Size != int64(len(tt.data)) || ref.MimeType != tt.mime || ref.FileName != tt.file {
				t.Fatalf("archived media %+v, want the %d bytes sent (%s, %s)", ref, len(tt.data), tt.mime, tt.file)
			}
			fh, err := a.OpenMedia(ref.SHA256)
			if err != nil {
				t.Fatalf("the archive does not hold the file: %v", err)
			}
			defer fh.Close()
			stored, err := io.ReadAll(fh)
			if err != nil || !bytes.Equal(stored, tt.data) {
				t.Fatalf("the archive holds %d bytes (%v), not what was sent", len(stored), err)
			}
		})
	}
}
