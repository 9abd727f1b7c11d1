//go:build goolm

package bridge_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
)

// botDevices lists the bot's devices that have keys, as any Matrix client sees them.
func botDevices(t *testing.T, cli *mautrix.Client, bot id.UserID) []id.DeviceID {
	t.Helper()
	resp, err := cli.QueryKeys(context.Background(), &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{bot: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var out []id.DeviceID
	for dev := range resp.DeviceKeys[bot] {
		out = append(out, dev)
	}
	slices.Sort(out)
	return out
}

// botDeviceWithKey names the bot's device whose identity key encrypted an event (the bot
// user is the whole package's: every test's bridge, with its own database, logs in a
// device of its own).
func botDeviceWithKey(t *testing.T, cli *mautrix.Client, bot id.UserID, key id.SenderKey) id.DeviceID {
	t.Helper()
	resp, err := cli.QueryKeys(context.Background(), &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{bot: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for dev, keys := range resp.DeviceKeys[bot] {
		if keys.Keys.GetCurve25519(dev) == key {
			return dev
		}
	}
	t.Fatalf("no device of %s has the identity key %s", bot, key)
	return ""
}

func countBodies(evts []decrypted, sender id.UserID, body string) int {
	n := 0
	for _, d := range evts {
		if d.evt.Sender == sender && d.evt.Type == event.EventMessage && d.evt.Content.AsMessage().Body == body {
			n++
		}
	}
	return n
}

// TestEncryptedRestart: the bridge restarts mid-conversation (on PostgreSQL, where the
// crypto store is then read back): the bot keeps its one device, the user's client keeps
// decrypting, the bridge keeps decrypting, and nothing is lost or duplicated.
func TestEncryptedRestart(t *testing.T) {
	cfg := encryptedConfig(t, "postgres", "alice_e2ee_restart")
	br := startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_restart", "4915557011", "Alice Restart")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557012", "Bob Restart")
	bobGhost, bot := cfg.PuppetUserID("4915557012"), cfg.BotUserID()
	ctx := context.Background()

	if _, err := bob.SendText(ctx, alice.phone.JID(), "before restart"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bobGhost)
	first := ac.waitDecrypted(t, room, bobGhost, bodyIs("before restart"))
	_, enc := ciphertext(t, alice.mx, room, first.ID)
	device := botDeviceWithKey(t, alice.mx, bot, enc.SenderKey)
	ac.sendText(t, room, "to whatsapp before restart")
	waitWAText(t, bob, "to whatsapp before restart")
	// The bridges of tests that ran before on this homeserver left bot devices of their
	// own: what counts is that the restart adds none.
	before := botDevices(t, alice.mx, bot)

	if err := br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Sent while the bridge is down: queued by WhatsApp and relayed after the start.
	if _, err := bob.SendText(ctx, alice.phone.JID(), "during restart"); err != nil {
		t.Fatal(err)
	}
	startRelayBridge(t, cfg)
	if after := botDevices(t, alice.mx, bot); !slices.Equal(after, before) {
		t.Fatalf("the bot's devices went from %v to %v across a restart", before, after)
	}
	ac.waitDecrypted(t, room, bobGhost, bodyIs("during restart"))
	if _, err := bob.SendText(ctx, alice.phone.JID(), "after restart"); err != nil {
		t.Fatal(err)
	}
	last := ac.waitDecrypted(t, room, bobGhost, bodyIs("after restart"))
	if _, after := ciphertext(t, alice.mx, room, last.ID); after.SenderKey != enc.SenderKey {
		t.Errorf("after the restart the bot encrypts with device %s, before with %s", botDeviceWithKey(t, alice.mx, bot, after.SenderKey), device)
	}
	ac.sendText(t, room, "to whatsapp after restart")
	waitWAText(t, bob, "to whatsapp after restart")

	evts := ac.events(t, room)
	for _, body := range []string{"before restart", "during restart", "after restart"} {
		if n := countBodies(evts, bobGhost, body); n != 1 {
			t.Errorf("%q is in the room %d times, want once", body, n)
		}
	}
	if plain := plaintextFrom(evts, bobGhost, bot); len(plain) > 0 {
		t.Errorf("%d plaintext events from the bridge in the encrypted portal", len(plain))
	}
}

// TestEncryptedUndecryptable: an event whose key never reaches the bridge gets a notice
// naming it and a gap in the archive's ledger within encryption.key_wait, and goes nowhere;
// an event whose key arrives late (the sender's device answers the bridge's key request) is
// relayed once, late, and before what the user sent after it.
func TestEncryptedUndecryptable(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "alice_e2ee_undec")
	cfg.Encryption.KeyWait = "8s"
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_undec", "4915557021", "Alice Undecryptable")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557022", "Bob Undecryptable")
	bobGhost, bot := cfg.PuppetUserID("4915557022"), cfg.BotUserID()
	ctx := context.Background()
	if _, err := bob.SendText(ctx, alice.phone.JID(), "hi"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bobGhost)
	ac.waitDecrypted(t, room, bobGhost, bodyIs("hi"))

	// A session shared with nobody but Alice's own device, and key requests refused.
	ac.mach.AllowKeyShare = func(context.Context, *id.Device, event.RequestedKeyInfo) *crypto.KeyShareRejection {
		return &crypto.KeyShareRejectNoResponse
	}
	private := func() {
		if err := ac.mach.CryptoStore.RemoveOutboundGroupSession(ctx, room); err != nil {
			t.Fatal(err)
		}
		if err := ac.mach.ShareGroupSession(ctx, room, []id.UserID{alice.mx.UserID}); err != nil {
			t.Fatal(err)
		}
	}
	private()
	lost := ac.sendText(t, room, "never readable by the bridge")
	notice := ac.waitDecrypted(t, room, bot, func(e *event.Event) bool {
		return strings.Contains(e.Content.AsMessage().Body, "could not be decrypted")
	})
	if rel := notice.Content.AsMessage().RelatesTo; rel == nil || rel.GetReplyTo() != lost {
		t.Errorf("the notice does not answer the lost message %s: %+v", lost, rel)
	}
	if !strings.Contains(notice.Content.AsMessage().Body, "UTC") {
		t.Errorf("the notice does not name the message's time: %q", notice.Content.AsMessage().Body)
	}
	metrics := httpGet(t, cfg.Appservice.Address+"/metrics")
	if !strings.Contains(metrics, `causeway_encrypted_events_failed_total{reason="key_missing"}`) {
		t.Errorf("/metrics does not count the undecryptable event")
	}
	waitEntry(t, "the ledger gap", func(e *archive.Entry) bool {
		return e.Kind == archive.KindUndecryptable && e.MessageID == string(lost)
	})

	// Late key: again a private session, then the key request is answered.
	private()
	ac.sendText(t, room, "late but relayed")
	if err := ac.mach.CryptoStore.RemoveOutboundGroupSession(ctx, room); err != nil {
		t.Fatal(err)
	}
	ac.sendText(t, room, "sent after the late one")
	ac.mach.AllowKeyShare = func(_ context.Context, dev *id.Device, _ event.RequestedKeyInfo) *crypto.KeyShareRejection {
		if dev.UserID == bot {
			return nil
		}
		return &crypto.KeyShareRejectOtherUser
	}
	// Alice's client answers the bridge's key request on its syncs, which run until the
	// late message reached WhatsApp.
	stop, synced := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(synced)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := ac.cli.SyncRequest(ctx, 500, ac.since, "", false, event.PresenceOnline)
			if err == nil {
				ac.mach.ProcessSyncResponse(ctx, resp, ac.since)
				ac.since = resp.NextBatch
			}
		}
	}()
	waitWA(t, bob, "the late message", func(m *events.Message) bool {
		return m.Message.GetConversation() == "late but relayed" || m.Message.GetExtendedTextMessage().GetText() == "late but relayed"
	})
	close(stop)
	<-synced
	// In order: the phone's events are read in the order they came, so had this one come
	// first, the wait above would have passed it by and this one would fail.
	waitWAText(t, bob, "sent after the late one")
}

