package wasim

import (
	"context"
	"fmt"

	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Secret-encrypted edits: WhatsApp's newer edit form, the new version encrypted with a key
// derived from the original message's secret (see whatsmeow's msgsecret.go).

// SendEvent sends an event message carrying a message secret, which later edits of it are
// encrypted with.
func (p *Phone) SendEvent(ctx context.Context, to types.JID, name string) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, to, &waE2E.Message{
		EventMessage:       &waE2E.EventMessage{Name: proto.String(name), StartTime: proto.Int64(1767225600)},
		MessageContextInfo: &waE2E.MessageContextInfo{MessageSecret: random.Bytes(32)},
	})
}

// SendEventEdit edits one of the phone's own event messages the way WhatsApp does: a
// SecretEncryptedMessage of type EVENT_EDIT, which the pinned whatsmeow can decrypt.
func (p *Phone) SendEventEdit(ctx context.Context, to types.JID, orig types.MessageID, name string) (whatsmeow.SendResponse, error) {
	plaintext, err := proto.Marshal(&waE2E.Message{EventMessage: &waE2E.EventMessage{Name: proto.String(name), StartTime: proto.Int64(1767225600)}})
	if err != nil {
		return whatsmeow.SendResponse{}, fmt.Errorf("marshal the edited event: %w", err)
	}
	own := p.Client.Store.GetJID()
	ciphertext, iv, err := p.Client.DangerousInternals().EncryptMsgSecret(ctx, own, to, own, orig, whatsmeow.EncSecretEventEdit, plaintext)
	if err != nil {
		return whatsmeow.SendResponse{}, fmt.Errorf("encrypt the edit: %w", err)
	}
	return p.Send(ctx, to, p.sealedEdit(to, orig, waE2E.SecretEncryptedMessage_EVENT_EDIT, ciphertext, iv))
}

// SendSealedTextEdit sends a MESSAGE_EDIT secret-encrypted edit of a text message. The pinned
// whatsmeow has no key derivation for this type, so the payload is random: what matters to a
// receiver with the same whatsmeow is that it cannot decrypt it.
func (p *Phone) SendSealedTextEdit(ctx context.Context, to types.JID, orig types.MessageID) (whatsmeow.SendResponse, error) {
	return p.Send(ctx, to, p.sealedEdit(to, orig, waE2E.SecretEncryptedMessage_MESSAGE_EDIT, random.Bytes(48), random.Bytes(12)))
}

func (p *Phone) sealedEdit(to types.JID, orig types.MessageID, typ waE2E.SecretEncryptedMessage_SecretEncType, ciphertext, iv []byte) *waE2E.Message {
	return &waE2E.Message{SecretEncryptedMessage: &waE2E.SecretEncryptedMessage{
		TargetMessageKey: &waCommon.MessageKey{RemoteJID: proto.String(to.String()), FromMe: proto.Bool(true), ID: proto.String(orig)},
		EncPayload:       ciphertext,
		EncIV:            iv,
		SecretEncType:    typ.Enum(),
	}}
}
