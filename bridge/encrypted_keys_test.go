//go:build goolm

package bridge_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
)

// TestEncryptedLostKeys: the portal owner logs in a second device with an empty crypto
// store (a new laptop, keys lost) and reads the portal's earlier bridged messages there.
//
//   - given: the bridge keeps the first key of each session it made and sends the new device
//     the history's keys (m.room_key, as the sessions' own device) without being asked; with
//     share_with: cross_signed_only only once the owner verified the device with their
//     recovery key (before that it gets nothing, and a key request is refused as unverified).
//   - asked: with encryption.history.sessions: 0 nothing is kept; the new device asks the
//     bridge for the keys and gets them forwarded.
//
// Another user in the portal logs in a new device too: it is given none of the history's
// keys, and its key requests are refused.
func TestEncryptedLostKeys(t *testing.T) {
	for _, tt := range []lostKeysCase{
		{name: "given", shareWith: config.ShareWithAll, history: 50, alice: "4915557321", bob: "4915557322"},
		{name: "given_cross_signed_only", shareWith: config.ShareWithCrossSignedOnly, history: 50, alice: "4915557331", bob: "4915557332"},
		{name: "asked", shareWith: config.ShareWithAll, history: 0, alice: "4915557341", bob: "4915557342"},
	} {
		t.Run(tt.name, func(t *testing.T) { lostKeys(t, tt) })
	}
}

type lostKeysCase struct {
	name, shareWith string
	history         int // encryption.history.sessions
	alice, bob      string
}

func lostKeys(t *testing.T, tt lostKeysCase) {
	localpart, mallorypart := "alice_e2ee_lost_"+tt.name, "mallory_e2ee_lost_"+tt.name
	cfg := encryptedConfig(t, "sqlite", localpart)
	cfg.Encryption.ShareWith = tt.shareWith
	cfg.Encryption.Rotation.Messages = 2 // the history spans several sessions
	cfg.Encryption.History.Sessions = tt.history
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, localpart, tt.alice, "Alice Lost Keys")
	ac := newCryptoClient(t, alice.mx)
	ctx := context.Background()
	bob := newPhone(t, tt.bob, "Bob Lost Keys")
	bobGhost, bot := cfg.PuppetUserID(tt.bob), cfg.BotUserID()
	mallory := newCryptoClient(t, registerUser(t, mallorypart))
	crossSigned := tt.shareWith == config.ShareWithCrossSignedOnly
	var recoveryKey, malloryRecoveryKey string
	if crossSigned {
		recoveryKey = ac.crossSign(t, "password-"+localpart)
		malloryRecoveryKey = mallory.crossSign(t, "password-"+mallorypart)
	}

	// The portal, with Mallory invited in by its owner before the history.
	if _, err := bob.SendText(ctx, alice.phone.JID(), "history zero"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bobGhost)
	ac.waitDecrypted(t, room, bobGhost, bodyIs("history zero"))
	inviteIntoPortal(t, ac, room, mallory, bob, "mallory is in")

	history := []string{"history zero", "history one", "history two", "history three", "history four", "history five"}
	for _, body := range history[1:] {
		if _, err := bob.SendText(ctx, alice.phone.JID(), body); err != nil {
			t.Fatal(err)
		}
		ac.waitDecrypted(t, room, bobGhost, bodyIs(body))
	}
	mallory.waitDecrypted(t, room, bobGhost, bodyIs(history[len(history)-1]))
	sessions := sessionsOf(t, alice.mx, room, bobGhost)
	// history zero alone, then Mallory's join started a new session, then two messages each.
	if len(sessions) != 4 {
		t.Fatalf("the history is in %d Megolm sessions, want 4 (one before Mallory joined, five messages after, rotation.messages: 2)", len(sessions))
	}

	// New devices, with empty crypto stores: Mallory's first, so the bridge hears of it
	// before it hears of Alice's.
	malloryLaptop := newCryptoClient(t, loginAgain(t, cfg, mallorypart))
	if crossSigned {
		// Verified, so that only her not owning the portal keeps the history from it.
		if err := malloryLaptop.mach.VerifyWithRecoveryKey(ctx, malloryRecoveryKey); err != nil {
			t.Fatal(err)
		}
	}
	laptop := newCryptoClient(t, loginAgain(t, cfg, localpart))

	switch {
	case tt.history == 0:
		lostKeysAsked(t, laptop, room, bobGhost, bot, sessions)
	default:
		if crossSigned {
			lostKeysUnverified(t, cfg, laptop, room, bot, sessions)
			if err := laptop.mach.VerifyWithRecoveryKey(ctx, recoveryKey); err != nil {
				t.Fatal(err)
			}
		}
		for _, content := range sessions {
			laptop.waitKey(t, room, content.SessionID)
			igs, err := laptop.mach.CryptoStore.GetGroupSession(ctx, room, content.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			if igs.KeySource != id.KeySourceDirect || len(igs.ForwardingChains) != 0 || igs.SenderKey != content.SenderKey {
				t.Errorf("session %s reached the new device from %s via %s (forwarding chain %v), want m.room_key from the bridge's device %s",
					content.SessionID, igs.SenderKey, igs.KeySource, igs.ForwardingChains, content.SenderKey)
			}
		}
		given := metricSum(t, cfg.Appservice.Address, func(l string) bool {
			return strings.HasPrefix(l, `causeway_encryption_history_keys_total{outcome="given"}`)
		})
		t.Logf("the bridge gave %d history keys (the history is in %d sessions)", given, len(sessions))
		if given < len(sessions) {
			t.Errorf("/metrics counts %d history keys given, want at least %d", given, len(sessions))
		}
	}

	// What WhatsApp sends next goes out in a new session the new device gets as a member.
	if _, err := bob.SendText(ctx, alice.phone.JID(), "after the new device"); err != nil {
		t.Fatal(err)
	}
	next := laptop.waitDecrypted(t, room, bobGhost, bodyIs("after the new device"))
	if _, content := ciphertext(t, laptop.cli, room, next.ID); content.SessionID == sessions[len(sessions)-1].SessionID {
		t.Errorf("the bridge kept its session %s after the owner's new device appeared", content.SessionID)
	}
	var read []string
	for _, d := range laptop.events(t, room) {
		if d.evt.Sender != bobGhost || d.evt.StateKey != nil {
			continue
		}
		if d.err != nil {
			t.Errorf("the new device cannot decrypt %s: %v", d.evt.ID, d.err)
			continue
		}
		read = append(read, d.evt.Content.AsMessage().Body)
	}
	if want := append(slices.Clone(history), "after the new device"); !slices.Equal(read, want) {
		t.Errorf("the new device read %q, want %q", read, want)
	}

	// Mallory's new device, which the bridge heard of before Alice's (whose keys have all
	// come), was given none of the history's keys, and asking for them is refused.
	malloryLaptop.sync(t, 0, "")
	for _, content := range sessions {
		if malloryLaptop.hasSession(t, room, content.SessionID) {
			t.Errorf("the bridge gave a new device of %s, who is not the portal's owner, the key of %s", mallory.cli.UserID, content.SessionID)
		}
		malloryLaptop.requestKey(t, room, content, bot)
	}
	for _, content := range sessions {
		refusal := malloryLaptop.waitKeyAnswer(t, room, content.SessionID)
		if refusal == nil {
			t.Fatalf("the bridge gave another user's new device the key of %s in %s's portal", content.SessionID, alice.mx.UserID)
		}
		if refusal.Code != event.RoomKeyWithheldUnauthorized {
			t.Errorf("another user's request was refused with %s (%s), want %s", refusal.Code, refusal.Reason, event.RoomKeyWithheldUnauthorized)
		}
	}
}

