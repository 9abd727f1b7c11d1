package wasim_test

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

func TestPresenceAndTyping(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, bob, "bob-bridge")

	if err := bridge.cli.SubscribePresence(ctx, alice.Account.JID); err != nil {
		t.Fatal(err)
	}
	first, err := wasim.WaitFor(ctx, bridge.events, func(e *events.Presence) bool { return e.From.User == "4915550001" })
	if err != nil || !first.Unavailable {
		t.Fatalf("initial presence %+v, %v; alice never came online, so she is unavailable", first, err)
	}
	if err = alice.SetOnline(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, bridge.events, func(e *events.Presence) bool { return e.From.User == "4915550001" && !e.Unavailable }); err != nil {
		t.Fatalf("online presence: %v", err)
	}
	if err = alice.SetOnline(ctx, false); err != nil {
		t.Fatal(err)
	}
	offline, err := wasim.WaitFor(ctx, bridge.events, func(e *events.Presence) bool { return e.From.User == "4915550001" && e.Unavailable })
	if err != nil || offline.LastSeen.IsZero() {
		t.Fatalf("offline presence %+v, %v (want a last-seen time)", offline, err)
	}

	// Typing in a direct chat reaches every device of the other side.
	if err = alice.SetTyping(ctx, bob.Account.JID, true); err != nil {
		t.Fatal(err)
	}
	for name, evts := range map[string]*wasim.Events{"phone": bob.Events, "bridge": bridge.events} {
		typing, err := wasim.WaitFor(ctx, evts, func(e *events.ChatPresence) bool { return e.State == types.ChatPresenceComposing })
		if err != nil || typing.Chat != alice.Account.JID || typing.Sender.User != "4915550001" || typing.IsGroup {
			t.Fatalf("%s typing event %+v, %v", name, typing, err)
		}
	}
	if err = alice.SetTyping(ctx, bob.Account.JID, false); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, bridge.events, func(e *events.ChatPresence) bool { return e.State == types.ChatPresencePaused }); err != nil {
		t.Fatalf("paused: %v", err)
	}

	// Typing in a group names the group and the typist.
	group, err := bob.CreateGroup(ctx, "Typing club", alice.Account.JID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, alice.Events, func(e *events.JoinedGroup) bool { return e.JID == group.JID }); err != nil {
		t.Fatal(err)
	}
	if err = alice.SetTyping(ctx, group.JID, true); err != nil {
		t.Fatal(err)
	}
	inGroup, err := wasim.WaitFor(ctx, bridge.events, func(e *events.ChatPresence) bool { return e.IsGroup })
	if err != nil || inGroup.Chat != group.JID || inGroup.Sender.User != "4915550001" {
		t.Fatalf("group typing %+v, %v", inGroup, err)
	}

	// Going away without saying so (the connection just ends) also makes the user unavailable.
	if err = alice.SetOnline(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, bridge.events, func(e *events.Presence) bool { return e.From.User == "4915550001" && !e.Unavailable }); err != nil {
		t.Fatal(err)
	}
	if err = sim.DropConnection(alice.JID()); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, bridge.events, func(e *events.Presence) bool { return e.From.User == "4915550001" && e.Unavailable }); err != nil {
		t.Fatalf("no unavailable presence after the connection dropped: %v", err)
	}
}
