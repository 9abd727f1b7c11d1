package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/msgconv"
)

// MatrixEnvelope is the part of a Matrix event the bridge reads to route it; the whole
// event is queued as received.
type MatrixEnvelope struct {
	Type      string          `json:"type"`
	ID        id.EventID      `json:"event_id"`
	RoomID    id.RoomID       `json:"room_id"`
	Sender    id.UserID       `json:"sender"`
	StateKey  *string         `json:"state_key,omitempty"`
	Timestamp int64           `json:"origin_server_ts"`
	Content   EnvelopeContent `json:"content"`
}

// NewMatrixEventItem wraps a raw Matrix event for the queue.
func NewMatrixEventItem(env *MatrixEnvelope, raw json.RawMessage) *database.QueueItem {
	return &database.QueueItem{
		Direction: database.ToWhatsApp,
		DedupKey:  "evt:" + string(env.ID),
		Kind:      KindMatrixEvent,
		Payload:   raw,
	}
}

// IsRelayed says whether a Matrix event type in a portal room is relayed to WhatsApp.
func IsRelayed(eventType string, isState bool) bool {
	if isState {
		switch eventType {
		case event.StateRoomName.Type, event.StateTopic.Type, event.StateMember.Type:
			return true
		}
		return false
	}
	switch eventType {
	case event.EventMessage.Type, event.EventSticker.Type, event.EventReaction.Type, event.EventRedaction.Type,
		event.EventUnstablePollStart.Type, event.EventUnstablePollResponse.Type:
		return true
	}
	return false
}

func (p *Portal) handleMatrixEvent(ctx context.Context, item *database.QueueItem) error {
	var env MatrixEnvelope
	if err := json.Unmarshal(item.Payload, &env); err != nil {
		return permanent(fmt.Errorf("queued Matrix event is corrupt: %w", err))
	}
	if isEncryptedEvent(&env) && p.m.deps.Decrypter != nil {
		if handled, err := p.decryptQueued(ctx, item, &env); handled || err != nil {
			return err
		}
	}
	if field := env.malformedField(); field != "" {
		return p.refuseMalformed(ctx, item, &env, errMalformedField(field))
	}
	if env.StateKey == nil {
		if withheld, err := p.withholdDeleted(ctx, item, &env); withheld || err != nil {
			return err
		}
	}
	wa, err := p.whatsApp()
	if err != nil {
		return err
	}
	if env.StateKey != nil {
		return p.handleMatrixState(ctx, wa, &env)
	}
	if m, err := p.m.deps.DB.Messages.GetByMXID(ctx, env.ID); err != nil {
		return err
	} else if m != nil {
		return nil // sent before a restart
	}
	evt, err := msgconv.DecodeEvent(item.Payload)
	if err != nil {
		return p.refuseMalformed(ctx, item, &env, err)
	}
	res, err := msgconv.ToWhatsApp(ctx, evt, msgconv.Chat{JID: p.chat, Self: wa.OwnJID()}, p.resolver(wa), &p.m.deps.Convert)
	var sendErr *msgconv.SendError
	if errors.As(err, &sendErr) {
		if evt.Type == event.EventRedaction.Type && errors.Is(err, msgconv.ErrTargetNotFound) {
			return p.parkRedaction(ctx, &env, evt, permanent(err))
		}
		return permanent(err)
	} else if err != nil {
		return fmt.Errorf("failed to convert %s: %w", env.ID, err)
	}
	zerolog.Ctx(ctx).Debug().Stringer("action", res.Action).Bool("has_message", res.Message != nil).Msg("Converted a Matrix event")
	msg := res.Message
	var media *sentMedia
	if res.Upload != nil {
		data, err := p.uploadToWhatsApp(ctx, wa, res.Upload)
		var bad *badAttachmentError
		if errors.As(err, &bad) {
			return p.refuseAttachment(ctx, item, &env, bad)
		} else if err != nil {
			return err
		}
		media = &sentMedia{data: data, mimeType: res.Upload.MimeType, fileName: res.Upload.FileName}
	}
	if res.PollVote != nil {
		update, err := wa.EncryptPollVote(ctx, res.Target, res.PollVote)
		if err != nil {
			return fmt.Errorf("failed to encrypt the poll vote: %w", err)
		}
		msg = &waE2E.Message{PollUpdateMessage: update}
	}
	if msg == nil {
		return nil // nothing to send (a redaction of something never bridged, say)
	}
	msgID := MessageIDFor(env.ID)
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		return p.outboundEntry(ctx, &env, evt, msgID, msg, media)
	}); err != nil {
		return err
	}
	ts, err := wa.SendMessage(ctx, p.chat, msgID, msg)
	if err != nil {
		if item.Attempts+1 >= maxWhatsAppAttempts {
			p.archiveOutboundResult(ctx, &env, msgID, err)
		}
		return fmt.Errorf("failed to send to WhatsApp: %w", err)
	}
	p.archiveOutboundResult(ctx, &env, msgID, nil)
	if err := p.recordSent(ctx, wa, evt, res, msgID, ts); err != nil {
		return err
	}
	p.recordedDirectly(string(msgID))
	return nil
}

