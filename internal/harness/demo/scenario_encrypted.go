package demo

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// portalKind checks a new portal against the demo's mode: with encryption the bridge creates
// portals encrypted (encryption.default), and one that is not fails the step. It returns the
// words that describe the room in the step's result.
func (s *scenario) portalKind(ctx context.Context, room id.RoomID) (string, error) {
	if s.mx.crypto == nil {
		return "", nil
	}
	if !s.mx.encrypted(ctx, room) {
		return "", fmt.Errorf("the new portal %s is not encrypted, though the bridge creates portals encrypted (encryption.default)", room)
	}
	return "end-to-end encrypted ", nil
}

// decryptedNote ends the result of a step that found a message from WhatsApp in Matrix.
func (s *scenario) decryptedNote() string {
	if s.mx.crypto == nil {
		return ""
	}
	return " (your device decrypted it)"
}

// allDecrypted reads the management room and both portals from their first event: every
// message event in them (from the bridge's bot and users and from you) is m.room.encrypted and
// decrypts on your device. Redactions are the exception Matrix makes (m.room.redaction is never
// encrypted), and a redacted event has no ciphertext left to decrypt.
func (s *scenario) allDecrypted(ctx context.Context) (string, error) {
	decrypted, redacted := 0, 0
	for _, room := range []id.RoomID{s.mx.mgmt, s.dm, s.group} {
		evts, err := s.mx.allEvents(ctx, room)
		if err != nil {
			return "", err
		}
		for _, evt := range evts {
			switch {
			case evt.StateKey != nil || evt.Type == event.EventRedaction:
				continue
			case evt.Unsigned.RedactedBecause != nil:
				redacted++
				continue
			case evt.Type != event.EventEncrypted:
				return "", fmt.Errorf("%s's %s event %s in %s is not encrypted", evt.Sender, evt.Type.Type, evt.ID, room)
			}
			evt.RoomID = room
			if _, err := s.mx.crypto.Decrypt(ctx, evt); err != nil {
				return "", fmt.Errorf("%s's event %s in %s does not decrypt: %w", evt.Sender, evt.ID, room, err)
			}
			decrypted++
		}
	}
	return fmt.Sprintf("%d encrypted messages, reactions and edits decrypted, none in plaintext (%d redacted: deleted messages)", decrypted, redacted), nil
}

// allEvents pages back through a room's whole timeline.
func (u *mxUser) allEvents(ctx context.Context, room id.RoomID) ([]*event.Event, error) {
	var all []*event.Event
	from := ""
	for {
		resp, err := u.cli.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			return nil, fmt.Errorf("failed to read the timeline of %s: %w", room, err)
		}
		all = append(all, resp.Chunk...)
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			return all, nil
		}
		from = resp.End
	}
}