// lostKeysUnverified: under cross_signed_only the owner's new device, not yet verified, is
// given nothing (the bridge has looked at it: /metrics counts it passed over), and a key
// request from it is refused as unverified.
func lostKeysUnverified(t *testing.T, cfg *config.Config, laptop *cryptoClient, room id.RoomID, bot id.UserID, sessions []*event.EncryptedEventContent) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for metricSum(t, cfg.Appservice.Address, func(l string) bool {
		return strings.HasPrefix(l, `causeway_encryption_history_keys_total{outcome="untrusted"}`)
	}) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bridge never looked at the owner's unverified new device")
		}
		time.Sleep(200 * time.Millisecond)
	}
	laptop.sync(t, 0, "")
	for _, content := range sessions {
		if laptop.hasSession(t, room, content.SessionID) {
			t.Fatalf("the bridge gave an unverified device the key of %s under share_with: cross_signed_only", content.SessionID)
		}
	}
	laptop.requestKey(t, room, sessions[0], bot)
	refusal := laptop.waitKeyAnswer(t, room, sessions[0].SessionID)
	if refusal == nil || refusal.Code != event.RoomKeyWithheldUnverified {
		t.Fatalf("the bridge answered an unverified device of the owner with %+v, want %s", refusal, event.RoomKeyWithheldUnverified)
	}
}

// lostKeysAsked: with nothing kept, the new device sees the history as ciphertext only, asks
// the bridge for the first session's key, then (after WhatsApp's next message, in a new
// session) for the rest, and gets each forwarded.
func lostKeysAsked(t *testing.T, laptop *cryptoClient, room id.RoomID, bobGhost, bot id.UserID, sessions []*event.EncryptedEventContent) {
	t.Helper()
	laptop.sync(t, 0, "")
	for _, d := range laptop.events(t, room) {
		if d.evt.Sender == bobGhost && d.evt.StateKey == nil && (!d.encrypted || d.err == nil) {
			t.Fatalf("a device with no keys read %s (encrypted: %v)", d.evt.ID, d.encrypted)
		}
	}
	for _, content := range sessions {
		laptop.requestKey(t, room, content, bot)
	}
	for _, content := range sessions {
		laptop.waitKey(t, room, content.SessionID)
		igs, err := laptop.mach.CryptoStore.GetGroupSession(context.Background(), room, content.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if igs.KeySource != id.KeySourceForward {
			t.Errorf("session %s reached the device via %s, want forwarded in answer to its request", content.SessionID, igs.KeySource)
		}
	}
}

// sessionsOf lists the Megolm sessions of sender's events in room, in the order they were
// first used, from the ciphertext the homeserver holds.
func sessionsOf(t *testing.T, cli *mautrix.Client, room id.RoomID, sender id.UserID) []*event.EncryptedEventContent {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	var sessions []*event.EncryptedEventContent
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		evt := resp.Chunk[i]
		if evt.Sender != sender || evt.StateKey != nil {
			continue
		}
		if evt.Type != event.EventEncrypted {
			t.Fatalf("%s's event %s is a plaintext %s", sender, evt.ID, evt.Type.Type)
		}
		if err := evt.Content.ParseRaw(event.EventEncrypted); err != nil {
			t.Fatal(err)
		}
		content := evt.Content.AsEncrypted()
		if !slices.ContainsFunc(sessions, func(c *event.EncryptedEventContent) bool { return c.SessionID == content.SessionID }) {
			sessions = append(sessions, content)
		}
	}
	return sessions
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