// MessageIDFor derives the WhatsApp message ID from the Matrix event ID, so a resend after a
// crash carries the same ID and recipients drop the duplicate.
func MessageIDFor(evt id.EventID) types.MessageID {
	sum := sha256.Sum256([]byte(evt))
	return "3EB0" + strings.ToUpper(hex.EncodeToString(sum[:9]))
}

func (p *Portal) recordSent(ctx context.Context, wa WhatsApp, evt *msgconv.MatrixEvent, res *msgconv.ToWhatsAppResult, msgID types.MessageID, ts time.Time) error {
	key := p.row.PortalKey
	own := wa.OwnJID().ToNonAD().String()
	switch res.Action {
	case msgconv.ActionReaction:
		if res.Target == nil {
			return nil
		}
		emoji := ""
		if evt.Content.RelatesTo != nil {
			emoji = evt.Content.RelatesTo.Key
		}
		return p.m.deps.DB.Reactions.Put(ctx, &database.Reaction{
			PortalKey: key, TargetID: res.Target.ID, SenderJID: own, MXID: evt.ID, WAID: msgID, Emoji: emoji,
		})
	case msgconv.ActionReactionRemove:
		if res.Target == nil || res.Target.ReactionTo == nil {
			return nil
		}
		return p.m.deps.DB.Reactions.Delete(ctx, key, res.Target.ReactionTo.ID, own)
	}
	partID := ""
	switch {
	case res.Action == msgconv.ActionEdit && res.Target != nil:
		partID = editPartID(string(evt.ID), res.Target.ID)
	case res.Action != msgconv.ActionMessage:
		partID = res.Action.String() + ":" + string(evt.ID)
	}
	return p.m.deps.DB.Messages.Put(ctx, &database.Message{
		PortalKey: key, WAID: msgID, PartID: partID, MXID: evt.ID, SenderJID: own, FromMe: true, Timestamp: ts,
	})
}

// uploadToWhatsApp moves a Matrix user's file to WhatsApp's media servers and returns its
// bytes, for the archive: once WhatsApp's copy expires, only the archive can show what was sent.
func (p *Portal) uploadToWhatsApp(ctx context.Context, wa WhatsApp, up *msgconv.MediaUpload) ([]byte, error) {
	uri, err := up.URL.Parse()
	if err != nil {
		return nil, permanent(fmt.Errorf("bad media URL %q: %w", up.URL, err))
	}
	data, err := p.m.matrix.Download(ctx, uri)
	if err != nil {
		return nil, mediaDownloadFailure(err, up.URL)
	}
	if up.File != nil {
		if err := openAttachment(up, data); err != nil {
			return nil, err
		}
	}
	res, err := wa.Upload(ctx, data, up.Kind)
	if err != nil {
		return nil, fmt.Errorf("failed to upload the media to WhatsApp: %w", err)
	}
	up.Complete(res)
	return data, nil
}

