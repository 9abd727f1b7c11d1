package bridge

import (
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

func TestSyncAheadBefore(t *testing.T) {
	const room, other id.RoomID = "!portal:localhost", "!other:localhost"
	const alice, bob id.UserID = "@alice:localhost", "@bob:localhost"
	evts := []*event.Event{{ID: "$1"}, {ID: "$2"}, {ID: "$3"}}
	var s syncAhead
	s.set([]id.UserID{alice}, map[id.RoomID]*mautrix.SyncJoinedRoom{
		room:  {Timeline: mautrix.SyncTimeline{SyncEventsList: mautrix.SyncEventsList{Events: evts}}},
		other: {},
	})
	state := ""
	cases := []struct {
		name string
		env  portal.MatrixEnvelope
		want []id.EventID
	}{
		{"pushed event the sync has: what came before it", portal.MatrixEnvelope{ID: "$3", RoomID: room, Sender: alice, Type: "m.room.message"}, []id.EventID{"$1", "$2"}},
		{"the sync's first event: nothing", portal.MatrixEnvelope{ID: "$1", RoomID: room, Sender: alice, Type: "m.room.message"}, nil},
		{"newer than the sync's: all of them", portal.MatrixEnvelope{ID: "$9", RoomID: room, Sender: alice, Type: "m.reaction"}, []id.EventID{"$1", "$2", "$3"}},
		{"encrypted: all of them", portal.MatrixEnvelope{ID: "$9", RoomID: room, Sender: alice, Type: "m.room.encrypted"}, []id.EventID{"$1", "$2", "$3"}},
		{"a sender the sync does not carry: its place is unknown", portal.MatrixEnvelope{ID: "$9", RoomID: room, Sender: bob, Type: "m.room.message"}, nil},
		{"a state event (a leave): the push's order stands", portal.MatrixEnvelope{ID: "$9", RoomID: room, Sender: alice, Type: "m.room.member", StateKey: &state}, nil},
		{"a type the sync does not carry", portal.MatrixEnvelope{ID: "$9", RoomID: room, Sender: alice, Type: "m.room.topic"}, nil},
		{"another room", portal.MatrixEnvelope{ID: "$9", RoomID: other, Sender: alice, Type: "m.room.message"}, nil},
	}
	ids := func(evts []*event.Event) []id.EventID {
		var out []id.EventID
		for _, e := range evts {
			out = append(out, e.ID)
		}
		return out
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ids(s.before(&c.env)); !slices.Equal(got, c.want) {
				t.Errorf("before = %v, want %v", got, c.want)
			}
		})
	}

	// Once taken in, they are not looked at again; a list a newer sync replaced is left alone.
	push := portal.MatrixEnvelope{ID: "$3", RoomID: room, Sender: alice, Type: "m.room.message"}
	s.taken(room, evts[0], 2)
	if got := ids(s.before(&push)); len(got) != 0 {
		t.Errorf("after taken: before = %v, want none", got)
	}
	s.taken(room, evts[0], 1) // stale: the list now starts at $3
	if got := ids(s.before(&portal.MatrixEnvelope{ID: "$9", RoomID: room, Sender: alice, Type: "m.room.message"})); !slices.Equal(got, []id.EventID{"$3"}) {
		t.Errorf("after a stale taken: before = %v, want [$3]", got)
	}
	s.clear()
	if got := s.before(&push); got != nil {
		t.Errorf("after clear: before = %v, want nil", got)
	}
}
