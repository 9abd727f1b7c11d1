package bridge_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/wasim"
)

const day = 24 * time.Hour

// sendHistory sends one initial-bootstrap history sync from the user's phone.
func sendHistory(t *testing.T, u *waUser, convs ...*waHistorySync.Conversation) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := u.phone.SendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(), Conversations: convs,
		ChunkOrder: proto.Uint32(1), Progress: proto.Uint32(100),
	}); err != nil {
		t.Fatal(err)
	}
}

// waitInvites syncs until the user has been invited by each of want, joins those rooms, and fails on an
// invite from any of refuse. waitInvite would drop invites that arrive in the same sync as another.
func (u *waUser) waitInvites(t *testing.T, want []id.UserID, refuse ...id.UserID) map[id.UserID]id.RoomID {
	t.Helper()
	rooms := map[id.UserID]id.RoomID{}
	u.syncInvites(t, 90*time.Second, func() bool { return len(rooms) == len(want) }, func(room id.RoomID, from id.UserID) bool {
		if slices.Contains(refuse, from) {
			t.Fatalf("got a room from %s, whose history the limits should have left out", from)
		}
		if slices.Contains(want, from) && rooms[from] == "" {
			rooms[from] = room
			return true
		}
		return false
	})
	if len(rooms) < len(want) {
		t.Fatalf("invites from %v, want %v", rooms, want)
	}
	return rooms
}

// messagesFrom returns the room's m.room.message events by the given senders, oldest first.
func messagesFrom(t *testing.T, cli *mautrix.Client, room id.RoomID, senders ...id.UserID) []*event.Event {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 500)
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		evt := resp.Chunk[i]
		if evt.Type != event.EventMessage {
			continue
		}
		for _, s := range senders {
			if evt.Sender == s {
				_ = evt.Content.ParseRaw(evt.Type)
				out = append(out, evt)
				break
			}
		}
	}
	return out
}

func bodies(evts []*event.Event) []string {
	out := make([]string, len(evts))
	for i, e := range evts {
		out[i] = e.Content.AsMessage().Body
	}
	return out
}

