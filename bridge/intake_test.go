package bridge_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/portal"
)

// TestMatrixIntakeBothRoutes: the Matrix user's events reach the bridge by the homeserver's
// pushes and by the bot's sync. With the pushes failing (Dendrite after a stall), the sync
// relays alone, in order, even when more came than one sync returns. With both working, one
// route brings each event long after the other (each held back in turn), and every event is
// handled once: one WhatsApp message, reaction and deletion, one notice for the refused one,
// one archive entry each.
func TestMatrixIntakeBothRoutes(t *testing.T) {
	var gate *txnGate
	var syncs *syncGate
	f := newDM(t, "intake_routes", "4915559601", "4915559602", func(cfg *config.Config) {
		gate = startTxnGate(t, cfg)
		syncs = startSyncGate(t, cfg)
	})
	ctx := context.Background()
	mx, room, c := f.alice.mx, f.room, f.contact
	bot := lastBridge.cfg.BotUserID()
	theirs := waitEvent(t, mx, room, f.ghost, "the contact's first message", bodyIs("hi"))
	var texts []string            // every text the user sent, in order
	var refused []id.EventID      // the events that must get one notice each
	var all []id.EventID          // every event the user sent that is archived
	reactions := map[string]int{} // emoji -> reactions sent with it
	var deleted []id.EventID      // the texts the user deleted
	sendText := func(t *testing.T, body string) id.EventID {
		t.Helper()
		resp, err := mx.SendText(ctx, room, body)
		if err != nil {
			t.Fatal(err)
		}
		texts, all = append(texts, body), append(all, resp.EventID)
		return resp.EventID
	}
	// sendKinds sends a text, a reaction, the deletion of the text, a refused event and a last
	// text, each once the one before has had its effect (deletionArrives: the open route
	// carries deletions), and returns the last one.
	sendKinds := func(t *testing.T, prefix, emoji string, deletionArrives bool) id.EventID {
		t.Helper()
		text := sendText(t, prefix+": text")
		waitWAText(t, c, prefix+": text")
		react, err := mx.SendReaction(ctx, room, theirs.ID, emoji)
		if err != nil {
			t.Fatal(err)
		}
		all, reactions[emoji] = append(all, react.EventID), reactions[emoji]+1
		waitWA(t, c, "the reaction "+emoji, func(m *events.Message) bool { return m.Message.GetReactionMessage().GetText() == emoji })
		redaction, err := mx.RedactEvent(ctx, room, text)
		if err != nil {
			t.Fatal(err)
		}
		all, deleted = append(all, redaction.EventID), append(deleted, text)
		if deletionArrives {
			waitWA(t, c, "the deletion", revokes(text))
		}
		bad, err := mx.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": 42})
		if err != nil {
			t.Fatal(err)
		}
		all, refused = append(all, bad.EventID), append(refused, bad.EventID)
		waitEvent(t, mx, room, bot, "the notice about the refused event", noticeReplyingTo(bad.EventID))
		sentinel := sendText(t, prefix+": after")
		waitWAText(t, c, prefix+": after")
		return sentinel
	}

	t.Run("pushes failing", func(t *testing.T) {
		gate.fail(true)
		for i := range 3 {
			sendText(t, fmt.Sprintf("while pushes fail %d", i))
		}
		for i := range 3 {
			waitWAText(t, c, fmt.Sprintf("while pushes fail %d", i))
		}
		gate.fail(false)
		gate.waitAnswered(t, all[len(all)-1], 3*time.Minute) // Dendrite's retry, now a repeat
	})

	t.Run("more than one sync returns", func(t *testing.T) {
		gate.fail(true)
		syncs.holdSync()
		reads := syncs.gapReadCount()
		const n = 110 // the bridge's timeline limit is 100
		for i := range n {
			sendText(t, fmt.Sprintf("backlog %03d", i))
		}
		syncs.releaseSync()
		waitWAText(t, c, fmt.Sprintf("backlog %03d", n-1))
		if syncs.gapReadCount() == reads {
			t.Error("the bridge never read back what the limited sync left out: the test did not exercise it")
		}
		gate.fail(false)
		gate.waitAnswered(t, all[len(all)-1], 3*time.Minute)
	})

	t.Run("push first, sync later", func(t *testing.T) {
		syncs.holdSync()
		// Dendrite does not push deletions: this one waits for the sync.
		sentinel := sendKinds(t, "push first", "👍", false)
		syncs.releaseSync()
		syncs.waitSynced(t, sentinel, 2*time.Minute)
		waitWA(t, c, "the deletion, by the sync", revokes(deleted[len(deleted)-1]))
	})

	t.Run("sync first, push later", func(t *testing.T) {
		gate.holdBack(func(evt map[string]any) bool { return evt["sender"] == string(mx.UserID) })
		sentinel := sendKinds(t, "sync first", "🎉", true)
		gate.releaseAll()
		gate.waitAnswered(t, sentinel, 3*time.Minute)
	})

	t.Run("push skips one", func(t *testing.T) {
		// Dendrite's pushes can leave a user's event out (after a stall, its appservice consumer
		// skipped one whose interest check failed) and carry the next one at once. The sync has
		// the skipped one, but leaves it to the push for pushGrace: the push of the next one
		// must not overtake it on its way to WhatsApp.
		skipped := "skipped by the push"
		gate.dropFromPushes(func(evt map[string]any) bool {
			content, _ := evt["content"].(map[string]any)
			return content["body"] == skipped
		})
		first := sendText(t, skipped)
		syncs.waitSyncAnswered(t, first, time.Minute) // and waits out pushGrace before taking it in
		sendText(t, "pushed right after")
		waitWAText(t, c, "pushed right after")
		waitWAText(t, c, skipped)
		gate.dropFromPushes(nil)
	})

	// Anything either route queued twice is relayed before this.
	sendText(t, "the end")
	waitWAText(t, c, "the end")
	checkOnce(t, f, texts, reactions, deleted, refused, all)
	for _, route := range []string{"appservice", "sync"} {
		for _, outcome := range []string{"first", "repeat"} {
			t.Logf("%s deliveries, %s: %d", route, outcome, metricSum(t, lastBridge.cfg.Appservice.Address, func(line string) bool {
				return strings.HasPrefix(line, "causeway_matrix_events_delivered_total{") &&
					strings.Contains(line, `route="`+route+`"`) && strings.Contains(line, `outcome="`+outcome+`"`)
			}))
		}
	}
}

