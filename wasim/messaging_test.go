package wasim_test

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

func waitReceipt(t testing.TB, ctx context.Context, evts *wasim.Events, id types.MessageID, typ types.ReceiptType) *events.Receipt {
	t.Helper()
	r, err := wasim.WaitFor(ctx, evts, func(r *events.Receipt) bool {
		if r.Type != typ {
			return false
		}
		for _, rid := range r.MessageIDs {
			if rid == id {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("waiting for %q receipt of %s: %v", typ, id, err)
	}
	return r
}

func TestDirectMessage(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")

	before := time.Now().Add(-2 * time.Second)
	resp := sendText(t, ctx, alice.Client, bob.Account.JID, "hello bob")
	if resp.Timestamp.Before(before) || resp.Timestamp.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("server timestamp %s is not now", resp.Timestamp)
	}
	got := waitMessage(t, ctx, bob.Events, "alice's message", withText("hello bob"))
	if got.Info.ID != resp.ID || got.Info.Sender.User != "4915550001" || got.Info.Chat.User != "4915550001" || got.Info.PushName != "Alice" {
		t.Fatalf("bob got %+v", got.Info)
	}
	if !got.Info.Timestamp.Equal(resp.Timestamp) {
		t.Fatalf("recipient timestamp %s differs from the sender's ack %s", got.Info.Timestamp, resp.Timestamp)
	}
	// whatsmeow sends "inactive" delivery receipts until it marks itself available.
	waitReceipt(t, ctx, alice.Events, resp.ID, types.ReceiptTypeInactive)
	if err := bob.Client.MarkRead(ctx, []types.MessageID{got.Info.ID}, time.Now(), got.Info.Chat, got.Info.Sender); err != nil {
		t.Fatal(err)
	}
	read := waitReceipt(t, ctx, alice.Events, resp.ID, types.ReceiptTypeRead)
	if read.Sender.User != "4915550002" {
		t.Fatalf("read receipt from %s", read.Sender)
	}

	// The other direction, with bob online so delivery receipts are plain "delivered".
	if err := alice.Client.SendPresence(ctx, types.PresenceAvailable); err != nil {
		t.Fatal(err)
	}
	reply := sendText(t, ctx, bob.Client, alice.Account.JID, "hi alice")
	gotReply := waitMessage(t, ctx, alice.Events, "bob's reply", withText("hi alice"))
	if gotReply.Info.Sender.User != "4915550002" || gotReply.Info.IsFromMe {
		t.Fatalf("alice got %+v", gotReply.Info)
	}
	waitReceipt(t, ctx, bob.Events, reply.ID, types.ReceiptTypeDelivered)
	if err := alice.Client.MarkRead(ctx, []types.MessageID{reply.ID}, time.Now(), gotReply.Info.Chat, gotReply.Info.Sender); err != nil {
		t.Fatal(err)
	}
	waitReceipt(t, ctx, bob.Events, reply.ID, types.ReceiptTypeRead)

	// The session is established now; later messages use the ratchet (msg, not pkmsg).
	sendText(t, ctx, alice.Client, bob.Account.JID, "second")
	waitMessage(t, ctx, bob.Events, "second message", withText("second"))
	// LID addressing: the same user, reached through their LID, sees the sender in the LID namespace.
	viaLID := sendText(t, ctx, alice.Client, bob.Account.LIDJID, "via lid")
	lidMsg := waitMessage(t, ctx, bob.Events, "message sent to the LID", withText("via lid"))
	if lidMsg.Info.ID != viaLID.ID || lidMsg.Info.Sender.Server != types.HiddenUserServer || lidMsg.Info.SenderAlt.User != "4915550001" {
		t.Fatalf("LID message from %s (alt %s)", lidMsg.Info.Sender, lidMsg.Info.SenderAlt)
	}
	// Unmodelled iqs get an error at once instead of leaving the client waiting 75 seconds.
	if _, err := alice.Client.GetBotListV2(ctx); err == nil {
		t.Fatal("an unmodelled iq succeeded")
	}
	nobody := "nobody home"
	if _, err := alice.Client.SendMessage(ctx, types.NewJID("4915559999", types.DefaultUserServer), &waE2E.Message{Conversation: &nobody}); err == nil {
		t.Fatal("sending to an unknown number must fail")
	}
}

func TestOfflineDelivery(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, bob, "bob-bridge")
	bridgeJID := bridge.cli.Store.GetJID()
	// The phone seeds app state and shares its keys in the background after linking; on a loaded
	// machine that can still be under way when the drop window below counts unacked stanzas.
	waitAppStateKey(t, ctx, bridge)

	// Offline: stanzas wait in the device's queue.
	bridge.cli.Disconnect()
	first := sendText(t, ctx, alice.Client, bob.Account.JID, "while you were away 1")
	sendText(t, ctx, alice.Client, bob.Account.JID, "while you were away 2")
	waitMessage(t, ctx, bob.Events, "phone copy", withText("while you were away 2"))
	if n := sim.PendingStanzas(bridgeJID); n < 2 {
		t.Fatalf("bridge has %d queued stanzas, want at least 2", n)
	}
	if err := bridge.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	msg := waitMessage(t, ctx, bridge.events, "queued message 1", withText("while you were away 1"))
	if msg.Info.ID != first.ID {
		t.Fatalf("queued message has id %s, want %s", msg.Info.ID, first.ID)
	}
	waitMessage(t, ctx, bridge.events, "queued message 2", withText("while you were away 2"))
	preview, err := wasim.WaitFor(ctx, bridge.events, func(e *events.OfflineSyncPreview) bool { return e.Total >= 2 })
	if err != nil || preview.Messages < 2 {
		t.Fatalf("offline preview %+v, %v", preview, err)
	}
	// The first login after pairing had an empty queue; this reconnect must report the backlog.
	if _, err := wasim.WaitFor(ctx, bridge.events, func(e *events.OfflineSyncCompleted) bool { return e.Count >= 2 }); err != nil {
		t.Fatalf("no offline sync completion counting the backlog: %v", err)
	}
	waitFor(t, ctx, "queue drained by acks", func() bool { return sim.PendingStanzas(bridgeJID) == 0 })

	// Lost in transit: the server sends, the connection dies before the client sees it, nothing is acked.
	if err := sim.SetDeliveryDrop(bridgeJID, true); err != nil {
		t.Fatal(err)
	}
	lost := sendText(t, ctx, alice.Client, bob.Account.JID, "lost in transit")
	waitMessage(t, ctx, bob.Events, "phone copy", withText("lost in transit"))
	if n := sim.PendingStanzas(bridgeJID); n != 1 {
		t.Fatalf("bridge has %d unacked stanzas, want 1", n)
	}
	if err := sim.SetDeliveryDrop(bridgeJID, false); err != nil {
		t.Fatal(err)
	}
	if err := sim.DropConnection(bridgeJID); err != nil {
		t.Fatal(err)
	}
	// whatsmeow reconnects on its own; the unacked stanza is redelivered after <success>.
	redelivered := waitMessage(t, ctx, bridge.events, "redelivered message", withText("lost in transit"))
	if redelivered.Info.ID != lost.ID {
		t.Fatalf("redelivered id %s, want %s", redelivered.Info.ID, lost.ID)
	}
	waitFor(t, ctx, "redelivered stanza acked", func() bool { return sim.PendingStanzas(bridgeJID) == 0 })
}

func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestMultiDevice(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, alice, "alice-bridge")
	laptop := linkCompanion(t, ctx, sim, alice, "alice-laptop")

	in := sendText(t, ctx, bob.Client, alice.Account.JID, "to every device")
	for name, evts := range map[string]*wasim.Events{"phone": alice.Events, "bridge": bridge.events, "laptop": laptop.events} {
		msg := waitMessage(t, ctx, evts, name+" copy", withText("to every device"))
		if msg.Info.ID != in.ID || msg.Info.IsFromMe {
			t.Fatalf("%s got %+v", name, msg.Info)
		}
	}

	out := sendText(t, ctx, alice.Client, bob.Account.JID, "from the phone")
	waitMessage(t, ctx, bob.Events, "bob's copy", withText("from the phone"))
	for name, evts := range map[string]*wasim.Events{"bridge": bridge.events, "laptop": laptop.events} {
		own := waitMessage(t, ctx, evts, name+" own copy", withText("from the phone"))
		if !own.Info.IsFromMe || own.Info.Chat != bob.Account.JID || own.Info.ID != out.ID {
			t.Fatalf("%s saw own message as from-me=%v chat=%s id=%s", name, own.Info.IsFromMe, own.Info.Chat, own.Info.ID)
		}
	}

	fromBridge := sendText(t, ctx, bridge.cli, bob.Account.JID, "from the bridge")
	waitMessage(t, ctx, bob.Events, "bob's copy of the bridge message", withText("from the bridge"))
	own := waitMessage(t, ctx, alice.Events, "phone's copy of the bridge message", withText("from the bridge"))
	if !own.Info.IsFromMe || own.Info.Sender.Device == 0 {
		t.Fatalf("phone saw the bridge's message as from-me=%v sender=%s", own.Info.IsFromMe, own.Info.Sender)
	}
	// A read receipt from bob reaches every device of alice.
	if err := bob.Client.MarkRead(ctx, []types.MessageID{fromBridge.ID}, time.Now(), alice.Account.JID, bridge.cli.Store.GetJID()); err != nil {
		t.Fatal(err)
	}
	waitReceipt(t, ctx, bridge.events, fromBridge.ID, types.ReceiptTypeRead)
	waitReceipt(t, ctx, alice.Events, fromBridge.ID, types.ReceiptTypeRead)

	// Unlinking a device logs it out and removes it from the account.
	if err := sim.RemoveDevice(laptop.cli.Store.GetJID()); err != nil {
		t.Fatal(err)
	}
	if _, err := wasim.WaitFor[*events.LoggedOut](ctx, laptop.events, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.Devices("4915550001")); n != 2 {
		t.Fatalf("alice has %d devices after unlinking, want 2", n)
	}
	sendText(t, ctx, bob.Client, alice.Account.JID, "after unlink")
	waitMessage(t, ctx, bridge.events, "bridge after unlink", withText("after unlink"))

	// A companion logging itself out.
	if err := bridge.cli.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if !bridge.store.Deleted() || len(sim.Devices("4915550001")) != 1 {
		t.Fatalf("after logout: store deleted %v, devices %v", bridge.store.Deleted(), sim.Devices("4915550001"))
	}
}

