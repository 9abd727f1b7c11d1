//go:build goolm

package bridge_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/wasim"
)

// TestEncryptedGroup: a WhatsApp group with three other phones bridged into an encrypted
// portal owned by a crypto-capable Matrix user. From WhatsApp: text, reply, edit, reaction
// and revoke arrive, every message event Megolm-encrypted and decryptable by the user's
// client (the revoke as a redaction, which Matrix never encrypts). From Matrix: encrypted
// text, reply, reaction and edit and a redaction reach every phone, each exactly once.
func TestEncryptedGroup(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "alice_e2ee_group")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_group", "4915557301", "Alice E2EE Group")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557302", "Bob E2EE Group")
	carol := newPhone(t, "4915557303", "Carol E2EE Group")
	dave := newPhone(t, "4915557304", "Dave E2EE Group")
	bobGhost, carolGhost, daveGhost := cfg.PuppetUserID("4915557302"), cfg.PuppetUserID("4915557303"), cfg.PuppetUserID("4915557304")
	bot := cfg.BotUserID()
	phones := []*wasim.Phone{bob, carol, dave}
	ctx := context.Background()

	group, err := bob.CreateGroup(ctx, "Encrypted crisis team", alice.phone.JID(), carol.JID(), dave.JID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendText(ctx, group.JID, "hello encrypted group"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bot)
	hello := ac.waitDecrypted(t, room, bobGhost, bodyIs("hello encrypted group"))

	// WhatsApp -> Matrix.
	helloOnCarol := waitWAText(t, carol, "hello encrypted group")
	if _, err := carol.SendReply(ctx, group.JID, helloOnCarol, "carol answers"); err != nil {
		t.Fatal(err)
	}
	reply := ac.waitDecrypted(t, room, carolGhost, bodyIs("carol answers"))
	if rel := reply.Content.AsMessage().RelatesTo; rel == nil || rel.GetReplyTo() != hello.ID {
		t.Errorf("carol's reply does not answer %s: %+v", hello.ID, rel)
	}
	if _, err := bob.SendEdit(ctx, group.JID, helloOnCarol.Info.ID, "hello encrypted group, edited"); err != nil {
		t.Fatal(err)
	}
	ac.waitDecrypted(t, room, bobGhost, func(e *event.Event) bool {
		c := e.Content.AsMessage()
		return c.NewContent != nil && c.NewContent.Body == "hello encrypted group, edited" &&
			c.RelatesTo != nil && c.RelatesTo.GetReplaceID() == hello.ID
	})
	replyOnDave := waitWAText(t, dave, "carol answers")
	if _, err := dave.SendReaction(ctx, group.JID, carol.JID(), replyOnDave.Info.ID, "🔥"); err != nil {
		t.Fatal(err)
	}
	ac.waitDecrypted(t, room, daveGhost, func(e *event.Event) bool {
		r := e.Content.AsReaction()
		return e.Type == event.EventReaction && r.RelatesTo.Key == "🔥" && r.RelatesTo.EventID == reply.ID
	})
	if _, err := bob.SendText(ctx, group.JID, "bob will take this back"); err != nil {
		t.Fatal(err)
	}
	doomed := ac.waitDecrypted(t, room, bobGhost, bodyIs("bob will take this back"))
	doomedOnCarol := waitWAText(t, carol, "bob will take this back")
	if _, err := bob.SendRevoke(ctx, group.JID, bob.JID(), doomedOnCarol.Info.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the revoked message redacted", func() bool {
		for _, d := range ac.events(t, room) {
			if d.evt.Type == event.EventRedaction && d.evt.Sender == bobGhost && d.evt.Redacts == doomed.ID {
				return true
			}
		}
		return false
	})

	// Matrix -> WhatsApp: every phone gets each of Alice's events.
	ac.sendText(t, room, "alice to the encrypted group")
	for _, p := range phones {
		waitWAText(t, p, "alice to the encrypted group")
	}
	answer := &event.MessageEventContent{MsgType: event.MsgText, Body: "alice replies to carol"}
	answer.RelatesTo = (&event.RelatesTo{}).SetReplyTo(reply.ID)
	ac.sendEncrypted(t, room, event.EventMessage, answer)
	for _, p := range phones {
		got := waitWAText(t, p, "alice replies to carol")
		if ci := got.Message.GetExtendedTextMessage().GetContextInfo(); ci.GetStanzaID() != replyOnDave.Info.ID ||
			!strings.HasPrefix(ci.GetParticipant(), carol.JID().User+"@") {
			t.Errorf("%s got Alice's reply quoting %q by %q, want carol's %s", p.JID(), ci.GetStanzaID(), ci.GetParticipant(), replyOnDave.Info.ID)
		}
	}
	ac.sendEncrypted(t, room, event.EventReaction, &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: reply.ID, Key: "👍"}})
	for _, p := range phones {
		waitWA(t, p, "alice's reaction", func(m *events.Message) bool {
			r := m.Message.GetReactionMessage()
			return r.GetText() == "👍" && r.GetKey().GetID() == replyOnDave.Info.ID
		})
	}
	mine := ac.sendText(t, room, "alice typo in group")
	for _, p := range phones {
		waitWAText(t, p, "alice typo in group")
	}
	edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* alice fixed in group",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "alice fixed in group"}}
	edit.RelatesTo = (&event.RelatesTo{}).SetReplace(mine)
	ac.sendEncrypted(t, room, event.EventMessage, edit)
	for _, p := range phones {
		waitWA(t, p, "alice's edit", func(m *events.Message) bool {
			return m.IsEdit && strings.Contains(m.RawMessage.String(), "alice fixed in group")
		})
	}
	if _, err := alice.mx.RedactEvent(ctx, room, mine); err != nil {
		t.Fatal(err)
	}
	for _, p := range phones {
		waitWA(t, p, "alice's revoke", func(m *events.Message) bool {
			pm := m.Message.GetProtocolMessage()
			return pm != nil && pm.GetType() == waE2E.ProtocolMessage_REVOKE && m.Info.Sender.User == alice.phone.JID().User
		})
	}
	// The last one: the portal relays Alice's events in order, so a duplicate of any
	// earlier one would have reached the phones before it.
	ac.sendText(t, room, "alice's last in group")
	for _, p := range phones {
		waitWAText(t, p, "alice's last in group")
	}
	want := []string{"edit:alice fixed in group", "reaction:👍", "revoke", "text:alice replies to carol",
		"text:alice to the encrypted group", "text:alice typo in group", "text:alice's last in group"}
	for _, p := range phones {
		if got := waKinds(p, group.JID, alice.phone.JID()); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s got from Alice %q\nwant once each %q", p.JID(), got, want)
		}
	}

	// Everything the bridge sent into the room, but the redaction, is encrypted and
	// decrypts (the revoked message aside: redacting took its ciphertext).
	for _, d := range ac.events(t, room) {
		if d.evt.Sender != bobGhost && d.evt.Sender != carolGhost && d.evt.Sender != daveGhost && d.evt.Sender != bot {
			continue
		}
		switch {
		case d.evt.StateKey != nil || d.evt.Type == event.EventRedaction || d.evt.ID == doomed.ID:
		case !d.encrypted:
			t.Errorf("plaintext %s from %s in the encrypted group portal", d.evt.Type.Type, d.evt.Sender)
		case d.err != nil:
			t.Errorf("the user's client cannot decrypt %s from %s: %v", d.evt.ID, d.evt.Sender, d.err)
		}
	}
}

