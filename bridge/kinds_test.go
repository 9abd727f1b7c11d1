package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/wasim"
)

// dmFixture is a logged-in user with one DM portal to a contact's phone.
type dmFixture struct {
	alice   *waUser
	contact *wasim.Phone
	ghost   id.UserID
	room    id.RoomID
}

func newDM(t *testing.T, localpart, aliceNumber, contactNumber string, adjust ...func(*config.Config)) *dmFixture {
	t.Helper()
	return newDMOn(t, "sqlite", localpart, aliceNumber, contactNumber, adjust...)
}

// newDMOn is newDM on a bridge database of type dbType.
func newDMOn(t *testing.T, dbType, localpart, aliceNumber, contactNumber string, adjust ...func(*config.Config)) *dmFixture {
	t.Helper()
	cfg := configFor(t, dbType)
	permit(cfg, "user", localpart)
	for _, f := range adjust {
		f(cfg)
	}
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, localpart, aliceNumber, "Alice "+localpart)
	contact := newPhone(t, contactNumber, "Contact "+contactNumber)
	if _, err := contact.SendText(context.Background(), alice.phone.JID(), "hi"); err != nil {
		t.Fatal(err)
	}
	ghost := cfg.PuppetUserID(contactNumber)
	room := alice.waitInvite(t, ghost)
	waitMessage(t, alice.mx, room, ghost, bodyIs("hi"))
	return &dmFixture{alice: alice, contact: contact, ghost: ghost, room: room}
}

// waitEvent polls the room until sender sent an event matching match.
func waitEvent(t *testing.T, cli *mautrix.Client, roomID id.RoomID, sender id.UserID, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := cli.Messages(context.Background(), roomID, "", "", mautrix.DirectionBackward, nil, 100)
		if err == nil {
			for _, evt := range resp.Chunk {
				if evt.Sender == sender {
					_ = evt.Content.ParseRaw(evt.Type)
					if match(evt) {
						return evt
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no matching event from %s", what, sender)
	return nil
}

func raw(evt *event.Event) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(evt.Content.VeryRaw, &m)
	return m
}

func relatesTo(evt *event.Event) map[string]any {
	rel, _ := raw(evt)["m.relates_to"].(map[string]any)
	return rel
}

// waitWA waits until the phone receives a message matching match.
func waitWA(t *testing.T, phone *wasim.Phone, what string, match func(*events.Message) bool) *events.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msg, err := wasim.WaitFor(ctx, phone.Events, match)
	if err != nil {
		t.Fatalf("%s: the phone never got it: %v", what, err)
	}
	return msg
}

// kindsOn are the databases the message-kind tests run on, each with its own user and numbers.
type kindsOn struct{ db, localpart, alice, contact string }

func TestWhatsAppToMatrixKinds(t *testing.T) {
	for _, tt := range []kindsOn{
		{"sqlite", "kinds_wa", "4915550201", "4915550202"},
		{"postgres", "kinds_wa_pg", "4915556051", "4915556052"},
	} {
		t.Run(tt.db, func(t *testing.T) {
			whatsAppToMatrixKinds(t, newDMOn(t, tt.db, tt.localpart, tt.alice, tt.contact))
		})
	}
}

func whatsAppToMatrixKinds(t *testing.T, f *dmFixture) {
	ctx := context.Background()
	mx, room, ghost, chat := f.alice.mx, f.room, f.ghost, f.alice.phone.JID()
	c := f.contact

	first, err := c.SendText(ctx, chat, "first message")
	if err != nil {
		t.Fatal(err)
	}
	firstEvt := waitEvent(t, mx, room, ghost, "text", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == "first message"
	})

	t.Run("reply", func(t *testing.T) {
		quoted := &events.Message{Info: types.MessageInfo{ID: first.ID, MessageSource: types.MessageSource{Sender: c.JID()}},
			Message: &waE2E.Message{Conversation: proto.String("first message")}}
		if _, err := c.SendReply(ctx, chat, quoted, "a reply"); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "reply", func(e *event.Event) bool {
			return e.Type == event.EventMessage && strings.Contains(e.Content.AsMessage().Body, "a reply")
		})
		inReply, _ := relatesTo(evt)["m.in_reply_to"].(map[string]any)
		if inReply["event_id"] != string(firstEvt.ID) {
			t.Errorf("reply points at %v, want %s", inReply, firstEvt.ID)
		}
	})

	t.Run("edit", func(t *testing.T) {
		if _, err := c.SendEdit(ctx, chat, first.ID, "first message, edited"); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "edit", func(e *event.Event) bool {
			return relatesTo(e)["rel_type"] == "m.replace"
		})
		newContent, _ := raw(evt)["m.new_content"].(map[string]any)
		if relatesTo(evt)["event_id"] != string(firstEvt.ID) || newContent["body"] != "first message, edited" {
			t.Errorf("edit = %v", raw(evt))
		}
	})

	t.Run("reaction", func(t *testing.T) {
		if _, err := c.SendReaction(ctx, chat, c.JID(), first.ID, "👍"); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "reaction", func(e *event.Event) bool { return e.Type == event.EventReaction })
		// With the variation selector Matrix clients add (TestReactionVariationSelector).
		if rel := relatesTo(evt); rel["key"] != "👍\ufe0f" || rel["event_id"] != string(firstEvt.ID) {
			t.Errorf("reaction = %v", rel)
		}
	})

	t.Run("delete", func(t *testing.T) {
		doomed, err := c.SendText(ctx, chat, "to be deleted")
		if err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "doomed", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().Body == "to be deleted"
		})
		if _, err := c.SendRevoke(ctx, chat, c.JID(), doomed.ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, err := mx.GetEvent(ctx, room, evt.ID)
			if err == nil && got.Unsigned.RedactedBecause != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message was not redacted: %+v", got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("image", func(t *testing.T) {
		png := bytes.Repeat([]byte("\x89PNG fake image bytes "), 200)
		if _, err := c.SendImage(ctx, chat, png, "image/png", "look at this"); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "image", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgImage
		})
		content := evt.Content.AsMessage()
		uri, err := content.URL.Parse()
		if err != nil {
			t.Fatalf("image has no mxc URL: %v (%v)", err, raw(evt))
		}
		data, err := mx.DownloadBytes(ctx, uri)
		if err != nil || !bytes.Equal(data, png) {
			t.Fatalf("downloaded %d bytes (%v), want the %d sent", len(data), err, len(png))
		}
		if !strings.Contains(content.Body+content.FileName, "look at this") {
			t.Errorf("caption lost: body %q file %q", content.Body, content.FileName)
		}
	})

	t.Run("document", func(t *testing.T) {
		doc := []byte("%PDF-1.4 not really a pdf")
		if _, err := c.SendDocument(ctx, chat, doc, "application/pdf", "minutes.pdf"); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "document", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgFile
		})
		if c := evt.Content.AsMessage(); c.FileName != "minutes.pdf" && c.Body != "minutes.pdf" {
			t.Errorf("file name lost: %v", raw(evt))
		}
	})

	t.Run("voice note", func(t *testing.T) {
		ogg := bytes.Repeat([]byte("OggS voice "), 100)
		up, err := c.Client.Upload(ctx, ogg, whatsmeow.MediaAudio)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Send(ctx, chat, &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: proto.String("audio/ogg; codecs=opus"), PTT: proto.Bool(true), Seconds: proto.Uint32(3),
		}})
		if err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "voice", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgAudio
		})
		if _, ok := raw(evt)["org.matrix.msc3245.voice"]; !ok {
			t.Errorf("voice note not marked as voice: %v", raw(evt))
		}
	})

	t.Run("location", func(t *testing.T) {
		if _, err := c.SendLocation(ctx, chat, 52.52, 13.405, "Berlin"); err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, ghost, "location", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgLocation
		})
		if geo := evt.Content.AsMessage().GeoURI; !strings.HasPrefix(geo, "geo:52.52,13.405") {
			t.Errorf("geo_uri = %q", geo)
		}
	})
}

