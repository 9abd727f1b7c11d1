package database

import (
	"context"
	"slices"
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

// TestFindSharedRooms: the rooms whose Megolm sessions a user's new device must get are
// the encrypted ones they are in or invited to.
func TestFindSharedRooms(t *testing.T) {
	ctx := context.Background()
	const user = id.UserID("@alice:example.org")
	eachBackend(t, func(t *testing.T, db *Database) {
		s := db.StateStore
		rooms := []struct {
			room       id.RoomID
			membership event.Membership
			encrypted  bool
			shared     bool
		}{
			{"!joined-encrypted:example.org", event.MembershipJoin, true, true},
			{"!invited-encrypted:example.org", event.MembershipInvite, true, true},
			{"!left-encrypted:example.org", event.MembershipLeave, true, false},
			{"!joined-plain:example.org", event.MembershipJoin, false, false},
		}
		var want []id.RoomID
		for _, r := range rooms {
			if err := s.SetMembership(ctx, r.room, user, r.membership); err != nil {
				t.Fatal(err)
			}
			if r.encrypted {
				if err := s.SetEncryptionEvent(ctx, r.room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
					t.Fatal(err)
				}
			}
			if r.shared {
				want = append(want, r.room)
			}
		}
		got, err := s.FindSharedRooms(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("FindSharedRooms = %v, want %v", got, want)
		}
	})
}