func revokes(target id.EventID) func(*events.Message) bool {
	return func(m *events.Message) bool {
		pm := m.Message.GetProtocolMessage()
		return pm.GetType() == waE2E.ProtocolMessage_REVOKE && pm.GetKey().GetID() == portal.MessageIDFor(target)
	}
}

// checkOnce requires every event once on the phone, in the room and in the archive.
func checkOnce(t *testing.T, f *dmFixture, texts []string, reactions map[string]int, deleted, refused, all []id.EventID) {
	t.Helper()
	ids := map[string]map[string]bool{} // text -> WhatsApp message IDs it came under
	var order []string
	gotReactions := map[string]int{}
	revoked := map[string]int{}
	for _, e := range f.contact.Events.All() {
		m, ok := e.(*events.Message)
		if !ok {
			continue
		}
		if r := m.Message.GetReactionMessage(); r != nil && r.GetText() != "" {
			gotReactions[r.GetText()]++
		}
		if pm := m.Message.GetProtocolMessage(); pm.GetType() == waE2E.ProtocolMessage_REVOKE {
			revoked[pm.GetKey().GetID()]++
		}
		body := textOf(m)
		if body == "" {
			continue
		}
		if ids[body] == nil {
			ids[body] = map[string]bool{}
			order = append(order, body)
		}
		ids[body][m.Info.ID] = true
	}
	for _, body := range texts {
		if n := len(ids[body]); n != 1 {
			t.Errorf("%q reached the phone under %d WhatsApp message IDs, want 1", body, n)
		}
	}
	if arrived := slices.DeleteFunc(slices.Clone(order), func(b string) bool { return !slices.Contains(texts, b) }); !slices.Equal(arrived, texts) {
		t.Errorf("the phone got the texts in another order than they were sent:\n got %q\nwant %q", arrived, texts)
	}
	for emoji, n := range reactions {
		if gotReactions[emoji] != n {
			t.Errorf("the phone got %d reactions %s, want %d", gotReactions[emoji], emoji, n)
		}
	}
	for _, evt := range deleted {
		if n := revoked[string(portal.MessageIDFor(evt))]; n != 1 {
			t.Errorf("the phone got the deletion of %s %d times, want once", evt, n)
		}
	}

	notices := map[id.EventID]int{}
	bot := lastBridge.cfg.BotUserID()
	for from := ""; ; {
		resp, err := f.alice.mx.Messages(context.Background(), f.room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, evt := range resp.Chunk {
			if evt.Sender != bot || evt.Type != event.EventMessage {
				continue
			}
			if inReply, _ := relatesTo(evt)["m.in_reply_to"].(map[string]any); inReply != nil {
				evtID, _ := inReply["event_id"].(string)
				notices[id.EventID(evtID)]++
			}
		}
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			break
		}
		from = resp.End
	}
	for _, evt := range refused {
		if notices[evt] != 1 {
			t.Errorf("the refused event %s got %d notices, want 1", evt, notices[evt])
		}
	}

	archived := map[string]int{}
	a := lastBridge.br.Archive()
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for idx := uint64(0); idx < st.Size; idx++ {
		e, err := a.Entry(context.Background(), idx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == archive.KindOutboundSend && e.Outbound != nil {
			archived[e.Outbound.MatrixEventID]++
		}
	}
	for _, evt := range all {
		if n := archived[string(evt)]; n != 1 {
			t.Errorf("%s is in the archive %d times, want once", evt, n)
		}
	}
}
