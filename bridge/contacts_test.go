package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/wasim"
)

func TestContactsAndStartChat(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "contacts_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "contacts_alice", "4915551001", "Alice C")
	dora := newPhone(t, "4915551002", "Dora")
	ctx := context.Background()
	bot := cfg.BotUserID()
	if err := alice.phone.SetContacts(ctx,
		wasim.Contact{JID: types.NewJID("4915551002", types.DefaultUserServer), FullName: "Dora Vogel", FirstName: "Dora"},
		wasim.Contact{JID: types.NewJID("4915551003", types.DefaultUserServer), FullName: "Emil Brandt", FirstName: "Emil"},
	); err != nil {
		t.Fatal(err)
	}

	// Contacts without a chat are listed, with their names from the address book.
	var list string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		list = waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "contacts"), "contacts")
		if strings.Contains(list, "Emil Brandt") && strings.Contains(list, "Dora Vogel") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(list, "Emil Brandt (WhatsApp): +4915551003") {
		t.Fatalf("contacts list:\n%s", list)
	}
	if found := waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "contacts vogel"), "1 WhatsApp contacts"); !strings.Contains(found, "Dora Vogel") || strings.Contains(found, "Emil") {
		t.Errorf("search for vogel also listed Emil:\n%s", found)
	}

	// sync groups turns a group that has had no message yet into a room.
	group, err := dora.CreateGroup(ctx, "Quiet group", alice.phone.JID())
	if err != nil {
		t.Fatal(err)
	}
	waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "sync groups"), "groups synced")
	groupRoom := alice.waitInvite(t, bot)
	if name := roomState(t, alice.mx, groupRoom, event.StateRoomName, ""); name["name"] != "Quiet group" {
		t.Errorf("synced group %s has room name %v", group.JID, name)
	}

	// start-chat by name opens a DM from the contact's ghost, named from the address book.
	waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "start-chat dora"), "Opening a chat with +4915551002")
	ghost := cfg.PuppetUserID("4915551002")
	room := alice.waitInvite(t, ghost)
	send(t, alice.mx, room, "hello dora")
	waitWAText(t, dora, "hello dora")
	// The room sits in Alice's personal WhatsApp space.
	var space id.RoomID
	eventually(t, "the room's space parent", func() bool {
		state, err := alice.mx.State(ctx, room)
		if err != nil {
			return false
		}
		for key := range state[event.StateSpaceParent] {
			space = id.RoomID(key)
		}
		return space != ""
	})
	if _, err := alice.mx.JoinRoomByID(ctx, space); err != nil {
		t.Fatalf("alice cannot join her space %s: %v", space, err)
	}
	if child := roomState(t, alice.mx, space, event.StateSpaceChild, string(room)); child["via"] == nil {
		t.Errorf("space %s has no child entry for %s: %v", space, room, child)
	}
	var create map[string]any
	if err := alice.mx.StateEvent(ctx, space, event.StateCreate, "", &create); err != nil || create["type"] != "m.space" {
		t.Errorf("%s is not a space: %v %v", space, create, err)
	}

	var member event.MemberEventContent
	if err := alice.mx.StateEvent(ctx, room, event.StateMember, string(ghost), &member); err != nil || member.Displayname != "Dora Vogel (WhatsApp)" {
		t.Errorf("ghost member = %+v, %v", member, err)
	}
}
