package portal

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/msgconv"
	"codeberg.org/causeway/causeway/puppet"
)

// WAMessage is a WhatsApp message as queued: everything needed to relay it again after a
// restart, with the message exactly as decrypted.
type WAMessage struct {
	Info types.MessageInfo `json:"info"`
	// Message is the serialized waE2E.Message, wrappers and all.
	Message []byte `json:"message"`
	// Source says how it reached the bridge when not live (SourceHistorySync, SourceOnDemand).
	Source string `json:"source,omitempty"`
	// ReceivedAt is when a live message reached the bridge, to the millisecond (eventTime).
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

// PackedMessage is a WhatsApp message packed for Portal.EnqueueMessage: the queue row, and
// the message as decoded, which the portal hands to its queue (see inflight).
type PackedMessage struct {
	Item *database.QueueItem
	msg  *WAMessage
}

// NewWAMessageItem packs a decrypted WhatsApp message for the queue.
func NewWAMessageItem(info *types.MessageInfo, msg *waE2E.Message) (*PackedMessage, error) {
	return NewWAMessageItemFrom(info, msg, "")
}

// NewWAMessageItemFrom is NewWAMessageItem for messages that did not arrive live; source is
// recorded in the archive ("history_sync").
func NewWAMessageItemFrom(info *types.MessageInfo, msg *waE2E.Message, source string) (*PackedMessage, error) {
	raw, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("failed to serialize message %s: %w", info.ID, err)
	}
	stored := *info
	stored.VerifiedName = nil // proto pointers do not survive encoding/json; nothing relays them
	wm := &WAMessage{Info: stored, Message: raw, Source: source}
	if source == "" {
		wm.ReceivedAt = time.Now().Truncate(time.Millisecond)
	}
	payload, err := json.Marshal(wm)
	if err != nil {
		return nil, fmt.Errorf("failed to encode message %s: %w", info.ID, err)
	}
	// The content hash is part of the key because whatsmeow dispatches two events with one
	// ID for a group message that carries a sender key: the key alone, then the content. A
	// key on the ID alone would drop the content as a duplicate of the key.
	sum := sha256.Sum256(raw)
	return &PackedMessage{Item: &database.QueueItem{
		Direction: database.ToMatrix,
		DedupKey:  "msg:" + info.Sender.ToNonAD().String() + ":" + info.ID + ":" + base64.RawURLEncoding.EncodeToString(sum[:9]),
		Kind:      KindWAMessage,
		Payload:   payload,
		QueuedAt:  info.Timestamp,
	}, msg: wm}, nil
}

