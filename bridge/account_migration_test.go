package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/wasim"
)

// waitRoomInvites syncs until the user has been invited to n portal rooms, joins them all
// and returns who invited them to each.
func (u *waUser) waitRoomInvites(t *testing.T, n int) map[id.RoomID]id.UserID {
	t.Helper()
	rooms := map[id.RoomID]id.UserID{}
	u.syncInvites(t, 2*time.Minute, func() bool { return len(rooms) >= n }, func(room id.RoomID, from id.UserID) bool {
		rooms[room] = from
		return true
	})
	if len(rooms) < n {
		t.Fatalf("invited to %d rooms, want %d", len(rooms), n)
	}
	return rooms
}

func ghostOf(cfg *config.Config, jid types.JID) id.UserID { return cfg.PuppetUserID(jid.User) }

type timelineLine struct {
	sender id.UserID
	body   string
	ts     int64
}

// timeline is the room's messages from the given senders, oldest first.
func timeline(t *testing.T, cli *mautrix.Client, room id.RoomID, senders ...id.UserID) []timelineLine {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 200)
	if err != nil {
		t.Fatal(err)
	}
	var out []timelineLine
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		evt := resp.Chunk[i]
		if evt.Type != event.EventMessage || !contains(idsOf(senders), string(evt.Sender)) {
			continue
		}
		if _ = evt.Content.ParseRaw(evt.Type); evt.Content.AsMessage().MsgType == event.MsgNotice {
			continue // the bot speaking for itself, not for a WhatsApp message
		}
		out = append(out, timelineLine{evt.Sender, evt.Content.AsMessage().Body, evt.Timestamp})
	}
	return out
}

