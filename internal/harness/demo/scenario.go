package demo

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/wasim"
)

// person is a WhatsApp account in the scripted story.
type person struct {
	number, pushName, fullName string
}

var (
	you   = person{"4915550100", "Demo User", ""}
	anna  = person{"4915550101", "Anna", "Anna Schmidt"}
	ben   = person{"4915550102", "Ben", "Ben Okafor"}
	clara = person{"4915550103", "Clara", "Clara Novak"}
)

// scenario is the scripted conversation; its fields carry what later steps refer back to.
type scenario struct {
	cfg *config.Config
	sim *wasim.Server
	mx  *mxUser

	me, anna, ben, clara *wasim.Phone

	dm, group           id.RoomID
	groupJID            types.JID
	annaFirst           *events.Message // Anna's first message, as her phone sent it
	annaFirstEvt        id.EventID
	mine                id.EventID      // your first Matrix message
	mineOnWA            *events.Message // the same message as Anna's phone got it
	annaReplyEvt        id.EventID
	annaReplyOnWhatsApp types.MessageID

	sentFiles func(SentFile) // Options.SentFiles
}

// step is one action on one side and the check that it arrived on the other.
type step struct {
	title string
	run   func(ctx context.Context) (verified string, err error)
}

func (s *scenario) steps() []step {
	all := []step{
		{"Your phone shares its address book (Anna Schmidt, Ben Okafor, Clara Novak) with the bridge", s.contacts},
		{"Anna writes to you on WhatsApp", s.annaWrites},
		{"Anna's Matrix user carries the name from your address book", s.ghostName},
		{"You answer Anna from Matrix", s.youAnswer},
		{"Anna replies on WhatsApp, quoting your message", s.annaReplies},
		{"You reply from Matrix, quoting Anna's first message", s.youReply},
		{"Anna edits her first message on WhatsApp", s.annaEdits},
		{"You edit your message in Matrix", s.youEdit},
		{"Anna reacts 👍 to your message on WhatsApp", s.annaReacts},
		{"You react 😂 to Anna's reply in Matrix", s.youReact},
		{"Anna sends a photo from WhatsApp", s.annaPhoto},
		{"You send a photo from Matrix", s.youPhoto},
		{"You send a file from Matrix", s.youFile},
		{"Anna deletes a message for everyone on WhatsApp", s.annaDeletes},
		{"You delete a message in Matrix", s.youDelete},
		{"You send a message in Matrix and delete it at once", s.youDeleteAtOnce},
		{"Ben creates the WhatsApp group \"Causeway pilot\" with you, Anna and Clara", s.groupCreated},
		{"Ben writes in the group on WhatsApp", s.benWrites},
		{"Clara mentions you in the group on WhatsApp", s.claraMentions},
		{"You answer the group from Matrix, mentioning Ben", s.youMentionBen},
		{"Records: you ask the bot to verify the tamper-evident archive", s.archiveVerify},
	}
	if s.mx.crypto != nil {
		all = append(all, step{"Your device decrypts every message in the management room and the two portals", s.allDecrypted})
	}
	return all
}

// run plays every step in order and stops at the first that cannot be verified: later
// steps build on earlier ones.
func (s *scenario) run(ctx context.Context, p *printer) error {
	all := s.steps()
	for i, st := range all {
		p.Linef("%2d/%d %s", i+1, len(all), st.title)
		verified, err := st.run(ctx)
		if err != nil {
			p.Linef("      FAILED: %v", err)
			return fmt.Errorf("step %d (%s): %w", i+1, st.title, err)
		}
		p.Linef("      ok: %s", verified)
	}
	return nil
}

func (s *scenario) ghost(p *wasim.Phone) id.UserID { return s.cfg.PuppetUserID(p.JID().User) }

func (s *scenario) contacts(ctx context.Context) (string, error) {
	var list []wasim.Contact
	for _, c := range []struct {
		p  *wasim.Phone
		pp person
	}{{s.anna, anna}, {s.ben, ben}, {s.clara, clara}} {
		list = append(list, wasim.Contact{JID: c.p.JID(), FullName: c.pp.fullName, FirstName: strings.Fields(c.pp.fullName)[0]})
	}
	if err := s.me.SetContacts(ctx, list...); err != nil {
		return "", err
	}
	return "3 contacts published through WhatsApp app state (checked in step 3)", nil
}

