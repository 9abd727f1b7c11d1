//go:build goolm

package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
)

// TestEncryptedMedia: files in an encrypted portal, both ways. A phone's image arrives as
// an encrypted file (`file`, no `url`; the homeserver holds only ciphertext) that the
// user's client opens to the phone's bytes; each kind of encrypted file from the user's
// client reaches the phone as the bytes it encrypted; a file whose ciphertext does not
// match its hash is not relayed, is archived as such, and its sender is told which.
func TestEncryptedMedia(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "alice_e2ee_media")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_media", "4915557401", "Alice Media")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557402", "Bob Media")
	bobGhost, bot := cfg.PuppetUserID("4915557402"), cfg.BotUserID()
	ctx := context.Background()

	png := bytes.Repeat([]byte("\x89PNG image for an encrypted portal "), 200)
	if _, err := bob.SendImage(ctx, alice.phone.JID(), png, "image/png", "a photo for the encrypted room"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bobGhost)
	img := ac.waitDecrypted(t, room, bobGhost, func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgImage
	})
	file := encryptedFileOf(t, img)
	blob, err := alice.mx.DownloadBytes(ctx, file.URL.ParseOrIgnore())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, png[:64]) {
		t.Fatalf("the homeserver's media repository holds the image in plaintext (%d bytes)", len(blob))
	}
	if got := openFile(t, file, blob); !bytes.Equal(got, png) {
		t.Fatalf("the user's client opened %d bytes, not the %d the phone sent", len(got), len(png))
	}

	type download func(*waE2E.Message) whatsmeow.DownloadableMessage
	kinds := []struct {
		name, msgtype, mime, file string
		typ                       event.Type
		data                      []byte
		media                     download
	}{
		{"image", "m.image", "image/gif", "pic.gif", event.EventMessage, bytes.Repeat([]byte("GIF89a encrypted image "), 100),
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return nilIfNil(m.GetImageMessage()) }},
		{"video", "m.video", "video/mp4", "clip.mp4", event.EventMessage, bytes.Repeat([]byte("ftypmp42 encrypted video "), 100),
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return nilIfNil(m.GetVideoMessage()) }},
		{"audio", "m.audio", "audio/ogg", "voice.ogg", event.EventMessage, bytes.Repeat([]byte("OggS encrypted voice "), 50),
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return nilIfNil(m.GetAudioMessage()) }},
		{"document", "m.file", "text/plain", "minutes.txt", event.EventMessage, []byte("minutes of the encrypted meeting"),
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return nilIfNil(m.GetDocumentMessage()) }},
		{"sticker", "", "image/webp", "sticker.webp", event.EventSticker, bytes.Repeat([]byte("RIFF encrypted sticker "), 40),
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return nilIfNil(m.GetStickerMessage()) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ac.sendEncrypted(t, room, k.typ, encryptedFileContent(t, alice.mx, k.msgtype, k.file, k.mime, k.data, false))
			msg := waitWA(t, bob, k.name, func(m *events.Message) bool { return k.media(m.Message) != nil })
			got, err := bob.Client.Download(ctx, k.media(msg.Message))
			if err != nil || !bytes.Equal(got, k.data) {
				t.Fatalf("the phone got %d bytes (%v), not the %d the user's client encrypted", len(got), err, len(k.data))
			}
		})
	}

	// A file altered on the homeserver: its ciphertext no longer matches the hash the
	// (encrypted, so unalterable) event carries.
	tampered := ac.sendEncrypted(t, room, event.EventMessage,
		encryptedFileContent(t, alice.mx, "m.file", "tampered.txt", "text/plain", []byte("this file will not survive the trip"), true))
	notice := ac.waitDecrypted(t, room, bot, func(e *event.Event) bool {
		return e.Type == event.EventMessage && strings.Contains(e.Content.AsMessage().Body, "tampered.txt")
	})
	body := notice.Content.AsMessage().Body
	if !strings.Contains(body, "not sent to WhatsApp") || !strings.Contains(body, "hash") {
		t.Errorf("the notice does not say the file failed its check and was not sent: %q", body)
	}
	if rel := notice.Content.AsMessage().RelatesTo; rel == nil || rel.GetReplyTo() != tampered {
		t.Errorf("the notice does not answer the tampered message %s: %+v", tampered, rel)
	}
	ac.sendText(t, room, "after the tampered file")
	waitWA(t, bob, "the text after the tampered file", func(m *events.Message) bool {
		if m.Message.GetDocumentMessage().GetFileName() == "tampered.txt" {
			t.Errorf("the tampered file reached WhatsApp")
		}
		return m.Message.GetConversation() == "after the tampered file" || m.Message.GetExtendedTextMessage().GetText() == "after the tampered file"
	})
	var recorded *archive.Entry
	for _, e := range archiveEntries(t) {
		if e.Outbound != nil && e.Outbound.MatrixEventID == string(tampered) {
			recorded = e
		}
	}
	if recorded == nil || recorded.Outbound.Status != "not_relayed" || !strings.Contains(recorded.Outbound.Error, "tampered.txt") {
		t.Errorf("the archive does not record the tampered file as not relayed with the reason: %+v", recorded)
	}

	if plain := plaintextFrom(ac.events(t, room), bobGhost, bot); len(plain) > 0 {
		for _, e := range plain {
			t.Errorf("plaintext %s from %s in the encrypted portal", e.Type.Type, e.Sender)
		}
	}
}

