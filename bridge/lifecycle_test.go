package bridge_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

var pairingCode = regexp.MustCompile(`[A-Z0-9]{4}-[A-Z0-9]{4}`)

func TestPairingCodeLoginAndLoggedOut(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "pair_alice")
	startRelayBridge(t, cfg)
	bot := cfg.BotUserID()
	mx := registerUser(t, "pair_alice")
	start := time.Now()
	mgmt := openDM(t, mx, bot)
	waitForReply(t, mx, mgmt, bot, start, "management room")
	phone := newPhone(t, "4915550601", "Alice Pair")

	body := waitForReply(t, mx, mgmt, bot, send(t, mx, mgmt, "login phone +4915550601"), "enter this code")
	code := pairingCode.FindString(body)
	if code == "" {
		t.Fatalf("no pairing code in %q", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := phone.LinkWithCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	waitForReply(t, mx, mgmt, bot, start, "Successfully logged in as +4915550601")

	// WhatsApp logs the companion out (401): the user is told, and status says so.
	companion := types.NewADJID("4915550601", 0, 1)
	if err := sim.SendFailure(companion, 401); err != nil {
		t.Fatal(err)
	}
	waitForReply(t, mx, mgmt, bot, start, "WhatsApp logged this bridge out")
	waitForReply(t, mx, mgmt, bot, send(t, mx, mgmt, "ping"), "not logged in")
}

// roomBodies returns, in timeline order, the bodies of sender's messages in the room.
func roomBodies(t *testing.T, cli *mautrix.Client, room id.RoomID, sender id.UserID) []string {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		evt := resp.Chunk[i]
		if evt.Sender == sender && evt.Type == event.EventMessage {
			_ = evt.Content.ParseRaw(evt.Type)
			out = append(out, evt.Content.AsMessage().Body)
		}
	}
	return out
}

func waitBodies(t *testing.T, cli *mautrix.Client, room id.RoomID, sender id.UserID, want []string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var got []string
	for time.Now().Before(deadline) {
		got = roomBodies(t, cli, room, sender)
		if len(got) >= len(want) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second) // let any duplicate land before judging
	got = roomBodies(t, cli, room, sender)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("messages from %s:\n got %q\nwant %q", sender, got, want)
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %02d", prefix, i)
	}
	return out
}

// TestRestartLosesNothing stops the bridge while WhatsApp messages arrive and Matrix
// messages are being sent, starts it again, and checks every message arrived exactly once
// and in order, per chat.
func TestRestartLosesNothing(t *testing.T) {
	f := newDM(t, "restart_alice", "4915550701", "4915550702")
	cfg, br := lastBridge.cfg, lastBridge.br
	carol := newPhone(t, "4915550703", "Carol R")
	ctx := context.Background()
	alice := f.alice
	carolGhost := cfg.PuppetUserID("4915550703")
	if _, err := carol.SendText(ctx, alice.phone.JID(), "carol hello"); err != nil {
		t.Fatal(err)
	}
	carolRoom := alice.waitInvite(t, carolGhost)

	const n = 20
	fromBob, fromCarol, fromAlice := numbered("bob", n), numbered("carol", n), numbered("alice", n)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	sendAll := func(send func(string) error, msgs []string) {
		defer wg.Done()
		for _, m := range msgs {
			if err := send(m); err != nil {
				errs <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wg.Add(3)
	go sendAll(func(m string) error { _, err := f.contact.SendText(ctx, alice.phone.JID(), m); return err }, fromBob)
	go sendAll(func(m string) error { _, err := carol.SendText(ctx, alice.phone.JID(), m); return err }, fromCarol)
	go sendAll(func(m string) error { _, err := alice.mx.SendText(ctx, f.room, m); return err }, fromAlice)

	time.Sleep(700 * time.Millisecond)
	if err := br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	startRelayBridge(t, cfg)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	waitBodies(t, alice.mx, f.room, f.ghost, append([]string{"hi"}, fromBob...))
	waitBodies(t, alice.mx, carolRoom, carolGhost, append([]string{"carol hello"}, fromCarol...))
	// Alice's messages reached Bob's phone once each, in order.
	aliceOnBobsPhone := func() []string {
		var got []string
		// A WhatsApp app shows one message per ID, so a redelivery of the same ID is not a
		// duplicate; a second ID with the same text would be.
		seen := map[string]bool{}
		for _, e := range f.contact.Events.All() {
			if m, ok := e.(*events.Message); ok && strings.HasPrefix(m.Message.GetConversation(), "alice ") && !seen[m.Info.ID] {
				seen[m.Info.ID] = true
				got = append(got, m.Message.GetConversation())
			}
		}
		return got
	}
	deadline := time.Now().Add(3 * time.Minute)
	for len(aliceOnBobsPhone()) < n && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
	}
	// A duplicate would come after the last original: give it time, then read again.
	time.Sleep(time.Second)
	if got := aliceOnBobsPhone(); strings.Join(got, "|") != strings.Join(fromAlice, "|") {
		t.Fatalf("bob's phone got %q\nwant %q", got, fromAlice)
	}
}

// TestHomeserverOutage stops Dendrite while a contact writes; everything arrives once it is back.
func TestHomeserverOutage(t *testing.T) {
	f := newDM(t, "outage_alice", "4915550801", "4915550802")
	ctx := context.Background()
	if err := hs.Stop(); err != nil {
		t.Fatal(err)
	}
	msgs := numbered("during the outage", 8)
	for _, m := range msgs {
		if _, err := f.contact.SendText(ctx, f.alice.phone.JID(), m); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second)
	if err := hs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, f.alice.mx, f.room, f.ghost, append([]string{"hi"}, msgs...))
}
