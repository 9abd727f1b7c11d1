package bridge_test

import (
	"context"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
)

// TestReactionVariationSelector: WhatsApp sends emoji without the variation selector that
// Matrix clients add (👍 where Element sends 👍️), so the bridge adds it where the Matrix spec
// asks, or Element shows one emoji as two reaction groups; and it takes it off again on the
// way to WhatsApp. A reaction that is not an emoji is refused with a notice, either way.
func TestReactionVariationSelector(t *testing.T) {
	f := newDM(t, "reaction_vs", "4915551903", "4915551904")
	ctx := context.Background()
	mx, room, ghost, c, chat := f.alice.mx, f.room, f.ghost, f.contact, f.alice.phone.JID()
	notEmoji := strings.Repeat("a", 300)

	theirs, err := c.SendText(ctx, chat, "react to this")
	if err != nil {
		t.Fatal(err)
	}
	theirEvt := waitEvent(t, mx, room, ghost, "their message", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == "react to this"
	})

	t.Run("from WhatsApp", func(t *testing.T) {
		if _, err := c.SendReaction(ctx, chat, c.JID(), theirs.ID, "👍"); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "reaction", func(e *event.Event) bool { return e.Type == event.EventReaction })
		if rel := relatesTo(evt); rel["key"] != "👍\ufe0f" || rel["event_id"] != string(theirEvt.ID) {
			t.Errorf("reaction = %q, want the key %q on %s", rel, "👍\ufe0f", theirEvt.ID)
		}
	})

	t.Run("not an emoji, from WhatsApp", func(t *testing.T) {
		if _, err := c.SendReaction(ctx, chat, c.JID(), theirs.ID, notEmoji); err != nil {
			t.Fatal(err)
		}
		notice := waitEvent(t, mx, room, ghost, "notice", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice
		})
		if inReply, _ := relatesTo(notice)["m.in_reply_to"].(map[string]any); inReply["event_id"] != string(theirEvt.ID) ||
			!strings.Contains(notice.Content.AsMessage().Body, "not an emoji") {
			t.Errorf("notice = %v, want one replying to %s that says the reaction is not an emoji", raw(notice), theirEvt.ID)
		}
		if strings.Contains(notice.Content.AsMessage().Body, notEmoji) {
			t.Errorf("the notice relays the refused reaction: %q", notice.Content.AsMessage().Body)
		}
		resp, err := mx.Messages(ctx, room, "", "", 'b', nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Chunk {
			if e.Type == event.EventReaction && strings.Contains(string(e.Content.VeryRaw), notEmoji) {
				t.Errorf("the reaction that is not an emoji was relayed: %s", e.ID)
			}
		}
	})

	t.Run("from Matrix", func(t *testing.T) {
		content := map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": theirEvt.ID, "key": "👍\ufe0f"}}
		if _, err := mx.SendMessageEvent(ctx, room, event.EventReaction, content); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "reaction", func(m *events.Message) bool { return m.Message.GetReactionMessage() != nil })
		if r := msg.Message.GetReactionMessage(); r.GetText() != "👍" || r.GetKey().GetID() != theirs.ID {
			t.Errorf("reaction = %v, want 👍 without the selector, as WhatsApp writes it", r)
		}
	})

	t.Run("not an emoji, from Matrix", func(t *testing.T) {
		content := map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": theirEvt.ID, "key": notEmoji}}
		resp, err := mx.SendMessageEvent(ctx, room, event.EventReaction, content)
		if err != nil {
			t.Fatal(err)
		}
		notice := waitNotice(t, f, resp.EventID)
		if !strings.Contains(notice, "Your reaction “aaaa") || !strings.Contains(notice, "emoji") || strings.Contains(notice, notEmoji) {
			t.Errorf("notice = %q, want it to name the reaction by its beginning and say it is not an emoji", notice)
		}
		// The queue moved on, and the phone never got the refused reaction.
		if _, err := mx.SendText(ctx, room, "after the long reaction"); err != nil {
			t.Fatal(err)
		}
		waitWAText(t, c, "after the long reaction")
		for _, e := range c.Events.All() {
			if m, ok := e.(*events.Message); ok && m.Message.GetReactionMessage().GetText() == notEmoji {
				t.Errorf("the phone got the reaction that is not an emoji")
			}
		}
	})
}
