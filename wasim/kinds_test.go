package wasim_test

import (
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
)

// TestMessageKinds sends every message kind the phone helper offers and checks what a companion (the
// bridge's seat) decodes.
func TestMessageKinds(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, bob, "bob-bridge")
	to := bob.Account.JID
	byID := func(id string) func(*events.Message) bool {
		return func(m *events.Message) bool { return m.Info.ID == id }
	}

	orig, err := alice.SendText(ctx, to, "original")
	if err != nil {
		t.Fatal(err)
	}
	original := waitMessage(t, ctx, bridge.events, "original", byID(orig.ID))

	cases := []struct {
		name  string
		send  func() (string, error)
		check func(m *events.Message) bool
	}{
		{"reply", func() (string, error) {
			r, err := alice.SendReply(ctx, to, original, "a reply")
			return r.ID, err
		}, func(m *events.Message) bool {
			return m.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID() == orig.ID
		}},
		{"mention", func() (string, error) {
			r, err := alice.SendMention(ctx, to, "hey @4915550002", bob.Account.JID)
			return r.ID, err
		}, func(m *events.Message) bool {
			jids := m.Message.GetExtendedTextMessage().GetContextInfo().GetMentionedJID()
			return len(jids) == 1 && jids[0] == bob.Account.JID.String()
		}},
		{"location", func() (string, error) {
			r, err := alice.SendLocation(ctx, to, 52.52, 13.405, "Berlin")
			return r.ID, err
		}, func(m *events.Message) bool { return m.Message.GetLocationMessage().GetName() == "Berlin" }},
		{"contact", func() (string, error) {
			r, err := alice.SendContact(ctx, to, "Carol", "BEGIN:VCARD\nVERSION:3.0\nFN:Carol\nEND:VCARD")
			return r.ID, err
		}, func(m *events.Message) bool { return m.Message.GetContactMessage().GetDisplayName() == "Carol" }},
		{"poll", func() (string, error) {
			r, err := alice.SendPoll(ctx, to, "Lunch?", []string{"Yes", "No"}, 1)
			return r.ID, err
		}, func(m *events.Message) bool {
			poll := m.Message.GetPollCreationMessageV3()
			if poll == nil {
				poll = m.Message.GetPollCreationMessage()
			}
			return poll.GetName() == "Lunch?" && len(poll.GetOptions()) == 2
		}},
		{"edit", func() (string, error) {
			r, err := alice.SendEdit(ctx, to, orig.ID, "edited")
			return r.ID, err
		}, func(m *events.Message) bool {
			p := m.Message.GetProtocolMessage()
			return p.GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT && p.GetKey().GetID() == orig.ID &&
				textOf(p.GetEditedMessage()) == "edited"
		}},
		{"reaction", func() (string, error) {
			r, err := alice.SendReaction(ctx, to, alice.Account.JID, orig.ID, "👍")
			return r.ID, err
		}, func(m *events.Message) bool {
			return m.Message.GetReactionMessage().GetText() == "👍" && m.Message.GetReactionMessage().GetKey().GetID() == orig.ID
		}},
		{"revoke", func() (string, error) {
			r, err := alice.SendRevoke(ctx, to, alice.Account.JID, orig.ID)
			return r.ID, err
		}, func(m *events.Message) bool {
			p := m.Message.GetProtocolMessage()
			return p.GetType() == waE2E.ProtocolMessage_REVOKE && p.GetKey().GetID() == orig.ID
		}},
	}
	for _, tc := range cases {
		id, err := tc.send()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := waitMessage(t, ctx, bridge.events, tc.name, byID(id))
		if !tc.check(got) {
			t.Fatalf("%s arrived as %v", tc.name, got.Message)
		}
	}

	// Poll votes are encrypted with the poll's message secret; the poll's creator decrypts them.
	pollResp, err := bob.SendPoll(ctx, alice.Account.JID, "Meeting at 10?", []string{"Yes", "No"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	poll := waitMessage(t, ctx, alice.Events, "poll", byID(pollResp.ID))
	vote, err := alice.VotePoll(ctx, poll, "Yes")
	if err != nil {
		t.Fatal(err)
	}
	voteMsg := waitMessage(t, ctx, bob.Events, "vote", byID(vote.ID))
	decrypted, err := bob.Client.DecryptPollVote(ctx, voteMsg)
	if err != nil || len(decrypted.GetSelectedOptions()) != 1 {
		t.Fatalf("poll vote: %v, %v", decrypted, err)
	}
}