func (s *scenario) annaWrites(ctx context.Context) (string, error) {
	const text = "Hi! Is this the new Matrix bridge everyone is talking about?"
	sent, err := s.anna.SendText(ctx, s.me.JID(), text)
	if err != nil {
		return "", err
	}
	s.annaFirst = &events.Message{Info: types.MessageInfo{ID: sent.ID, MessageSource: types.MessageSource{Sender: s.anna.JID()}},
		Message: &waE2E.Message{Conversation: proto.String(text)}}
	if s.dm, err = s.mx.waitInvite(ctx, s.ghost(s.anna)); err != nil {
		return "", err
	}
	kind, err := s.portalKind(ctx, s.dm)
	if err != nil {
		return "", err
	}
	evt, err := s.mx.waitEvent(ctx, s.dm, s.ghost(s.anna), "Anna's message in Matrix", isText(text))
	if err != nil {
		return "", err
	}
	s.annaFirstEvt = evt.ID
	return fmt.Sprintf("Anna's Matrix user %s invited you to a new %sdirect chat %s, and her message is there%s",
		s.ghost(s.anna), kind, s.dm, s.decryptedNote()), nil
}

func (s *scenario) ghostName(ctx context.Context) (string, error) {
	want := s.cfg.PuppetDisplayname(config.ContactNames{FullName: anna.fullName})
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	var have string
	err := poll(ctx, "Anna's display name "+want, func() (bool, error) {
		resp, err := s.mx.cli.GetDisplayName(ctx, s.ghost(s.anna))
		if err == nil {
			have = resp.DisplayName
		}
		return have == want, nil
	})
	if err != nil {
		return "", fmt.Errorf("%w (it is %q)", err, have)
	}
	return fmt.Sprintf("%s is called %q", s.ghost(s.anna), have), nil
}

func (s *scenario) youAnswer(ctx context.Context) (string, error) {
	const text = "Yes! I am writing from Matrix, and you read me on WhatsApp."
	mine, err := s.mx.sendText(ctx, s.dm, text)
	if err != nil {
		return "", err
	}
	s.mine = mine
	msg, err := waitWA(ctx, s.anna, "your message", func(m *events.Message) bool { return textOf(m.Message) == text })
	if err != nil {
		return "", err
	}
	if msg.Info.Sender.User != s.me.JID().User {
		return "", fmt.Errorf("Anna got it from %s, not from your WhatsApp account", msg.Info.Sender)
	}
	s.mineOnWA = msg
	return fmt.Sprintf("Anna's phone got it from +%s (message %s)", msg.Info.Sender.User, msg.Info.ID), nil
}

func (s *scenario) annaReplies(ctx context.Context) (string, error) {
	sent, err := s.anna.SendReply(ctx, s.me.JID(), s.mineOnWA, "Wonderful, then I can leave WhatsApp soon.")
	if err != nil {
		return "", err
	}
	s.annaReplyOnWhatsApp = sent.ID
	evt, err := s.mx.waitEvent(ctx, s.dm, s.ghost(s.anna), "Anna's reply", func(e *event.Event) bool {
		return e.Type == event.EventMessage && strings.Contains(e.Content.AsMessage().Body, "leave WhatsApp soon")
	})
	if err != nil {
		return "", err
	}
	s.annaReplyEvt = evt.ID
	inReply, _ := relatesTo(evt)["m.in_reply_to"].(map[string]any)
	if inReply["event_id"] != string(s.mine) {
		return "", fmt.Errorf("the Matrix reply points at %v, not at your message %s", inReply["event_id"], s.mine)
	}
	return "Matrix shows it as a reply to your message " + string(s.mine), nil
}

func (s *scenario) youReply(ctx context.Context) (string, error) {
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: "It really is: replies keep their quotes."}
	content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(s.annaFirstEvt)
	if _, err := s.mx.send(ctx, s.dm, event.EventMessage, content); err != nil {
		return "", err
	}
	msg, err := waitWA(ctx, s.anna, "your reply", func(m *events.Message) bool { return textOf(m.Message) == content.Body })
	if err != nil {
		return "", err
	}
	if got := msg.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID(); got != s.annaFirst.Info.ID {
		return "", fmt.Errorf("WhatsApp quotes %q, not Anna's message %s", got, s.annaFirst.Info.ID)
	}
	return "Anna's phone shows it quoting her message " + s.annaFirst.Info.ID, nil
}

