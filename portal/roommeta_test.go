package portal

import (
	"context"
	"slices"
	"testing"

	"codeberg.org/causeway/causeway/database"
)

// TestRoomMetaOnNextUse: a room made before the bridge set bridge info and DM names gets
// them with its next message, once: later messages, and a restart, send nothing again.
func TestRoomMetaOnNextUse(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	row := &database.Portal{PortalKey: testKey, MXID: "!old:test"}
	if err := h.db.Portals.Put(ctx, row); err != nil {
		t.Fatal(err)
	}
	key := "causeway://whatsapp/" + testContact.String()
	want := []string{"m.room.name|", "m.bridge|" + key, "uk.half-shot.bridge|" + key}

	p, err := h.mgr.newPortal(row)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range []string{"A1", "A2"} {
		h.enqueue(p, waMessage(t, "3EB0META"+msg, "hello "+msg))
		if !h.processAll(p) {
			t.Fatalf("message %d was not relayed", i)
		}
		h.settle(p)
		if got := h.mx.stateSent(); !slices.Equal(got, want) {
			t.Fatalf("after message %d: state sent %q, want %q", i, got, want)
		}
	}

	h.restart()
	stored, err := h.db.Portals.Get(ctx, testKey)
	if err != nil || stored.Name != "+"+testContact.User {
		t.Fatalf("portal row after the update = %+v, %v", stored, err)
	}
	p, err = h.mgr.newPortal(stored)
	if err != nil {
		t.Fatal(err)
	}
	h.enqueue(p, waMessage(t, "3EB0METAB1", "after the restart"))
	if !h.processAll(p) {
		t.Fatal("the message after the restart was not relayed")
	}
	if got := h.mx.stateSent(); !slices.Equal(got, want) {
		t.Errorf("after a restart: state sent %q, want nothing more than %q", got, want)
	}
}
