package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"codeberg.org/causeway/causeway/database"
)

// matrixEventItem queues a Matrix event from the receiver into the portal's room.
func matrixEventItem(t *testing.T, evtID string, content map[string]any) *database.QueueItem {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"type": "m.room.message", "event_id": evtID, "room_id": "!room1:test", "sender": string(testReceiver),
		"origin_server_ts": 1_700_000_000_000, "content": content,
	})
	if err != nil {
		t.Fatal(err)
	}
	var env MatrixEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	return NewMatrixEventItem(&env, raw)
}

// processAll hands every queued item to the portal once, in order, as the queue goroutine
// does, stopping at the first that may not be passed; it reports whether all were.
func (h *harness) processAll(p *Portal) bool {
	h.t.Helper()
	for _, item := range h.pending(p) {
		if done, _ := p.process(context.Background(), item); !done {
			return false
		}
	}
	return true
}

func (h *harness) settle(p *Portal) {
	h.t.Helper()
	if err := p.settle(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) enqueue(p *Portal, m *PackedMessage) {
	h.t.Helper()
	if err := p.EnqueueMessage(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

func TestRetriesAndGiveUp(t *testing.T) {
	text := map[string]any{"msgtype": "m.text", "body": "hello"}
	encryptedFile := map[string]any{"msgtype": "m.file", "body": "a.pdf",
		"file": map[string]any{"url": "mxc://test/f", "key": map[string]any{"k": "x"}, "iv": "x", "hashes": map[string]any{}, "v": "v2"}}
	tests := []struct {
		name string
		// queue returns the item; fail makes its relay fail.
		queue func(t *testing.T, h *harness, p *Portal) *database.QueueItem
		fail  func(h *harness)
		// attempts is how many attempts there are before the item leaves the queue; 0
		// means it never does (checked over 10).
		attempts int
		// notice is what the room is told when the item is given up.
		notice string
	}{
		{"to WhatsApp, refused every time", func(t *testing.T, h *harness, p *Portal) *database.QueueItem {
			return matrixEventItem(t, "$e1", text)
		}, func(h *harness) { h.wa.sendErr = errors.New("server said no") }, maxWhatsAppAttempts,
			"could not be sent to WhatsApp: failed to send to WhatsApp: server said no"},
		{"to WhatsApp, cannot succeed", func(t *testing.T, h *harness, p *Portal) *database.QueueItem {
			return matrixEventItem(t, "$e2", encryptedFile)
		}, func(h *harness) {}, 1, "the file \"a.pdf\" of your message of"},
		{"to Matrix, homeserver down: never given up", func(t *testing.T, h *harness, p *Portal) *database.QueueItem {
			return waMessage(t, "m1", "hi").Item
		}, func(h *harness) { h.mx.failSend = func(int, string) error { return errors.New("502 Bad Gateway") } }, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.portal()
			p.row.MXID = "!room1:test"
			if err := p.Enqueue(context.Background(), tt.queue(t, h, p)); err != nil {
				t.Fatal(err)
			}
			tt.fail(h)
			limit := tt.attempts
			if limit == 0 {
				limit = 10
			}
			for attempt := 1; attempt <= limit; attempt++ {
				items := h.pending(p)
				if len(items) != 1 || items[0].Attempts != attempt-1 {
					t.Fatalf("attempt %d: queue holds %d items (attempts %v), want 1 with %d failed before", attempt, len(items), attemptsOf(items), attempt-1)
				}
				done, wait := p.process(context.Background(), items[0])
				if last := attempt == tt.attempts; done != last {
					t.Fatalf("attempt %d: done = %v, want %v", attempt, done, last)
				}
				if !done && wait != h.mgr.backoffFor(attempt) {
					t.Fatalf("attempt %d: retry in %v, want %v", attempt, wait, h.mgr.backoffFor(attempt))
				}
			}
			h.settle(p)
			if tt.attempts == 0 {
				if n := len(h.pending(p)); n != 1 {
					t.Fatalf("a Matrix-bound item was dropped after %d attempts (queue holds %d)", limit, n)
				}
				return
			}
			if n := len(h.pending(p)); n != 0 {
				t.Fatalf("the given-up item is still queued (%d items)", n)
			}
			sent := h.mx.sent()
			if len(sent) != 1 || sent[0].as != testBot || !strings.Contains(sent[0].body, tt.notice) {
				t.Fatalf("room was told %+v, want one notice from the bot containing %q", sent, tt.notice)
			}
		})
	}
}

func attemptsOf(items []*database.QueueItem) []int {
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it.Attempts
	}
	return out
}

func TestOrderUnderRetry(t *testing.T) {
	h := newHarness(t)
	// The homeserver refuses m2 twice: nothing may overtake it meanwhile.
	failures := 0
	h.mx.failSend = func(_ int, body string) error {
		if body == "m2" && failures < 2 {
			failures++
			return errors.New("500 Internal Server Error")
		}
		return nil
	}
	p, err := h.mgr.Get(context.Background(), testKey, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"m1", "m2", "m3", "m4", "m5"}
	for _, text := range want {
		h.enqueue(p, waMessage(t, "id-"+text, text))
	}
	waitFor(t, "five messages in the room", func() bool { return len(h.mx.bodies()) >= len(want) })
	h.mgr.Stop() // settles what was relayed
	if got := h.mx.bodies(); !slices.Equal(got, want) {
		t.Fatalf("room got %q, want %q", got, want)
	}
	if n := len(h.pending(p)); n != 0 {
		t.Fatalf("%d items left in the queue", n)
	}
	for _, text := range want {
		if !h.mapped(p, "id-"+text) {
			t.Fatalf("%s has no mapping", text)
		}
	}
}

func TestSettleBatching(t *testing.T) {
	h := newHarness(t)
	p := h.portal()
	for i := range 3 {
		h.enqueue(p, waMessage(t, fmt.Sprintf("m%d", i), fmt.Sprintf("text %d", i)))
	}
	if !h.processAll(p) {
		t.Fatal("relaying failed")
	}
	// Relayed, but nothing recorded yet: the batch commits as one.
	if n := len(h.mx.sent()); n != 3 {
		t.Fatalf("%d sends, want 3", n)
	}
	if n := len(h.pending(p)); n != 3 || h.mapped(p, "m0") {
		t.Fatalf("before the settle: %d queued (want 3), m0 mapped %v (want false)", n, h.mapped(p, "m0"))
	}
	if !p.inflight.settling("m1") || p.inflight.settleDue() {
		t.Fatalf("m1 settling = %v (want true), settle due = %v (want false: the batch is new)", p.inflight.settling("m1"), p.inflight.settleDue())
	}
	// A lookup of a relayed message commits the batch first.
	if _, err := p.resolver(h.wa).MessagePart(context.Background(), testContact, "m1", ""); err != nil {
		t.Fatalf("lookup of a message awaiting its commit: %v", err)
	}
	if n := len(h.pending(p)); n != 0 {
		t.Fatalf("after the lookup's settle %d items are still queued", n)
	}
	for i := range 3 {
		if id := fmt.Sprintf("m%d", i); !h.mapped(p, id) {
			t.Fatalf("%s has no mapping after the settle", id)
		}
	}
	if p.inflight.settling("m1") {
		t.Fatal("m1 still settling after the commit")
	}
}

func TestRestartDedup(t *testing.T) {
	tests := []struct {
		name string
		// before runs on the first manager's portal; after on the restarted one.
		before, after func(h *harness, p *Portal)
		sends         int
		sameTxn       bool // the sends were one event (the homeserver drops the second)
	}{
		{"crash between send and settle: found in the room, not sent again", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			h.processAll(p) // sent; the crash comes before the settle
		}, func(h *harness, p *Portal) {
			h.mx.restartHomeserver() // its transaction IDs cannot be counted on
			h.processAll(p)
			h.settle(p)
		}, 1, false},
		{"crash after settle, WhatsApp redelivers: not queued", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			h.processAll(p)
			h.settle(p)
		}, func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			if n := len(h.pending(p)); n != 0 {
				h.t.Fatalf("a redelivery of a bridged message was queued (%d items)", n)
			}
		}, 1, false},
		{"two deliveries queued, restart: the second is found bridged", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			h.enqueue(p, waMessage(h.t, "m1", "hi, with a sender key first")) // another dedup key
		}, func(h *harness, p *Portal) {
			h.processAll(p)
			h.settle(p)
		}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.before(h, h.portal())
			h.restart()
			p := h.portal()
			tt.after(h, p)
			sent := h.mx.sent()
			if len(sent) != tt.sends {
				t.Fatalf("%d sends (%q), want %d", len(sent), h.mx.bodies(), tt.sends)
			}
			if tt.sameTxn && sent[0].txnID != sent[1].txnID {
				t.Fatalf("the resend has transaction ID %q, the first %q", sent[1].txnID, sent[0].txnID)
			}
			if n := len(h.pending(p)); n != 0 || !h.mapped(p, "m1") {
				t.Fatalf("after the restart: %d queued, mapped %v", n, h.mapped(p, "m1"))
			}
		})
	}
}

