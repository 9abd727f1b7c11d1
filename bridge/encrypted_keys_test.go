//go:build goolm

package bridge_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
)

// TestEncryptedLostKeys: the portal owner logs in a second device with an empty crypto
// store (a new laptop, keys lost); it asks the bridge for the room keys of the portal's
// earlier bridged messages and decrypts them all. With share_with: cross_signed_only the
// bridge first refuses the unverified device and answers once the owner verified it with
// their recovery key. A device of another user asking for the same keys is refused.
func TestEncryptedLostKeys(t *testing.T) {
	for _, tt := range []struct {
		shareWith, alice, bob string
	}{
		{config.ShareWithAll, "4915557321", "4915557322"},
		{config.ShareWithCrossSignedOnly, "4915557331", "4915557332"},
	} {
		t.Run(tt.shareWith, func(t *testing.T) {
			lostKeys(t, tt.shareWith, tt.alice, tt.bob)
		})
	}
}

func lostKeys(t *testing.T, shareWith, aliceNumber, bobNumber string) {
	localpart := "alice_e2ee_lost_" + shareWith
	cfg := encryptedConfig(t, "sqlite", localpart)
	cfg.Encryption.ShareWith = shareWith
	cfg.Encryption.Rotation.Messages = 2 // the history spans several sessions
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, localpart, aliceNumber, "Alice Lost Keys")
	ac := newCryptoClient(t, alice.mx)
	ctx := context.Background()
	var recoveryKey string
	if shareWith == config.ShareWithCrossSignedOnly {
		recoveryKey = ac.crossSign(t, "password-"+localpart)
	}
	bob := newPhone(t, bobNumber, "Bob Lost Keys")
	bobGhost, bot := cfg.PuppetUserID(bobNumber), cfg.BotUserID()

	history := []string{"history one", "history two", "history three", "history four", "history five"}
	var room id.RoomID
	for i, body := range history {
		if _, err := bob.SendText(ctx, alice.phone.JID(), body); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			room = ac.waitInvite(t, bobGhost)
		}
		ac.waitDecrypted(t, room, bobGhost, bodyIs(body))
	}

	// The new device sees the history as ciphertext only.
	laptop := newCryptoClient(t, loginAgain(t, cfg, localpart))
	laptop.sync(t, 0, "")
	var sessions []*event.EncryptedEventContent // in the order the history used them
	for _, d := range laptop.events(t, room) {
		if d.evt.Sender != bobGhost || d.evt.StateKey != nil {
			continue
		}
		if !d.encrypted || d.err == nil {
			t.Fatalf("a device with no keys read %s (encrypted: %v)", d.evt.ID, d.encrypted)
		}
		_, content := ciphertext(t, laptop.cli, room, d.evt.ID)
		if !slices.ContainsFunc(sessions, func(c *event.EncryptedEventContent) bool { return c.SessionID == content.SessionID }) {
			sessions = append(sessions, content)
		}
	}
	if len(sessions) != 3 {
		t.Fatalf("the history is in %d Megolm sessions, want 3 (five messages, rotation.messages: 2)", len(sessions))
	}

	first := sessions[0]
	if shareWith == config.ShareWithCrossSignedOnly {
		laptop.requestKey(t, room, first, bot)
		refusal := laptop.waitKeyAnswer(t, room, first.SessionID)
		if refusal == nil || refusal.Code != event.RoomKeyWithheldUnverified {
			t.Fatalf("the bridge answered an unverified device of the owner with %+v, want %s", refusal, event.RoomKeyWithheldUnverified)
		}
		if err := laptop.mach.VerifyWithRecoveryKey(ctx, recoveryKey); err != nil {
			t.Fatal(err)
		}
	}
	laptop.requestKey(t, room, first, bot)
	laptop.waitKey(t, room, first.SessionID)

	// The answer came from the bridge's /sync, which brought the owner's device list
	// change before the request: what WhatsApp sends next goes out in a new session that
	// the new device gets without asking (the last one of the history it never asked for).
	if _, err := bob.SendText(ctx, alice.phone.JID(), "after the new device"); err != nil {
		t.Fatal(err)
	}
	next := laptop.waitDecrypted(t, room, bobGhost, bodyIs("after the new device"))
	if _, content := ciphertext(t, laptop.cli, room, next.ID); content.SessionID == sessions[2].SessionID {
		t.Errorf("the bridge kept its session %s after the owner's new device appeared", content.SessionID)
	}

	for _, content := range sessions[1:] {
		laptop.requestKey(t, room, content, bot)
	}
	for _, content := range sessions[1:] {
		laptop.waitKey(t, room, content.SessionID)
	}
	var read []string
	for _, d := range laptop.events(t, room) {
		if d.evt.Sender != bobGhost || d.evt.StateKey != nil {
			continue
		}
		if d.err != nil {
			t.Errorf("the new device still cannot decrypt %s: %v", d.evt.ID, d.err)
			continue
		}
		read = append(read, d.evt.Content.AsMessage().Body)
	}
	if want := append(history, "after the new device"); !slices.Equal(read, want) {
		t.Errorf("the new device read %q, want %q", read, want)
	}

	// Another user's device asking for the same keys is refused, and gets none.
	mallory := newCryptoClient(t, registerUser(t, "mallory_e2ee_lost_"+shareWith))
	for _, content := range sessions {
		mallory.requestKey(t, room, content, bot)
	}
	for _, content := range sessions {
		refusal := mallory.waitKeyAnswer(t, room, content.SessionID)
		if refusal == nil {
			t.Fatalf("the bridge gave another user the key of %s in %s's portal", content.SessionID, alice.mx.UserID)
		}
		if refusal.Code != event.RoomKeyWithheldUnauthorized {
			t.Errorf("another user's request was refused with %s (%s), want %s", refusal.Code, refusal.Reason, event.RoomKeyWithheldUnauthorized)
		}
	}
}

// loginAgain logs a user in on a new device (password login, empty crypto store).
func loginAgain(t *testing.T, cfg *config.Config, localpart string) *mautrix.Client {
	t.Helper()
	cli, err := mautrix.NewClient(cfg.Homeserver.Address, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli.Client = &http.Client{Timeout: 20 * time.Second}
	_, err = cli.Login(context.Background(), &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypePassword,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
		Password:                 "password-" + localpart,
		InitialDeviceDisplayName: "second device",
		StoreCredentials:         true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}
