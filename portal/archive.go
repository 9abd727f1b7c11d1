package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/msgconv"
)

// Archiver is the records archive as portals use it. Appends are durable when they return.
type Archiver interface {
	Append(ctx context.Context, e *archive.Entry) (archive.Appended, error)
	PutMedia(ctx context.Context, r io.Reader) (string, int64, error)
}

// archiveItem records an item once, before it is relayed; the queue row remembers that it
// was recorded, so retries during a homeserver outage do not record it again.
func (p *Portal) archiveItem(ctx context.Context, item *database.QueueItem, build func() ([]*archive.Entry, error)) error {
	a := p.m.deps.Archive
	if a == nil || item.Archived {
		return nil
	}
	entries, err := build()
	if err != nil {
		return err
	}
	if alg := decryptedAlgorithm(item.Payload); alg != "" {
		// The record holds the plaintext; it says that it crossed Matrix encrypted.
		for _, entry := range entries {
			if entry.Outbound != nil {
				entry.Outbound.Encrypted = alg
			}
		}
	}
	for _, entry := range entries {
		if _, err := a.Append(ctx, entry); err != nil {
			return fmt.Errorf("failed to archive: %w", err)
		}
	}
	item.Archived = true
	return p.m.deps.DB.Queue.MarkArchived(ctx, item.Seq)
}

// waEntry is the archive entry of a WhatsApp message, with its media already stored.
func (p *Portal) waEntry(ctx context.Context, info *types.MessageInfo, rawMsg []byte, res *msgconv.ToMatrixResult, media [][]byte) ([]*archive.Entry, error) {
	e := &archive.Entry{
		Account:    string(p.row.Receiver),
		Chat:       p.row.ChatJID,
		ChatName:   p.row.Name,
		MessageID:  info.ID,
		Sender:     senderKey(info),
		SenderName: info.PushName,
		Time:       info.Timestamp,
	}
	if res.Target != "" {
		e.Target = &archive.Target{MessageID: string(res.Target)}
	}
	msg := &archive.Message{Proto: rawMsg}
	if len(res.Events) > 0 {
		if c, ok := res.Events[0].Content.(*msgconv.MessageContent); ok {
			msg.Text, msg.Type = c.Body, string(c.MsgType)
			if c.RelatesTo != nil && c.RelatesTo.InReplyTo != nil {
				msg.ReplyTo = string(c.RelatesTo.InReplyTo.EventID)
			}
		}
	}
	for i, t := range res.Media {
		if i >= len(media) || media[i] == nil {
			continue
		}
		sha, size, err := p.m.deps.Archive.PutMedia(ctx, bytes.NewReader(media[i]))
		if err != nil {
			return nil, fmt.Errorf("failed to archive media: %w", err)
		}
		msg.Media = append(msg.Media, archive.MediaRef{SHA256: sha, Size: size, MimeType: t.MimeType, FileName: t.FileName})
	}
	if info.Chat.IsBroadcastList() {
		e.Broadcast = info.Chat.String()
	}
	switch res.Action {
	case msgconv.ActionMessage, msgconv.ActionPollVote, msgconv.ActionTimer:
		e.Kind = archive.KindMessage
		if res.Action == msgconv.ActionTimer {
			msg.Type = "disappearing_timer"
		}
		if p.isStatus() {
			e.Kind = archive.KindStatus
		}
	case msgconv.ActionEdit:
		e.Kind = archive.KindEdit
		if len(res.Events) > 0 {
			if c, ok := res.Events[0].Content.(*msgconv.MessageContent); ok && c.NewContent != nil {
				msg.Text = c.NewContent.Body
			}
		}
	case msgconv.ActionRevoke:
		e.Kind = archive.KindRevoke
	case msgconv.ActionReaction, msgconv.ActionReactionRemove:
		e.Kind = archive.KindReaction
		if res.Action == msgconv.ActionReaction && len(res.Events) > 0 {
			if rc, ok := res.Events[0].Content.(*msgconv.ReactionContent); ok {
				e.Reaction = rc.RelatesTo.Key
			}
		}
	default:
		return nil, nil // protocol housekeeping (key shares, sync notices): no content, and secrets
	}
	e.Message = msg
	return []*archive.Entry{e}, nil
}

// sentMedia is a file a Matrix user sent, as it went to WhatsApp.
type sentMedia struct {
	data               []byte
	mimeType, fileName string
}

