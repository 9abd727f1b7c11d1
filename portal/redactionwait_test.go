package portal

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/database"
)

// parkingPortal is the test portal with its room, loaded by the manager but with no queue
// goroutine, so the test hands it the items itself (and the sweep finds the same portal).
func parkingPortal(t *testing.T, h *harness) *Portal {
	t.Helper()
	ctx := context.Background()
	if err := h.db.Portals.Put(ctx, &database.Portal{PortalKey: testKey, MXID: "!room1:test"}); err != nil {
		t.Fatal(err)
	}
	h.mgr.Stop()
	p, err := h.mgr.Get(ctx, testKey, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func redactionOf(t *testing.T, evtID string, target id.EventID) *database.QueueItem {
	return matrixEventOfType(t, event.EventRedaction.Type, evtID, map[string]any{"redacts": target})
}

func (h *harness) queue(p *Portal, items ...*database.QueueItem) {
	h.t.Helper()
	for _, item := range items {
		if err := p.Enqueue(context.Background(), item); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) processed(p *Portal) {
	h.t.Helper()
	if !h.processAll(p) {
		h.t.Fatal("an item stayed in the queue")
	}
	h.settle(p)
}

func (h *harness) parked(target id.EventID) *database.ParkedRedaction {
	h.t.Helper()
	r, err := h.db.ParkedRedactions.ByTarget(context.Background(), testReceiver, target)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) sentToWhatsApp(target id.EventID) bool {
	h.wa.mu.Lock()
	defer h.wa.mu.Unlock()
	return slices.Contains(h.wa.sent, MessageIDFor(target))
}

// TestRedactionWaitsForTarget: a Matrix user's deletion that reaches the queue before what it
// deletes (Dendrite delivers the two by different paths) waits for it, across a restart, and
// the target is then never sent to WhatsApp, nor is a redelivery of it. A deletion of
// something the bridge never sends fails at once, as before.
func TestRedactionWaitsForTarget(t *testing.T) {
	text := map[string]any{"msgtype": "m.text", "body": "sent and deleted at once"}
	tests := []struct {
		name string
		// homeserver is what GetEvent finds for the target (nil: nothing).
		homeserver *event.Event
		// targetQueued queues the target behind the deletion before the deletion is handled.
		targetQueued bool
		restart      bool
		// refused: the deletion fails at once with a notice containing this.
		refused string
	}{
		{name: "target comes later", homeserver: &event.Event{Type: event.EventMessage, Sender: testReceiver, Timestamp: 1_700_000_000_000}},
		{name: "target already queued behind it", targetQueued: true},
		{name: "homeserver does not know the target"},
		{name: "bridge restarts in between", homeserver: &event.Event{Type: event.EventMessage, Sender: testReceiver}, restart: true},
		{name: "the bot's notice", homeserver: &event.Event{Type: event.EventMessage, Sender: testBot}, refused: "not bridged"},
		{name: "a room change", homeserver: &event.Event{Type: event.StateRoomName, Sender: testReceiver, StateKey: new(string)}, refused: "not bridged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := parkingPortal(t, h)
			target := id.EventID("$target")
			if tt.homeserver != nil {
				h.mx.events = map[id.EventID]*event.Event{target: tt.homeserver}
			}
			h.queue(p, redactionOf(t, "$deletion", target))
			if tt.targetQueued {
				h.queue(p, matrixEventItem(t, string(target), text))
			}
			h.processed(p)
			if tt.refused != "" {
				sent := h.mx.sent()
				if len(sent) != 1 || sent[0].as != testBot || !strings.Contains(sent[0].body, tt.refused) {
					t.Fatalf("room was told %+v, want a notice containing %q", sent, tt.refused)
				}
				if r := h.parked(target); r != nil {
					t.Fatalf("the deletion of something the bridge never sends was parked: %+v", r)
				}
				return
			}
			if sent := h.mx.sent(); len(sent) != 0 {
				t.Fatalf("room was told %+v while the deletion waits", sent)
			}
			if r := h.parked(target); !tt.targetQueued && (r == nil || r.State != database.ParkedWaiting || r.Redaction != "$deletion") {
				t.Fatalf("parked = %+v, want the deletion waiting", r)
			}
			if tt.restart {
				h.restart()
				p = parkingPortal(t, h)
			}
			if !tt.targetQueued {
				h.queue(p, matrixEventItem(t, string(target), text))
				h.processed(p)
			}
			// A redelivery of the target (the homeserver retrying the transaction) and then
			// a message after it.
			h.queue(p, matrixEventItem(t, string(target), text), matrixEventItem(t, "$later", map[string]any{"msgtype": "m.text", "body": "later"}))
			h.processed(p)
			if h.sentToWhatsApp(target) {
				t.Fatal("the deleted message was sent to WhatsApp")
			}
			if !h.sentToWhatsApp("$later") {
				t.Fatal("the message after it was not sent: the queue is stuck")
			}
			if r := h.parked(target); r == nil || r.State != database.ParkedWithheld {
				t.Fatalf("parked = %+v, want it withheld", r)
			}
			if sent := h.mx.sent(); len(sent) != 0 {
				t.Fatalf("room was told %+v, want nothing", sent)
			}
		})
	}
}

// TestRedactionTargetOverdue: a deletion whose target has not come within the bound gets the
// user a notice, once, that names the target; a target that comes meanwhile is withheld
// without one; and one that comes after the notice is still not sent.
func TestRedactionTargetOverdue(t *testing.T) {
	ctx := context.Background()
	reaction := map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": "$theirs", "key": "👍"}}
	sentAt := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		name string
		// cameMeanwhile queues the target after the sweep queued the overdue item.
		cameMeanwhile bool
	}{
		{name: "target never came"},
		{name: "target came meanwhile", cameMeanwhile: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := parkingPortal(t, h)
			target := id.EventID("$reaction")
			h.mx.events = map[id.EventID]*event.Event{target: {Type: event.EventReaction, Sender: testReceiver, Timestamp: sentAt.UnixMilli()}}
			h.queue(p, redactionOf(t, "$deletion", target))
			h.processed(p)

			// Parked after the cutoff: not due yet.
			if err := h.mgr.ExpireWaitingRedactions(ctx, time.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n := len(h.pending(p)); n != 0 {
				t.Fatalf("a deletion parked after the cutoff was found overdue (%d items queued)", n)
			}
			for range 2 { // a second sweep before the first is handled queues nothing more
				if err := h.mgr.ExpireWaitingRedactions(ctx, time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(h.pending(p)); n != 1 {
				t.Fatalf("queue holds %d items after the sweeps, want the one overdue deletion", n)
			}
			if tt.cameMeanwhile {
				h.queue(p, matrixEventOfType(t, event.EventReaction.Type, string(target), reaction))
			}
			h.processed(p)
			sent := h.mx.sent()
			wantState := database.ParkedExpired
			if tt.cameMeanwhile {
				wantState = database.ParkedWithheld
				if len(sent) != 0 {
					t.Fatalf("room was told %+v, though the target came", sent)
				}
			} else {
				wantNotice := "deletion of your reaction sent " + sentAt.Format(time.DateTime)
				if len(sent) != 1 || sent[0].as != testBot || !strings.Contains(sent[0].body, wantNotice) ||
					!strings.Contains(sent[0].body, "2m0s") || sent[0].txnID != "cw.redwait.$deletion" {
					t.Fatalf("room was told %+v, want one notice from the bot containing %q and the bound", sent, wantNotice)
				}
			}
			if r := h.parked(target); r == nil || r.State != wantState {
				t.Fatalf("parked = %+v, want %s", r, wantState)
			}
			if err := h.mgr.ExpireWaitingRedactions(ctx, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n := len(h.pending(p)); n != 0 {
				t.Fatalf("a deletion already handled was found overdue again (%d items queued)", n)
			}
			// Late beyond the notice: still not sent, and no second notice.
			h.queue(p, matrixEventOfType(t, event.EventReaction.Type, string(target), reaction))
			h.processed(p)
			if h.sentToWhatsApp(target) {
				t.Fatal("the deleted reaction was sent to WhatsApp")
			}
			if n := len(h.mx.sent()); n != len(sent) {
				t.Fatalf("room was told %d things, want %d", n, len(sent))
			}
		})
	}
}
