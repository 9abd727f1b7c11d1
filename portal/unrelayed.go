package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
)

// KindMatrixUnrelayed is a Matrix event in a portal that will not go to WhatsApp. It still
// passes through the queue, in order with the room's other events, so that it is recorded
// and its sender told before the homeserver hears "done".
const KindMatrixUnrelayed = "matrix_unrelayed"

// Why a Matrix event is not relayed.
const (
	// UnrelayedEncrypted: an m.room.encrypted event; the bridge has no encryption support,
	// so what it carries is unknown, and the ledger records the hole it leaves.
	UnrelayedEncrypted = "encrypted"
	// UnrelayedNotReceiver: a Matrix user other than the one whose WhatsApp login the
	// portal belongs to; the bridge has no relay mode that would send it in their name.
	UnrelayedNotReceiver = "not_receiver"
	// UnrelayedNoCounterpart: an event type WhatsApp has nothing for (a Matrix call, a
	// stable-prefix poll, a client's custom event).
	UnrelayedNoCounterpart = "no_counterpart"
)

// unrelayedItem is the queued form: the event as received and why it stops here.
type unrelayedItem struct {
	Reason string `json:"reason"`
	// SenderHasLogin says the sender is logged in to WhatsApp through the bridge themselves,
	// which changes what they are told.
	SenderHasLogin bool `json:"sender_has_login,omitempty"`
	// Detail is the reason in words when it depends on more than the reason's kind.
	Detail string          `json:"detail,omitempty"`
	Event  json.RawMessage `json:"event"`
}

// NewUnrelayedItem queues a Matrix event that stops at the bridge. Its dedup key is the one
// the event would have had as a relayed event: a homeserver's retry is dropped either way.
func NewUnrelayedItem(env *MatrixEnvelope, raw json.RawMessage, reason string, senderHasLogin bool) (*database.QueueItem, error) {
	payload, err := json.Marshal(&unrelayedItem{Reason: reason, SenderHasLogin: senderHasLogin, Event: raw})
	if err != nil {
		return nil, fmt.Errorf("failed to encode the unrelayed event %s: %w", env.ID, err)
	}
	return &database.QueueItem{Direction: database.ToWhatsApp, DedupKey: "evt:" + string(env.ID), Kind: KindMatrixUnrelayed, Payload: payload}, nil
}

func (p *Portal) handleMatrixUnrelayed(ctx context.Context, item *database.QueueItem) error {
	var u unrelayedItem
	if err := json.Unmarshal(item.Payload, &u); err != nil {
		return permanent(fmt.Errorf("queued unrelayed event is corrupt: %w", err))
	}
	var env MatrixEnvelope
	if err := json.Unmarshal(u.Event, &env); err != nil {
		return permanent(fmt.Errorf("queued unrelayed event is corrupt: %w", err))
	}
	if u.Reason == UnrelayedNotReceiver && isEncryptedEvent(&env) && p.m.deps.Decrypter != nil {
		// Another member's encrypted event is read like the receiver's, in order: a command
		// in it is the bot's, as it would be in plaintext, and the record and the notice say
		// what it was, not that some ciphertext arrived. The item holds the event itself
		// from here on, so that the record says it crossed Matrix encrypted.
		item.Payload = u.Event
		if handled, err := p.openQueued(ctx, item, &env); handled || err != nil {
			return err
		}
		if p.isCommand(ctx, item.Payload) {
			return nil
		}
		u.Event = item.Payload
	}
	why := p.unrelayedWhy(&u, &env)
	zerolog.Ctx(ctx).Info().Stringer("event_id", env.ID).Stringer("sender", env.Sender).Str("event_type", env.Type).
		Str("reason", u.Reason).Msg("A Matrix event is not relayed to WhatsApp; recording it")
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		return []*archive.Entry{p.unrelayedEntry(&u, &env, why)}, nil
	}); err != nil {
		return err
	}
	return p.tellUnrelayed(ctx, &u, &env, why)
}

