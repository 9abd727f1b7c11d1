package wasim_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

// waitAppStateKey waits until the phone's key share reached the companion (the phone sends it once the
// companion is online after linking).
func waitAppStateKey(t testing.TB, ctx context.Context, c *companion) {
	t.Helper()
	waitFor(t, ctx, "app state key share", func() bool {
		id, err := c.cli.Store.AppStateKeys.GetLatestAppStateSyncKeyID(ctx)
		return err == nil && id != nil
	})
}

func TestContactsAppState(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	carol := newPhone(t, ctx, sim, "4915550003", "Carol")
	bridge := linkCompanion(t, ctx, sim, alice, "alice-bridge")
	waitAppStateKey(t, ctx, bridge)
	// The initial full sync (of the phone's existing state) applies silently; changes after it are events.
	if _, err := wasim.WaitFor(ctx, bridge.events, func(e *events.AppStateSyncComplete) bool { return e.Name == appstate.WAPatchCriticalUnblockLow }); err != nil {
		t.Fatalf("initial app state sync: %v", err)
	}

	if _, err := wasim.WaitFor(ctx, alice.Events, func(e *events.AppStateSyncComplete) bool { return e.Name == appstate.WAPatchRegularLow }); err != nil {
		t.Fatalf("phone's own app state: %v", err)
	}
	err := alice.SetContacts(ctx,
		wasim.Contact{JID: bob.Account.JID, FullName: "Bob Builder", FirstName: "Bob"},
		wasim.Contact{JID: carol.Account.JID, FullName: "Carol Clerk", FirstName: "Carol"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		jid  types.JID
		name string
	}{{bob.Account.JID, "Bob Builder"}, {carol.Account.JID, "Carol Clerk"}} {
		evt, err := wasim.WaitFor(ctx, bridge.events, func(e *events.Contact) bool { return e.JID == want.jid })
		if err != nil {
			t.Fatalf("contact %s not synced: %v", want.jid, err)
		}
		if evt.Action.GetFullName() != want.name || evt.Action.GetLidJID() == "" {
			t.Fatalf("contact %s synced as %q (lid %q)", want.jid, evt.Action.GetFullName(), evt.Action.GetLidJID())
		}
	}
	info, err := bridge.cli.Store.Contacts.GetContact(ctx, bob.Account.JID)
	if err != nil || info.FullName == "" {
		t.Fatalf("bridge's contact store has %+v, %v", info, err)
	}

	// A second patch gets the next server version; the bridge applies it incrementally.
	if err = alice.SetPushName(ctx, "Alice (Ministry)"); err != nil {
		t.Fatal(err)
	}
	setting, err := wasim.WaitFor[*events.PushNameSetting](ctx, bridge.events, nil)
	if err != nil || setting.Action.GetName() != "Alice (Ministry)" {
		t.Fatalf("push name setting %+v, %v", setting, err)
	}
	if err = alice.Client.SendAppState(ctx, appstate.BuildMute(bob.Account.JID, true, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, bridge.events, func(e *events.Mute) bool { return e.JID == bob.Account.JID && e.Action.GetMuted() }); err != nil {
		t.Fatalf("mute not synced: %v", err)
	}
	// And the other way: a companion's change reaches the phone through server_sync.
	if err = bridge.cli.SendAppState(ctx, appstate.BuildPin(carol.Account.JID, true)); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, alice.Events, func(e *events.Pin) bool { return e.JID == carol.Account.JID && e.Action.GetPinned() }); err != nil {
		t.Fatalf("pin from the bridge not synced to the phone: %v", err)
	}
	// A stale companion gets 409 with the patches it missed, applies them and retries.
	bridgeJID := bridge.cli.Store.GetJID()
	if err = sim.SetDeliveryDrop(bridgeJID, true); err != nil {
		t.Fatal(err)
	}
	if err = alice.Client.SendAppState(ctx, appstate.BuildPin(bob.Account.JID, true)); err != nil {
		t.Fatal(err)
	}
	if err = bridge.cli.SendAppState(ctx, appstate.BuildPin(alice.Account.JID, true)); err != nil {
		t.Fatalf("send from a stale companion: %v", err)
	}
	if _, err = wasim.WaitFor(ctx, bridge.events, func(e *events.Pin) bool { return e.JID == bob.Account.JID }); err != nil {
		t.Fatalf("the conflicting patch was not applied on the companion: %v", err)
	}
	if _, err = wasim.WaitFor(ctx, alice.Events, func(e *events.Pin) bool { return e.JID == alice.Account.JID }); err != nil {
		t.Fatalf("the retried patch did not reach the phone: %v", err)
	}
	if err = sim.SetDeliveryDrop(bridgeJID, false); err != nil {
		t.Fatal(err)
	}
	// Push names travel on messages too.
	sendText(t, ctx, alice.Client, bob.Account.JID, "new name")
	msg := waitMessage(t, ctx, bob.Events, "message with the new push name", withText("new name"))
	if msg.Info.PushName != "Alice (Ministry)" {
		t.Fatalf("push name on message is %q", msg.Info.PushName)
	}
}

func TestHistorySync(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, alice, "alice-bridge")

	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	conv := alice.HistoryConversation(bob.Account.JID,
		wasim.HistoryMessage{ID: "HIST0001", Sender: bob.Account.JID, Text: "an old question", Time: old},
		wasim.HistoryMessage{ID: "HIST0002", Sender: alice.Account.JID, Text: "an old answer", Time: old.Add(time.Minute)})
	err := alice.SendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType:      waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Conversations: []*waHistorySync.Conversation{conv},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Push names come in their own chunk, as from the phone app.
	err = alice.SendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType:  waHistorySync.HistorySync_PUSH_NAME.Enum(),
		Pushnames: []*waHistorySync.Pushname{{ID: proto.String(bob.Account.JID.String()), Pushname: proto.String("Bobby")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := wasim.WaitFor(ctx, bridge.events, func(e *events.HistorySync) bool {
		return e.Data.GetSyncType() == waHistorySync.HistorySync_INITIAL_BOOTSTRAP
	})
	if err != nil {
		t.Fatal(err)
	}
	if hs.Data.GetSyncType() != waHistorySync.HistorySync_INITIAL_BOOTSTRAP || len(hs.Data.GetConversations()) != 1 {
		t.Fatalf("history sync %v with %d conversations", hs.Data.GetSyncType(), len(hs.Data.GetConversations()))
	}
	got := hs.Data.GetConversations()[0]
	if got.GetID() != bob.Account.JID.String() || len(got.GetMessages()) != 2 {
		t.Fatalf("conversation %s with %d messages", got.GetID(), len(got.GetMessages()))
	}
	parsed, err := bridge.cli.ParseWebMessage(bob.Account.JID, got.GetMessages()[0].GetMessage())
	if err != nil {
		t.Fatal(err)
	}
	if textOf(parsed.Message) != "an old question" || parsed.Info.IsFromMe || !parsed.Info.Timestamp.Equal(old) {
		t.Fatalf("first history message %q from-me=%v at %s", textOf(parsed.Message), parsed.Info.IsFromMe, parsed.Info.Timestamp)
	}
	if second, err := bridge.cli.ParseWebMessage(bob.Account.JID, got.GetMessages()[1].GetMessage()); err != nil || !second.Info.IsFromMe {
		t.Fatalf("second history message should be from me: %v", err)
	}
	waitFor(t, ctx, "push names from history", func() bool {
		c, err := bridge.cli.Store.Contacts.GetContact(ctx, bob.Account.JID)
		return err == nil && c.PushName == "Bobby"
	})
	// The companion confirms the download to the phone with a hist_sync receipt.
	if _, err = wasim.WaitFor(ctx, alice.Events, func(r *events.Receipt) bool { return r.Type == types.ReceiptTypeHistorySync }); err != nil {
		t.Fatalf("phone never got the hist_sync receipt: %v", err)
	}
}
