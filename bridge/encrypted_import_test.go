//go:build goolm

package bridge_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
)

// TestEncryptedImport: `!wa import` in an encrypted portal. The export arrives as an encrypted
// file (m.file with key, iv and hashes, inside m.room.encrypted), either as the command's
// caption or sent before the command; the bot finds it by decrypting the room's events,
// downloads and decrypts it, and the imported messages land encrypted: the user's client
// decrypts every one and nobody sends plaintext. A zip that fails its hash, one declared
// larger than an import takes and one whose attachment inflates to gigabytes are refused or
// bounded as they are in plaintext.
func TestEncryptedImport(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "e2ee_import_alice")
	startRelayBridge(t, cfg)
	const own = "Alice ImportE2EE"
	alice := loginWithQR(t, cfg, "e2ee_import_alice", "4915557601", own)
	ac := newCryptoClient(t, alice.mx)
	sam := newPhone(t, "4915557602", "Sam Import")
	ghost, bot := cfg.PuppetUserID("4915557602"), cfg.BotUserID()
	ctx := context.Background()
	if _, err := sam.SendText(ctx, alice.phone.JID(), "hi from the live chat"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, ghost)
	ac.waitDecrypted(t, room, ghost, bodyContains("hi from the live chat"))

	photo := photoFor(t, 7)
	const photoName = "IMG-20210102-WA0001.jpg"
	export := buildExport(t, [2]string{"WhatsApp Chat with Sam Import.txt", androidLines(
		"02/01/2021, 10:15 - Sam Import: hello from the export",
		"02/01/2021, 10:16 - "+own+": my answer in the export",
		"02/01/2021, 10:17 - Sam Import: "+photoName+" (file attached)",
		"the view from here",
	)}, [2]string{photoName, string(photo)})
	want := []struct {
		sender id.UserID
		body   string
		photo  bool
	}{{ghost, "hello from the export", false}, {bot, "my answer in the export", false}, {ghost, "the view from here", true}}

	// zipMessage is the encrypted file event of an export, with caption as its body.
	zipMessage := func(t *testing.T, data []byte, caption string, tamper bool) map[string]any {
		content := encryptedFileContent(t, alice.mx, "m.file", "WhatsApp Chat.zip", "application/zip", data, tamper)
		if caption != "" {
			content["body"] = caption
		}
		return content
	}
	// report is the bot's answer to the command in sent: its first message after it in the
	// room that is not a notice answering an event (the bot also says "Importing ...").
	report := func(t *testing.T, sent id.EventID) string {
		t.Helper()
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
			ac.sync(t, 500*time.Millisecond, "")
			after := false
			for _, d := range ac.events(t, room) {
				after = after || d.evt.ID == sent
				if !after || d.evt.Sender != bot || d.err != nil || d.evt.Type != event.EventMessage {
					continue
				}
				c := d.evt.Content.AsMessage()
				if c.RelatesTo == nil && (strings.Contains(c.Body, "Imported") || strings.Contains(c.Body, "Sorry") || strings.Contains(c.Body, "Could not")) {
					if !d.encrypted {
						t.Fatalf("the bot's report %s reached the encrypted room in plaintext", d.evt.ID)
					}
					return c.Body
				}
			}
		}
		t.Fatalf("no report after %s", sent)
		return ""
	}
	// imported waits until the room shows n imported events (years old, from the contact or
	// the bot), all decrypted: the homeserver's /messages may lag behind the report a moment,
	// and the keys come on the user's /sync.
	imported := func(t *testing.T, n int) []decrypted {
		t.Helper()
		var out []decrypted
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			ac.sync(t, 500*time.Millisecond, "")
			out = out[:0]
			undecrypted := 0
			for _, d := range ac.events(t, room) {
				if (d.evt.Sender == ghost || d.evt.Sender == bot) && time.UnixMilli(d.evt.Timestamp).Before(time.Now().Add(-24*time.Hour)) {
					out = append(out, d)
					if d.err != nil {
						undecrypted++
					}
				}
			}
			if len(out) >= n && undecrypted == 0 {
				return out
			}
		}
		return out
	}

	t.Run("caption", func(t *testing.T) {
		sent := ac.sendEncrypted(t, room, event.EventMessage, zipMessage(t, export, "!wa import UTC", false))
		if got := report(t, sent); !strings.Contains(got, "Imported 3 messages from the export (0 were already here") {
			t.Fatalf("report: %q", got)
		}
		got := imported(t, len(want))
		if len(got) != len(want) {
			t.Fatalf("the room shows %d imported events, want %d", len(got), len(want))
		}
		for i, d := range got {
			w := want[i]
			if !d.encrypted || d.err != nil {
				t.Errorf("imported event %s reached the room in plaintext or does not decrypt (%v)", d.evt.ID, d.err)
				continue
			}
			msg := d.evt.Content.AsMessage()
			if d.evt.Sender != w.sender || msg.Body != w.body || (msg.MsgType == event.MsgImage) != w.photo {
				t.Errorf("imported %d: %s %s %q, want %s %q (photo %v)", i, d.evt.Sender, msg.MsgType, msg.Body, w.sender, w.body, w.photo)
			}
			if w.photo {
				file := encryptedFileOf(t, d.evt)
				blob, err := alice.mx.DownloadBytes(ctx, file.URL.ParseOrIgnore())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(openFile(t, file, blob), photo) {
					t.Errorf("the imported photo does not open to the export's bytes")
				}
			}
		}
	})

	t.Run("zip sent before the command", func(t *testing.T) {
		ac.sendEncrypted(t, room, event.EventMessage, zipMessage(t, export, "", false))
		sent := ac.sendText(t, room, "!wa import UTC")
		if got := report(t, sent); !strings.Contains(got, "Imported 0 messages") || !strings.Contains(got, "3 were already here") {
			t.Fatalf("report: %q", got)
		}
	})

	t.Run("zip that fails its hash", func(t *testing.T) {
		sent := ac.sendEncrypted(t, room, event.EventMessage, zipMessage(t, export, "!wa import UTC", true))
		if got := report(t, sent); !strings.Contains(got, "does not match the hash") || !strings.Contains(got, "nothing was imported") {
			t.Fatalf("report: %q", got)
		}
	})

	t.Run("zip declared larger than an import takes", func(t *testing.T) {
		content := zipMessage(t, export, "!wa import UTC", false)
		content["info"] = map[string]any{"mimetype": "application/zip", "size": 9 << 30}
		sent := ac.sendEncrypted(t, room, event.EventMessage, content)
		if got := report(t, sent); !strings.Contains(got, "larger than 8 GiB") {
			t.Fatalf("report: %q", got)
		}
	})

	t.Run("attachment that inflates to 4 GiB", func(t *testing.T) {
		limit, err := alice.mx.GetMediaConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const bombName = "VID-20210103-WA0001.mp4"
		bomb := zipBomb(t, "03/01/2021, 22:11 - Sam Import: before the video\n"+
			"03/01/2021, 22:12 - Sam Import: "+bombName+" (file attached)\n"+
			"03/01/2021, 22:13 - Sam Import: after the video\n", bombName, 4<<30)
		resetPeakRSS(t)
		before := peakRSS(t)
		sent := ac.sendEncrypted(t, room, event.EventMessage, zipMessage(t, bomb, "!wa import UTC", false))
		got := report(t, sent)
		growth := peakRSS(t) - before
		t.Logf("a %d-byte encrypted zip with a 4 GiB attachment: peak RSS grew by %d MiB", len(bomb), growth>>20)
		if !strings.Contains(got, "Imported 3 messages") {
			t.Fatalf("report: %q", got)
		}
		if growth > maxImportGrowth {
			t.Errorf("the import grew the peak RSS by %d MiB, over %d MiB", growth>>20, maxImportGrowth>>20)
		}
		note := "[" + bombName + " (4096 MiB) is larger than the homeserver takes ("
		found := false
		for _, d := range imported(t, len(want)+3) {
			found = found || strings.HasPrefix(d.evt.Content.AsMessage().Body, note) && d.encrypted
		}
		if !found {
			t.Errorf("no encrypted imported message says the video (over %d MiB) was not imported", limit.UploadSize>>20)
		}
	})

	if n := len(imported(t, len(want)+3)); n != len(want)+3 {
		t.Errorf("the room shows %d imported events after all imports, want %d", n, len(want)+3)
	}
	for _, e := range plaintextFrom(ac.events(t, room), ghost, bot) {
		t.Errorf("plaintext %s from %s in the encrypted portal: %s", e.Type.Type, e.Sender, e.ID)
	}
	for _, e := range sam.Events.All() {
		if m, ok := e.(*events.Message); ok && strings.Contains(m.Message.GetDocumentMessage().GetCaption(), "!wa") {
			t.Errorf("a zip with the command as its caption went to WhatsApp")
		}
	}
}

