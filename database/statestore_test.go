package database

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestStateStoreRemembersMembershipsUntilTheyChange(t *testing.T) {
	ctx := context.Background()
	const room, ghost = id.RoomID("!room:example.org"), id.UserID("@whatsapp_1:example.org")
	eachBackend(t, func(t *testing.T, db *Database) {
		s := db.StateStore
		steps := []struct {
			name           string
			change         func() error
			joined, invite bool
		}{
			{"unknown", nil, false, false},
			{"invited", func() error { return s.SetMembership(ctx, room, ghost, event.MembershipInvite) }, false, true},
			{"joined", func() error { return s.SetMembership(ctx, room, ghost, event.MembershipJoin) }, true, true},
			{"kicked by a member event", func() error {
				return s.SetMember(ctx, room, ghost, &event.MemberEventContent{Membership: event.MembershipLeave})
			}, false, false},
			{"joined again", func() error { return s.SetMembership(ctx, room, ghost, event.MembershipJoin) }, true, true},
			{"members cleared", func() error { return s.ClearCachedMembers(ctx, room) }, false, false},
			{"members replaced", func() error {
				key := ghost.String()
				return s.ReplaceCachedMembers(ctx, room, []*event.Event{{
					StateKey: &key, Type: event.StateMember,
					Content: event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipJoin}},
				}})
			}, true, true},
		}
		for _, step := range steps {
			if step.change != nil {
				if err := step.change(); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
			}
			// Twice: the first read may come from the table, the second from memory.
			for range 2 {
				if got := s.IsInRoom(ctx, room, ghost); got != step.joined {
					t.Fatalf("%s: IsInRoom = %v, want %v", step.name, got, step.joined)
				}
				if got := s.IsInvited(ctx, room, ghost); got != step.invite {
					t.Fatalf("%s: IsInvited = %v, want %v", step.name, got, step.invite)
				}
			}
		}
	})
}

// TestStateStoreFindsSharedEncryptedRooms: the crypto asks which encrypted rooms a user is in
// when that user's devices change, to start new Megolm sessions there so a new device can read
// what follows. The answer comes from our own tables (mautrix's bridge variant of the query
// reads a portal.encrypted column Causeway's schema does not have).
func TestStateStoreFindsSharedEncryptedRooms(t *testing.T) {
	ctx := context.Background()
	const user = id.UserID("@alice:example.org")
	const encrypted, plain, other = id.RoomID("!enc:example.org"), id.RoomID("!plain:example.org"), id.RoomID("!other:example.org")
	eachBackend(t, func(t *testing.T, db *Database) {
		s := db.StateStore
		for _, room := range []id.RoomID{encrypted, plain} {
			if err := s.SetMembership(ctx, room, user, event.MembershipJoin); err != nil {
				t.Fatal(err)
			}
		}
		for _, room := range []id.RoomID{encrypted, other} {
			if err := s.SetEncryptionEvent(ctx, room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
				t.Fatal(err)
			}
		}
		rooms, err := s.FindSharedRooms(ctx, user)
		if err != nil {
			t.Fatalf("FindSharedRooms: %v", err)
		}
		if len(rooms) != 1 || rooms[0] != encrypted {
			t.Errorf("FindSharedRooms = %v, want [%s]", rooms, encrypted)
		}
	})
}
