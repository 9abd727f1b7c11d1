package wasim

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Send sends any message from the phone.
func (p *Phone) Send(ctx context.Context, to types.JID, msg *waE2E.Message) (whatsmeow.SendResponse, error) {
	resp, err := p.Client.SendMessage(ctx, to, msg)
	if err != nil {
		return resp, fmt.Errorf("phone %s: send to %s: %w", p.Account.Phone, to, err)
	}
	return resp, nil
}

// SendText sends a plain text message.
func (p *Phone) SendText(ctx context.Context, to types.JID, text string) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, to, &waE2E.Message{Conversation: proto.String(text)})
}

// quoteOf builds the context info of a reply to a received (or sent) message.
func quoteOf(quoted *events.Message) *waE2E.ContextInfo {
	return &waE2E.ContextInfo{
		StanzaID:      proto.String(quoted.Info.ID),
		Participant:   proto.String(quoted.Info.Sender.ToNonAD().String()),
		QuotedMessage: quoted.Message,
	}
}

// SendReply sends text quoting an earlier message.
func (p *Phone) SendReply(ctx context.Context, to types.JID, quoted *events.Message, text string) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, to, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text: proto.String(text), ContextInfo: quoteOf(quoted),
	}})
}

// SendMention sends text mentioning users; the text should contain "@<number>" for each of them.
func (p *Phone) SendMention(ctx context.Context, to types.JID, text string, mentioned ...types.JID) (whatsmeow.SendResponse, error) {
	jids := make([]string, len(mentioned))
	for i, m := range mentioned {
		jids[i] = m.ToNonAD().String()
	}
	return p.Send(ctx, to, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text: proto.String(text), ContextInfo: &waE2E.ContextInfo{MentionedJID: jids},
	}})
}

// SendEdit replaces the text of one of the phone's own earlier messages.
func (p *Phone) SendEdit(ctx context.Context, chat types.JID, id types.MessageID, newText string) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, chat, p.Client.BuildEdit(chat, id, &waE2E.Message{Conversation: proto.String(newText)}))
}

// SendRevoke deletes a message for everyone (sender is the message's author; the phone's own JID for
// its own messages, another member's for an admin revoke in a group).
func (p *Phone) SendRevoke(ctx context.Context, chat, sender types.JID, id types.MessageID) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, chat, p.Client.BuildRevoke(chat, sender, id))
}

// SendReaction reacts to a message; an empty emoji removes the reaction.
func (p *Phone) SendReaction(ctx context.Context, chat, sender types.JID, id types.MessageID, emoji string) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, chat, p.Client.BuildReaction(chat, sender, id, emoji))
}

// SendImage uploads (encrypting in the client) and sends an image.
func (p *Phone) SendImage(ctx context.Context, to types.JID, data []byte, mimeType, caption string) (whatsmeow.SendResponse, error) {
	up, err := p.Client.Upload(ctx, data, whatsmeow.MediaImage)
	if err != nil {
		return whatsmeow.SendResponse{}, fmt.Errorf("upload image: %w", err)
	}
	return p.Send(ctx, to, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String(mimeType), Caption: proto.String(caption),
	}})
}

// SendDocument uploads and sends a file.
func (p *Phone) SendDocument(ctx context.Context, to types.JID, data []byte, mimeType, fileName string) (whatsmeow.SendResponse, error) {
	up, err := p.Client.Upload(ctx, data, whatsmeow.MediaDocument)
	if err != nil {
		return whatsmeow.SendResponse{}, fmt.Errorf("upload document: %w", err)
	}
	return p.Send(ctx, to, &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String(mimeType), FileName: proto.String(fileName), Title: proto.String(fileName),
	}})
}

// SendLocation shares a static location.
func (p *Phone) SendLocation(ctx context.Context, to types.JID, lat, lng float64, name string) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, to, &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
		DegreesLatitude: proto.Float64(lat), DegreesLongitude: proto.Float64(lng), Name: proto.String(name),
	}})
}

// SendContact shares a contact card.
func (p *Phone) SendContact(ctx context.Context, to types.JID, displayName, vcard string) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, to, &waE2E.Message{ContactMessage: &waE2E.ContactMessage{
		DisplayName: proto.String(displayName), Vcard: proto.String(vcard),
	}})
}

// SendPoll creates a poll.
func (p *Phone) SendPoll(ctx context.Context, to types.JID, question string, options []string, selectable int) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, to, p.Client.BuildPollCreation(question, options, selectable))
}

// VotePoll votes in a poll the phone received (or sent).
func (p *Phone) VotePoll(ctx context.Context, poll *events.Message, options ...string) (whatsmeow.SendResponse, error) {
	vote, err := p.Client.BuildPollVote(ctx, &poll.Info, options)
	if err != nil {
		return whatsmeow.SendResponse{}, fmt.Errorf("build poll vote: %w", err)
	}
	return p.Send(ctx, poll.Info.Chat, vote)
}

// MarkRead sends a read receipt for received messages.
func (p *Phone) MarkRead(ctx context.Context, msgs ...*events.Message) error {
	for _, m := range msgs {
		if err := p.Client.MarkRead(ctx, []types.MessageID{m.Info.ID}, time.Now(), m.Info.Chat, m.Info.Sender); err != nil {
			return fmt.Errorf("mark %s read: %w", m.Info.ID, err)
		}
	}
	return nil
}

// SetTyping shows or clears the typing indicator in a chat.
func (p *Phone) SetTyping(ctx context.Context, chat types.JID, typing bool) error {
	state := types.ChatPresencePaused
	if typing {
		state = types.ChatPresenceComposing
	}
	return p.Client.SendChatPresence(ctx, chat, state, "")
}

// SetOnline marks the phone available or unavailable, which subscribers see as presence.
func (p *Phone) SetOnline(ctx context.Context, online bool) error {
	state := types.PresenceUnavailable
	if online {
		state = types.PresenceAvailable
	}
	return p.Client.SendPresence(ctx, state)
}

// CreateGroup creates a group with the phone's account as superadmin.
func (p *Phone) CreateGroup(ctx context.Context, name string, members ...types.JID) (*types.GroupInfo, error) {
	info, err := p.Client.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: name, Participants: members})
	if err != nil {
		return nil, fmt.Errorf("create group %q: %w", name, err)
	}
	return info, nil
}

// SetProfilePicture sets (nil removes) the account's profile picture and notifies everyone, as the phone
// app does; this whatsmeow version has no client call for it.
func (p *Phone) SetProfilePicture(jpeg []byte) (string, error) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	a := p.sim.st.Accounts[p.Account.Phone]
	if a == nil {
		return "", fmt.Errorf("wasim: no account %s", p.Account.Phone)
	}
	return p.sim.setPictureLocked(a.pnJID(), a, jpeg)
}
