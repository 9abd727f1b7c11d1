package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/portal"
)

// matrixEventsHandled counts the Matrix events the bridge's queues have finished with, relayed
// or failed, from its metrics.
func matrixEventsHandled(t *testing.T, address string) int {
	t.Helper()
	return metricSum(t, address, func(line string) bool {
		return (strings.HasPrefix(line, "causeway_messages_relayed_total{") || strings.HasPrefix(line, "causeway_relay_errors_total{")) &&
			strings.Contains(line, `direction="to_whatsapp"`) && strings.Contains(line, `kind="matrix_event"`)
	})
}

// waitHandled waits until the bridge has finished with more Matrix events than before.
func waitHandled(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for matrixEventsHandled(t, lastBridge.cfg.Appservice.Address) <= before {
		if time.Now().After(deadline) {
			t.Fatal("the bridge never handled the deletion")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func textOf(m *events.Message) string {
	if s := m.Message.GetConversation(); s != "" {
		return s
	}
	return m.Message.GetExtendedTextMessage().GetText()
}

func fromAlice(typ string, match func(content map[string]any) bool) func(map[string]any) bool {
	return func(evt map[string]any) bool {
		content, _ := evt["content"].(map[string]any)
		sender, _ := evt["sender"].(string)
		return evt["type"] == typ && strings.HasPrefix(sender, "@redaction_order:") && match(content)
	}
}

// TestRedactionBeforeTarget: on Dendrite a user's deletion reaches the bridge by the bot's
// sync only, and what it deletes by an appservice transaction and the sync. The sync brings
// both in order, but when it misses the target (a limited timeline it could not read back far
// enough) the push may bring the target after the deletion. The test holds the target's
// transaction back and keeps it out of the sync until the bridge has handled the deletion,
// which is the order that left reactions and messages on WhatsApp for good: the deletion must wait for its
// target, and the target, deleted already, must not stay on the phone. A target that does
// not come within bridge.redaction_wait gets a notice and a completeness ledger entry, and
// is still not sent when it comes after all.
func TestRedactionBeforeTarget(t *testing.T) {
	var gate *txnGate
	var syncs *syncGate
	f := newDM(t, "redaction_order", "4915553010", "4915553011", func(cfg *config.Config) {
		cfg.Bridge.RedactionWait = "1s"
		gate = startTxnGate(t, cfg)
		syncs = startSyncGate(t, cfg)
	})
	// The target must not come by the bot's sync either, which returns it before its deletion.
	release := func() {
		gate.releaseAll()
		syncs.hideFromSync(nil)
	}
	ctx := context.Background()
	mx, room, ghost, c, chat := f.alice.mx, f.room, f.ghost, f.contact, f.alice.phone.JID()

	theirs, err := c.SendText(ctx, chat, "react to this")
	if err != nil {
		t.Fatal(err)
	}
	theirEvt := waitEvent(t, mx, room, ghost, "their message", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == "react to this"
	})

	// sendHeld sends an event whose transaction the gate holds back, deletes it at once, and
	// waits until the bridge has handled the deletion.
	sendHeld := func(t *testing.T, typ event.Type, content map[string]any, hold func(map[string]any) bool) id.EventID {
		t.Helper()
		before := matrixEventsHandled(t, lastBridge.cfg.Appservice.Address)
		gate.holdBack(hold)
		syncs.hideFromSync(hold)
		resp, err := mx.SendMessageEvent(ctx, room, typ, content)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mx.RedactEvent(ctx, room, resp.EventID); err != nil {
			t.Fatal(err)
		}
		waitHandled(t, before)
		gate.waitHeld(t)
		return resp.EventID
	}
	// neverStays checks, once the queue has moved past the target, that the phone either
	// never got it or got it and then its removal.
	neverStays := func(t *testing.T, sentinel string, arrived, removed func(*events.Message) bool) {
		t.Helper()
		if _, err := mx.SendText(ctx, room, sentinel); err != nil {
			t.Fatal(err)
		}
		waitWAText(t, c, sentinel)
		for _, e := range c.Events.All() {
			if m, ok := e.(*events.Message); ok && arrived(m) {
				waitWA(t, c, "its removal", removed)
				return
			}
		}
	}

	tests := []struct {
		name    string
		typ     event.Type
		content map[string]any
		hold    func(map[string]any) bool
		// arrived and removed recognise the target and its removal on the phone.
		arrived, removed func(target id.EventID) func(*events.Message) bool
	}{
		{
			name: "message deleted at once", typ: event.EventMessage,
			content: map[string]any{"msgtype": "m.text", "body": "sent and deleted at once"},
			hold:    fromAlice("m.room.message", func(c map[string]any) bool { return c["body"] == "sent and deleted at once" }),
			arrived: func(id.EventID) func(*events.Message) bool {
				return func(m *events.Message) bool { return textOf(m) == "sent and deleted at once" }
			},
			removed: func(target id.EventID) func(*events.Message) bool {
				return func(m *events.Message) bool {
					pm := m.Message.GetProtocolMessage()
					return pm.GetType() == waE2E.ProtocolMessage_REVOKE && pm.GetKey().GetID() == portal.MessageIDFor(target)
				}
			},
		},
		{
			name: "reaction withdrawn at once", typ: event.EventReaction,
			content: map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": theirEvt.ID, "key": "👍\ufe0f"}},
			hold:    fromAlice("m.reaction", func(map[string]any) bool { return true }),
			arrived: func(id.EventID) func(*events.Message) bool {
				return func(m *events.Message) bool {
					r := m.Message.GetReactionMessage()
					return r.GetKey().GetID() == theirs.ID && r.GetText() != ""
				}
			},
			removed: func(id.EventID) func(*events.Message) bool {
				return func(m *events.Message) bool {
					r := m.Message.GetReactionMessage()
					return r != nil && r.GetKey().GetID() == theirs.ID && r.GetText() == ""
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := sendHeld(t, tt.typ, tt.content, tt.hold)
			release()
			neverStays(t, fmt.Sprintf("after case %d", i), tt.arrived(target), tt.removed(target))
		})
	}

	t.Run("target later than the bound", func(t *testing.T) {
		body := "deleted, and late beyond the bound"
		target := sendHeld(t, event.EventMessage, map[string]any{"msgtype": "m.text", "body": body},
			fromAlice("m.room.message", func(c map[string]any) bool { return c["body"] == body }))
		notice := waitNotice(t, f, target)
		if !strings.Contains(notice, "deletion") || !strings.Contains(notice, "1s") {
			t.Errorf("notice = %q, want it to say the deletion waited 1s for the message", notice)
		}
		gaps, err := lastBridge.br.Archive().Gaps(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, g := range gaps {
			found = found || (g.Reason == archive.GapReason("redaction_target_missing") && g.Chat == c.JID().String() &&
				strings.Contains(g.Detail, string(target)))
		}
		if !found {
			t.Errorf("archive gaps %+v, want a redaction_target_missing entry naming %s in chat %s", gaps, target, c.JID())
		}
		release()
		neverStays(t, "after the late one",
			func(m *events.Message) bool { return textOf(m) == body },
			func(m *events.Message) bool {
				pm := m.Message.GetProtocolMessage()
				return pm.GetType() == waE2E.ProtocolMessage_REVOKE && pm.GetKey().GetID() == portal.MessageIDFor(target)
			})
	})
}
