package bridge_test

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
)

// TestMillisecondTimestamps: WhatsApp stamps messages in whole seconds, Matrix in
// milliseconds. A WhatsApp message relayed as it arrives keeps the bridge's receive time to
// the millisecond, so it does not sort before a Matrix message sent earlier in the same second.
func TestMillisecondTimestamps(t *testing.T) {
	f := newDM(t, "ms_stamps", "4915551905", "4915551906")
	ctx := context.Background()
	mx, room := f.alice.mx, f.room

	// Start well inside a second, so that both messages fall in it: that is the case whole
	// seconds get wrong.
	for ms := time.Now().Nanosecond() / 1e6; ms < 100 || ms > 600; ms = time.Now().Nanosecond() / 1e6 {
		time.Sleep(10 * time.Millisecond)
	}
	before := time.Now().Truncate(time.Millisecond)
	resp, err := mx.SendText(ctx, room, "matrix first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.contact.SendText(ctx, f.alice.phone.JID(), "whatsapp second"); err != nil {
		t.Fatal(err)
	}
	waitWAText(t, f.contact, "matrix first")
	theirs := waitEvent(t, mx, room, f.ghost, "WhatsApp message", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == "whatsapp second"
	})
	ours, err := mx.GetEvent(ctx, room, resp.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if theirs.Timestamp < ours.Timestamp {
		t.Errorf("the WhatsApp message is stamped %s, before the Matrix message sent ahead of it (%s)",
			time.UnixMilli(theirs.Timestamp).Format(time.StampMilli), time.UnixMilli(ours.Timestamp).Format(time.StampMilli))
	}
	if theirs.Timestamp < before.UnixMilli() {
		t.Errorf("the WhatsApp message is stamped %s, before it was sent (%s)",
			time.UnixMilli(theirs.Timestamp).Format(time.StampMilli), before.Format(time.StampMilli))
	}
}