// TestWholeAccountMigration links a phone that has an address book, three direct chats and
// two groups with history, and checks that everything comes across: a room per chat in the
// user's space with the history in order, original timestamps and senders; contacts
// without chats listed; a colleague found on Matrix by name and offered for migration.
func TestWholeAccountMigration(t *testing.T) {
	cfg := configFor(t, "sqlite")
	cfg.Migration.UserDirectorySearch = true
	permit(cfg, "user", "whole_alice", "whole_carol_mx")
	startRelayBridge(t, cfg)
	ctx := context.Background()
	bot := cfg.BotUserID()

	alicePhone := newPhone(t, "4915558801", "Alice W")
	bob := newPhone(t, "4915558802", "Bob W")
	carol := newPhone(t, "4915558803", "Carol W")
	dave := newPhone(t, "4915558804", "Dave W")
	erin := newPhone(t, "4915558805", "Erin W")
	// The groups exist before the bridge is linked, as they do on a phone in use.
	project, err := bob.CreateGroup(ctx, "Project Causeway", alicePhone.JID(), carol.JID())
	if err != nil {
		t.Fatal(err)
	}
	lunch, err := alicePhone.CreateGroup(ctx, "Lunch club", dave.JID(), erin.JID())
	if err != nil {
		t.Fatal(err)
	}
	// A group with no history: it becomes a room on `sync groups`.
	if _, err := dave.CreateGroup(ctx, "Quiet corner", alicePhone.JID()); err != nil {
		t.Fatal(err)
	}
	// Frank has never written to Alice, but has a profile picture.
	frankPhone := newPhone(t, "4915558806", "Frank W")
	if _, err := frankPhone.SetProfilePicture([]byte("\xff\xd8\xff\xe0 frank's picture")); err != nil {
		t.Fatal(err)
	}

	// Carol already moved to Matrix (and uses the bridge herself, so she shares a room with
	// the bot, which is what Dendrite's user directory needs to find her).
	carolMX := registerUser(t, "whole_carol_mx")
	if err := carolMX.SetDisplayName(ctx, "Carol Weiss"); err != nil {
		t.Fatal(err)
	}
	carolMgmt := openDM(t, carolMX, bot)
	waitForReply(t, carolMX, carolMgmt, bot, time.Now().Add(-time.Minute), "management room")

	alice := loginPhoneWithQR(t, cfg, "whole_alice", alicePhone)
	frank := frankPhone.JID()
	gina := types.NewJID("4915558807", types.DefaultUserServer)
	if err := alice.phone.SetContacts(ctx,
		wasim.Contact{JID: bob.JID(), FullName: "Bob Adler", FirstName: "Bob"},
		wasim.Contact{JID: carol.JID(), FullName: "Carol Weiss", FirstName: "Carol"},
		wasim.Contact{JID: dave.JID(), FullName: "Dave Kurz", FirstName: "Dave"},
		wasim.Contact{JID: erin.JID(), FullName: "Erin Lang", FirstName: "Erin"},
		wasim.Contact{JID: frank, FullName: "Frank Ohnechat", FirstName: "Frank"},
		wasim.Contact{JID: gina, FullName: "Gina Ohnechat", FirstName: "Gina"},
	); err != nil {
		t.Fatal(err)
	}
	// Contacts without a chat are listed.
	eventually(t, "the contacts without chats in `contacts`", func() bool {
		list := waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "contacts ohnechat"), "WhatsApp contacts")
		return strings.Contains(list, "Frank Ohnechat (WhatsApp): +4915558806") && strings.Contains(list, "Gina Ohnechat (WhatsApp): +4915558807")
	})

	// The contact without a chat has a named ghost with their picture.
	eventually(t, "frank's ghost's avatar", func() bool {
		avatar, err := alice.mx.GetAvatarURL(ctx, ghostOf(cfg, frank))
		return err == nil && !avatar.IsEmpty()
	})

	// The phone's history: three direct chats and two groups, days old.
	base := time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	at := func(hours int) time.Time { return base.Add(time.Duration(hours) * time.Hour) }
	me := alice.phone.JID()
	chats := []struct {
		chat types.JID
		msgs []wasim.HistoryMessage
	}{
		{bob.JID(), []wasim.HistoryMessage{
			{ID: "3EB0WHOLEB01", Sender: bob.JID(), Text: "bob: first", Time: at(0)},
			{ID: "3EB0WHOLEB02", Sender: me, Text: "alice: reply to bob", Time: at(1)},
			{ID: "3EB0WHOLEB03", Sender: bob.JID(), Text: "bob: later", Time: at(30)},
		}},
		{carol.JID(), []wasim.HistoryMessage{
			{ID: "3EB0WHOLEC01", Sender: me, Text: "alice: hi carol", Time: at(2)},
			{ID: "3EB0WHOLEC02", Sender: carol.JID(), Text: "carol: hi alice", Time: at(3)},
		}},
		{dave.JID(), []wasim.HistoryMessage{
			{ID: "3EB0WHOLED01", Sender: dave.JID(), Text: "dave: one", Time: at(4)},
			{ID: "3EB0WHOLED02", Sender: dave.JID(), Text: "dave: two", Time: at(5)},
			{ID: "3EB0WHOLED03", Sender: me, Text: "alice: three", Time: at(100)},
		}},
		{project.JID, []wasim.HistoryMessage{
			{ID: "3EB0WHOLEP01", Sender: bob.JID(), Text: "project: kickoff", Time: at(6)},
			{ID: "3EB0WHOLEP02", Sender: carol.JID(), Text: "project: agenda", Time: at(7)},
			{ID: "3EB0WHOLEP03", Sender: me, Text: "project: minutes", Time: at(8)},
		}},
		{lunch.JID, []wasim.HistoryMessage{
			{ID: "3EB0WHOLEL01", Sender: me, Text: "lunch: noon?", Time: at(9)},
			{ID: "3EB0WHOLEL02", Sender: erin.JID(), Text: "lunch: yes", Time: at(10)},
			{ID: "3EB0WHOLEL03", Sender: dave.JID(), Text: "lunch: me too", Time: at(11)},
		}},
	}
	hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		ChunkOrder: proto.Uint32(1), Progress: proto.Uint32(100)}
	for _, c := range chats {
		hs.Conversations = append(hs.Conversations, alice.phone.HistoryConversation(c.chat, c.msgs...))
	}
	if err := alice.phone.SendHistorySync(ctx, hs); err != nil {
		t.Fatal(err)
	}

	invites := alice.waitRoomInvites(t, len(chats))
	ghost := func(jid types.JID) id.UserID { return ghostOf(cfg, jid) }
	roomOf := map[types.JID]id.RoomID{}
	for room, inviter := range invites {
		for _, c := range chats {
			if c.chat.Server == types.DefaultUserServer && inviter == ghost(c.chat) {
				roomOf[c.chat] = room
			}
		}
		switch roomState(t, alice.mx, room, event.StateRoomName, "")["name"] {
		case "Project Causeway":
			roomOf[project.JID] = room
		case "Lunch club":
			roomOf[lunch.JID] = room
		}
	}
	if len(roomOf) != len(chats) {
		t.Fatalf("rooms by chat = %v (invites %v)", roomOf, invites)
	}

	everyone := []id.UserID{ghost(me), ghost(bob.JID()), ghost(carol.JID()), ghost(dave.JID()), ghost(erin.JID()), bot}
	for _, c := range chats {
		room := roomOf[c.chat]
		var want []timelineLine
		for _, m := range c.msgs {
			sender := ghost(m.Sender)
			if m.Sender == me && c.chat.Server == types.DefaultUserServer {
				sender = bot // Alice's ghost never joins a direct chat
			}
			want = append(want, timelineLine{sender, m.Text, m.Time.UnixMilli()})
		}
		var got []timelineLine
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if got = timeline(t, alice.mx, room, everyone...); len(got) >= len(want) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(got) != len(want) {
			t.Errorf("%s: timeline %+v, want %+v", c.chat, got, want)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s message %d = %+v, want %+v (in order, original sender and timestamp)", c.chat, i, got[i], want[i])
			}
		}
	}

	// `sync groups` brings the group that had no history.
	waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "sync groups"), "3 groups synced")
	quiet := alice.waitInvite(t, bot)
	if name := roomState(t, alice.mx, quiet, event.StateRoomName, "")["name"]; name != "Quiet corner" {
		t.Errorf("sync groups made room %s named %v", quiet, name)
	}

	// Every room sits in Alice's one personal space.
	var space id.RoomID
	for chat, room := range roomOf {
		var parent id.RoomID
		eventually(t, "the space parent of "+chat.String(), func() bool {
			state, err := alice.mx.State(ctx, room)
			if err != nil {
				return false
			}
			for key := range state[event.StateSpaceParent] {
				parent = id.RoomID(key)
			}
			return parent != ""
		})
		if space == "" {
			space = parent
		} else if parent != space {
			t.Errorf("%s is in space %s, others in %s", chat, parent, space)
		}
	}
	if _, err := alice.mx.JoinRoomByID(ctx, space); err != nil {
		t.Fatalf("alice cannot join her space: %v", err)
	}
	for chat, room := range roomOf {
		if child := roomState(t, alice.mx, space, event.StateSpaceChild, string(room)); child["via"] == nil {
			t.Errorf("the space has no child entry for %s (%s)", chat, room)
		}
	}

	// Carol is found on Matrix by her address-book name and offered for migration.
	carolRoom := roomOf[carol.JID()]
	waitForReply(t, alice.mx, carolRoom, bot, time.Now().Add(-5*time.Minute), "also on Matrix as @whole_carol_mx:localhost")
	waitForReply(t, alice.mx, carolRoom, bot, send(t, alice.mx, carolRoom, "!wa migrate"), "Invited you and @whole_carol_mx:localhost")
	native := (&waUser{mx: carolMX}).waitInvite(t, bot)
	var aliceMember event.MemberEventContent
	if err := carolMX.StateEvent(ctx, native, event.StateMember, string(alice.mx.UserID), &aliceMember); err != nil || aliceMember.Membership != event.MembershipInvite {
		t.Errorf("alice in the native chat: %+v %v", aliceMember, err)
	}
	report := waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "migration-report"), "reachable on Matrix")
	for _, want := range []string{
		"Carol Weiss (WhatsApp) (+4915558803): on Matrix as @whole_carol_mx:localhost (found by name",
		"Bob Adler (WhatsApp) (+4915558802): WhatsApp only", "1 of 6 reachable",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("migration report lacks %q:\n%s", want, report)
		}
	}
}