// handleMatrixState relays room changes the receiver made to the WhatsApp group.
func (p *Portal) handleMatrixState(ctx context.Context, wa WhatsApp, env *MatrixEnvelope) error {
	if !p.row.IsGroup {
		return nil
	}
	var err error
	switch env.Type {
	case event.StateRoomName.Type:
		if env.Content.Name == p.row.Name {
			return nil
		}
		if err = wa.SetGroupName(ctx, p.chat, env.Content.Name); err == nil {
			p.row.Name = env.Content.Name
			err = p.m.deps.DB.Portals.Put(ctx, p.row)
		}
	case event.StateTopic.Type:
		if env.Content.Topic == p.row.Topic {
			return nil
		}
		if err = wa.SetGroupTopic(ctx, p.chat, env.Content.Topic); err == nil {
			p.row.Topic = env.Content.Topic
			err = p.m.deps.DB.Portals.Put(ctx, p.row)
		}
	case event.StateMember.Type:
		err = p.handleMatrixMembership(ctx, wa, env)
	}
	var perm errPermanent
	if err != nil && !errors.As(err, &perm) {
		return permanent(fmt.Errorf("WhatsApp refused the change: %w", err))
	}
	return err
}

func (p *Portal) handleMatrixMembership(ctx context.Context, wa WhatsApp, env *MatrixEnvelope) error {
	target := id.UserID(*env.StateKey)
	ghost, ok, err := p.m.ghosts.ByMXID(ctx, target)
	if err != nil || !ok {
		return err // not a WhatsApp user: nothing to do on WhatsApp
	}
	var action string
	switch env.Content.Membership {
	case event.MembershipInvite:
		action = "add"
	case event.MembershipLeave, event.MembershipBan:
		if target == env.Sender {
			return nil // the ghost left by itself, echoing a WhatsApp change
		}
		action = "remove"
	default:
		return nil
	}
	if err := wa.UpdateParticipants(ctx, p.chat, []types.JID{ghost.JID}, action); err != nil {
		return err
	}
	if action == "add" {
		return p.m.matrix.EnsureJoined(ctx, ghost.MXID, p.RoomID())
	}
	return nil
}

// reportFailure tells the room that an event could not be relayed, and why.
func (p *Portal) reportFailure(ctx context.Context, item *database.QueueItem, cause error) {
	room := p.RoomID()
	if room == "" {
		return
	}
	var text string
	content := &event.MessageEventContent{MsgType: event.MsgNotice}
	if item.Direction == database.ToWhatsApp {
		var env MatrixEnvelope
		_ = json.Unmarshal(item.Payload, &env)
		text = fmt.Sprintf("⚠️ Your %s could not be sent to WhatsApp: %s", describeMatrixEvent(item.Payload), failureWords(cause))
		if env.ID != "" {
			content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(env.ID)
		}
	} else {
		var wm WAMessage
		_ = json.Unmarshal(item.Payload, &wm)
		text = fmt.Sprintf("⚠️ A WhatsApp message (ID %s, from %s, sent %s) could not be bridged: %s",
			wm.Info.ID, wm.Info.Sender.ToNonAD(), wm.Info.Timestamp.Format(time.DateTime), failureWords(cause))
	}
	rendered := format.RenderMarkdown(text, false, false)
	content.Body, content.Format, content.FormattedBody = rendered.Body, rendered.Format, rendered.FormattedBody
	if _, err := p.m.matrix.SendMessage(ctx, p.m.matrix.BotMXID(), room, event.EventMessage, content, SendOptions{
		TransactionID: fmt.Sprintf("cw.fail.%d", item.Seq),
	}); err != nil {
		p.log.Err(err).Msg("Failed to report a relay failure in the room")
	}
}
