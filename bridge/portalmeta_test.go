package bridge_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/wasim"
)

// bridgeInfoTypes are MSC2346's state event and its older unstable name, which clients still read.
var bridgeInfoTypes = []event.Type{
	{Type: "m.bridge", Class: event.StateEventType},
	{Type: "uk.half-shot.bridge", Class: event.StateEventType},
}

// TestBridgeInfoState: a portal room says it is bridged from WhatsApp, and which chat it is.
func TestBridgeInfoState(t *testing.T) {
	f := newDM(t, "bridgeinfo", "4915551907", "4915551908")
	cfg := lastBridge.cfg
	for _, typ := range bridgeInfoTypes {
		info := roomState(t, f.alice.mx, f.room, typ, "causeway://whatsapp/"+f.contact.JID().String())
		if info == nil {
			t.Errorf("no %s state", typ.Type)
			continue
		}
		protocol, _ := info["protocol"].(map[string]any)
		network, _ := info["network"].(map[string]any)
		channel, _ := info["channel"].(map[string]any)
		if info["bridgebot"] != string(cfg.BotUserID()) || protocol["id"] != "whatsapp" || protocol["displayname"] != "WhatsApp" ||
			network["id"] == nil || channel["id"] != f.contact.JID().String() || channel["displayname"] == "" || channel["displayname"] == nil {
			t.Errorf("%s = %v", typ.Type, info)
		}
	}
}

// TestDMPortalLooksLikeTheContact: a direct chat's room carries the contact's name and
// picture, and the user's own ghost never joins it, even for messages sent from the phone.
func TestDMPortalLooksLikeTheContact(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "dmlook")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "dmlook", "4915551909", "Alice Look")
	anna := newPhone(t, "4915551910", "Anna S")
	ctx := context.Background()
	if _, err := anna.SetProfilePicture([]byte("\xff\xd8\xff\xe0 anna's picture")); err != nil {
		t.Fatal(err)
	}
	if err := alice.phone.SetContacts(ctx, wasim.Contact{JID: anna.JID(), FullName: "Anna Schmidt", FirstName: "Anna"}); err != nil {
		t.Fatal(err)
	}
	ghost := cfg.PuppetUserID("4915551910")
	var avatar id.ContentURI
	eventually(t, "anna's ghost's picture", func() bool {
		var err error
		avatar, err = alice.mx.GetAvatarURL(ctx, ghost)
		return err == nil && !avatar.IsEmpty()
	})
	if _, err := anna.SendText(ctx, alice.phone.JID(), "hallo"); err != nil {
		t.Fatal(err)
	}
	room := alice.waitInvite(t, ghost)
	waitMessage(t, alice.mx, room, ghost, bodyIs("hallo"))

	ghostName, err := alice.mx.GetDisplayName(ctx, ghost)
	if err != nil {
		t.Fatal(err)
	}
	if name := roomState(t, alice.mx, room, event.StateRoomName, ""); name["name"] != ghostName.DisplayName || ghostName.DisplayName == "" {
		t.Errorf("room name = %v, want the contact's name %q", name, ghostName.DisplayName)
	}
	if av := roomState(t, alice.mx, room, event.StateRoomAvatar, ""); av["url"] != avatar.String() {
		t.Errorf("room avatar = %v, want the contact's %s", av, avatar)
	}

	// Alice writes to Anna from her phone: the message shows in the room, not from her ghost.
	if _, err := alice.phone.SendText(ctx, anna.JID(), "sent from my phone"); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, alice.mx, room, cfg.BotUserID(), bodyIs("sent from my phone"))
	ownGhost := cfg.PuppetUserID("4915551909")
	if m := roomState(t, alice.mx, room, event.StateMember, string(ownGhost)); m != nil {
		t.Errorf("the user's own ghost is in the DM: %v", m)
	}
}
