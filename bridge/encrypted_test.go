package bridge_test

import (
	"context"
	"testing"

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
	ac.waitDecrypted(t, room, bobGhost, bodyIs("second from whatsapp"))

	evts := ac.events(t, room)
	if plain := plaintextFrom(evts, bobGhost, cfg.BotUserID()); len(plain) > 0 {
		for _, e := range plain {
			t.Errorf("plaintext %s from %s in the encrypted portal", e.Type.Type, e.Sender)
		}
	}
	if enc, err := ac.state.IsEncrypted(ctx, room); err != nil || !enc {
		t.Errorf("the new portal is not encrypted (encryption.default): %v %v", enc, err)
	}
	_ = event.EventEncrypted
}