// TestEncryptedOtherMemberCommand: members of an encrypted group portal other than its
// owner, with no WhatsApp login of their own, write encrypted. Their `!wa` commands are
// decrypted first and answered as in plaintext (a permitted user gets the command's answer,
// anyone else the refusal), not as messages that were not relayed; an ordinary message is
// not relayed, and the notice and the archive say what it was (the decrypted text, marked as
// having crossed Matrix encrypted).
func TestEncryptedOtherMemberCommand(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "e2ee_member_alice", "e2ee_member_carol")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "e2ee_member_alice", "4915557611", "Alice Member")
	ac := newCryptoClient(t, alice.mx)
	carol, dave := registerUser(t, "e2ee_member_carol"), registerUser(t, "e2ee_member_dave")
	cc, dc := newCryptoClient(t, carol), newCryptoClient(t, dave)
	bob := newPhone(t, "4915557612", "Bob Member")
	bot := cfg.BotUserID()
	ctx := context.Background()

	group, err := bob.CreateGroup(ctx, "Encrypted team", alice.phone.JID())
	if err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bot)
	for _, c := range []*cryptoClient{cc, dc} {
		if _, err := alice.mx.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: c.cli.UserID}); err != nil {
			t.Fatal(err)
		}
		if joined := c.waitInvite(t, alice.mx.UserID); joined != room {
			t.Fatalf("%s joined %s, not the portal %s", c.cli.UserID, joined, room)
		}
	}

	help := cc.sendText(t, room, "!wa import")
	cc.waitDecrypted(t, room, bot, bodyContains("Send the exported zip to one of your WhatsApp chats' rooms"))
	refused := dc.sendText(t, room, "!wa help")
	dc.waitDecrypted(t, room, bot, bodyContains("Sorry, "+string(dave.UserID)+" is not allowed to use this bridge"))
	text := cc.sendText(t, room, "hello from carol, encrypted")
	notice := cc.waitDecrypted(t, room, bot, noticeReplyingTo(text))
	if body := notice.Content.AsMessage().Body; !strings.Contains(body, "not sent to WhatsApp") || !strings.Contains(body, "no WhatsApp login") {
		t.Errorf("the notice does not say that carol's message was not sent and why: %q", body)
	}

	// The queue is ordered: once the owner's next message reached WhatsApp, the members'
	// events before it were all handled.
	ac.sendText(t, room, "from alice after the members")
	waitWA(t, bob, "the owner's message after the members'", func(m *events.Message) bool {
		text := m.Message.GetConversation() + m.Message.GetExtendedTextMessage().GetText()
		if strings.Contains(text, "!wa") || strings.Contains(text, "carol") {
			t.Errorf("a member's event reached WhatsApp: %q", text)
		}
		return m.Info.Chat == group.JID && text == "from alice after the members"
	})
	var entry *archive.Entry
	for _, e := range archiveEntries(t) {
		switch e.MessageID {
		case string(help), string(refused):
			t.Errorf("the command %s is in the archive as %s (%+v): commands are the bot's, as in plaintext", e.MessageID, e.Kind, e.Outbound)
		case string(text):
			entry = e
		}
	}
	if entry == nil || entry.Kind != archive.KindMatrixMessage || entry.Message == nil || entry.Message.Text != "hello from carol, encrypted" ||
		entry.Outbound == nil || entry.Outbound.Status != "not_relayed" || entry.Outbound.Encrypted != "m.megolm.v1.aes-sha2" ||
		!strings.Contains(entry.Outbound.Error, "no WhatsApp login") {
		t.Errorf("the archive does not hold carol's decrypted message as not relayed, encrypted: %+v", entry)
		if entry != nil {
			t.Logf("message %+v, outbound %+v", entry.Message, entry.Outbound)
		}
	}
	for _, d := range cc.events(t, room) {
		if d.evt.Sender == bot && d.encrypted && d.err == nil {
			if rel := d.evt.Content.AsMessage().RelatesTo; rel != nil && (rel.GetReplyTo() == help || rel.GetReplyTo() == refused) {
				t.Errorf("the bot answered a command as an unrelayed message: %q", d.evt.Content.AsMessage().Body)
			}
		}
	}
	for _, e := range plaintextFrom(ac.events(t, room), bot) {
		t.Errorf("plaintext %s from the bot in the encrypted portal: %s", e.Type.Type, e.ID)
	}
}