func (s *scenario) annaEdits(ctx context.Context) (string, error) {
	const edited = "Hi! Is this the new Matrix bridge? (edited: everyone IS talking about it)"
	if _, err := s.anna.SendEdit(ctx, s.me.JID(), s.annaFirst.Info.ID, edited); err != nil {
		return "", err
	}
	evt, err := s.mx.waitEvent(ctx, s.dm, s.ghost(s.anna), "Anna's edit", func(e *event.Event) bool {
		return relatesTo(e)["rel_type"] == "m.replace"
	})
	if err != nil {
		return "", err
	}
	newContent, _ := rawContent(evt)["m.new_content"].(map[string]any)
	if relatesTo(evt)["event_id"] != string(s.annaFirstEvt) || newContent["body"] != edited {
		return "", fmt.Errorf("the edit in Matrix is %v", rawContent(evt))
	}
	return "Matrix replaced the text of " + string(s.annaFirstEvt) + " (m.replace)", nil
}

func (s *scenario) youEdit(ctx context.Context) (string, error) {
	const fixed = "Yes! I am writing from Matrix, and you read me on WhatsApp. Edits work too."
	edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* " + fixed}
	edit.SetEdit(s.mine)
	edit.NewContent = &event.MessageEventContent{MsgType: event.MsgText, Body: fixed}
	if _, err := s.mx.send(ctx, s.dm, event.EventMessage, edit); err != nil {
		return "", err
	}
	msg, err := waitWA(ctx, s.anna, "your edit", func(m *events.Message) bool { return m.IsEdit })
	if err != nil {
		return "", err
	}
	pm := msg.RawMessage.GetEditedMessage().GetMessage().GetProtocolMessage()
	if pm.GetKey().GetID() != s.mineOnWA.Info.ID || textOf(pm.GetEditedMessage()) != fixed {
		return "", fmt.Errorf("Anna's phone got the edit %v", msg.RawMessage)
	}
	return "Anna's phone shows your message " + s.mineOnWA.Info.ID + " edited", nil
}

func (s *scenario) annaReacts(ctx context.Context) (string, error) {
	if _, err := s.anna.SendReaction(ctx, s.me.JID(), s.me.JID(), s.mineOnWA.Info.ID, "👍"); err != nil {
		return "", err
	}
	evt, err := s.mx.waitEvent(ctx, s.dm, s.ghost(s.anna), "Anna's reaction", func(e *event.Event) bool { return e.Type == event.EventReaction })
	if err != nil {
		return "", err
	}
	// Matrix clients write the emoji with its variation selector; the bridge adds it so that
	// Element groups WhatsApp's reactions with its own.
	if rel := relatesTo(evt); rel["key"] != "👍\ufe0f" || rel["event_id"] != string(s.mine) {
		return "", fmt.Errorf("the reaction in Matrix is %v", rel)
	}
	return "Matrix shows 👍 from Anna on your message", nil
}

func (s *scenario) youReact(ctx context.Context) (string, error) {
	content := map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": s.annaReplyEvt, "key": "😂"}}
	if _, err := s.mx.send(ctx, s.dm, event.EventReaction, content); err != nil {
		return "", err
	}
	msg, err := waitWA(ctx, s.anna, "your reaction", func(m *events.Message) bool { return m.Message.GetReactionMessage() != nil })
	if err != nil {
		return "", err
	}
	if r := msg.Message.GetReactionMessage(); r.GetText() != "😂" || r.GetKey().GetID() != s.annaReplyOnWhatsApp {
		return "", fmt.Errorf("Anna's phone got the reaction %v", r)
	}
	return "Anna's phone shows 😂 on her reply", nil
}

func (s *scenario) annaPhoto(ctx context.Context) (string, error) {
	img := demoPNG(color.RGBA{R: 0x25, G: 0xd3, B: 0x66, A: 0xff})
	if _, err := s.anna.SendImage(ctx, s.me.JID(), img, "image/png", "The view from the office"); err != nil {
		return "", err
	}
	evt, err := s.mx.waitEvent(ctx, s.dm, s.ghost(s.anna), "Anna's photo", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgImage
	})
	if err != nil {
		return "", err
	}
	data, from, err := s.mx.download(ctx, s.dm, evt.Content.AsMessage())
	if err != nil {
		return "", err
	}
	if !bytes.Equal(data, img) {
		return "", fmt.Errorf("Matrix serves %d bytes, Anna sent %d different ones", len(data), len(img))
	}
	return fmt.Sprintf("the %d-byte PNG arrives intact, %s", len(img), from), nil
}

