package bridge

import (
	"context"
	"errors"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/portal"
	"codeberg.org/causeway/causeway/puppet"
)

// WhatsApp's newer edits travel as a SecretEncryptedMessage: the new version encrypted with
// a key derived from the original message's secret. The pinned whatsmeow decrypts the kind
// it knows (DecryptSecretEncryptedMessage: edits of event messages); the result is then an
// ordinary edit. What it cannot decrypt (edits of plain messages, MESSAGE_EDIT, and any edit
// whose original's secret the bridge never saw) is archived as it came, ciphertext and all,
// with an "undecryptable edit" in the ledger, and the room is told.

// errNoClient: the login is not connected, so nothing can be decrypted yet.
var errNoClient = errors.New("the WhatsApp login is not connected")

// unsealEdit returns the message to queue in place of a secret-encrypted one, or nil when it
// could not be decrypted; the error says why.
func (u *User) unsealEdit(ctx context.Context, evt *events.Message) (*events.Message, error) {
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil {
		return nil, errNoClient
	}
	sealed := evt.Message.GetSecretEncryptedMessage()
	inner, err := cli.DecryptSecretEncryptedMessage(ctx, evt)
	if err != nil {
		return nil, err
	}
	edit := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
		Key:           sealed.GetTargetMessageKey(),
		EditedMessage: inner,
		TimestampMS:   proto.Int64(evt.Info.Timestamp.UnixMilli()),
	}}
	out := *evt
	out.Message, out.RawMessage = edit, edit
	return &out, nil
}

// queueSecretEncrypted queues a decrypted secret-encrypted edit like any edit, or records
// the one it cannot decrypt.
func (u *User) queueSecretEncrypted(ctx context.Context, evt *events.Message) bool {
	unsealed, err := u.unsealEdit(ctx, evt)
	if err == nil {
		u.log.Debug().Str("message_id", evt.Info.ID).Msg("Decrypted a secret-encrypted edit")
		return u.queueMessage(ctx, unsealed)
	}
	sealed := evt.Message.GetSecretEncryptedMessage()
	u.log.Warn().Err(err).Str("message_id", evt.Info.ID).Str("secret_enc_type", sealed.GetSecretEncType().String()).
		Msg("Could not decrypt a secret-encrypted edit; archiving it encrypted")
	if errors.Is(err, errNoClient) {
		return false // WhatsApp delivers it again once the login is back
	}
	raw, merr := proto.Marshal(evt.RawMessage)
	if evt.RawMessage == nil {
		raw, merr = proto.Marshal(evt.Message)
	}
	if merr != nil {
		return false
	}
	chat := evt.Info.Chat
	if !evt.Info.IsGroup {
		alt := evt.Info.SenderAlt
		if evt.Info.IsFromMe {
			alt = evt.Info.RecipientAlt
		}
		chat = puppet.PreferPhone(chat, alt)
	}
	sender := puppet.PreferPhone(evt.Info.Sender, evt.Info.SenderAlt).String()
	target := sealed.GetTargetMessageKey().GetID()
	why := "undecryptable edit (" + sealed.GetSecretEncType().String() + "): " + err.Error()
	if !u.record(ctx, &archive.Entry{
		Kind: archive.KindEdit, Chat: chatKey(chat), Sender: sender, SenderName: evt.Info.PushName,
		MessageID: evt.Info.ID, Time: evt.Info.Timestamp, Target: &archive.Target{MessageID: target},
		Message: &archive.Message{Proto: raw, Type: "secret_encrypted"},
	}) || !u.record(ctx, &archive.Entry{
		Kind: archive.KindUndecryptable, Chat: chatKey(chat), Sender: sender, MessageID: evt.Info.ID, Time: evt.Info.Timestamp,
		Completeness: &archive.Completeness{Reason: why},
	}) {
		return false
	}
	u.tellUndecryptableEdit(ctx, evt, chat, target)
	return true
}

// tellUndecryptableEdit queues a notice in the chat's room, behind what is queued there.
func (u *User) tellUndecryptableEdit(ctx context.Context, evt *events.Message, chat types.JID, target string) {
	p, err := u.b.portals.Get(ctx, u.portalKey(ctx, chat), evt.Info.IsGroup)
	if err != nil {
		u.log.Err(err).Msg("Failed to load the portal to report an undecryptable edit")
		return
	}
	who := evt.Info.PushName
	if who == "" {
		who = "+" + evt.Info.Sender.User
	}
	item, err := portal.NewBotNoticeItem(&portal.BotNotice{ID: "sealed-edit:" + evt.Info.ID,
		Text: "⚠️ " + who + " edited a message (ID " + target + "), but the edit came encrypted in a form this bridge cannot decrypt. " +
			"The records archive keeps it as it came, and its ledger notes an undecryptable edit; the phone shows the new version."})
	if err == nil {
		err = p.Enqueue(ctx, item)
	}
	if err != nil {
		u.log.Err(err).Msg("Failed to queue the notice about an undecryptable edit")
	}
}