func TestRedeliveryOfBridgedMessage(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *harness, p *Portal)
	}{
		{"after its mapping committed: refused at the insert", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			h.processAll(p)
			h.settle(p)
			h.enqueue(p, waMessage(h.t, "m1", "hi again"))
			if n := len(h.pending(p)); n != 0 {
				h.t.Fatalf("redelivery queued (%d items)", n)
			}
		}},
		{"while its relay awaits the commit", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			h.processAll(p)
			h.enqueue(p, waMessage(h.t, "m1", "hi again")) // the insert cannot see the mapping yet
			h.processAll(p)
			h.settle(p)
		}},
		{"queued before the first relay began", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			h.enqueue(p, waMessage(h.t, "m1", "hi again"))
			h.processAll(p)
			h.settle(p)
		}},
		{"queued before the first relay, which committed before it was reached", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			h.enqueue(p, waMessage(h.t, "m1", "hi again"))
			first := h.pending(p)[0]
			if done, _ := p.process(context.Background(), first); !done {
				h.t.Fatal("relaying failed")
			}
			h.settle(p)
			h.processAll(p)
			h.settle(p)
		}},
		{"mapping recorded outside the queue", func(h *harness, p *Portal) {
			h.enqueue(p, waMessage(h.t, "m1", "hi"))
			if err := h.db.Portals.Put(context.Background(), p.row); err != nil {
				h.t.Fatal(err)
			}
			if err := h.db.Messages.Put(context.Background(), &database.Message{PortalKey: p.Key(), WAID: "m1", MXID: "$imported"}); err != nil {
				h.t.Fatal(err)
			}
			p.recordedDirectly("m1")
			h.processAll(p)
			h.settle(p)
			if n := len(h.mx.sent()); n != 0 {
				h.t.Fatalf("a message recorded as bridged was sent again")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.portal()
			tt.run(h, p)
			if n := len(h.mx.sent()); n > 1 {
				t.Fatalf("m1 reached the room %d times: %q", n, h.mx.bodies())
			}
			if n := len(h.pending(p)); n != 0 {
				t.Fatalf("%d items left in the queue", n)
			}
		})
	}
}