func TestMatrixToWhatsAppKinds(t *testing.T) {
	for _, tt := range []kindsOn{
		{"sqlite", "kinds_mx", "4915550301", "4915550302"},
		{"postgres", "kinds_mx_pg", "4915556061", "4915556062"},
	} {
		t.Run(tt.db, func(t *testing.T) {
			matrixToWhatsAppKinds(t, newDMOn(t, tt.db, tt.localpart, tt.alice, tt.contact))
		})
	}
}

func matrixToWhatsAppKinds(t *testing.T, f *dmFixture) {
	ctx := context.Background()
	mx, room, c := f.alice.mx, f.room, f.contact

	// The contact's message to reply to and react to.
	theirs, err := c.SendText(ctx, f.alice.phone.JID(), "question?")
	if err != nil {
		t.Fatal(err)
	}
	theirEvt := waitEvent(t, mx, room, f.ghost, "their message", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == "question?"
	})

	t.Run("reply", func(t *testing.T) {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: "an answer"}
		content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(theirEvt.ID)
		if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "reply", func(m *events.Message) bool { return m.Message.GetExtendedTextMessage().GetText() == "an answer" })
		if got := msg.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID(); got != theirs.ID {
			t.Errorf("quote points at %q, want %q", got, theirs.ID)
		}
	})

	t.Run("edit", func(t *testing.T) {
		resp, err := mx.SendText(ctx, room, "typo here")
		if err != nil {
			t.Fatal(err)
		}
		orig := waitWAText(t, c, "typo here")
		edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* no typo"}
		edit.SetEdit(resp.EventID)
		edit.NewContent = &event.MessageEventContent{MsgType: event.MsgText, Body: "no typo"}
		if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, edit); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "edit", func(m *events.Message) bool { return m.IsEdit })
		pm := msg.RawMessage.GetEditedMessage().GetMessage().GetProtocolMessage()
		if pm.GetKey().GetID() != orig.Info.ID || pm.GetEditedMessage().GetConversation()+pm.GetEditedMessage().GetExtendedTextMessage().GetText() != "no typo" {
			t.Errorf("edit = %v", msg.RawMessage)
		}
	})

	t.Run("reaction", func(t *testing.T) {
		content := map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": theirEvt.ID, "key": "❤️"}}
		if _, err := mx.SendMessageEvent(ctx, room, event.EventReaction, content); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "reaction", func(m *events.Message) bool { return m.Message.GetReactionMessage() != nil })
		// WhatsApp reactions carry no emoji variation selector.
		if r := msg.Message.GetReactionMessage(); r.GetText() != "❤" || r.GetKey().GetID() != theirs.ID {
			t.Errorf("reaction = %v", r)
		}
	})

	t.Run("delete", func(t *testing.T) {
		resp, err := mx.SendText(ctx, room, "oops, wrong chat")
		if err != nil {
			t.Fatal(err)
		}
		sent := waitWAText(t, c, "oops, wrong chat")
		if _, err := mx.RedactEvent(ctx, room, resp.EventID); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "revoke", func(m *events.Message) bool {
			return m.Message.GetProtocolMessage().GetType() == waE2E.ProtocolMessage_REVOKE
		})
		if got := msg.Message.GetProtocolMessage().GetKey().GetID(); got != sent.Info.ID {
			t.Errorf("revoked %q, want %q", got, sent.Info.ID)
		}
	})

	t.Run("image", func(t *testing.T) {
		img := bytes.Repeat([]byte("GIF89a matrix image "), 100)
		up, err := mx.UploadBytesWithName(ctx, img, "image/gif", "pic.gif")
		if err != nil {
			t.Fatal(err)
		}
		content := &event.MessageEventContent{MsgType: event.MsgImage, Body: "pic.gif", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "image/gif", Size: len(img)}}
		if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "image", func(m *events.Message) bool { return m.Message.GetImageMessage() != nil })
		data, err := c.Client.Download(ctx, msg.Message.GetImageMessage())
		if err != nil || !bytes.Equal(data, img) {
			t.Fatalf("phone downloaded %d bytes (%v), want %d", len(data), err, len(img))
		}
	})

	t.Run("document", func(t *testing.T) {
		doc := []byte("minutes of the meeting")
		up, err := mx.UploadBytesWithName(ctx, doc, "text/plain", "minutes.txt")
		if err != nil {
			t.Fatal(err)
		}
		content := &event.MessageEventContent{MsgType: event.MsgFile, Body: "minutes.txt", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "text/plain", Size: len(doc)}}
		if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "document", func(m *events.Message) bool { return m.Message.GetDocumentMessage() != nil })
		if msg.Message.GetDocumentMessage().GetFileName() != "minutes.txt" {
			t.Errorf("document = %v", msg.Message.GetDocumentMessage())
		}
	})

	t.Run("voice note", func(t *testing.T) {
		ogg := bytes.Repeat([]byte("OggS matrix voice "), 50)
		up, err := mx.UploadBytesWithName(ctx, ogg, "audio/ogg", "voice.ogg")
		if err != nil {
			t.Fatal(err)
		}
		content := map[string]any{"msgtype": "m.audio", "body": "voice.ogg", "url": up.ContentURI.CUString(),
			"info":                     map[string]any{"mimetype": "audio/ogg", "size": len(ogg), "duration": 2000},
			"org.matrix.msc3245.voice": map[string]any{}, "org.matrix.msc1767.audio": map[string]any{"duration": 2000}}
		if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "voice", func(m *events.Message) bool { return m.Message.GetAudioMessage() != nil })
		if !msg.Message.GetAudioMessage().GetPTT() {
			t.Errorf("voice note not sent as push-to-talk: %v", msg.Message.GetAudioMessage())
		}
	})

	t.Run("location", func(t *testing.T) {
		content := &event.MessageEventContent{MsgType: event.MsgLocation, Body: "Brussels", GeoURI: "geo:50.8467,4.3525"}
		if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
		msg := waitWA(t, c, "location", func(m *events.Message) bool { return m.Message.GetLocationMessage() != nil })
		if loc := msg.Message.GetLocationMessage(); loc.GetDegreesLatitude() != 50.8467 || loc.GetDegreesLongitude() != 4.3525 {
			t.Errorf("location = %v", loc)
		}
	})
}