// outboundEntry records a Matrix event about to be sent to WhatsApp, with the bytes of its
// file when it carries one (an image, video, audio, file or sticker, or an edit or relay
// that does).
func (p *Portal) outboundEntry(ctx context.Context, env *MatrixEnvelope, evt *msgconv.MatrixEvent, msgID types.MessageID, msg *waE2E.Message, media *sentMedia) ([]*archive.Entry, error) {
	var rawMsg []byte
	if msg != nil {
		var err error
		if rawMsg, err = proto.Marshal(msg); err != nil {
			return nil, fmt.Errorf("failed to serialize the outgoing message: %w", err)
		}
	}
	archived := &archive.Message{Proto: rawMsg, Text: evt.Content.Body, Type: string(evt.Content.MsgType)}
	if media != nil {
		sha, size, err := p.m.deps.Archive.PutMedia(ctx, bytes.NewReader(media.data))
		if err != nil {
			return nil, fmt.Errorf("failed to archive the sent file: %w", err)
		}
		archived.Media = []archive.MediaRef{{SHA256: sha, Size: size, MimeType: media.mimeType, FileName: media.fileName}}
	}
	return []*archive.Entry{{
		Kind: archive.KindOutboundSend, Account: string(p.row.Receiver), Chat: p.row.ChatJID, ChatName: p.row.Name,
		MessageID: msgID, Sender: string(env.Sender), Time: time.UnixMilli(evt.Timestamp),
		Message: archived,
		Outbound: &archive.Outbound{Status: "attempted", MatrixEventID: string(env.ID), MatrixRoomID: string(env.RoomID),
			MatrixSender: string(env.Sender)},
	}}, nil
}

// refuseMalformed archives an event that cannot even be decoded as what its type says, as it
// arrived, and fails it for good, which tells the sender in the room.
func (p *Portal) refuseMalformed(ctx context.Context, item *database.QueueItem, env *MatrixEnvelope, cause error) error {
	zerolog.Ctx(ctx).Warn().Err(cause).Stringer("event_id", env.ID).Stringer("room_id", env.RoomID).
		Str("event_type", env.Type).Msg("Refusing a malformed Matrix event")
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		var raw struct {
			Content json.RawMessage `json:"content"`
		}
		_ = json.Unmarshal(item.Payload, &raw)
		return []*archive.Entry{{
			Kind: archive.KindOutboundSend, Account: string(p.row.Receiver), Chat: p.row.ChatJID, ChatName: p.row.Name,
			Sender: string(env.Sender), Time: time.UnixMilli(env.Timestamp),
			// The content as it arrived: nothing of it could be rendered.
			Message: &archive.Message{Text: string(raw.Content), Type: env.Type},
			Outbound: &archive.Outbound{Status: "failed", Error: cause.Error(), MatrixEventID: string(env.ID),
				MatrixRoomID: string(env.RoomID), MatrixSender: string(env.Sender)},
		}}, nil
	}); err != nil {
		return err
	}
	return permanent(cause)
}

// groupEntries records a group change: one entry per kind of change.
func (p *Portal) groupEntries(change *GroupChange) []*archive.Entry {
	base := archive.Entry{Account: string(p.row.Receiver), Chat: p.row.ChatJID, ChatName: p.row.Name,
		Sender: change.Sender.String(), Time: change.Timestamp}
	var out []*archive.Entry
	add := func(kind archive.Kind, g *archive.GroupChange) {
		e := base
		e.Kind, e.Group = kind, g
		out = append(out, &e)
	}
	if change.Name != nil {
		add(archive.KindGroupSubject, &archive.GroupChange{Subject: *change.Name})
	}
	if change.Topic != nil {
		add(archive.KindGroupSubject, &archive.GroupChange{Action: "description", Subject: *change.Topic})
	}
	for _, m := range []struct {
		action string
		jids   []types.JID
	}{{"join", change.Join}, {"leave", change.Leave}, {"promote", change.Promote}, {"demote", change.Demote}} {
		if len(m.jids) == 0 {
			continue
		}
		parts := make([]string, len(m.jids))
		for i, j := range m.jids {
			parts[i] = j.String()
		}
		add(archive.KindGroupMembership, &archive.GroupChange{Action: m.action, Participants: parts})
	}
	return out
}

// archiveOutboundResult records how a send ended. It is best effort: the attempt is already
// recorded, and a missing result shows as an attempt without an outcome.
func (p *Portal) archiveOutboundResult(ctx context.Context, env *MatrixEnvelope, msgID types.MessageID, sendErr error) {
	a := p.m.deps.Archive
	if a == nil {
		return
	}
	out := &archive.Outbound{Status: "sent", MatrixEventID: string(env.ID), MatrixRoomID: string(env.RoomID), MatrixSender: string(env.Sender)}
	if sendErr != nil {
		out.Status, out.Error = "failed", sendErr.Error()
	}
	_, err := a.Append(ctx, &archive.Entry{
		Kind: archive.KindOutboundResult, Account: string(p.row.Receiver), Chat: p.row.ChatJID,
		MessageID: msgID, Target: &archive.Target{MessageID: msgID}, Time: time.Now(), Outbound: out,
	})
	if err != nil {
		p.log.Err(err).Msg("Failed to archive a send result")
	}
}
