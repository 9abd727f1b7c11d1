package bridge_test

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
)

// waitFailureNotice waits for the bot's notice that evt could not be sent to WhatsApp.
func waitFailureNotice(t *testing.T, f *dmFixture, bot id.UserID, evt id.EventID, what string) *event.Event {
	t.Helper()
	return waitEvent(t, f.alice.mx, f.room, bot, what, func(e *event.Event) bool {
		inReply, _ := relatesTo(e)["m.in_reply_to"].(map[string]any)
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice && inReply["event_id"] == string(evt)
	})
}

// TestNonStringFields: an event whose body is not a string is neither relayed nor lost: the
// sender gets a notice, the archive records what arrived, and the events after it still go.
func TestNonStringFields(t *testing.T) {
	f := newDM(t, "nonstring", "4915551911", "4915551912")
	ctx := context.Background()
	bot := lastBridge.cfg.BotUserID()

	resp, err := f.alice.mx.SendMessageEvent(ctx, f.room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": 42})
	if err != nil {
		t.Fatal(err)
	}
	notice := waitFailureNotice(t, f, bot, resp.EventID, "notice about the numeric body")
	if body := notice.Content.AsMessage().Body; !strings.Contains(body, "body") {
		t.Errorf("the notice does not say what was wrong: %q", body)
	}
	send(t, f.alice.mx, f.room, "after the broken one")
	waitWAText(t, f.contact, "after the broken one")

	a := lastBridge.br.Archive()
	var found *archive.Entry
	eventually(t, "the archive entry of the broken event", func() bool {
		st, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for idx := uint64(0); idx < st.Size; idx++ {
			if e, err := a.Entry(ctx, idx); err == nil && e.Outbound != nil && e.Outbound.MatrixEventID == string(resp.EventID) {
				found = e
				return true
			}
		}
		return false
	})
	if found.Kind != archive.KindOutboundSend || found.Outbound.Status != "failed" || found.Message == nil ||
		!strings.Contains(found.Message.Text, `"body":42`) || found.Outbound.MatrixRoomID != string(f.room) {
		t.Errorf("archive entry = %+v (message %+v, outbound %+v)", found, found.Message, found.Outbound)
	}
}