func TestHandoffOfDecodedItems(t *testing.T) {
	t.Run("the queue relays the message as handed off", func(t *testing.T) {
		h := newHarness(t)
		p := h.portal()
		m := waMessage(t, "m1", "as stored")
		h.enqueue(p, m)
		// Only what the queue relays tells whether it decoded the stored payload: make the
		// handed-off copy say something else.
		m.msg.Message = waMessage(t, "m1", "as handed off").msg.Message
		h.processAll(p)
		if got := h.mx.bodies(); !slices.Equal(got, []string{"as handed off"}) {
			t.Fatalf("room got %q, want the handed-off message", got)
		}
	})
	t.Run("after a restart the payload is decoded", func(t *testing.T) {
		h := newHarness(t)
		m := waMessage(t, "m1", "as stored")
		h.enqueue(h.portal(), m)
		m.msg.Message = waMessage(t, "m1", "as handed off").msg.Message
		h.restart()
		p := h.portal()
		h.processAll(p)
		if got := h.mx.bodies(); !slices.Equal(got, []string{"as stored"}) {
			t.Fatalf("room got %q, want the stored message", got)
		}
	})
	t.Run("a duplicate delivery is not handed off", func(t *testing.T) {
		h := newHarness(t)
		p := h.portal()
		h.enqueue(p, waMessage(t, "m1", "first"))
		dup := waMessage(t, "m1", "first")
		h.enqueue(p, dup) // same dedup key: not inserted
		if v, _ := p.inflight.take(dup.Item.DedupKey, dup.Item.Payload); v == dup.msg {
			t.Fatal("the duplicate's value was left for the queue")
		}
		h.processAll(p)
		if got := h.mx.bodies(); !slices.Equal(got, []string{"first"}) {
			t.Fatalf("room got %q, want the message once", got)
		}
	})
}
