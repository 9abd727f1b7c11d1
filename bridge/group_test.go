package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/wasim"
)

// roomState reads one state event's content as a map.
func roomState(t *testing.T, cli *mautrix.Client, room id.RoomID, evtType event.Type, key string) map[string]any {
	t.Helper()
	var content map[string]any
	if err := cli.StateEvent(context.Background(), room, evtType, key, &content); err != nil {
		return nil
	}
	return content
}

func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	eventuallyWithin(t, 60*time.Second, what, check)
}

// eventuallyWithin is eventually with a bound of its own.
func eventuallyWithin(t *testing.T, within time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func TestGroupBothWays(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "group_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "group_alice", "4915550401", "Alice G")
	bob := newPhone(t, "4915550402", "Bob G")
	carol := newPhone(t, "4915550403", "Carol G")
	dave := newPhone(t, "4915550404", "Dave G")
	ctx := context.Background()
	bobGhost, carolGhost, daveGhost := cfg.PuppetUserID("4915550402"), cfg.PuppetUserID("4915550403"), cfg.PuppetUserID("4915550404")

	group, err := bob.CreateGroup(ctx, "Crisis team", alice.phone.JID(), carol.JID())
	if err != nil {
		t.Fatal(err)
	}
	// Bob makes Alice an admin, so she may manage members from Matrix.
	if _, err := bob.Client.UpdateGroupParticipants(ctx, group.JID, []types.JID{alice.phone.JID()}, whatsmeow.ParticipantChangePromote); err != nil {
		t.Fatal(err)
	}
	// whatsmeow edits its cached member list in place when the promotion notification comes
	// back (a race inside whatsmeow, see wasim/README.md): let it land before Bob sends.
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if _, err := wasim.WaitFor(waitCtx, bob.Events, func(gi *events.GroupInfo) bool { return len(gi.Promote) > 0 }); err != nil {
		t.Fatalf("bob never saw the promotion: %v", err)
	}
	cancel()
	room := alice.waitInvite(t, cfg.BotUserID())
	if name := roomState(t, alice.mx, room, event.StateRoomName, ""); name["name"] != "Crisis team" {
		t.Errorf("room name = %v", name)
	}
	eventually(t, "carol's ghost in the room", func() bool {
		m := roomState(t, alice.mx, room, event.StateMember, string(carolGhost))
		return m["membership"] == "join"
	})

	t.Run("mention from WhatsApp pings the Matrix user", func(t *testing.T) {
		if _, err := bob.SendMention(ctx, group.JID, "@4915550401 please check", alice.phone.JID()); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, alice.mx, room, bobGhost, "mention", func(e *event.Event) bool {
			return e.Type == event.EventMessage && strings.Contains(e.Content.AsMessage().Body, "please check")
		})
		mentions, _ := raw(evt)["m.mentions"].(map[string]any)
		users, _ := mentions["user_ids"].([]any)
		if len(users) != 1 || users[0] != string(alice.mx.UserID) {
			t.Errorf("m.mentions = %v", mentions)
		}
	})

	t.Run("Matrix message reaches every member", func(t *testing.T) {
		send(t, alice.mx, room, "on it")
		in := waitWAText(t, bob, "on it")
		waitWAText(t, carol, "on it")
		if in.Info.Chat != group.JID {
			t.Errorf("bob got it in %s", in.Info.Chat)
		}
	})

	t.Run("rename on WhatsApp", func(t *testing.T) {
		if err := bob.Client.SetGroupName(ctx, group.JID, "Crisis team (2026)"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "room renamed", func() bool {
			return roomState(t, alice.mx, room, event.StateRoomName, "")["name"] == "Crisis team (2026)"
		})
	})

	t.Run("rename on Matrix", func(t *testing.T) {
		if _, err := alice.mx.SendStateEvent(ctx, room, event.StateRoomName, "", map[string]string{"name": "Crisis cell"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "group renamed", func() bool {
			info, err := bob.Client.GetGroupInfo(ctx, group.JID)
			return err == nil && info.Name == "Crisis cell"
		})
	})

	t.Run("member added on WhatsApp", func(t *testing.T) {
		if _, err := bob.Client.UpdateGroupParticipants(ctx, group.JID, []types.JID{dave.JID()}, whatsmeow.ParticipantChangeAdd); err != nil {
			t.Fatal(err)
		}
		eventually(t, "dave's ghost joined", func() bool {
			return roomState(t, alice.mx, room, event.StateMember, string(daveGhost))["membership"] == "join"
		})
	})

	t.Run("member removed on Matrix", func(t *testing.T) {
		if _, err := alice.mx.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: carolGhost, Reason: "left the team"}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := wasim.WaitFor(ctx, bob.Events, func(gi *events.GroupInfo) bool {
			for _, l := range gi.Leave {
				if l.User == carol.JID().User {
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatalf("bob never saw carol removed: %v", err)
		}
	})
}
