package wasim_test

import (
	"errors"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

func TestGroupMessaging(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	carol := newPhone(t, ctx, sim, "4915550003", "Carol")
	dave := newPhone(t, ctx, sim, "4915550004", "Dave")
	bridge := linkCompanion(t, ctx, sim, bob, "bob-bridge")

	group, err := alice.CreateGroup(ctx, "Ministry", bob.Account.JID, carol.Account.JID)
	if err != nil {
		t.Fatal(err)
	}
	if len(group.Participants) != 3 || group.Name != "Ministry" {
		t.Fatalf("created group %+v", group)
	}
	for name, evts := range map[string]*wasim.Events{"bob": bob.Events, "bridge": bridge.events, "carol": carol.Events} {
		joined, err := wasim.WaitFor(ctx, evts, func(e *events.JoinedGroup) bool { return e.JID == group.JID })
		if err != nil {
			t.Fatalf("%s never joined: %v", name, err)
		}
		if joined.Name != "Ministry" || len(joined.Participants) != 3 {
			t.Fatalf("%s joined %+v", name, joined.GroupInfo)
		}
	}

	// Sender keys travel with the first message; everyone decrypts the shared skmsg.
	first := sendText(t, ctx, alice.Client, group.JID, "hello group")
	for name, evts := range map[string]*wasim.Events{"bob": bob.Events, "bridge": bridge.events, "carol": carol.Events} {
		msg := waitMessage(t, ctx, evts, name+"'s copy", withText("hello group"))
		if !msg.Info.IsGroup || msg.Info.Chat != group.JID || msg.Info.Sender.User != "4915550001" || msg.Info.ID != first.ID {
			t.Fatalf("%s got %+v", name, msg.Info)
		}
	}
	sendText(t, ctx, bridge.cli, group.JID, "reply from bob's bridge")
	for name, evts := range map[string]*wasim.Events{"alice": alice.Events, "carol": carol.Events, "bob's phone": bob.Events} {
		msg := waitMessage(t, ctx, evts, name+"'s copy of the reply", withText("reply from bob's bridge"))
		if msg.Info.Sender.User != "4915550002" {
			t.Fatalf("%s saw the reply from %s", name, msg.Info.Sender)
		}
	}
	sendText(t, ctx, alice.Client, group.JID, "sender key reused")
	waitMessage(t, ctx, carol.Events, "second group message", withText("sender key reused"))

	// Membership changes reach members, and the next message reaches exactly the new member list.
	if _, err = alice.Client.UpdateGroupParticipants(ctx, group.JID, []types.JID{dave.Account.JID}, whatsmeow.ParticipantChangeAdd); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, dave.Events, func(e *events.JoinedGroup) bool { return e.JID == group.JID }); err != nil {
		t.Fatalf("dave was not told he joined: %v", err)
	}
	if _, err = wasim.WaitFor(ctx, carol.Events, func(e *events.GroupInfo) bool { return len(e.Join) == 1 && e.Join[0].User == "4915550004" }); err != nil {
		t.Fatalf("carol was not told dave joined: %v", err)
	}
	if _, err = alice.Client.UpdateGroupParticipants(ctx, group.JID, []types.JID{carol.Account.JID}, whatsmeow.ParticipantChangeRemove); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, carol.Events, func(e *events.GroupInfo) bool { return len(e.Leave) == 1 && e.Leave[0].User == "4915550003" }); err != nil {
		t.Fatalf("carol was not told she was removed: %v", err)
	}
	// The actor gets the notifications too. Wait for them before sending: whatsmeow updates its cached
	// member slice in place while SendMessage may be reading it (a race inside whatsmeow, see README).
	for _, who := range []string{"4915550004", "4915550003"} {
		if _, err = wasim.WaitFor(ctx, alice.Events, func(e *events.GroupInfo) bool {
			return (len(e.Join) == 1 && e.Join[0].User == who) || (len(e.Leave) == 1 && e.Leave[0].User == who)
		}); err != nil {
			t.Fatalf("alice's own notification about %s: %v", who, err)
		}
	}
	sendText(t, ctx, alice.Client, group.JID, "after the changes")
	waitMessage(t, ctx, dave.Events, "new member's first message", withText("after the changes"))
	waitMessage(t, ctx, bob.Events, "bob's copy after the changes", withText("after the changes"))
	if _, err = carol.Client.SendMessage(ctx, group.JID, bob.Client.BuildReaction(group.JID, alice.Account.JID, first.ID, "👍")); err == nil {
		t.Fatal("a removed member could still send to the group")
	}

	// Group metadata: subject, description, admins, invite links, leaving.
	// The group is not locked, so any member may rename it.
	if err = bob.Client.SetGroupName(ctx, group.JID, "Renamed"); err != nil {
		t.Fatalf("rename by member: %v", err)
	}
	if _, err = wasim.WaitFor(ctx, dave.Events, func(e *events.GroupInfo) bool { return e.Name != nil && e.Name.Name == "Renamed" }); err != nil {
		t.Fatalf("rename not seen: %v", err)
	}
	if err = alice.Client.SetGroupTopic(ctx, group.JID, "", "", "Official business only"); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, bridge.events, func(e *events.GroupInfo) bool { return e.Topic != nil && e.Topic.Topic == "Official business only" }); err != nil {
		t.Fatalf("topic not seen: %v", err)
	}
	if _, err = alice.Client.UpdateGroupParticipants(ctx, group.JID, []types.JID{bob.Account.JID}, whatsmeow.ParticipantChangePromote); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, dave.Events, func(e *events.GroupInfo) bool { return len(e.Promote) == 1 && e.Promote[0].User == "4915550002" }); err != nil {
		t.Fatalf("promotion not seen: %v", err)
	}
	link, err := bob.Client.GetGroupInviteLink(ctx, group.JID, false)
	if err != nil {
		t.Fatalf("admin could not get invite link: %v", err)
	}
	if _, err = dave.Client.GetGroupInviteLink(ctx, group.JID, false); err == nil {
		t.Fatal("a non-admin got the invite link")
	}
	preview, err := carol.Client.GetGroupInfoFromLink(ctx, link)
	if err != nil || preview.Name != "Renamed" {
		t.Fatalf("link preview %+v, %v", preview, err)
	}
	joinedJID, err := carol.Client.JoinGroupWithLink(ctx, link)
	if err != nil || joinedJID != group.JID {
		t.Fatalf("join by link: %s, %v", joinedJID, err)
	}
	info, err := carol.Client.GetGroupInfo(ctx, group.JID)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Participants) != 4 || info.Topic != "Official business only" {
		t.Fatalf("group after joining by link: %d participants, topic %q", len(info.Participants), info.Topic)
	}
	if err = dave.Client.LeaveGroup(ctx, group.JID); err != nil {
		t.Fatal(err)
	}
	if _, err = wasim.WaitFor(ctx, alice.Events, func(e *events.GroupInfo) bool { return len(e.Leave) == 1 && e.Leave[0].User == "4915550004" }); err != nil {
		t.Fatalf("leave not seen: %v", err)
	}
	groups, err := bob.Client.GetJoinedGroups(ctx)
	if err != nil || len(groups) != 1 || groups[0].Name != "Renamed" {
		t.Fatalf("bob's groups: %+v, %v", groups, err)
	}
	if _, err = dave.Client.GetGroupInfo(ctx, group.JID); !errors.Is(err, whatsmeow.ErrNotInGroup) {
		t.Fatalf("former member querying the group: %v, want ErrNotInGroup", err)
	}
}
