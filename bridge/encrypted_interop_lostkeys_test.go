//go:build goolm

package bridge_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/wasim"
)

// TestEncryptedInteropElementLostKeys: an official using Element's crypto (matrix-js-sdk with
// its Rust crypto, interop/js) loses the device that read a portal's WhatsApp history, logs in
// on a new one and verifies it with their recovery key, as Element offers on a new login. The
// new device reads the whole history: every event the bridge sent before it existed decrypts
// (text, reply, edit, reaction, image; Megolm sessions rotating every two messages).
//
// Element never asks the bridge for a room key (Rust crypto asks only the user's own devices)
// and accepts forwarded keys only from the user's own verified devices; so the bridge sends the
// new device, once verified (share_with: cross_signed_only), the history's keys as m.room_key
// from the sessions' own device. The new device shows them as the old one did: the shield on a
// puppet's message is the one checkInteropRoom expects (puppetShields).
func TestEncryptedInteropElementLostKeys(t *testing.T) {
	start := time.Now()
	cfg := encryptedConfig(t, "sqlite", "alice_interop_lost")
	cfg.Encryption.ShareWith = config.ShareWithCrossSignedOnly
	cfg.Encryption.Require = true
	cfg.Encryption.Rotation.Messages = 2 // the history spans several sessions
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_interop_lost", "4915559311", "Alice Lost Interop")
	bot, password := cfg.BotUserID(), "password-alice_interop_lost"
	old := startJSClientRecovery(t, alice.mx.UserID, password, bot, "create")
	if !old.ready.CrossSigningReady || old.ready.RecoveryKey == "" {
		t.Fatalf("the first js device did not set up cross-signing and recovery: %+v", old.ready)
	}
	bob := newPhone(t, "4915559312", "Bob Lost Interop")
	bobGhost := cfg.PuppetUserID("4915559312")
	ctx := context.Background()

	if _, err := bob.SendText(ctx, alice.phone.JID(), "dm: first"); err != nil {
		t.Fatal(err)
	}
	dm := &interopChat{name: "dm", room: old.waitInvite(t, bobGhost), chat: alice.phone.JID(), from: bob, ghost: bobGhost,
		all: []*wasim.Phone{bob}, user: alice.phone.JID()}
	old.waitEvent(t, dm.room, bobGhost, "the DM's first message", func(e *jsEvent) bool { return e.body() == "dm: first" })
	interopFromWhatsApp(t, old, dm)
	history := bridgedHistory(t, alice.mx, dm.room, bot, bobGhost)
	t.Logf("the history: %d events the bridge sent, in %d Megolm sessions, read by the first device after %s",
		len(history.events), len(history.sessions), time.Since(start))
	if len(history.sessions) < 3 {
		t.Fatalf("the history is in %d Megolm sessions, want several (rotation.messages: 2)", len(history.sessions))
	}

	// The first device is lost: nothing is left that could forward the keys as the user's own.
	old.stop(t)
	began := time.Now()
	laptop := startJSClientRecovery(t, alice.mx.UserID, password, bot, old.ready.RecoveryKey)
	if !laptop.ready.CrossSigned {
		t.Fatalf("the new js device did not verify itself with the recovery key: %+v", laptop.ready)
	}
	laptop.do(t, "scrollback", map[string]any{"room_id": dm.room})
	t.Cleanup(func() {
		if t.Failed() {
			logUndecrypted(t, laptop, history.events)
		}
	})
	laptop.wait(t, "the new device to decrypt the portal's history", 2*time.Minute, func() bool {
		for _, evID := range history.events {
			if e := laptop.events[evID]; e == nil || e.UTD {
				return false
			}
		}
		return true
	})
	img := interopSHA256(interopImage(dm.name + " from whatsapp"))
	for _, e := range laptop.seen(dm.room) {
		if e.Content["msgtype"] != "m.image" {
			continue
		}
		if e.Media == nil || e.Media.Error != "" || e.Media.SHA256 != img || !e.Media.EncryptedFile {
			t.Errorf("the new device could not show the history's image %s: %+v", e.EventID, e.Media)
		}
		img = ""
	}
	if img != "" {
		t.Errorf("the new device shows no image in the history")
	}
	given := metricSum(t, cfg.Appservice.Address, func(l string) bool {
		return strings.HasPrefix(l, `causeway_encryption_history_keys_total{outcome="given"}`)
	})
	t.Logf("the new device decrypted all %d events of the history %s after it logged in; the bridge gave %d history keys",
		len(history.events), time.Since(began), given)

	if _, err := bob.SendText(ctx, alice.phone.JID(), "dm: after the new device"); err != nil {
		t.Fatal(err)
	}
	laptop.waitEvent(t, dm.room, bobGhost, "WhatsApp's next message", func(e *jsEvent) bool { return e.body() == "dm: after the new device" })
	checkInteropRoom(t, alice.mx, laptop, dm.room, alice.mx.UserID, bot, bobGhost)
}

// interopHistory is what the bridge sent into a room: its encrypted events (redacted ones
// aside: nothing is left of them to decrypt) and their Megolm sessions.
type interopHistory struct {
	events   []id.EventID
	sessions map[id.SessionID]int
}

func bridgedHistory(t *testing.T, cli *mautrix.Client, room id.RoomID, senders ...id.UserID) interopHistory {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 500)
	if err != nil {
		t.Fatal(err)
	}
	h := interopHistory{sessions: map[id.SessionID]int{}}
	for _, evt := range resp.Chunk {
		// Redactions aside (Matrix cannot encrypt them), and what they redacted.
		if evt.StateKey != nil || !containsUser(senders, evt.Sender) || evt.Type == event.EventRedaction || evt.Unsigned.RedactedBecause != nil {
			continue
		}
		if evt.Type != event.EventEncrypted {
			t.Errorf("%s: the bridge sent %s %s in plaintext", room, evt.Type.Type, evt.ID)
			continue
		}
		if err := evt.Content.ParseRaw(event.EventEncrypted); err != nil {
			t.Fatal(err)
		}
		h.events = append(h.events, evt.ID)
		h.sessions[evt.Content.AsEncrypted().SessionID]++
	}
	return h
}

func containsUser(users []id.UserID, u id.UserID) bool {
	for _, v := range users {
		if v == u {
			return true
		}
	}
	return false
}

// logUndecrypted logs how the js client shows the events it should have decrypted.
func logUndecrypted(t *testing.T, c *jsClient, events []id.EventID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for _, evID := range events {
		switch e := c.events[evID]; {
		case e == nil:
			lines = append(lines, fmt.Sprintf("%s: never shown", evID))
		case e.UTD:
			lines = append(lines, fmt.Sprintf("%s: undecryptable (%s)", evID, e.UTDReason))
		}
	}
	sort.Strings(lines)
	t.Logf("the new device's view of the history:\n%s", strings.Join(lines, "\n"))
}
