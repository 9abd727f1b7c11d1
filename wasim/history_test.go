package wasim_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

// TestOnDemandHistory: the phone has ten messages of a chat and sends only the newest three in the
// initial sync; a companion asks for older ones the way whatsmeow does (BuildHistorySyncRequest as a
// peer message), and the phone answers with ON_DEMAND syncs from what it has, media included.
func TestOnDemandHistory(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, alice, "alice-bridge")
	chat := bob.Account.JID

	photo := append([]byte("\xff\xd8\xff\xe0 history photo "), bytes.Repeat([]byte{7}, 300)...)
	media, err := alice.MediaMessage(ctx, photo, "image/jpeg", "", "an old photo")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	var msgs []wasim.HistoryMessage
	for i := range 10 {
		m := wasim.HistoryMessage{ID: types.MessageID(fmt.Sprintf("ONDEMAND%02d", i)), Sender: chat, Text: fmt.Sprintf("message %d", i),
			Time: base.Add(time.Duration(i) * time.Hour)}
		if i%2 == 1 {
			m.Sender = alice.Account.JID
		}
		if i == 4 {
			m.Message = media
		}
		msgs = append(msgs, m)
	}
	alice.SetHistory(chat, msgs...)
	if got := len(alice.History(chat)); got != 10 {
		t.Fatalf("phone has %d messages of the chat, want 10", got)
	}
	err = alice.SendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType:      waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Conversations: []*waHistorySync.Conversation{alice.HistoryConversation(chat, msgs[7:]...)},
	})
	if err != nil {
		t.Fatal(err)
	}
	initial, err := wasim.WaitFor(ctx, bridge.events, func(e *events.HistorySync) bool {
		return e.Data.GetSyncType() == waHistorySync.HistorySync_INITIAL_BOOTSTRAP
	})
	if err != nil {
		t.Fatal(err)
	}
	oldestKnown := initial.Data.GetConversations()[0].GetMessages()[0].GetMessage()

	// ask sends an on-demand request for count messages before the given one and returns the answer's IDs.
	ask := func(before *events.Message, count int) []*events.Message {
		t.Helper()
		req := bridge.cli.BuildHistorySyncRequest(&before.Info, count)
		if _, err := bridge.cli.SendMessage(ctx, bridge.cli.Store.GetJID().ToNonAD(), req, whatsmeow.SendRequestExtra{Peer: true}); err != nil {
			t.Fatalf("send on-demand request: %v", err)
		}
		hs, err := wasim.WaitFor(ctx, bridge.events, func(e *events.HistorySync) bool {
			return e.Data.GetSyncType() == waHistorySync.HistorySync_ON_DEMAND
		})
		if err != nil {
			t.Fatalf("no ON_DEMAND history sync: %v", err)
		}
		convs := hs.Data.GetConversations()
		if len(convs) != 1 || convs[0].GetID() != chat.String() {
			t.Fatalf("ON_DEMAND answer has conversations %v", convs)
		}
		var out []*events.Message
		for _, m := range convs[0].GetMessages() {
			parsed, err := bridge.cli.ParseWebMessage(chat, m.GetMessage())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, parsed)
		}
		return out
	}
	first, err := bridge.cli.ParseWebMessage(chat, oldestKnown)
	if err != nil {
		t.Fatal(err)
	}
	if first.Info.ID != "ONDEMAND07" {
		t.Fatalf("oldest message of the initial sync is %s", first.Info.ID)
	}
	got := ask(first, 4)
	ids := func(list []*events.Message) []string {
		var out []string
		for _, m := range list {
			out = append(out, m.Info.ID)
		}
		return out
	}
	if fmt.Sprint(ids(got)) != "[ONDEMAND03 ONDEMAND04 ONDEMAND05 ONDEMAND06]" {
		t.Fatalf("first on-demand answer has %v", ids(got))
	}
	if !got[0].Info.IsFromMe || got[1].Info.IsFromMe || !got[0].Info.Timestamp.Equal(msgs[3].Time) {
		t.Errorf("sender or time lost: %+v", got[0].Info)
	}
	img := got[1].Message.GetImageMessage()
	if img == nil || img.GetCaption() != "an old photo" {
		t.Fatalf("media history message came back as %v", got[1].Message)
	}
	data, err := bridge.cli.Download(ctx, img)
	if err != nil || !bytes.Equal(data, photo) {
		t.Fatalf("history photo download: %d bytes, %v", len(data), err)
	}
	// Asking for more than is left gets the rest; asking before the very first gets an empty answer.
	if rest := ask(got[0], 10); fmt.Sprint(ids(rest)) != "[ONDEMAND00 ONDEMAND01 ONDEMAND02]" {
		t.Fatalf("second on-demand answer has %v", ids(rest))
	} else if none := ask(rest[0], 10); len(none) != 0 {
		t.Fatalf("asking before the first message got %v", ids(none))
	}
	// The phone acknowledges each request as a peer message, as whatsmeow expects.
	if _, err := wasim.WaitFor(ctx, bridge.events, func(r *events.Receipt) bool { return r.Type == types.ReceiptTypePeerMsg }); err != nil {
		t.Errorf("no peer_msg receipt for the request: %v", err)
	}
}