// waKinds lists what sender sent in chat as a phone saw it, one entry per WhatsApp message
// ID (a redelivery of one ID is no duplicate; a second ID with the same content is), sorted.
func waKinds(phone *wasim.Phone, chat, sender types.JID) []string {
	seen := map[types.MessageID]bool{}
	var out []string
	for _, e := range phone.Events.All() {
		m, ok := e.(*events.Message)
		if !ok || m.Info.Chat != chat || m.Info.Sender.User != sender.User || seen[m.Info.ID] {
			continue
		}
		var kind string
		pm := m.Message.GetProtocolMessage()
		switch {
		case m.Message.GetReactionMessage() != nil:
			kind = "reaction:" + m.Message.GetReactionMessage().GetText()
		case pm != nil && pm.GetType() == waE2E.ProtocolMessage_REVOKE:
			kind = "revoke"
		case pm != nil && pm.GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT:
			kind = "edit:" + waText(pm.GetEditedMessage())
		case waText(m.Message) != "":
			kind = "text:" + waText(m.Message)
		default:
			// The sender-key part of a group message comes as an event of its own, with
			// the message's ID and no content.
			continue
		}
		seen[m.Info.ID] = true
		out = append(out, kind)
	}
	sort.Strings(out)
	return out
}

func waText(m *waE2E.Message) string {
	if text := m.GetConversation(); text != "" {
		return text
	}
	return m.GetExtendedTextMessage().GetText()
}