// TestEncryptedBadInput: a garbled m.room.encrypted, an unknown algorithm and a replayed
// Megolm message index are each rejected with a notice, a log line and a metric, and the
// portal keeps relaying; so is (without a notice: it names no room the bridge could trust)
// a to-device event from a device that is not the one it claims to be.
func TestEncryptedBadInput(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "alice_e2ee_bad")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_bad", "4915557031", "Alice Bad Input")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557032", "Bob Bad Input")
	bobGhost, bot := cfg.PuppetUserID("4915557032"), cfg.BotUserID()
	ctx := context.Background()
	if _, err := bob.SendText(ctx, alice.phone.JID(), "hi"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bobGhost)
	hi := ac.waitDecrypted(t, room, bobGhost, bodyIs("hi"))
	first := ac.sendText(t, room, "the original")
	waitWAText(t, bob, "the original")
	orig, err := alice.mx.GetEvent(ctx, room, first)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		content map[string]any
		reason  string
	}{
		{"garbled", map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "not base64 at all!", "sender_key": "x",
			"session_id": "y", "device_id": "Z"}, "garbled"},
		{"unknown algorithm", map[string]any{"algorithm": "org.example.rot13", "ciphertext": "uryyb"}, "unknown_algorithm"},
		{"replayed index", orig.Content.Raw, "replayed_index"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := alice.mx.SendMessageEvent(ctx, room, event.EventEncrypted, tt.content)
			if err != nil {
				t.Fatal(err)
			}
			ac.waitDecrypted(t, room, bot, func(e *event.Event) bool {
				rel := e.Content.AsMessage().RelatesTo
				return rel != nil && rel.GetReplyTo() == resp.EventID && strings.Contains(e.Content.AsMessage().Body, "could not be decrypted")
			})
			if m := httpGet(t, cfg.Appservice.Address+"/metrics"); !strings.Contains(m, `causeway_encrypted_events_failed_total{reason="`+tt.reason+`"}`) {
				t.Errorf("/metrics does not count reason %s", tt.reason)
			}
			// The portal keeps working.
			ac.sendText(t, room, "still working after "+tt.name)
			waitWAText(t, bob, "still working after "+tt.name)
		})
	}

	// To-device events from a device that is not the one they claim, each Olm-encrypted to
	// the bot's device by Mallory's real device and carrying a room key for the portal:
	// rejected, logged and counted as impostors, and the portal keeps working both ways.
	mallory := newCryptoClient(t, registerUser(t, "mallory_e2ee_bad"))
	_, enc := ciphertext(t, alice.mx, room, hi.ID)
	botDevice, err := mallory.mach.GetOrFetchDevice(ctx, bot, botDeviceWithKey(t, alice.mx, bot, enc.SenderKey))
	if err != nil {
		t.Fatal(err)
	}
	own, alices := mallory.mach.OwnIdentity(), ac.mach.OwnIdentity()
	payload := func(sender id.UserID, signedBy id.Ed25519) olmPayload {
		return olmPayload{Sender: sender, Recipient: bot, RecipientKeys: map[string]id.Ed25519{"ed25519": botDevice.SigningKey},
			Keys: map[string]id.Ed25519{"ed25519": signedBy}, Type: event.ToDeviceRoomKey.Type, Content: roomKeyFor(t, room)}
	}
	impostors := []struct {
		name string
		evt  olmEvent
	}{
		{"payload claims another sender", olmEvent{payload: payload(alice.mx.UserID, own.SigningKey)}},
		{"payload claims another device's signing key", olmEvent{payload: payload(mallory.cli.UserID, alices.SigningKey)}},
		{"sender_key of another user's device", olmEvent{payload: payload(mallory.cli.UserID, own.SigningKey), claimedKey: alices.IdentityKey}},
	}
	before := failedCount(t, cfg.Appservice.Address, "impostor")
	for i, tt := range impostors {
		t.Run(tt.name, func(t *testing.T) {
			mallory.sendOlm(t, bot, botDevice, tt.evt)
			want := before + i + 1
			eventually(t, "the impostor counted", func() bool { return failedCount(t, cfg.Appservice.Address, "impostor") >= want })
			if got := failedCount(t, cfg.Appservice.Address, "impostor"); got != want {
				t.Errorf("%d impostors counted, want %d", got, want)
			}
			ac.sendText(t, room, "to whatsapp after "+tt.name)
			waitWAText(t, bob, "to whatsapp after "+tt.name)
			if _, err := bob.SendText(ctx, alice.phone.JID(), "to matrix after "+tt.name); err != nil {
				t.Fatal(err)
			}
			ac.waitDecrypted(t, room, bobGhost, bodyIs("to matrix after "+tt.name))
		})
	}
}

