package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/wasim"
)

func TestHistorySyncBackfill(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "history_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "history_alice", "4915551101", "Alice H")
	bob := newPhone(t, "4915551102", "Bob H")
	ctx := context.Background()
	day := 24 * time.Hour
	base := time.Now().Add(-3 * day).Truncate(time.Second)
	history := []wasim.HistoryMessage{
		{ID: "3EB0HIST000000000000A1", Sender: bob.JID(), Text: "three days ago", Time: base},
		{ID: "3EB0HIST000000000000A2", Sender: alice.phone.JID(), Text: "my answer", Time: base.Add(time.Hour)},
		{ID: "3EB0HIST000000000000A3", Sender: bob.JID(), Text: "yesterday", Time: base.Add(2 * day)},
	}
	conv := alice.phone.HistoryConversation(bob.JID(), history...)
	if err := alice.phone.SendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(), Conversations: []*waHistorySync.Conversation{conv},
		ChunkOrder: proto.Uint32(1), Progress: proto.Uint32(100),
	}); err != nil {
		t.Fatal(err)
	}
	// Alice's own messages in a direct chat are the bot's: her ghost never joins a DM.
	bobGhost, aliceGhost := cfg.PuppetUserID("4915551102"), cfg.BotUserID()
	room := alice.waitInvite(t, bobGhost)
	if _, err := bob.SendText(ctx, alice.phone.JID(), "live again"); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, alice.mx, room, bobGhost, bodyIs("live again"))

	resp, err := alice.mx.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		body string
		ts   int64
	}
	var got []seen
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		evt := resp.Chunk[i]
		if evt.Type != event.EventMessage || (evt.Sender != bobGhost && evt.Sender != aliceGhost) {
			continue
		}
		_ = evt.Content.ParseRaw(evt.Type)
		got = append(got, seen{evt.Content.AsMessage().Body, evt.Timestamp})
	}
	want := []seen{
		{"three days ago", history[0].Time.UnixMilli()}, {"my answer", history[1].Time.UnixMilli()},
		{"yesterday", history[2].Time.UnixMilli()},
	}
	if len(got) != 4 || got[3].body != "live again" {
		t.Fatalf("room timeline = %+v", got)
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("history message %d = %+v, want %+v (original timestamp)", i, got[i], w)
		}
	}

	// The archive has the history marked as such, and its span in the completeness ledger.
	a := lastBridge.br.Archive()
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var fromHistory, live int
	var span *archive.Completeness
	for idx := uint64(0); idx < st.Size; idx++ {
		e, err := a.Entry(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Kind == archive.KindHistorySync:
			span = e.Completeness
		case e.Kind == archive.KindMessage && e.Source == "history_sync":
			fromHistory++
		case e.Kind == archive.KindMessage && e.Message != nil && e.Message.Text == "live again":
			live++
		}
	}
	if fromHistory != 3 || live != 1 {
		t.Errorf("archive: %d history messages (want 3), %d live (want 1)", fromHistory, live)
	}
	if span == nil || !span.From.Equal(history[0].Time) || !span.To.Equal(history[2].Time) {
		t.Errorf("history span in the ledger = %+v, want %s .. %s", span, history[0].Time, history[2].Time)
	}
}

// TestHistorySurvivesRestart: the bridge takes a history-sync notification while WhatsApp's
// media host is down, so the chunk cannot be fetched; it is stopped and started again, and
// the history still arrives. (whatsmeow's own background download would have dropped it.)
func TestHistorySurvivesRestart(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "histrestart_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "histrestart_alice", "4915551501", "Alice HR")
	bob := newPhone(t, "4915551502", "Bob HR")
	ctx := context.Background()
	sim.SetMediaOutage(true)
	t.Cleanup(func() { sim.SetMediaOutage(false) })

	base := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	conv := alice.phone.HistoryConversation(bob.JID(),
		wasim.HistoryMessage{ID: "3EB0HISTRESTART01", Sender: bob.JID(), Text: "from before the restart 1", Time: base},
		wasim.HistoryMessage{ID: "3EB0HISTRESTART02", Sender: bob.JID(), Text: "from before the restart 2", Time: base.Add(time.Minute)},
	)
	if err := alice.phone.SendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(), Conversations: []*waHistorySync.Conversation{conv},
		ChunkOrder: proto.Uint32(1), Progress: proto.Uint32(100),
	}); err != nil {
		t.Fatal(err)
	}
	metrics := cfg.Appservice.Address + "/metrics"
	eventually(t, "a failed fetch of the history chunk", func() bool {
		return strings.Contains(httpGet(t, metrics), `causeway_relay_errors_total{direction="to_matrix",kind="wa_history_chunk"}`)
	})
	if err := lastBridge.br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	sim.SetMediaOutage(false)
	startRelayBridge(t, cfg)
	bobGhost := cfg.PuppetUserID("4915551502")
	room := alice.waitInvite(t, bobGhost)
	waitBodies(t, alice.mx, room, bobGhost, []string{"from before the restart 1", "from before the restart 2"})
}