func (s *scenario) youPhoto(ctx context.Context) (string, error) {
	img := demoPNG(color.RGBA{R: 0x0d, G: 0xbd, B: 0x8b, A: 0xff})
	content := &event.MessageEventContent{MsgType: event.MsgImage, Body: "matrix.png",
		Info: &event.FileInfo{MimeType: "image/png", Size: len(img), Width: demoImageSize, Height: demoImageSize}}
	if err := s.mx.attach(ctx, s.dm, img, "image/png", content); err != nil {
		return "", err
	}
	if _, err := s.mx.send(ctx, s.dm, event.EventMessage, content); err != nil {
		return "", err
	}
	s.sent(SentFile{Name: content.Body, MimeType: "image/png", MsgType: event.MsgImage, Data: img})
	msg, err := waitWA(ctx, s.anna, "your photo", func(m *events.Message) bool { return m.Message.GetImageMessage() != nil })
	if err != nil {
		return "", err
	}
	data, err := s.anna.Client.Download(ctx, msg.Message.GetImageMessage())
	if err != nil {
		return "", fmt.Errorf("Anna's phone cannot download it: %w", err)
	}
	if !bytes.Equal(data, img) {
		return "", fmt.Errorf("Anna's phone downloaded %d bytes, you sent %d different ones", len(data), len(img))
	}
	return fmt.Sprintf("Anna's phone downloaded and decrypted the same %d bytes", len(img)), nil
}

func (s *scenario) annaDeletes(ctx context.Context) (string, error) {
	const text = "Oops, that was meant for another chat"
	sent, err := s.anna.SendText(ctx, s.me.JID(), text)
	if err != nil {
		return "", err
	}
	evt, err := s.mx.waitEvent(ctx, s.dm, s.ghost(s.anna), "the message to delete", isText(text))
	if err != nil {
		return "", err
	}
	if _, err := s.anna.SendRevoke(ctx, s.me.JID(), s.anna.JID(), sent.ID); err != nil {
		return "", err
	}
	if err := s.mx.waitRedacted(ctx, s.dm, evt.ID); err != nil {
		return "", err
	}
	return "Matrix redacted " + string(evt.ID) + " (the archive keeps the original)", nil
}

func (s *scenario) youDelete(ctx context.Context) (string, error) {
	const text = "This one I will take back."
	mine, err := s.mx.sendText(ctx, s.dm, text)
	if err != nil {
		return "", err
	}
	sent, err := waitWA(ctx, s.anna, "the message to delete", func(m *events.Message) bool { return textOf(m.Message) == text })
	if err != nil {
		return "", err
	}
	if _, err := s.mx.cli.RedactEvent(ctx, s.dm, mine); err != nil {
		return "", err
	}
	if _, err := waitWA(ctx, s.anna, "the deletion", isRevokeOf(sent.Info.ID)); err != nil {
		return "", err
	}
	return "Anna's phone got \"delete for everyone\" for " + sent.Info.ID, nil
}