func TestRetryReceipt(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	sendText(t, ctx, alice.Client, bob.Account.JID, "establish a session")
	waitMessage(t, ctx, bob.Events, "first message", withText("establish a session"))

	// Bob loses every session with alice, as after restoring an old backup.
	for _, user := range []string{alice.Account.JID.SignalAddressUser(), alice.Account.LIDJID.SignalAddressUser()} {
		if err := bob.Store.DeleteAllSessions(ctx, user); err != nil {
			t.Fatal(err)
		}
	}
	lost := sendText(t, ctx, alice.Client, bob.Account.JID, "needs a retry")
	undecryptable, err := wasim.WaitFor(ctx, bob.Events, func(e *events.UndecryptableMessage) bool { return e.Info.ID == lost.ID })
	if err != nil {
		t.Fatalf("bob never failed to decrypt: %v", err)
	}
	if undecryptable.IsUnavailable {
		t.Fatal("message marked unavailable instead of undecryptable")
	}
	msg := waitMessage(t, ctx, bob.Events, "retried message", withText("needs a retry"))
	if msg.Info.ID != lost.ID || msg.RetryCount < 1 {
		t.Fatalf("got id %s retry count %d, want id %s after at least one retry", msg.Info.ID, msg.RetryCount, lost.ID)
	}
	sendText(t, ctx, bob.Client, alice.Account.JID, "works again")
	waitMessage(t, ctx, alice.Events, "reply over the new session", withText("works again"))
}

var _ = whatsmeow.SendRequestExtra{}
