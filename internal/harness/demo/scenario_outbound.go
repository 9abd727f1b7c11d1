package demo

import (
	"bytes"
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
)

// SentFile is a file the scenario sent from Matrix (Options.SentFiles).
type SentFile struct {
	Name, MimeType string
	MsgType        event.MessageType
	Data           []byte
}

func (s *scenario) sent(f SentFile) {
	if s.sentFiles != nil {
		s.sentFiles(f)
	}
}

func isRevokeOf(msgID types.MessageID) func(*events.Message) bool {
	return func(m *events.Message) bool {
		pm := m.Message.GetProtocolMessage()
		return pm.GetType() == waE2E.ProtocolMessage_REVOKE && pm.GetKey().GetID() == msgID
	}
}

func (s *scenario) youFile(ctx context.Context) (string, error) {
	data := []byte("Causeway pilot: agenda\n\n1. Who has moved to Matrix\n2. What the records officer sees\n3. Next steps\n")
	const name, mimeType = "agenda.txt", "text/plain"
	content := &event.MessageEventContent{MsgType: event.MsgFile, Body: name,
		Info: &event.FileInfo{MimeType: mimeType, Size: len(data)}}
	if err := s.mx.attach(ctx, s.dm, data, mimeType, content); err != nil {
		return "", err
	}
	if _, err := s.mx.send(ctx, s.dm, event.EventMessage, content); err != nil {
		return "", err
	}
	s.sent(SentFile{Name: name, MimeType: mimeType, MsgType: event.MsgFile, Data: data})
	msg, err := waitWA(ctx, s.anna, "your file", func(m *events.Message) bool { return m.Message.GetDocumentMessage() != nil })
	if err != nil {
		return "", err
	}
	doc := msg.Message.GetDocumentMessage()
	if doc.GetFileName() != name || doc.GetMimetype() != mimeType {
		return "", fmt.Errorf("Anna's phone got the document %q (%s), not %q (%s)", doc.GetFileName(), doc.GetMimetype(), name, mimeType)
	}
	got, err := s.anna.Client.Download(ctx, doc)
	if err != nil {
		return "", fmt.Errorf("Anna's phone cannot download it: %w", err)
	}
	if !bytes.Equal(got, data) {
		return "", fmt.Errorf("Anna's phone downloaded %d bytes, you sent %d different ones", len(got), len(data))
	}
	return fmt.Sprintf("Anna's phone got the document %s and downloaded the same %d bytes", name, len(data)), nil
}

// youDeleteAtOnce deletes a message the moment it was sent: the deletion can reach the bridge
// before the message does (Dendrite delivers them by different paths), and the message must
// not stay on the phone either way.
func (s *scenario) youDeleteAtOnce(ctx context.Context) (string, error) {
	const text = "Wrong chat, sorry: deleted the moment I sent it."
	mine, err := s.mx.sendText(ctx, s.dm, text)
	if err != nil {
		return "", err
	}
	if _, err := s.mx.cli.RedactEvent(ctx, s.dm, mine); err != nil {
		return "", err
	}
	// The chat's queue is in order: once a message sent after both has arrived, the deleted
	// one has either been sent or been held back for good.
	const after = "Sorry for the noise."
	if _, err := s.mx.sendText(ctx, s.dm, after); err != nil {
		return "", err
	}
	if _, err := waitWA(ctx, s.anna, "the message after it", func(m *events.Message) bool { return textOf(m.Message) == after }); err != nil {
		return "", err
	}
	var arrived *events.Message
	for _, evt := range s.anna.Events.All() {
		if m, ok := evt.(*events.Message); ok && textOf(m.Message) == text {
			arrived = m
		}
	}
	if arrived == nil {
		return "Anna's phone never got it: the deletion came first and the bridge did not send the message", nil
	}
	if _, err := waitWA(ctx, s.anna, "the deletion", isRevokeOf(arrived.Info.ID)); err != nil {
		return "", err
	}
	return "Anna's phone got it and then \"delete for everyone\" for " + arrived.Info.ID, nil
}