func (s *scenario) groupCreated(ctx context.Context) (string, error) {
	info, err := s.ben.CreateGroup(ctx, "Causeway pilot", s.me.JID(), s.anna.JID(), s.clara.JID())
	if err != nil {
		return "", err
	}
	s.groupJID = info.JID
	if s.group, err = s.mx.waitInvite(ctx, s.mx.bot); err != nil {
		return "", err
	}
	kind, err := s.portalKind(ctx, s.group)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	var name event.RoomNameEventContent
	err = poll(ctx, "the group's members in the room", func() (bool, error) {
		if err := s.mx.cli.StateEvent(ctx, s.group, event.StateRoomName, "", &name); err != nil || name.Name != "Causeway pilot" {
			return false, nil
		}
		for _, p := range []*wasim.Phone{s.ben, s.anna, s.clara} {
			var m event.MemberEventContent
			if err := s.mx.cli.StateEvent(ctx, s.group, event.StateMember, string(s.ghost(p)), &m); err != nil || m.Membership != event.MembershipJoin {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	// whatsmeow reads its group member cache unlocked while a membership notification edits it
	// (wasim/README.md); letting the network settle keeps the phones clear of that race.
	if err := s.sim.WaitIdle(ctx, 150*time.Millisecond); err != nil {
		return "", err
	}
	return fmt.Sprintf("%sroom %s is named %q and Ben, Anna and Clara are in it", kind, s.group, name.Name), nil
}

func (s *scenario) benWrites(ctx context.Context) (string, error) {
	const text = "Welcome to the pilot group! Matrix people read us too now."
	if _, err := s.ben.SendText(ctx, s.groupJID, text); err != nil {
		return "", err
	}
	if _, err := s.mx.waitEvent(ctx, s.group, s.ghost(s.ben), "Ben's group message", isText(text)); err != nil {
		return "", err
	}
	return "the group room shows it from " + string(s.ghost(s.ben)) + s.decryptedNote(), nil
}

func (s *scenario) claraMentions(ctx context.Context) (string, error) {
	if _, err := s.clara.SendMention(ctx, s.groupJID, "@"+you.number+" could you share the agenda?", s.me.JID()); err != nil {
		return "", err
	}
	evt, err := s.mx.waitEvent(ctx, s.group, s.ghost(s.clara), "Clara's mention", func(e *event.Event) bool {
		return e.Type == event.EventMessage && strings.Contains(e.Content.AsMessage().Body, "share the agenda")
	})
	if err != nil {
		return "", err
	}
	mentions, _ := rawContent(evt)["m.mentions"].(map[string]any)
	users, _ := mentions["user_ids"].([]any)
	if !slices.Contains(users, any(string(s.mx.cli.UserID))) {
		return "", fmt.Errorf("the Matrix message mentions %v, not you", mentions)
	}
	return fmt.Sprintf("Matrix pings you: %q", evt.Content.AsMessage().Body), nil
}

func (s *scenario) youMentionBen(ctx context.Context) (string, error) {
	benGhost := s.ghost(s.ben)
	name := s.cfg.PuppetDisplayname(config.ContactNames{FullName: ben.fullName})
	content := &event.MessageEventContent{
		MsgType: event.MsgText, Body: name + ": here is the agenda, see you at ten.",
		Format:        event.FormatHTML,
		FormattedBody: fmt.Sprintf(`<a href="https://matrix.to/#/%s">%s</a>: here is the agenda, see you at ten.`, benGhost, name),
		Mentions:      &event.Mentions{UserIDs: []id.UserID{benGhost}},
	}
	if _, err := s.mx.send(ctx, s.group, event.EventMessage, content); err != nil {
		return "", err
	}
	isAgenda := func(m *events.Message) bool { return strings.Contains(textOf(m.Message), "here is the agenda") }
	msg, err := waitWA(ctx, s.ben, "your group message", isAgenda)
	if err != nil {
		return "", err
	}
	if msg.Info.Chat != s.groupJID {
		return "", fmt.Errorf("Ben got it in %s, not in the group", msg.Info.Chat)
	}
	if mentioned := msg.Message.GetExtendedTextMessage().GetContextInfo().GetMentionedJID(); !slices.Contains(mentioned, s.ben.JID().String()) {
		return "", fmt.Errorf("WhatsApp mentions %v, not Ben", mentioned)
	}
	if _, err := waitWA(ctx, s.clara, "your group message", isAgenda); err != nil {
		return "", err
	}
	return fmt.Sprintf("Ben and Clara got %q, Ben's phone as a mention of him", textOf(msg.Message)), nil
}

func (s *scenario) archiveVerify(ctx context.Context) (string, error) {
	if _, err := s.mx.command(ctx, "archive verify", "The archive verified"); err != nil {
		return "", err
	}
	status, err := s.mx.command(ctx, "archive status", "Records archive")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(status, "\n") {
		if strings.Contains(strings.ToLower(line), "entries") {
			return "the bot says nothing was removed, altered or reordered; " + strings.TrimSpace(line), nil
		}
	}
	return "the bot says nothing was removed, altered or reordered", nil
}

// textOf is a WhatsApp message's text, whichever of the two text shapes it came in.
func textOf(m *waE2E.Message) string {
	if t := m.GetConversation(); t != "" {
		return t
	}
	return m.GetExtendedTextMessage().GetText()
}

const demoImageSize = 96

// demoPNG draws a small real image, so a Matrix client shows something.
func demoPNG(c color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, demoImageSize, demoImageSize))
	for y := 0; y < demoImageSize; y++ {
		for x := 0; x < demoImageSize; x++ {
			shade := uint8((x + y) * 255 / (2 * demoImageSize))
			img.Set(x, y, color.RGBA{R: c.R/2 + shade/2, G: c.G, B: c.B/2 + shade/2, A: 0xff})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}
