package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
)

// Issue 15, "nothing crosses without a record": what the bridge receives and does not relay
// is archived or in the ledger, and the sender is told where that makes sense.

// waitEntry waits for an archive entry matching match and returns it.
func waitEntry(t *testing.T, what string, match func(*archive.Entry) bool) *archive.Entry {
	t.Helper()
	ctx := context.Background()
	a := lastBridge.br.Archive()
	var found *archive.Entry
	eventually(t, what, func() bool {
		st, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for idx := uint64(0); idx < st.Size; idx++ {
			if e, err := a.Entry(ctx, idx); err == nil && match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// noticeReplyingTo matches the bot's notice that answers evt.
func noticeReplyingTo(evt id.EventID) func(*event.Event) bool {
	return func(e *event.Event) bool {
		inReply, _ := relatesTo(e)["m.in_reply_to"].(map[string]any)
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice && inReply["event_id"] == string(evt)
	}
}

// TestSilentUnrelayedMatrixUser: a second Matrix user in a portal, without the room's
// WhatsApp login, writes. The message does not go to WhatsApp, is archived as not relayed
// with the reason, and the bot tells that user why.
func TestSilentUnrelayedMatrixUser(t *testing.T) {
	f := newDM(t, "silent_unrel", "4915555001", "4915555002")
	ctx := context.Background()
	bot := lastBridge.cfg.BotUserID()
	colleague := registerUser(t, "silent_unrel_colleague")
	if _, err := f.alice.mx.InviteUser(ctx, f.room, &mautrix.ReqInviteUser{UserID: colleague.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := colleague.JoinRoomByID(ctx, f.room); err != nil {
		t.Fatal(err)
	}
	resp, err := colleague.SendText(ctx, f.room, "from the colleague")
	if err != nil {
		t.Fatal(err)
	}
	notice := waitEvent(t, colleague, f.room, bot, "notice to the colleague", noticeReplyingTo(resp.EventID))
	body := notice.Content.AsMessage().Body
	if !strings.Contains(body, "not sent to WhatsApp") || !strings.Contains(body, "no WhatsApp login") {
		t.Errorf("the notice does not say what happened and why: %q", body)
	}
	if m := notice.Content.AsMessage().Mentions; m == nil || len(m.UserIDs) != 1 || m.UserIDs[0] != colleague.UserID {
		t.Errorf("the notice does not mention the colleague: %+v", m)
	}

	// The room's queue is ordered: once the receiver's next message reached WhatsApp, the
	// colleague's was handled, and it must not have gone.
	send(t, f.alice.mx, f.room, "from alice after the colleague")
	waitWAText(t, f.contact, "from alice after the colleague")
	for _, evt := range f.contact.Events.All() {
		if m, ok := evt.(*events.Message); ok && m.Message.GetConversation() == "from the colleague" {
			t.Error("the colleague's message reached WhatsApp")
		}
	}

	e := waitEntry(t, "the archive entry of the colleague's message", func(e *archive.Entry) bool {
		return e.Outbound != nil && e.Outbound.MatrixEventID == string(resp.EventID)
	})
	if e.Kind != archive.KindMatrixMessage || e.Outbound.Status != "not_relayed" || e.Message == nil ||
		e.Message.Text != "from the colleague" || e.Sender != string(colleague.UserID) || !strings.Contains(e.Outbound.Error, "no WhatsApp login") {
		t.Errorf("archive entry = %+v (message %+v, outbound %+v)", e, e.Message, e.Outbound)
	}
}

// TestSilentEncryptedEvent: an m.room.encrypted event in a portal gets a notice that the
// bridge cannot read encrypted messages, and a ledger entry that gaps report.
func TestSilentEncryptedEvent(t *testing.T) {
	f := newDM(t, "silent_enc", "4915555003", "4915555004")
	ctx := context.Background()
	bot := lastBridge.cfg.BotUserID()
	resp, err := f.alice.mx.SendMessageEvent(ctx, f.room, event.EventEncrypted, map[string]any{
		"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACgAkLmt", "device_id": "SILENTDEV",
		"sender_key": "c2lsZW50c2lsZW50c2lsZW50", "session_id": "c2Vzc2lvbg",
	})
	if err != nil {
		t.Fatal(err)
	}
	notice := waitEvent(t, f.alice.mx, f.room, bot, "notice about the encrypted event", noticeReplyingTo(resp.EventID))
	if body := notice.Content.AsMessage().Body; !strings.Contains(body, "this bridge cannot read encrypted messages") {
		t.Errorf("notice = %q", body)
	}
	waitEntry(t, "the ledger entry", func(e *archive.Entry) bool {
		return e.Kind == archive.KindUndecryptable && e.MessageID == string(resp.EventID)
	})
	gaps, err := lastBridge.br.Archive().Gaps(ctx, time.UnixMilli(notice.Timestamp).Add(-time.Hour), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range gaps {
		if g.MessageID == string(resp.EventID) && g.Reason == archive.GapUndecryptable &&
			strings.Contains(g.Detail, "cannot read encrypted messages") && g.Sender == string(f.alice.mx.UserID) {
			found = true
		}
	}
	if !found {
		t.Errorf("archive gaps do not list the encrypted event: %+v", gaps)
	}
}

// TestSilentBroadcastList: a contact's broadcast-list message shows in the DM with them,
// marked "(broadcast)", and is archived naming the list.
func TestSilentBroadcastList(t *testing.T) {
	f := newDM(t, "silent_bcast", "4915555005", "4915555006")
	ctx := context.Background()
	msgID, err := f.contact.SendBroadcast(ctx, "1700000005", &waE2E.Message{Conversation: proto.String("to all my contacts")}, f.alice.phone.JID())
	if err != nil {
		t.Fatal(err)
	}
	waitMessage(t, f.alice.mx, f.room, f.ghost, bodyIs("(broadcast) to all my contacts"))
	e := waitEntry(t, "the archive entry of the broadcast", func(e *archive.Entry) bool { return e.MessageID == msgID })
	if e.Kind != archive.KindMessage || e.Broadcast != "1700000005@broadcast" || e.Chat != f.contact.JID().String() ||
		e.Message == nil || !strings.Contains(e.Message.Text, "to all my contacts") {
		t.Errorf("archive entry = %+v (message %+v)", e, e.Message)
	}
}

// TestSilentStatusUpdate: a contact's status update is archived as kind status; it is
// shown on Matrix, in a "WhatsApp Status" room, only with bridge.status_room.
func TestSilentStatusUpdate(t *testing.T) {
	t.Run("archived only", func(t *testing.T) {
		f := newDM(t, "silent_status_off", "4915555007", "4915555008")
		ctx := context.Background()
		first, err := f.contact.PostStatus(ctx, &waE2E.Message{Conversation: proto.String("first story")}, f.alice.phone.JID())
		if err != nil {
			t.Fatal(err)
		}
		second, err := f.contact.PostStatus(ctx, &waE2E.Message{Conversation: proto.String("second story")}, f.alice.phone.JID())
		if err != nil {
			t.Fatal(err)
		}
		e := waitEntry(t, "the first status update in the archive", func(e *archive.Entry) bool { return e.MessageID == first })
		if e.Kind != archive.KindStatus || e.Chat != types.StatusBroadcastJID.String() || e.Sender != f.contact.JID().String() ||
			e.Message == nil || e.Message.Text != "first story" {
			t.Errorf("archive entry = %+v (message %+v)", e, e.Message)
		}
		// The status portal's queue is ordered: with the second update archived, the first
		// was done with, room or no room.
		waitEntry(t, "the second status update in the archive", func(e *archive.Entry) bool { return e.MessageID == second })
		if room := statusRoomOf(t, f.alice.mx); room != "" {
			t.Errorf("a status room %s was created without bridge.status_room", room)
		}
	})
	t.Run("status room", func(t *testing.T) {
		cfg := configFor(t, "sqlite")
		cfg.Bridge.StatusRoom = true
		permit(cfg, "user", "silent_status_on")
		startRelayBridge(t, cfg)
		alice := loginWithQR(t, cfg, "silent_status_on", "4915555009", "Alice status")
		contact := newPhone(t, "4915555010", "Contact status")
		ctx := context.Background()
		id, err := contact.PostStatus(ctx, &waE2E.Message{Conversation: proto.String("a story for the room")}, alice.phone.JID())
		if err != nil {
			t.Fatal(err)
		}
		room := alice.waitInvite(t, cfg.BotUserID())
		waitMessage(t, alice.mx, room, cfg.PuppetUserID("4915555010"), bodyIs("a story for the room"))
		if got := statusRoomOf(t, alice.mx); got != room {
			t.Errorf("the room with the status is %s, the room named %q is %s", room, "WhatsApp Status", got)
		}
		if e := waitEntry(t, "the status update in the archive", func(e *archive.Entry) bool { return e.MessageID == id }); e.Kind != archive.KindStatus {
			t.Errorf("archived as %s", e.Kind)
		}
	})
}

// statusRoomOf returns the room named "WhatsApp Status" the user is in or invited to.
func statusRoomOf(t *testing.T, cli *mautrix.Client) id.RoomID {
	t.Helper()
	resp, err := cli.SyncRequest(context.Background(), 0, "", "", true, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	named := func(evts []*event.Event) bool {
		for _, evt := range evts {
			if evt.Type == event.StateRoomName {
				_ = evt.Content.ParseRaw(evt.Type)
				if evt.Content.AsRoomName().Name == "WhatsApp Status" {
					return true
				}
			}
		}
		return false
	}
	for room, r := range resp.Rooms.Invite {
		if named(r.State.Events) {
			return room
		}
	}
	for room, r := range resp.Rooms.Join {
		if named(r.State.Events) || named(r.Timeline.Events) {
			return room
		}
	}
	return ""
}

// TestSilentIncomingCall: a WhatsApp call leaves a notice in the chat's room and, with its
// end, two entries of kind call in the archive.
func TestSilentIncomingCall(t *testing.T) {
	f := newDM(t, "silent_call", "4915555011", "4915555012")
	bot := lastBridge.cfg.BotUserID()
	callID, err := f.contact.OfferCall(f.alice.phone.JID(), false)
	if err != nil {
		t.Fatal(err)
	}
	notice := waitEvent(t, f.alice.mx, f.room, bot, "the missed-call notice", func(e *event.Event) bool {
		return e.Type == event.EventMessage && strings.Contains(e.Content.AsMessage().Body, "Missed voice call from")
	})
	if body := notice.Content.AsMessage().Body; !strings.Contains(body, "Contact 4915555012") {
		t.Errorf("the notice does not name the caller: %q", body)
	}
	e := waitEntry(t, "the call in the archive", func(e *archive.Entry) bool {
		return e.Kind == archive.KindCall && e.Call != nil && e.Call.ID == callID && e.Call.Outcome == "offered"
	})
	if e.Chat != f.contact.JID().String() || e.Sender != f.contact.JID().String() || e.Call.Media != "voice" {
		t.Errorf("archive entry = %+v (call %+v)", e, e.Call)
	}
	if err := f.contact.EndCall(f.alice.phone.JID(), callID, "timeout"); err != nil {
		t.Fatal(err)
	}
	waitEntry(t, "the call's end in the archive", func(e *archive.Entry) bool {
		return e.Kind == archive.KindCall && e.Call != nil && e.Call.ID == callID && e.Call.Outcome == "timeout"
	})
}

// TestSecretEncryptedEdits: an edit in WhatsApp's secret-encrypted form that the pinned
// whatsmeow can decrypt (of an event message) is shown as the edit it is; one it cannot (a
// MESSAGE_EDIT) is archived as it came, with an undecryptable edit in the ledger, and the
// room is told.
func TestSecretEncryptedEdits(t *testing.T) {
	f := newDM(t, "silent_sealed", "4915555013", "4915555014")
	ctx := context.Background()
	bot := lastBridge.cfg.BotUserID()
	alice := f.alice.phone.JID()

	sent, err := f.contact.SendEvent(ctx, alice, "Team lunch")
	if err != nil {
		t.Fatal(err)
	}
	orig := waitMessage(t, f.alice.mx, f.room, f.ghost, func(e *event.Event) bool {
		return strings.Contains(e.Content.AsMessage().Body, "Team lunch")
	})
	if _, err := f.contact.SendEventEdit(ctx, alice, sent.ID, "Team dinner"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, f.alice.mx, f.room, f.ghost, "the decrypted edit", func(e *event.Event) bool {
		rel := relatesTo(e)
		newContent, _ := raw(e)["m.new_content"].(map[string]any)
		body, _ := newContent["body"].(string)
		return rel["rel_type"] == "m.replace" && rel["event_id"] == string(orig.ID) && strings.Contains(body, "Team dinner")
	})

	plain, err := f.contact.SendText(ctx, alice, "plain words")
	if err != nil {
		t.Fatal(err)
	}
	waitMessage(t, f.alice.mx, f.room, f.ghost, bodyIs("plain words"))
	sealed, err := f.contact.SendSealedTextEdit(ctx, alice, plain.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, f.alice.mx, f.room, bot, "the notice about the undecryptable edit", func(e *event.Event) bool {
		body := e.Content.AsMessage().Body
		return e.Type == event.EventMessage && strings.Contains(body, "cannot decrypt") && strings.Contains(body, plain.ID)
	})
	e := waitEntry(t, "the sealed edit in the archive", func(e *archive.Entry) bool {
		return e.Kind == archive.KindEdit && e.MessageID == sealed.ID
	})
	if e.Message == nil || e.Message.Type != "secret_encrypted" || len(e.Message.Proto) == 0 || e.Target == nil || e.Target.MessageID != plain.ID {
		t.Errorf("archive entry = %+v (message %+v)", e, e.Message)
	}
	l := waitEntry(t, "the ledger entry", func(e *archive.Entry) bool {
		return e.Kind == archive.KindUndecryptable && e.MessageID == sealed.ID
	})
	if l.Completeness == nil || !strings.Contains(l.Completeness.Reason, "undecryptable edit (MESSAGE_EDIT)") {
		t.Errorf("ledger entry = %+v", l.Completeness)
	}
}
