package bridge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/wasim"
)

// TestOnDemandBackfill: the phone has ten messages of a chat and syncs only the newest three; `!wa
// backfill 5` in the room brings the five before them, in order, with their original times and senders,
// without duplicates, archived as on-demand history with their span in the ledger. A second request
// after the phone went offline is answered with a timeout notice.
func TestOnDemandBackfill(t *testing.T) {
	cfg := configFor(t, "sqlite")
	cfg.Bridge.History.OnDemandTimeout = "20s"
	permit(cfg, "user", "ondemand_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "ondemand_alice", "4915552301", "Alice OD")
	bob := newPhone(t, "4915552302", "Bob OD")
	// Alice's own messages in a direct chat are the bot's (her ghost never joins a DM); the
	// bot's notices are told apart by msgtype (bridgedMessages).
	bobGhost, bot := cfg.PuppetUserID("4915552302"), cfg.BotUserID()
	aliceGhost := bot

	base := time.Now().Add(-20 * day).Truncate(time.Second)
	var history []wasim.HistoryMessage
	for i := range 10 {
		m := wasim.HistoryMessage{ID: types.MessageID(fmt.Sprintf("3EB0ONDEMAND%02d", i)), Sender: bob.JID(),
			Text: fmt.Sprintf("history %02d", i), Time: base.Add(time.Duration(i) * 7 * time.Hour)}
		if i%3 == 1 {
			m.Sender = alice.phone.JID()
		}
		history = append(history, m)
	}
	alice.phone.SetHistory(bob.JID(), history...)
	sendHistory(t, alice, alice.phone.HistoryConversation(bob.JID(), history[7:]...))
	room := alice.waitInvite(t, bobGhost)
	waitMessage(t, alice.mx, room, bobGhost, bodyIs("history 09"))

	asked := send(t, alice.mx, room, "!wa backfill 5")
	reply := waitForReply(t, alice.mx, room, bot, asked, "Asked your phone")
	if !strings.Contains(reply, "up to 5 messages") || !strings.Contains(reply, "end of the timeline") {
		t.Errorf("backfill reply does not say what it asked for and where the messages go: %q", reply)
	}
	report := waitForReply(t, alice.mx, room, bot, asked, "Backfilled")
	wantReport := fmt.Sprintf("Backfilled 5 older messages, from %s to %s", history[2].Time.Format(time.DateTime), history[6].Time.Format(time.DateTime))
	if !strings.Contains(report, wantReport) {
		t.Errorf("report %q, want it to say %q", report, wantReport)
	}

	// The report comes after the messages, so they are all in the room now: the initial three, then
	// the five older ones appended, each once, in order among themselves.
	evts := bridgedMessages(messagesFrom(t, alice.mx, room, bobGhost, aliceGhost))
	want := []int{7, 8, 9, 2, 3, 4, 5, 6}
	if len(evts) != len(want) {
		t.Fatalf("room has %q, want history %v", bodies(evts), want)
	}
	for i, idx := range want {
		h, evt := history[idx], evts[i]
		wantSender := bobGhost
		if h.Sender == alice.phone.JID() {
			wantSender = aliceGhost
		}
		if evt.Content.AsMessage().Body != h.Text || evt.Timestamp != h.Time.UnixMilli() || evt.Sender != wantSender {
			t.Errorf("event %d is %q from %s at %d, want %q from %s at %d (original time)", i,
				evt.Content.AsMessage().Body, evt.Sender, evt.Timestamp, h.Text, wantSender, h.Time.UnixMilli())
		}
	}

	entries := archiveEntries(t)
	onDemand := map[string]int{}
	for _, e := range entries {
		if e.Kind == archive.KindMessage && e.Source == "on_demand" {
			onDemand[e.MessageID]++
		}
	}
	for _, h := range history[2:7] {
		if onDemand[h.ID] != 1 {
			t.Errorf("message %s archived %d times as on_demand, want once", h.ID, onDemand[h.ID])
		}
	}
	if len(onDemand) != 5 {
		t.Errorf("archive has %d on-demand messages, want 5", len(onDemand))
	}
	var span *archive.Completeness
	for _, c := range ledgerFor(entries, bob.JID()) {
		if strings.HasPrefix(c.Reason, "on-demand backfill") {
			span = c
		}
	}
	if span == nil || !span.From.Equal(history[2].Time) || !span.To.Equal(history[6].Time) ||
		!strings.Contains(span.Reason, string(alice.mx.UserID)) {
		t.Errorf("ledger span of the backfill = %+v, want %s .. %s requested by %s", span, history[2].Time, history[6].Time, alice.mx.UserID)
	}

	// A phone that does not answer: the user is told after bridge.history.on_demand_timeout.
	alice.phone.Close()
	again := send(t, alice.mx, room, "!wa backfill 5")
	waitForReply(t, alice.mx, room, bot, again, "Asked your phone")
	timeout := waitForReply(t, alice.mx, room, bot, again, "did not answer")
	if !strings.Contains(timeout, "20s") {
		t.Errorf("timeout notice does not say how long it waited: %q", timeout)
	}
	if got := len(bridgedMessages(messagesFrom(t, alice.mx, room, bobGhost, aliceGhost))); got != len(want) {
		t.Errorf("room has %d messages after the unanswered request, want %d", got, len(want))
	}
}

// bridgedMessages drops the bot's notices, leaving the messages bridged from WhatsApp.
func bridgedMessages(evts []*event.Event) []*event.Event {
	var out []*event.Event
	for _, e := range evts {
		if e.Content.AsMessage().MsgType != event.MsgNotice {
			out = append(out, e)
		}
	}
	return out
}