// TestEncryptedRequire: with encryption.require, a portal made before encryption was on is
// encrypted before anything more is sent into it, a plaintext message from the user is not
// relayed (they are told), and no event the bridge leaves in the room is plaintext.
func TestEncryptedRequire(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "alice_e2ee_req")
	cfg.Encryption.Allow = true // first without default: the portal is created unencrypted
	br := startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_req", "4915557041", "Alice Require")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557042", "Bob Require")
	bobGhost, bot := cfg.PuppetUserID("4915557042"), cfg.BotUserID()
	ctx := context.Background()
	if _, err := bob.SendText(ctx, alice.phone.JID(), "plain before require"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bobGhost)
	waitMessage(t, alice.mx, room, bobGhost, bodyIs("plain before require"))
	if err := br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	required := *cfg
	required.Encryption.Default, required.Encryption.Require = true, true
	startRelayBridge(t, &required)
	// Everything from here on must be encrypted.
	var before int
	for _, d := range ac.events(t, room) {
		if d.evt.Sender == bobGhost || d.evt.Sender == bot {
			before++
		}
	}

	if _, err := bob.SendText(ctx, alice.phone.JID(), "encrypted under require"); err != nil {
		t.Fatal(err)
	}
	ac.waitDecrypted(t, room, bobGhost, bodyIs("encrypted under require"))
	if enc, _ := ac.state.IsEncrypted(ctx, room); !enc {
		t.Errorf("the portal was not encrypted by the bridge")
	}
	plain, err := alice.mx.SendText(ctx, room, "plaintext under require")
	if err != nil {
		t.Fatal(err)
	}
	ac.waitDecrypted(t, room, bot, func(e *event.Event) bool {
		rel := e.Content.AsMessage().RelatesTo
		return rel != nil && rel.GetReplyTo() == plain.EventID && strings.Contains(e.Content.AsMessage().Body, "only relays encrypted")
	})
	ac.sendText(t, room, "encrypted from matrix under require")
	waitWAText(t, bob, "encrypted from matrix under require") // and the plaintext one never came first
	if _, err := bob.SendText(ctx, alice.phone.JID(), "last under require"); err != nil {
		t.Fatal(err)
	}
	ac.waitDecrypted(t, room, bobGhost, bodyIs("last under require"))

	var after []decrypted
	seen := 0
	for _, d := range ac.events(t, room) {
		if d.evt.Sender == bobGhost || d.evt.Sender == bot {
			seen++
			if seen > before {
				after = append(after, d)
			}
		}
	}
	if len(after) < 3 {
		t.Fatalf("only %d bridge events after the restart", len(after))
	}
	for _, d := range after {
		if !d.encrypted && d.evt.Type != event.StateEncryption {
			t.Errorf("plaintext %s from %s under encryption.require: %s", d.evt.Type.Type, d.evt.Sender, d.evt.ID)
		}
	}
}