// TestEncryptedManagementRoom: a user whose client makes every chat encrypted talks to the
// bot in an encrypted management room: commands are decrypted, answers (and the login's QR
// code image) are encrypted, the login completes there. In the encrypted portal that
// follows, `!wa migrate` is taken as a command, not sent to WhatsApp as text, and the
// direct chat it opens is created encrypted (encryption.default).
func TestEncryptedManagementRoom(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "alice_e2ee_mgmt")
	dirFile := filepath.Join(t.TempDir(), "directory.csv")
	if err := os.WriteFile(dirFile, []byte("phone,matrix_id\n+4915557404,@dora_e2ee_mgmt:localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Migration.DirectoryFile = dirFile
	startRelayBridge(t, cfg)
	bot := cfg.BotUserID()
	mx := registerUser(t, "alice_e2ee_mgmt")
	ac := newCryptoClient(t, mx)
	ctx := context.Background()

	resp, err := mx.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Invite: []id.UserID{bot}, IsDirect: true, Preset: "trusted_private_chat",
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{
			Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mgmt := resp.RoomID
	ac.waitDecrypted(t, mgmt, bot, bodyContains("This is your management room"))
	ac.sendText(t, mgmt, "help")
	ac.waitDecrypted(t, mgmt, bot, bodyContains("Commands"))

	phone := newPhone(t, "4915557403", "Alice Mgmt")
	ac.sendText(t, mgmt, "login")
	qr := ac.waitDecrypted(t, mgmt, bot, func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgImage
	})
	file := encryptedFileOf(t, qr)
	blob, err := mx.DownloadBytes(ctx, file.URL.ParseOrIgnore())
	if err != nil {
		t.Fatal(err)
	}
	if image := openFile(t, file, blob); !bytes.HasPrefix(image, []byte("\x89PNG")) {
		t.Fatalf("the QR code image does not open to a PNG: % x", image[:min(8, len(image))])
	}
	code := ac.waitDecrypted(t, mgmt, bot, bodyContains("QR code: ")).Content.AsMessage().Body
	if err := phone.ScanQR(ctx, strings.TrimSpace(strings.TrimPrefix(code, "QR code: "))); err != nil {
		t.Fatal(err)
	}
	ac.waitDecrypted(t, mgmt, bot, bodyContains("Successfully logged in"))

	dora := newPhone(t, "4915557404", "Dora Mgmt")
	doraMX := registerUser(t, "dora_e2ee_mgmt")
	if _, err := dora.SendText(ctx, phone.JID(), "hi from dora"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, cfg.PuppetUserID("4915557404"))
	ac.waitDecrypted(t, room, bot, bodyContains("also on Matrix as @dora_e2ee_mgmt:localhost"))
	ac.sendText(t, room, "!wa migrate")
	ac.waitDecrypted(t, room, bot, bodyContains("Invited you and @dora_e2ee_mgmt:localhost"))
	ac.sendText(t, room, "after the command")
	waitWA(t, dora, "the text after the command", func(m *events.Message) bool {
		text := m.Message.GetConversation() + m.Message.GetExtendedTextMessage().GetText()
		if strings.Contains(text, "!wa") {
			t.Errorf("the encrypted command reached WhatsApp as text: %q", text)
		}
		return text == "after the command"
	})
	native := (&waUser{mx: doraMX}).waitInvite(t, bot)
	var enc event.EncryptionEventContent
	if err := doraMX.StateEvent(ctx, native, event.StateEncryption, "", &enc); err != nil || enc.Algorithm != id.AlgorithmMegolmV1 {
		t.Errorf("the direct chat migrate opened is not encrypted: %+v %v", enc, err)
	}

	for _, r := range []id.RoomID{mgmt, room} {
		for _, e := range plaintextFrom(ac.events(t, r), bot) {
			t.Errorf("plaintext %s from the bot in encrypted room %s: %s", e.Type.Type, r, e.ID)
		}
	}
}

func bodyContains(want string) func(*event.Event) bool {
	return func(evt *event.Event) bool {
		return evt.Type == event.EventMessage && strings.Contains(evt.Content.AsMessage().Body, want)
	}
}

// nilIfNil keeps a typed nil media message from passing as a non-nil interface.
func nilIfNil[T interface {
	comparable
	whatsmeow.DownloadableMessage
}](m T) whatsmeow.DownloadableMessage {
	var none T
	if m == none {
		return nil
	}
	return m
}

// encryptedFileOf is the file object of a decrypted media event, which must have no plain
// url: that would point at plaintext on the homeserver.
func encryptedFileOf(t *testing.T, evt *event.Event) *event.EncryptedFileInfo {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(evt.Content.VeryRaw, &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["url"]; ok {
		t.Errorf("media event %s in an encrypted room has a plain url: %s", evt.ID, evt.Content.VeryRaw)
	}
	file := evt.Content.AsMessage().File
	if file == nil || file.URL == "" {
		t.Fatalf("media event %s in an encrypted room has no encrypted file: %s", evt.ID, evt.Content.VeryRaw)
	}
	return file
}

// openFile checks and decrypts an encrypted file's ciphertext as a client does.
func openFile(t *testing.T, file *event.EncryptedFileInfo, blob []byte) []byte {
	t.Helper()
	plain := bytes.Clone(blob)
	if err := file.DecryptInPlace(plain); err != nil {
		t.Fatalf("the encrypted file does not open: %v", err)
	}
	return plain
}

// encryptedFileContent encrypts data as a client does for an encrypted room, uploads the
// ciphertext (altered after hashing when tamper is set) and returns the event content.
func encryptedFileContent(t *testing.T, cli *mautrix.Client, msgtype, name, mime string, data []byte, tamper bool) map[string]any {
	t.Helper()
	ef := attachment.NewEncryptedFile()
	ciphertext := bytes.Clone(data)
	ef.EncryptInPlace(ciphertext)
	if tamper {
		ciphertext[len(ciphertext)/2] ^= 0xff
	}
	up, err := cli.UploadBytes(context.Background(), ciphertext, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	content := map[string]any{"body": name, "filename": name,
		"file": &event.EncryptedFileInfo{EncryptedFile: *ef, URL: up.ContentURI.CUString()},
		"info": map[string]any{"mimetype": mime, "size": len(data), "w": 64, "h": 64}}
	if msgtype != "" {
		content["msgtype"] = msgtype
	}
	return content
}
