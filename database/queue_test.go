package database

import (
	"context"
	"fmt"
	"sync"
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

// A Matrix event is queued by its first delivery only, whichever route brings it and whether
// or not the first one's item is still queued; pruning forgets it.
func TestQueueAddAcceptEvent(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, db *Database) {
		key := acceptTestPortal(t, db)
		add := func(evt id.EventID, kind string) bool {
			t.Helper()
			added, err := db.Queue.Add(ctx, &QueueItem{Direction: ToWhatsApp, PortalKey: key, DedupKey: "evt:" + string(evt),
				Kind: kind, Payload: []byte("{}")}, AddOptions{AcceptEvent: evt})
			if err != nil {
				t.Fatal(err)
			}
			return added
		}
		if !add("$one", "matrix_event") {
			t.Fatal("the first delivery was not queued")
		}
		if add("$one", "matrix_unrelayed") {
			t.Error("a second delivery was queued while the first is queued")
		}
		pending, err := db.Queue.Pending(ctx, key, 10)
		if err != nil || len(pending) != 1 {
			t.Fatalf("pending = %d items (%v), want 1", len(pending), err)
		}
		if err := db.Queue.Done(ctx, pending[0].Seq); err != nil {
			t.Fatal(err)
		}
		if add("$one", "matrix_event") {
			t.Error("a delivery after the first one was relayed was queued again")
		}
		if ok, err := db.Queue.Accepted(ctx, "$one"); err != nil || !ok {
			t.Errorf("Accepted($one) = %v, %v; want true", ok, err)
		}
		if n, err := db.Queue.PruneAccepted(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("PruneAccepted = %d, %v; want 1 row", n, err)
		}
		if !add("$one", "matrix_event") {
			t.Error("a pruned event was not queued")
		}
	})
}

// Two routes delivering the same events in the same order, at once, queue each event once and
// in that order: a route checks an event before it looks at the next.
func TestQueueAddAcceptEventTwoRoutes(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, db *Database) {
		key := acceptTestPortal(t, db)
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for route := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					evt := id.EventID(fmt.Sprintf("$%04d", i))
					_, err := db.Queue.Add(ctx, &QueueItem{Direction: ToWhatsApp, PortalKey: key, DedupKey: "evt:" + string(evt),
						Kind: fmt.Sprintf("route%d", route), Payload: []byte("{}")}, AddOptions{AcceptEvent: evt})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		pending, err := db.Queue.Pending(ctx, key, 2*n)
		if err != nil {
			t.Fatal(err)
		}
		byRoute := map[string]int{}
		for i, it := range pending {
			byRoute[it.Kind]++
			if want := fmt.Sprintf("evt:$%04d", i); it.DedupKey != want {
				t.Fatalf("queue item %d is %s, want %s (%d items)", i, it.DedupKey, want, len(pending))
			}
		}
		if len(pending) != n {
			t.Fatalf("%d items queued, want %d", len(pending), n)
		}
		t.Logf("first deliveries by route: %v", byRoute)
	})
}

func acceptTestPortal(t *testing.T, db *Database) PortalKey {
	t.Helper()
	ctx := context.Background()
	key := PortalKey{ChatJID: "491700000003@s.whatsapp.net", Receiver: "@alice:example.org"}
	if err := db.Users.Put(ctx, &User{MXID: key.Receiver}); err != nil {
		t.Fatal(err)
	}
	if err := db.Portals.Put(ctx, &Portal{PortalKey: key}); err != nil {
		t.Fatal(err)
	}
	return key
}
