package database

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

// A redelivered WhatsApp message is refused at the insert when its mapping exists, and
// only then: other chats, other receivers and other messages are queued.
func TestQueueAddNotIfBridged(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, db *Database) {
		alice := PortalKey{ChatJID: "491700000001@s.whatsapp.net", Receiver: "@alice:example.org"}
		bob := PortalKey{ChatJID: alice.ChatJID, Receiver: "@bob:example.org"}
		other := PortalKey{ChatJID: "491700000002@s.whatsapp.net", Receiver: alice.Receiver}
		for _, mxid := range []string{"@alice:example.org", "@bob:example.org"} {
			if err := db.Users.Put(ctx, &User{MXID: id.UserID(mxid)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, key := range []PortalKey{alice, bob, other} {
			if err := db.Portals.Put(ctx, &Portal{PortalKey: key}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Messages.Put(ctx, &Message{PortalKey: alice, WAID: "BRIDGED", PartID: "", MXID: "$one",
			SenderJID: alice.ChatJID, Timestamp: time.Now()}); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name  string
			key   PortalKey
			waID  string
			check string
			want  bool
		}{
			{"bridged message", alice, "BRIDGED", "BRIDGED", false},
			{"bridged message, check off", alice, "BRIDGED", "", true},
			{"new message", alice, "NEW", "NEW", true},
			{"same ID, other receiver", bob, "BRIDGED", "BRIDGED", true},
			{"same ID, other chat", other, "BRIDGED", "BRIDGED", true},
		}
		for _, c := range cases {
			added, err := db.Queue.Add(ctx, &QueueItem{Direction: ToMatrix, PortalKey: c.key,
				DedupKey: "msg:" + c.name, Kind: "wa_message", Payload: []byte("{}")}, AddOptions{NotIfBridged: c.check})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if added != c.want {
				t.Errorf("%s: added = %v, want %v", c.name, added, c.want)
			}
			pending, err := db.Queue.Pending(ctx, c.key, 100)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, it := range pending {
				found = found || it.DedupKey == "msg:"+c.name
			}
			if found != c.want {
				t.Errorf("%s: queued = %v, want %v", c.name, found, c.want)
			}
		}
	})
}
