//go:build goolm

package bridge_test

import (
	"context"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
)

// TestEncryptedDM: a WhatsApp DM bridged into an encrypted portal, both ways, with a
// crypto-capable Matrix user: the contact's messages arrive Megolm-encrypted (by the bot's
// device) and decrypt; the user's encrypted messages are decrypted by the bridge and reach
// WhatsApp; nothing the bridge sent into the room is plaintext.
func TestEncryptedDM(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "alice_e2ee_dm")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_dm", "4915557001", "Alice E2EE")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557002", "Bob E2EE")
	bobGhost := cfg.PuppetUserID("4915557002")
	ctx := context.Background()

	if _, err := bob.SendText(ctx, alice.phone.JID(), "hello encrypted matrix"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bobGhost)
	ac.waitDecrypted(t, room, bobGhost, bodyIs("hello encrypted matrix"))

	// Matrix -> WhatsApp: encrypted by Alice's client, decrypted by the bridge.
	ac.sendText(t, room, "hello encrypted whatsapp")
	waitWAText(t, bob, "hello encrypted whatsapp")

	// And back once more, now that the session exists on both sides.
	if _, err := bob.SendText(ctx, alice.phone.JID(), "second from whatsapp"); err != nil {
		t.Fatal(err)
	}
	second := ac.waitDecrypted(t, room, bobGhost, bodyIs("second from whatsapp"))

	// Reply, reaction, edit and redaction from the encrypted side reach WhatsApp as such.
	reply := &event.MessageEventContent{MsgType: event.MsgText, Body: "encrypted reply"}
	reply.RelatesTo = (&event.RelatesTo{}).SetReplyTo(second.ID)
	ac.sendEncrypted(t, room, event.EventMessage, reply)
	got := waitWA(t, bob, "reply", func(m *events.Message) bool {
		return m.Message.GetExtendedTextMessage().GetText() == "encrypted reply"
	})
	if got.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID() == "" {
		t.Errorf("the encrypted reply reached WhatsApp without its quote")
	}
	ac.sendEncrypted(t, room, event.EventReaction, &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: second.ID, Key: "👍"}})
	waitWA(t, bob, "reaction", func(m *events.Message) bool { return m.Message.GetReactionMessage().GetText() == "👍" })

	mine := ac.sendText(t, room, "typo in encrypted")
	typo := waitWAText(t, bob, "typo in encrypted")
	edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* fixed in encrypted",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "fixed in encrypted"}}
	edit.RelatesTo = (&event.RelatesTo{}).SetReplace(mine)
	ac.sendEncrypted(t, room, event.EventMessage, edit)
	waitWA(t, bob, "edit", func(m *events.Message) bool {
		return m.IsEdit && strings.Contains(m.RawMessage.String(), "fixed in encrypted")
	})
	if _, err := alice.mx.RedactEvent(ctx, room, mine); err != nil {
		t.Fatal(err)
	}
	waitWA(t, bob, "revoke", func(m *events.Message) bool {
		pm := m.Message.GetProtocolMessage()
		return pm != nil && pm.GetType() == waE2E.ProtocolMessage_REVOKE && pm.GetKey().GetID() == typo.Info.ID
	})

	evts := ac.events(t, room)
	if plain := plaintextFrom(evts, bobGhost, cfg.BotUserID()); len(plain) > 0 {
		for _, e := range plain {
			t.Errorf("plaintext %s from %s in the encrypted portal", e.Type.Type, e.Sender)
		}
	}
	if enc, err := ac.state.IsEncrypted(ctx, room); err != nil || !enc {
		t.Errorf("the new portal is not encrypted (encryption.default): %v %v", enc, err)
	}
}
