package bridge

import (
	"context"
	"slices"
	"sync"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

// syncAhead keeps the events of the bot's latest sync that it has not finished taking in,
// per room, in timeline order, while the sync leaves them to the push (pushGrace).
//
// The intake's order rests on each route bringing a room's events in order and without gaps
// (intake.go). The sync does; Dendrite's pushes do not always: after a stall we saw a user's
// message never pushed, or pushed after later ones (its appservice consumer skips an event
// whose interest check fails, and redelivers a refused batch after newer ones), while the push
// of the next message came at once. Taken in by the sync only after pushGrace, the skipped
// message then reached WhatsApp after the next one. So before the push takes in an event of
// the kinds the sync carries, it takes in, in order, the events the sync has already seen in
// that room before it (all of them when the sync has not seen the pushed event yet: the sync
// sees a room in timeline order, so everything it has seen is earlier).
type syncAhead struct {
	mu      sync.Mutex
	rooms   map[id.RoomID][]*event.Event
	senders []id.UserID // the sync filter's, sorted
}

// set records a sync response's timeline events, for the senders its filter names.
func (s *syncAhead) set(senders []id.UserID, rooms map[id.RoomID]*mautrix.SyncJoinedRoom) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rooms = make(map[id.RoomID][]*event.Event, len(rooms))
	for roomID, room := range rooms {
		if len(room.Timeline.Events) > 0 {
			s.rooms[roomID] = room.Timeline.Events
		}
	}
	s.senders = slices.Clone(senders)
	slices.Sort(s.senders)
}

// clear forgets them once the sync has taken them in.
func (s *syncAhead) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rooms = nil
}

// before returns the events the sync has seen in the pushed event's room before it, if the
// sync carries events like it; nil otherwise.
func (s *syncAhead) before(env *portal.MatrixEnvelope) []*event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	evts := s.rooms[env.RoomID]
	if len(evts) == 0 || env.StateKey != nil || !slices.Contains(portal.RelayedMessageTypes(), env.Type) && env.Type != event.EventEncrypted.Type {
		return nil
	}
	if _, ok := slices.BinarySearch(s.senders, env.Sender); !ok {
		return nil // not an event the sync sees, so its place among the sync's is unknown
	}
	if i := slices.IndexFunc(evts, func(e *event.Event) bool { return e.ID == env.ID }); i >= 0 {
		return evts[:i]
	}
	return evts
}

// taken forgets the first n events of a room's list, once taken in, unless a newer sync has
// replaced the list meanwhile: each later push then looks only at what is left.
func (s *syncAhead) taken(room id.RoomID, first *event.Event, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if evts := s.rooms[room]; len(evts) >= n && n > 0 && evts[0] == first {
		s.rooms[room] = evts[n:]
	}
}

// takeInSyncedBefore takes in, by the sync route, what the sync has seen before a pushed event
// (see syncAhead). Events taken in already are skipped, as always.
func (b *Bridge) takeInSyncedBefore(ctx context.Context, env *portal.MatrixEnvelope) error {
	evts := b.syncAhead.before(env)
	for _, evt := range evts {
		if err := b.takeInSynced(ctx, env.RoomID, evt); err != nil {
			return err
		}
	}
	if len(evts) > 0 {
		b.syncAhead.taken(env.RoomID, evts[0], len(evts))
	}
	return nil
}