// TestEncryptedAdminRoom: with encryption.default on, the admin room the bot creates is
// encrypted, and its notices there reach the admin encrypted: the one sent while the admin
// was only invited and the one after they joined.
func TestEncryptedAdminRoom(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "e2ee_adminroom_alice")
	permit(cfg, "admin", "e2ee_adminroom_admin")
	startRelayBridge(t, cfg)
	bot := cfg.BotUserID()
	admin := newCryptoClient(t, registerUser(t, "e2ee_adminroom_admin"))
	alice := loginWithQR(t, cfg, "e2ee_adminroom_alice", "4915557621", "Alice Adminroom")
	waitLoginState(t, cfg, alice.mx.UserID, "logged in", capturing)

	if err := sim.BanAccount("4915557621", events.TempBanSentToTooManyPeople, time.Now().Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	room := admin.waitInvite(t, bot)
	ctx := context.Background()
	var enc event.EncryptionEventContent
	if err := admin.cli.StateEvent(ctx, room, event.StateEncryption, "", &enc); err != nil || enc.Algorithm != id.AlgorithmMegolmV1 {
		t.Fatalf("the admin room is not encrypted: %+v %v", enc, err)
	}
	admin.waitDecrypted(t, room, bot, bodyContains("temporarily banned the account"))
	admin.waitDecrypted(t, room, bot, bodyContains("Capture resumed for "+string(alice.mx.UserID)))
	for _, e := range plaintextFrom(admin.events(t, room), bot) {
		t.Errorf("plaintext %s from the bot in the encrypted admin room: %s", e.Type.Type, e.ID)
	}
}