// TestEncryptedRotationOnLeave: a second Matrix user, invited into an encrypted group portal
// by its owner, gets the bridge's room key while there; once they leave, the next WhatsApp
// message goes out in a new Megolm session that the owner decrypts and the leaver cannot:
// their device keeps the old session's key, never gets the new one, and the bridge refuses
// it when they ask.
func TestEncryptedRotationOnLeave(t *testing.T) {
	cfg := encryptedConfig(t, "sqlite", "alice_e2ee_rot")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_e2ee_rot", "4915557311", "Alice Rotation")
	ac := newCryptoClient(t, alice.mx)
	bob := newPhone(t, "4915557312", "Bob Rotation")
	carol := newPhone(t, "4915557313", "Carol Rotation")
	bobGhost, bot := cfg.PuppetUserID("4915557312"), cfg.BotUserID()
	frank := newCryptoClient(t, registerUser(t, "frank_e2ee_rot"))
	ctx := context.Background()

	group, err := bob.CreateGroup(ctx, "Rotating team", alice.phone.JID(), carol.JID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendText(ctx, group.JID, "before frank"); err != nil {
		t.Fatal(err)
	}
	room := ac.waitInvite(t, bot)
	ac.waitDecrypted(t, room, bobGhost, bodyIs("before frank"))

	inviteIntoPortal(t, ac, room, frank, bob, "frank is in")
	if _, err := bob.SendText(ctx, group.JID, "while frank is here"); err != nil {
		t.Fatal(err)
	}
	shared := frank.waitDecrypted(t, room, bobGhost, bodyIs("while frank is here"))
	_, old := ciphertext(t, alice.mx, room, shared.ID)

	if _, err := frank.cli.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	ac.sendText(t, room, "frank has left")
	waitWAText(t, bob, "frank has left")
	if _, err := bob.SendText(ctx, group.JID, "after frank left"); err != nil {
		t.Fatal(err)
	}
	after := ac.waitDecrypted(t, room, bobGhost, bodyIs("after frank left"))
	raw, rotated := ciphertext(t, alice.mx, room, after.ID)
	if rotated.SessionID == old.SessionID {
		t.Fatalf("the message after Frank left uses the session %s he has", old.SessionID)
	}
	if rotated.SenderKey != old.SenderKey {
		t.Errorf("the new session comes from device key %s, the old from %s: not the bot's one device", rotated.SenderKey, old.SenderKey)
	}

	if !frank.hasSession(t, room, old.SessionID) {
		t.Errorf("frank lost the key of the session he was given")
	}
	// Asking is refused; and since to-device events reach a device in order, a key shared
	// with him would have come before this answer.
	frank.requestKey(t, room, rotated, bot)
	refusal := frank.waitKeyAnswer(t, room, rotated.SessionID)
	if refusal == nil {
		t.Fatalf("the bridge gave frank, who left, the key of the session made after he left")
	}
	if refusal.Code != event.RoomKeyWithheldUnauthorized {
		t.Errorf("frank's request was refused with %s (%s), want %s", refusal.Code, refusal.Reason, event.RoomKeyWithheldUnauthorized)
	}
	if frank.hasSession(t, room, rotated.SessionID) {
		t.Errorf("frank holds the key of the session made after he left")
	}
	if plain, err := frank.mach.DecryptMegolmEvent(ctx, raw); err == nil {
		t.Errorf("frank decrypted %q, sent after he left", plain.Content.AsMessage().Body)
	}
}

// inviteIntoPortal has the portal's owner (owner's device) invite guest into room and guest
// join, then returns once the bridge has seen the join: the owner's message marker, sent
// after it in the homeserver's stream, has reached phone on WhatsApp.
func inviteIntoPortal(t *testing.T, owner *cryptoClient, room id.RoomID, guest *cryptoClient, phone *wasim.Phone, marker string) {
	t.Helper()
	if _, err := owner.cli.InviteUser(context.Background(), room, &mautrix.ReqInviteUser{UserID: guest.cli.UserID}); err != nil {
		t.Fatal(err)
	}
	if got := guest.waitInvite(t, owner.cli.UserID); got != room {
		t.Fatalf("%s joined %s, not the portal %s", guest.cli.UserID, got, room)
	}
	owner.sendText(t, room, marker)
	waitWAText(t, phone, marker)
}
