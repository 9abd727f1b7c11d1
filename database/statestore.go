package database

import (
	"context"
	"slices"
	"sync"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/sqlstatestore"
)

// StateStore is mautrix's SQL state store with memberships remembered in memory. Every
// relayed message asks whether its ghost is in the room (IntentAPI.EnsureJoined), and the
// answer is nearly always the same; the table stays the truth and the memory only answers
// reads. Writes go to the table first and then drop what memory had, so a read never
// returns a membership older than the last write that returned. (A membership written
// inside a caller's own transaction would be forgotten before it commits; nothing does that.)
type StateStore struct {
	*sqlstatestore.SQLStateStore

	mu sync.Mutex
	// gen counts invalidations: a read that raced with a write must not put the value it
	// read before the write into memory after the write dropped it.
	gen     uint64
	members map[id.RoomID]map[id.UserID]event.Membership
}

func newStateStore(inner *sqlstatestore.SQLStateStore) *StateStore {
	return &StateStore{SQLStateStore: inner, members: map[id.RoomID]map[id.UserID]event.Membership{}}
}

func (s *StateStore) GetMembership(ctx context.Context, roomID id.RoomID, userID id.UserID) (event.Membership, error) {
	s.mu.Lock()
	m, ok := s.members[roomID][userID]
	gen := s.gen
	s.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := s.SQLStateStore.GetMembership(ctx, roomID, userID)
	if err != nil {
		return m, err
	}
	s.mu.Lock()
	if s.gen == gen {
		room := s.members[roomID]
		if room == nil {
			room = map[id.UserID]event.Membership{}
			s.members[roomID] = room
		}
		room[userID] = m
	}
	s.mu.Unlock()
	return m, nil
}

// IsMembership, IsInRoom and IsInvited are the SQL store's, reading through GetMembership
// above (the embedded versions would call the embedded GetMembership).
func (s *StateStore) IsMembership(ctx context.Context, roomID id.RoomID, userID id.UserID, allowed ...event.Membership) bool {
	m, err := s.GetMembership(ctx, roomID, userID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Stringer("room_id", roomID).Stringer("user_id", userID).Msg("Failed to get membership")
		return false
	}
	return slices.Contains(allowed, m)
}

func (s *StateStore) IsInRoom(ctx context.Context, roomID id.RoomID, userID id.UserID) bool {
	return s.IsMembership(ctx, roomID, userID, event.MembershipJoin)
}

func (s *StateStore) IsInvited(ctx context.Context, roomID id.RoomID, userID id.UserID) bool {
	return s.IsMembership(ctx, roomID, userID, event.MembershipJoin, event.MembershipInvite)
}

func (s *StateStore) SetMembership(ctx context.Context, roomID id.RoomID, userID id.UserID, membership event.Membership) error {
	defer s.forget(roomID, userID)
	return s.SQLStateStore.SetMembership(ctx, roomID, userID, membership)
}

func (s *StateStore) SetMember(ctx context.Context, roomID id.RoomID, userID id.UserID, member *event.MemberEventContent) error {
	defer s.forget(roomID, userID)
	return s.SQLStateStore.SetMember(ctx, roomID, userID, member)
}

func (s *StateStore) ReplaceCachedMembers(ctx context.Context, roomID id.RoomID, evts []*event.Event, onlyMemberships ...event.Membership) error {
	defer s.forget(roomID, "")
	return s.SQLStateStore.ReplaceCachedMembers(ctx, roomID, evts, onlyMemberships...)
}

func (s *StateStore) ClearCachedMembers(ctx context.Context, roomID id.RoomID, memberships ...event.Membership) error {
	defer s.forget(roomID, "")
	return s.SQLStateStore.ClearCachedMembers(ctx, roomID, memberships...)
}

// forget drops one member's remembered membership, or the whole room's for "". It runs
// after the write, whether it failed or not: a failed write may still have changed the row.
func (s *StateStore) forget(roomID id.RoomID, userID id.UserID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if userID == "" {
		delete(s.members, roomID)
	} else {
		delete(s.members[roomID], userID)
	}
}

// FindSharedRooms lists the encrypted rooms a user is in or invited to. The crypto machine
// asks it when the user's devices change, to start new Megolm sessions there that include
// the new device. The embedded store answers it, as a bridge's store, from a
// portal.encrypted column of mautrix's own bridges, which this database does not have.
func (s *StateStore) FindSharedRooms(ctx context.Context, userID id.UserID) ([]id.RoomID, error) {
	rows, err := s.Query(ctx, `
		SELECT mx_user_profile.room_id FROM mx_user_profile
		JOIN mx_room_state ON mx_room_state.room_id=mx_user_profile.room_id
		WHERE mx_user_profile.user_id=$1 AND mx_user_profile.membership IN ('join', 'invite')
			AND mx_room_state.encryption IS NOT NULL`, userID)
	return dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[id.RoomID], err).AsList()
}