// archiveEntries reads the whole archive of the last bridge started.
func archiveEntries(t *testing.T) []*archive.Entry {
	t.Helper()
	ctx := context.Background()
	a := lastBridge.br.Archive()
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*archive.Entry
	for idx := uint64(0); idx < st.Size; idx++ {
		e, err := a.Entry(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// ledgerFor returns the history-sync ledger entries of a chat.
func ledgerFor(entries []*archive.Entry, chat types.JID) []*archive.Completeness {
	var out []*archive.Completeness
	for _, e := range entries {
		if e.Kind == archive.KindHistorySync && e.Chat == chat.String() {
			out = append(out, e.Completeness)
		}
	}
	return out
}

// TestHistoryLimits: with room for two chats, 30 days and three messages per chat, the most recent chat
// keeps its three newest messages, the second keeps its two, the oldest chat gets no room, and the
// ledger says what each limit cut. The contact's read of the user's message becomes his read marker.
func TestHistoryLimits(t *testing.T) {
	cfg := configFor(t, "sqlite")
	cfg.Bridge.History.MaxChats, cfg.Bridge.History.MaxAgeDays, cfg.Bridge.History.MaxMessagesPerChat = 2, 30, 3
	permit(cfg, "user", "limits_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "limits_alice", "4915552101", "Alice L")
	bob, carol, dave := newPhone(t, "4915552102", "Bob L"), newPhone(t, "4915552103", "Carol L"), newPhone(t, "4915552104", "Dave L")
	now := time.Now().Truncate(time.Second)
	msg := func(id string, from *wasim.Phone, text string, ago time.Duration) wasim.HistoryMessage {
		return wasim.HistoryMessage{ID: types.MessageID("3EB0LIMIT" + id), Sender: from.JID(), Text: text, Time: now.Add(-ago)}
	}
	answer := msg("B4", alice.phone, "alice answers", 3*day)
	answer.Read = true
	bobHistory := []wasim.HistoryMessage{msg("B1", bob, "forty days ago", 40*day), msg("B2", bob, "bob 1", 5*day),
		msg("B3", bob, "bob 2", 4*day), answer, msg("B5", bob, "bob 3", 2*day), msg("B6", bob, "bob 4", day)}
	carolHistory := []wasim.HistoryMessage{msg("C1", carol, "carol 1", 6*day), msg("C2", carol, "carol 2", 5*day)}
	daveHistory := []wasim.HistoryMessage{msg("D1", dave, "dave 1", 10*day), msg("D2", dave, "dave 2", 9*day)}
	// Least recent first: the bridge must order the chats itself.
	sendHistory(t, alice, alice.phone.HistoryConversation(dave.JID(), daveHistory...),
		alice.phone.HistoryConversation(carol.JID(), carolHistory...), alice.phone.HistoryConversation(bob.JID(), bobHistory...))

	bobGhost, carolGhost, daveGhost := cfg.PuppetUserID("4915552102"), cfg.PuppetUserID("4915552103"), cfg.PuppetUserID("4915552104")
	// Alice's own messages in a direct chat are the bot's: her ghost never joins a DM.
	aliceGhost := cfg.BotUserID()
	rooms := alice.waitInvites(t, []id.UserID{bobGhost, carolGhost}, daveGhost)
	waitMessage(t, alice.mx, rooms[bobGhost], bobGhost, bodyIs("bob 4"))
	waitMessage(t, alice.mx, rooms[carolGhost], carolGhost, bodyIs("carol 2"))
	bobRoom := messagesFrom(t, alice.mx, rooms[bobGhost], bobGhost, aliceGhost)
	if got := strings.Join(bodies(bobRoom), "|"); got != "alice answers|bob 3|bob 4" {
		t.Errorf("bob's room has %q, want the three newest messages", got)
	}
	if got := strings.Join(bodies(messagesFrom(t, alice.mx, rooms[carolGhost], carolGhost)), "|"); got != "carol 1|carol 2" {
		t.Errorf("carol's room has %q", got)
	}
	// Bob had read Alice's answer on WhatsApp: his ghost's read marker is on it.
	if len(bobRoom) > 0 {
		answerEvt := bobRoom[0].ID
		alice.waitEphemeral(t, rooms[bobGhost], "bob's read marker from history", func(e *event.Event) bool {
			if e.Type.Type != event.EphemeralEventReceipt.Type {
				return false
			}
			_, ok := (*e.Content.AsReceipt())[answerEvt][event.ReceiptTypeRead][bobGhost]
			return ok
		})
	}

	// Dave's chat was beyond the chat limit: its room only comes with a new message, without history.
	if _, err := dave.SendText(context.Background(), alice.phone.JID(), "dave live"); err != nil {
		t.Fatal(err)
	}
	daveRoom := alice.waitInvite(t, daveGhost)
	waitMessage(t, alice.mx, daveRoom, daveGhost, bodyIs("dave live"))
	if got := bodies(messagesFrom(t, alice.mx, daveRoom, daveGhost)); len(got) != 1 {
		t.Errorf("dave's room has %q, want only the live message", got)
	}

	entries := archiveEntries(t)
	bobLedger, carolLedger, daveLedger := ledgerFor(entries, bob.JID()), ledgerFor(entries, carol.JID()), ledgerFor(entries, dave.JID())
	if len(bobLedger) != 1 || !strings.Contains(bobLedger[0].Reason, "1 messages older than bridge.history.max_age_days (30)") ||
		!strings.Contains(bobLedger[0].Reason, "2 messages beyond bridge.history.max_messages_per_chat (3)") ||
		!bobLedger[0].From.Equal(answer.Time) {
		t.Errorf("bob's ledger entries %+v do not say what was cut", bobLedger)
	}
	if len(carolLedger) != 1 || strings.Contains(carolLedger[0].Reason, "cut by config") {
		t.Errorf("carol's ledger entries %+v", carolLedger)
	}
	if len(daveLedger) != 1 || !strings.Contains(daveLedger[0].Reason, "chat not backfilled, beyond bridge.history.max_chats (2)") {
		t.Errorf("dave's ledger entries %+v do not say the chat was left out", daveLedger)
	}
	fromHistory := 0
	for _, e := range entries {
		if e.Kind == archive.KindMessage && e.Source == "history_sync" {
			fromHistory++
		}
	}
	if fromHistory != 5 {
		t.Errorf("archive has %d history messages, want 5", fromHistory)
	}
}

// TestHistoryMedia: a photo in the history is bridged per bridge.history.media.
func TestHistoryMedia(t *testing.T) {
	for i, mode := range []string{"eager", "lazy", "skip"} {
		t.Run(mode, func(t *testing.T) {
			cfg := configFor(t, "sqlite")
			cfg.Bridge.History.Media = mode
			localpart := "media_" + mode
			aliceNumber, contactNumber := fmt.Sprintf("49155522%d1", i), fmt.Sprintf("49155522%d2", i)
			permit(cfg, "user", localpart)
			startRelayBridge(t, cfg)
			alice := loginWithQR(t, cfg, localpart, aliceNumber, "Alice "+mode)
			contact := newPhone(t, contactNumber, "Contact "+mode)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			photo := append([]byte("\xff\xd8\xff\xe0 history photo "+mode), bytes.Repeat([]byte{9}, 500)...)
			media, err := alice.phone.MediaMessage(ctx, photo, "image/jpeg", "", "holiday")
			if err != nil {
				t.Fatal(err)
			}
			base := time.Now().Add(-2 * day).Truncate(time.Second)
			sendHistory(t, alice, alice.phone.HistoryConversation(contact.JID(),
				wasim.HistoryMessage{ID: "3EB0MEDIA01", Sender: contact.JID(), Text: "before the photo", Time: base},
				wasim.HistoryMessage{ID: "3EB0MEDIA02", Sender: contact.JID(), Message: media, Time: base.Add(time.Minute)},
				wasim.HistoryMessage{ID: "3EB0MEDIA03", Sender: contact.JID(), Text: "after the photo", Time: base.Add(2 * time.Minute)}))
			ghost := cfg.PuppetUserID(contactNumber)
			room := alice.waitInvite(t, ghost)
			waitMessage(t, alice.mx, room, ghost, bodyIs("after the photo"))

			download := func(c *event.MessageEventContent) []byte {
				t.Helper()
				uri, err := c.URL.Parse()
				if err != nil {
					t.Fatalf("media URL %q: %v", c.URL, err)
				}
				data, err := alice.mx.DownloadBytes(ctx, uri)
				if err != nil {
					t.Fatal(err)
				}
				return data
			}
			sum := sha256.Sum256(photo)
			wantSHA := hex.EncodeToString(sum[:])
			var archivedMedia []archive.MediaRef
			var archivedText string
			for _, e := range archiveEntries(t) {
				if e.MessageID == "3EB0MEDIA02" && e.Message != nil {
					archivedMedia = append(archivedMedia, e.Message.Media...)
					if e.Kind == archive.KindMessage {
						archivedText = e.Message.Text
					}
				}
			}
			switch mode {
			case "eager":
				img := waitMessage(t, alice.mx, room, ghost, func(e *event.Event) bool {
					return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgImage
				})
				if c := img.Content.AsMessage(); c.Body != "holiday" || !bytes.Equal(download(c), photo) {
					t.Errorf("backfilled photo %q does not carry the phone's image", c.Body)
				}
				if len(archivedMedia) != 1 || archivedMedia[0].SHA256 != wantSHA {
					t.Errorf("archive media %+v, want the photo", archivedMedia)
				}
			case "skip":
				notice := waitMessage(t, alice.mx, room, ghost, func(e *event.Event) bool {
					return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice
				})
				if body := notice.Content.AsMessage().Body; body != "[photo not backfilled]\nholiday" {
					t.Errorf("skipped photo shows as %q", body)
				}
				for _, e := range messagesFrom(t, alice.mx, room, ghost) {
					if e.Content.AsMessage().MsgType == event.MsgImage {
						t.Errorf("a photo was bridged although media is skipped")
					}
				}
				if len(archivedMedia) != 0 || archivedText != "[photo not backfilled]\nholiday" {
					t.Errorf("archive has media %+v and text %q for the skipped photo", archivedMedia, archivedText)
				}
			case "lazy":
				placeholder := waitMessage(t, alice.mx, room, ghost, func(e *event.Event) bool {
					return e.Type == event.EventMessage && strings.HasPrefix(e.Content.AsMessage().Body, "[photo: fetching")
				})
				edit := waitMessage(t, alice.mx, room, ghost, func(e *event.Event) bool {
					rel := e.Content.AsMessage().RelatesTo
					return rel != nil && rel.Type == event.RelReplace && rel.EventID == placeholder.ID
				})
				newContent := edit.Content.AsMessage().NewContent
				if newContent == nil || newContent.MsgType != event.MsgImage || newContent.Body != "holiday" || !bytes.Equal(download(newContent), photo) {
					t.Fatalf("the placeholder's edit carries %+v, want the photo", newContent)
				}
				// The media is archived when it was fetched, pointing at its message.
				var fill *archive.Entry
				for _, e := range archiveEntries(t) {
					if e.Kind == "media_backfill" && e.Target != nil && e.Target.MessageID == "3EB0MEDIA02" {
						fill = e
					}
				}
				if fill == nil || fill.Message == nil || len(fill.Message.Media) != 1 || fill.Message.Media[0].SHA256 != wantSHA {
					t.Errorf("archive has no media_backfill entry with the photo: %+v", fill)
				}
			}
		})
	}
}

// TestHistoryLimitsAcrossRestart: the chat limit counts across a restart in the middle of
// a history sync. With room for one chat, the first chunk's chat is backfilled, the bridge
// restarts, and the second chunk's chat is left out (and said to be in the ledger).
func TestHistoryLimitsAcrossRestart(t *testing.T) {
	cfg := configFor(t, "sqlite")
	cfg.Bridge.History.MaxChats = 1
	permit(cfg, "user", "limitsrestart_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "limitsrestart_alice", "4915552391", "Alice LR")
	bob, carol := newPhone(t, "4915552392", "Bob LR"), newPhone(t, "4915552393", "Carol LR")
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	sendHistory(t, alice, alice.phone.HistoryConversation(bob.JID(),
		wasim.HistoryMessage{ID: "3EB0LIMITRB1", Sender: bob.JID(), Text: "bob from history", Time: now.Add(-time.Hour)}))
	bobGhost, carolGhost := cfg.PuppetUserID("4915552392"), cfg.PuppetUserID("4915552393")
	bobRoom := alice.waitInvite(t, bobGhost)
	waitMessage(t, alice.mx, bobRoom, bobGhost, bodyIs("bob from history"))

	if err := lastBridge.br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	startRelayBridge(t, cfg)
	if err := alice.phone.SendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_RECENT.Enum(), ChunkOrder: proto.Uint32(2), Progress: proto.Uint32(100),
		Conversations: []*waHistorySync.Conversation{alice.phone.HistoryConversation(carol.JID(),
			wasim.HistoryMessage{ID: "3EB0LIMITRC1", Sender: carol.JID(), Text: "carol from history", Time: now.Add(-2 * time.Hour)})},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ledger entry for carol's chat", func() bool {
		for _, c := range ledgerFor(archiveEntries(t), carol.JID()) {
			if strings.Contains(c.Reason, "beyond bridge.history.max_chats (1)") {
				return true
			}
		}
		return false
	})
	if _, err := carol.SendText(ctx, alice.phone.JID(), "carol live"); err != nil {
		t.Fatal(err)
	}
	carolRoom := alice.waitInvite(t, carolGhost)
	waitMessage(t, alice.mx, carolRoom, carolGhost, bodyIs("carol live"))
	if got := bodies(messagesFrom(t, alice.mx, carolRoom, carolGhost)); len(got) != 1 {
		t.Errorf("carol's room has %q, want only the live message", got)
	}
}
