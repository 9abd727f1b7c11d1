package bridge_test

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/wasim"
)

// waSince lists the messages the phone received after the first n events it recorded, up to
// and including the text marker.
func waSince(t *testing.T, phone *wasim.Phone, n int, marker string) []*events.Message {
	t.Helper()
	waitWAText(t, phone, marker)
	var out []*events.Message
	for _, e := range phone.Events.All()[n:] {
		if m, ok := e.(*events.Message); ok {
			out = append(out, m)
		}
	}
	return out
}

// TestEditOfEdit: relations that point at an edit event resolve to the original message, or
// are refused with a notice, never sent against the edit's own message ID.
func TestEditOfEdit(t *testing.T) {
	f := newDM(t, "editedit", "4915551913", "4915551914")
	ctx := context.Background()
	mx, room, c := f.alice.mx, f.room, f.contact
	bot := lastBridge.cfg.BotUserID()

	orig, err := mx.SendText(ctx, room, "version one")
	if err != nil {
		t.Fatal(err)
	}
	origWA := waitWAText(t, c, "version one")
	editContent := &event.MessageEventContent{MsgType: event.MsgText, Body: "* version two"}
	editContent.SetEdit(orig.EventID)
	editContent.NewContent = &event.MessageEventContent{MsgType: event.MsgText, Body: "version two"}
	edit, err := mx.SendMessageEvent(ctx, room, event.EventMessage, editContent)
	if err != nil {
		t.Fatal(err)
	}
	waitWA(t, c, "first edit", func(m *events.Message) bool { return m.IsEdit })
	before := len(c.Events.All())

	// An edit of the edit is invalid Matrix: refused.
	editOfEdit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* version three"}
	editOfEdit.SetEdit(edit.EventID)
	editOfEdit.NewContent = &event.MessageEventContent{MsgType: event.MsgText, Body: "version three"}
	e3, err := mx.SendMessageEvent(ctx, room, event.EventMessage, editOfEdit)
	if err != nil {
		t.Fatal(err)
	}
	waitFailureNotice(t, f, bot, e3.EventID, "notice about the edit of an edit")

	// Redacting the edit cannot be expressed on WhatsApp: refused, no deletion sent.
	red, err := mx.RedactEvent(ctx, room, edit.EventID)
	if err != nil {
		t.Fatal(err)
	}
	waitFailureNotice(t, f, bot, red.EventID, "notice about the redacted edit")

	// An edit that turns the text into an image is refused, not sent as the file name.
	toImage := &event.MessageEventContent{MsgType: event.MsgText, Body: "* pic.png"}
	toImage.SetEdit(orig.EventID)
	toImage.NewContent = &event.MessageEventContent{MsgType: event.MsgImage, Body: "pic.png", URL: "mxc://localhost/whatever"}
	e4, err := mx.SendMessageEvent(ctx, room, event.EventMessage, toImage)
	if err != nil {
		t.Fatal(err)
	}
	waitFailureNotice(t, f, bot, e4.EventID, "notice about the text-to-image edit")

	// A reply to the edit quotes the original message.
	reply := &event.MessageEventContent{MsgType: event.MsgText, Body: "replying to the edit"}
	reply.RelatesTo = (&event.RelatesTo{}).SetReplyTo(edit.EventID)
	if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, reply); err != nil {
		t.Fatal(err)
	}
	got := waitWA(t, c, "reply to the edit", func(m *events.Message) bool {
		return m.Message.GetExtendedTextMessage().GetText() == "replying to the edit"
	})
	if q := got.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID(); q != origWA.Info.ID {
		t.Errorf("the reply quotes %q, want the original %q", q, origWA.Info.ID)
	}

	send(t, mx, room, "the end")
	for _, m := range waSince(t, c, before, "the end") {
		if pm := m.Message.GetProtocolMessage(); m.IsEdit || (pm != nil && pm.GetType() == waE2E.ProtocolMessage_REVOKE) {
			t.Errorf("the phone got a refused change: %v", m.RawMessage)
		}
	}
}
