package wasim_test

import (
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"codeberg.org/causeway/causeway/wasim"
)

// TestStatusBroadcastAndCalls: a companion gets a status update from status@broadcast and a
// broadcast-list message from the list, both with the poster as sender, and a call offer and
// its end from the caller.
func TestStatusBroadcastAndCalls(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	carol := newPhone(t, ctx, sim, "4915550003", "Carol")
	bobBridge := linkCompanion(t, ctx, sim, bob, "bob-bridge")

	statusID, err := alice.PostStatus(ctx, &waE2E.Message{Conversation: proto.String("my story")}, bob.JID(), carol.JID())
	if err != nil {
		t.Fatal(err)
	}
	for name, evts := range map[string]*wasim.Events{"bob's companion": bobBridge.events, "carol": carol.Events} {
		got := waitMessage(t, ctx, evts, name+": status", withText("my story"))
		if got.Info.Chat != types.StatusBroadcastJID || got.Info.Sender.User != alice.JID().User || got.Info.ID != statusID || got.Info.IsFromMe {
			t.Errorf("%s got the status as %+v", name, got.Info.MessageSource)
		}
	}

	listID, err := alice.SendBroadcast(ctx, "1700000000", &waE2E.Message{Conversation: proto.String("to my list")}, bob.JID())
	if err != nil {
		t.Fatal(err)
	}
	got := waitMessage(t, ctx, bobBridge.events, "broadcast-list message", withText("to my list"))
	if !got.Info.Chat.IsBroadcastList() || got.Info.Chat.User != "1700000000" || got.Info.Sender.User != alice.JID().User ||
		got.Info.ID != listID || !got.Info.IsIncomingBroadcast() {
		t.Errorf("broadcast-list message arrived as %+v", got.Info.MessageSource)
	}
	if _, err := alice.SendBroadcast(ctx, "status", &waE2E.Message{Conversation: proto.String("x")}, bob.JID()); err == nil {
		t.Error("SendBroadcast accepted status@broadcast as a list")
	}

	callID, err := alice.OfferCall(bob.JID(), true)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := wasim.WaitFor(ctx, bobBridge.events, func(c *events.CallOffer) bool { return c.CallID == callID })
	if err != nil {
		t.Fatal(err)
	}
	if offer.From.User != alice.JID().User || offer.CallCreator.User != alice.JID().User {
		t.Errorf("offer = %+v", offer.BasicCallMeta)
	}
	if _, ok := offer.Data.GetOptionalChildByTag("video"); !ok {
		t.Error("a video call's offer has no <video>")
	}
	if err := alice.EndCall(bob.JID(), callID, "timeout"); err != nil {
		t.Fatal(err)
	}
	end, err := wasim.WaitFor(ctx, bobBridge.events, func(c *events.CallTerminate) bool { return c.CallID == callID })
	if err != nil {
		t.Fatal(err)
	}
	if end.Reason != "timeout" {
		t.Errorf("terminate reason %q", end.Reason)
	}
	if err := sim.WaitIdle(ctx, 300e6); err != nil {
		t.Fatal(err)
	}
	if nacks := sim.Nacks(); len(nacks) > 0 {
		t.Errorf("clients rejected stanzas: %+v", nacks)
	}
}