func (p *Portal) handleWAMessage(ctx context.Context, item *database.QueueItem) error {
	v, unbridged := p.inflight.take(item.DedupKey, item.Payload)
	wm, handedOff := v.(*WAMessage)
	if !handedOff {
		wm = &WAMessage{}
		if err := json.Unmarshal(item.Payload, wm); err != nil {
			return permanent(fmt.Errorf("queued message is corrupt: %w", err))
		}
	}
	msg := &waE2E.Message{}
	if err := proto.Unmarshal(wm.Message, msg); err != nil {
		return permanent(fmt.Errorf("queued message body is corrupt: %w", err))
	}
	info := &wm.Info
	key := p.row.PortalKey
	p.inflight.begin(info.ID)

	// A redelivery of something already bridged: WhatsApp resends unacked stanzas, and a
	// crash between sending to Matrix and removing the queue item replays it. A message
	// handed off as not bridged yet was checked when it was queued.
	settling := p.inflight.settling(info.ID)
	if settling {
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	if !unbridged || settling {
		if parts, err := p.m.deps.DB.Messages.GetParts(ctx, key, info.ID); err != nil {
			return err
		} else if len(parts) > 0 {
			return nil
		}
	}
	wa, _ := p.m.deps.Logins.WhatsApp(key.Receiver)
	res, err := msgconv.ToMatrix(ctx, info, msg, p.resolver(wa), &p.m.deps.Convert)
	if errors.Is(err, msgconv.ErrForgedEdit) {
		return permanent(err)
	} else if err != nil {
		return fmt.Errorf("failed to convert message %s: %w", info.ID, err)
	}
	if res.Action == msgconv.ActionNone {
		p.log.Debug().Str("message_id", info.ID).Str("note", res.Note).Bool("unbridged", res.Unbridged).Msg("Nothing to show on Matrix")
		if !res.Unbridged {
			// Protocol housekeeping (key shares, sync notices): nothing for the room or the
			// record, and no reason to create a room.
			return nil
		}
		// A revoke, edit, reaction or vote of a message the bridge never saw: nothing to
		// show, but what arrived is recorded, with why it was not relayed.
		return p.archiveWAItem(ctx, item, func() ([]*archive.Entry, error) {
			rec := *res
			rec.Action = res.UnbridgedAction
			entries, err := p.waEntry(ctx, info, wm.Message, &rec, nil)
			for _, e := range entries {
				e.Source = wm.Source
				if e.Target != nil {
					e.Target.NotRelayed = res.Note
				}
			}
			return entries, err
		})
	}
	if res.Action == msgconv.ActionReaction || res.Action == msgconv.ActionReactionRemove {
		if err := p.settle(ctx); err != nil {
			return err
		}
		if existing, err := p.m.deps.DB.Reactions.Get(ctx, key, string(res.Target), senderKey(info)); err != nil {
			return err
		} else if existing != nil && existing.WAID == info.ID && res.Action == msgconv.ActionReaction {
			return nil // this very reaction was bridged already
		}
	}
	lazyMedia := p.deferHistoryMedia(res, wm.Source)
	media, err := p.fetchMedia(ctx, wa, res)
	if err != nil {
		return err
	}
	// The record comes first: whatever happens to the relay, the archive has the message.
	if err := p.archiveWAItem(ctx, item, func() ([]*archive.Entry, error) {
		entries, err := p.waEntry(ctx, info, wm.Message, res, media)
		for _, e := range entries {
			e.Source = wm.Source
		}
		return entries, err
	}); err != nil {
		return err
	}
	if len(res.Events) == 0 && len(res.Redactions) == 0 {
		return nil // e.g. a revoke of something never bridged: recorded, nothing to show
	}
	if p.recordOnly() {
		return nil // a status update without bridge.status_room: recorded, not shown
	}
	if err := p.ensureRoom(ctx); err != nil {
		return err
	}
	if err := p.syncRoomMeta(ctx); err != nil {
		// The message matters more than the room's name or bridge info; the next one retries.
		p.log.Warn().Err(err).Msg("Failed to bring the room's name, picture or bridge info up to date")
	}
	sender, err := p.ghostFor(ctx, info)
	if err != nil {
		return err
	}
	if err := p.uploadMedia(ctx, sender, res, media); err != nil {
		return err
	}
	for _, r := range res.Redactions {
		p.removeFromRoom(ctx, sender, res, r)
	}
	ts := eventTime(wm)
	// The item may have reached the room already when it was queued before this process
	// started or an attempt at it failed (see recovery.go).
	suspect := !handedOff || item.Attempts > 0
	for i, part := range res.Events {
		src := msgconv.Source{Chat: key.ChatJID, ID: info.ID, Part: i}
		part.SetSource(&src)
		opts := SendOptions{Timestamp: ts, TransactionID: txnID(key, info.ID, i)}
		evtID, err := p.sendPart(ctx, suspect, sender, part, src, opts)
		if err != nil {
			return fmt.Errorf("failed to send part %d of %s to Matrix: %w", i, info.ID, err)
		}
		p.delivery.recent.add(sentPart{src: src, evt: evtID, as: sender, typ: part.Type, content: part.Content, opts: opts,
			reaction: res.Action == msgconv.ActionReaction})
		record := func(ctx context.Context) error { return p.recordPart(ctx, info, res, part, i, evtID) }
		if i == len(res.Events)-1 {
			// The last write commits with the item's removal from the queue.
			p.inflight.atCommit(record)
		} else if err := record(ctx); err != nil {
			return err
		}
	}
	if lazyMedia {
		fill := newMediaFillItem(wm, item)
		p.inflight.atCommit(func(ctx context.Context) error {
			_, err := p.m.deps.DB.Queue.Add(ctx, fill, database.AddOptions{})
			return err
		})
	}
	if res.Action == msgconv.ActionReactionRemove {
		p.inflight.atCommit(func(ctx context.Context) error {
			return p.m.deps.DB.Reactions.Delete(ctx, key, string(res.Target), senderKey(info))
		})
	}
	return nil
}

// eventTime is the time a WhatsApp message's Matrix events carry. WhatsApp stamps a message
// in whole seconds (the stanza's t attribute; the protobuf of a plain message has no time of
// its own), Matrix in milliseconds, so a message stamped with its second sorts before a
// Matrix message sent earlier in that second. A message that reaches the bridge within the
// second it is stamped with is stamped with its arrival instead: the same second, with the
// milliseconds that keep the order in which the two sides saw the messages. Anything later
// (delivered after an outage, history) keeps WhatsApp's second.
func eventTime(wm *WAMessage) time.Time {
	sent, got := wm.Info.Timestamp, wm.ReceivedAt
	if !got.IsZero() && got.Truncate(time.Second).Equal(sent) {
		return got
	}
	return sent
}

// entryCommitter is an archive that commits a write of ours in the transaction of the entry
// (*archive.Archive is one).
type entryCommitter interface {
	AppendWith(ctx context.Context, e *archive.Entry, with func(context.Context) error) (archive.Appended, error)
}

// archiveWAItem is archiveItem for the relay's hot path: the queue row's "archived" mark
// commits in the archive's (group) commit with the entry instead of in a commit of its own,
// which also closes the window in which a crash left an entry archived but not marked, to
// be archived a second time.
func (p *Portal) archiveWAItem(ctx context.Context, item *database.QueueItem, build func() ([]*archive.Entry, error)) error {
	a, ok := p.m.deps.Archive.(entryCommitter)
	if !ok || item.Archived {
		return p.archiveItem(ctx, item, build)
	}
	entries, err := build()
	if err != nil {
		return err
	} else if len(entries) == 0 {
		return p.archiveItem(ctx, item, func() ([]*archive.Entry, error) { return nil, nil })
	}
	for i, entry := range entries {
		var mark func(context.Context) error
		if i == len(entries)-1 {
			mark = func(ctx context.Context) error { return p.m.deps.DB.Queue.MarkArchived(ctx, item.Seq) }
		}
		if _, err := a.AppendWith(ctx, entry, mark); err != nil {
			return fmt.Errorf("failed to archive: %w", err)
		}
	}
	item.Archived = true
	return nil
}

// recordPart writes the mapping that later replies, edits, reactions and dedup rely on.
func (p *Portal) recordPart(ctx context.Context, info *types.MessageInfo, res *msgconv.ToMatrixResult, part msgconv.MatrixPart, i int, evtID id.EventID) error {
	key := p.row.PortalKey
	if res.Action == msgconv.ActionReaction {
		emoji := ""
		if rc, ok := part.Content.(*msgconv.ReactionContent); ok {
			emoji = rc.RelatesTo.Key
		}
		return p.m.deps.DB.Reactions.Put(ctx, &database.Reaction{
			PortalKey: key, TargetID: string(res.Target), SenderJID: senderKey(info),
			MXID: evtID, WAID: info.ID, Emoji: emoji,
		})
	}
	partID := string(part.PartID)
	switch {
	case res.Action == msgconv.ActionEdit && res.Target != "":
		partID = editPartID(strconv.Itoa(i), res.Target)
	case res.Action != msgconv.ActionMessage:
		// Edits, votes and notices are their own WhatsApp messages; the row dedups them and
		// must not shadow the target's parts.
		partID = res.Action.String() + ":" + strconv.Itoa(i)
	}
	return p.m.deps.DB.Messages.Put(ctx, &database.Message{
		PortalKey: key, WAID: info.ID, PartID: partID, MXID: evtID,
		SenderJID: senderKey(info), FromMe: info.IsFromMe, Timestamp: info.Timestamp,
	})
}

// repointPart moves the mapping of a part the reconcile sent again to its new event.
func (p *Portal) repointPart(ctx context.Context, reaction bool, old, evt id.EventID) error {
	if reaction {
		return p.m.deps.DB.Reactions.Repoint(ctx, old, evt)
	}
	return p.m.deps.DB.Messages.Repoint(ctx, old, evt)
}

// fetchMedia downloads what the message's media transfers need, so the same bytes go to
// the archive and to the Matrix media repository.
func (p *Portal) fetchMedia(ctx context.Context, wa WhatsApp, res *msgconv.ToMatrixResult) ([][]byte, error) {
	out := make([][]byte, len(res.Media))
	for i, t := range res.Media {
		if t.Source == nil {
			out[i] = t.Data
			continue
		}
		if wa == nil {
			return nil, ErrNotConnected
		}
		data, err := wa.Download(ctx, t.Source)
		if err != nil {
			return nil, fmt.Errorf("failed to download media from WhatsApp: %w", err)
		}
		out[i] = data
	}
	return out, nil
}

func (p *Portal) uploadMedia(ctx context.Context, as id.UserID, res *msgconv.ToMatrixResult, media [][]byte) error {
	for i, t := range res.Media {
		up, err := p.m.matrix.Upload(ctx, as, p.RoomID(), media[i], t.MimeType, t.FileName)
		if err != nil {
			return fmt.Errorf("failed to upload media to Matrix: %w", err)
		}
		up.complete(t)
	}
	return nil
}

// removeFromRoom carries out a redaction the conversion asked for. A message deleted for
// everyone is redacted, or, with bridge.deletes: annotate, replaced by a notice saying it
// was deleted. Replaced reactions are always redacted.
func (p *Portal) removeFromRoom(ctx context.Context, as id.UserID, res *msgconv.ToMatrixResult, r msgconv.Redaction) {
	if res.Action == msgconv.ActionRevoke && p.m.deps.Config.Bridge.Deletes == "annotate" {
		notice := &event.MessageEventContent{MsgType: event.MsgNotice, Body: deletedNotice}
		notice.SetEdit(r.EventID)
		notice.NewContent = &event.MessageEventContent{MsgType: event.MsgNotice, Body: deletedNotice}
		if _, err := p.m.matrix.SendMessage(ctx, as, p.RoomID(), event.EventMessage, notice, SendOptions{}); err == nil {
			return
		}
		// Only the author may edit; for an admin's deletion of someone else's message, redact.
	}
	p.redact(ctx, as, r)
}

const deletedNotice = "🗑️ This message was deleted by the sender."

func (p *Portal) redact(ctx context.Context, as id.UserID, r msgconv.Redaction) {
	room := p.RoomID()
	if err := p.m.matrix.Redact(ctx, as, room, r.EventID, r.Reason); err == nil {
		return
	}
	// The sender's ghost may lack the power (a group admin deleting someone else's message).
	if err := p.m.matrix.Redact(ctx, p.m.matrix.BotMXID(), room, r.EventID, r.Reason); err != nil {
		p.log.Warn().Err(err).Stringer("event_id", r.EventID).Msg("Failed to redact")
	}
}

// ghostFor returns the ghost that speaks for the message's sender, joined to the room. In a
// direct chat the bot speaks for the user's own phone (see ownSpeaker).
func (p *Portal) ghostFor(ctx context.Context, info *types.MessageInfo) (id.UserID, error) {
	if info.IsFromMe && !p.row.IsGroup {
		return p.ownSpeaker(), nil
	}
	return p.joinedGhost(ctx, senderJID(info))
}

// ownSpeaker says what the user sent from their phone into a direct chat: the bot, which is
// a member already. The user's own ghost would join the DM and make it a room of three
// people to clients, and the user does not expect a second self there.
func (p *Portal) ownSpeaker() id.UserID { return p.m.matrix.BotMXID() }

// joinedGhost returns the ghost of a contact, joined to the room.
func (p *Portal) joinedGhost(ctx context.Context, jid types.JID) (id.UserID, error) {
	g, err := p.m.ghosts.Get(ctx, jid)
	if err != nil {
		return "", err
	}
	if err := p.m.matrix.EnsureJoined(ctx, g.MXID, p.RoomID()); err != nil {
		return "", fmt.Errorf("failed to join %s to the room: %w", g.MXID, err)
	}
	return g.MXID, nil
}

// senderJID is the contact that sent a message, by phone number when WhatsApp told us both.
func senderJID(info *types.MessageInfo) types.JID {
	return puppet.PreferPhone(info.Sender, info.SenderAlt)
}

func senderKey(info *types.MessageInfo) string { return senderJID(info).String() }

// txnID is the same for every attempt at the same part, so the homeserver drops a resend
// it already accepted.
func txnID(key database.PortalKey, waID types.MessageID, part int) string {
	sum := sha256.Sum256([]byte(key.String() + "|" + waID + "|" + strconv.Itoa(part)))
	return "cw." + base64.RawURLEncoding.EncodeToString(sum[:18])
}