// unrelayedWhy is the reason in words, for the sender and for the record.
func (p *Portal) unrelayedWhy(u *unrelayedItem, env *MatrixEnvelope) string {
	switch u.Reason {
	case UnrelayedEncrypted:
		return "this bridge cannot read encrypted messages (it has no encryption support), so bridged rooms must stay unencrypted"
	case UnrelayedBadAttachment:
		return u.Detail
	case UnrelayedPlaintext:
		return "this bridge only relays encrypted messages (encryption.require), and this room or your client sent it unencrypted"
	case UnrelayedNotReceiver:
		if u.SenderHasLogin {
			return fmt.Sprintf("this room carries the WhatsApp chat of %s; your own WhatsApp account has a room of its own for this chat", p.row.Receiver)
		}
		return fmt.Sprintf("only %s's messages go to WhatsApp in this room (their WhatsApp account is the one linked to it); you have no WhatsApp login here, and the bridge has no relay mode yet", p.row.Receiver)
	default:
		return fmt.Sprintf("WhatsApp has nothing that %s events could become", env.Type)
	}
}

func (p *Portal) unrelayedEntry(u *unrelayedItem, env *MatrixEnvelope, why string) *archive.Entry {
	e := &archive.Entry{Account: string(p.row.Receiver), Chat: p.row.ChatJID, ChatName: p.row.Name,
		Sender: string(env.Sender), MessageID: string(env.ID), Time: time.UnixMilli(env.Timestamp)}
	if u.Reason == UnrelayedEncrypted || u.Reason == UnrelayedUndecryptable {
		// Nothing of it can be read, so it is a hole in the record, not content.
		e.Kind = archive.KindUndecryptable
		e.Completeness = &archive.Completeness{Reason: fmt.Sprintf("encrypted Matrix event from %s in room %s: %s", env.Sender, env.RoomID, why)}
		return e
	}
	var raw struct {
		Content json.RawMessage `json:"content"`
	}
	_ = json.Unmarshal(u.Event, &raw)
	var typed struct {
		MsgType string `json:"msgtype"`
	}
	_ = json.Unmarshal(raw.Content, &typed)
	msg := &archive.Message{Text: env.Content.Body, Type: typed.MsgType}
	if env.Type != event.EventMessage.Type || msg.Text == "" {
		msg.Text, msg.Type = string(raw.Content), env.Type // what arrived, as it arrived
	}
	e.Kind = archive.KindMatrixMessage
	e.Message = msg
	e.Outbound = &archive.Outbound{Status: "not_relayed", Error: why, MatrixEventID: string(env.ID),
		MatrixRoomID: string(env.RoomID), MatrixSender: string(env.Sender)}
	return e
}

// tellUnrelayed answers the event in the room, to its sender.
func (p *Portal) tellUnrelayed(ctx context.Context, u *unrelayedItem, env *MatrixEnvelope, why string) error {
	room := p.RoomID()
	if room == "" {
		return nil
	}
	what := "message"
	if env.Type != event.EventMessage.Type && env.Type != event.EventEncrypted.Type {
		what = env.Type + " event"
	}
	text := fmt.Sprintf("⚠️ %s: your %s was not sent to WhatsApp: %s. It is kept in the records archive as not relayed.", env.Sender, what, why)
	switch u.Reason {
	case UnrelayedUndecryptable:
		text = fmt.Sprintf("⚠️ %s: %s, and was not sent to WhatsApp. The records archive notes the gap.", env.Sender, why)
	case UnrelayedEncrypted:
		text = fmt.Sprintf("⚠️ %s: your encrypted message was not sent to WhatsApp: %s. The records archive notes that it could not be read.", env.Sender, why)
	}
	rendered := format.RenderMarkdown(text, false, false)
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: rendered.Body, Format: rendered.Format,
		FormattedBody: rendered.FormattedBody, Mentions: &event.Mentions{UserIDs: []id.UserID{env.Sender}}}
	content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(env.ID)
	if _, err := p.m.matrix.SendMessage(ctx, p.m.matrix.BotMXID(), room, event.EventMessage, content, SendOptions{
		TransactionID: txnID(p.row.PortalKey, "unrelayed:"+string(env.ID), 0),
	}); err != nil {
		return fmt.Errorf("failed to tell %s their event was not relayed: %w", env.Sender, err)
	}
	return nil
}
