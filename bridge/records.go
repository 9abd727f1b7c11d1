package bridge

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/archive"
)

// record appends what the relay path does not see to the archive: the completeness ledger
// (connections and logouts, written by health.go; undecryptable messages) and deletions made on the phone that
// change nothing on Matrix but belong in the record. Appends block until durable.
func (u *User) record(ctx context.Context, e *archive.Entry) bool {
	a := u.b.archive
	if a == nil {
		return true
	}
	e.Account = string(u.row.MXID)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if _, err := a.Append(ctx, e); err != nil {
		u.log.Err(err).Str("kind", string(e.Kind)).Msg("Failed to archive")
		return false
	}
	return true
}

// recordWAEvent archives the events of handleWAEvent that have no portal work. It returns
// false when the event must not be acknowledged because it could not be recorded.
func (u *User) recordWAEvent(ctx context.Context, rawEvt any) bool {
	switch evt := rawEvt.(type) {
	case *events.UndecryptableMessage:
		return u.record(ctx, &archive.Entry{
			Kind: archive.KindUndecryptable, Chat: chatKey(evt.Info.Chat), Sender: evt.Info.Sender.ToNonAD().String(),
			MessageID: evt.Info.ID, Time: evt.Info.Timestamp,
			Completeness: &archive.Completeness{Reason: "message could not be decrypted (" + string(evt.DecryptFailMode) + ")"},
		})
	case *events.DeleteForMe:
		sender := evt.SenderJID
		if evt.IsFromMe || sender.IsEmpty() {
			sender = u.ownJID()
		}
		return u.record(ctx, &archive.Entry{
			Kind: archive.KindDeleteForMe, Chat: chatKey(evt.ChatJID), Time: evt.Timestamp,
			Target: &archive.Target{MessageID: evt.MessageID, Sender: sender.ToNonAD().String()},
		})
	case *events.DeleteChat:
		return u.record(ctx, &archive.Entry{Kind: archive.KindChatDelete, Chat: chatKey(evt.JID), Time: evt.Timestamp})
	case *events.ClearChat:
		return u.record(ctx, &archive.Entry{Kind: archive.KindChatDelete, Chat: chatKey(evt.JID), Time: evt.Timestamp,
			Completeness: &archive.Completeness{Reason: "chat cleared on the phone"}})
	case *events.Receipt:
		if !u.b.cfg.Archive.Receipts {
			return true
		}
		ids := make([]string, len(evt.MessageIDs))
		copy(ids, evt.MessageIDs)
		return u.record(ctx, &archive.Entry{
			Kind: archive.KindReceipt, Chat: chatKey(evt.Chat), Sender: evt.Sender.ToNonAD().String(), Time: evt.Timestamp,
			Receipt: &archive.Receipt{MessageIDs: ids, Type: receiptType(evt.Type)},
		})
	}
	return true
}

func receiptType(t types.ReceiptType) string {
	if t == types.ReceiptTypeDelivered {
		return "delivered"
	}
	return string(t)
}

func chatKey(jid types.JID) string { return jid.ToNonAD().String() }

func (u *User) ownJID() types.JID {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.client != nil && u.client.Store.ID != nil {
		return u.client.Store.ID.ToNonAD()
	}
	return types.EmptyJID
}
