package bridge

import (
	"context"
	"slices"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/portal"
)

// handleHistorySync queues the messages of WhatsApp's history sync into their portals,
// oldest first, so new rooms fill in order with the original timestamps and senders. Each
// conversation's time span goes into the archive's completeness ledger. It returns false
// (no ack, WhatsApp resends) when something could not be stored.
func (u *User) handleHistorySync(ctx context.Context, evt *events.HistorySync) bool {
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil || evt.Data == nil {
		return true
	}
	syncType := evt.Data.GetSyncType().String()
	for _, conv := range evt.Data.GetConversations() {
		chat, err := types.ParseJID(conv.GetID())
		if err != nil || chat.Server == types.BroadcastServer || chat.Server == types.NewsletterServer {
			continue
		}
		msgs := slices.Clone(conv.GetMessages())
		slices.SortStableFunc(msgs, func(a, b *waHistorySync.HistorySyncMsg) int {
			return int(int64(a.GetMessage().GetMessageTimestamp()) - int64(b.GetMessage().GetMessageTimestamp()))
		})
		p, err := u.b.portals.Get(ctx, u.portalKey(ctx, chat), chat.Server == types.GroupServer)
		if err != nil {
			u.log.Err(err).Str("chat_jid", chat.String()).Msg("Failed to load a portal for history")
			return false
		}
		var oldest, newest time.Time
		for _, hm := range msgs {
			parsed, err := cli.ParseWebMessage(chat, hm.GetMessage())
			if err != nil {
				u.log.Warn().Err(err).Str("chat_jid", chat.String()).Msg("Skipping an unparseable history message")
				continue
			}
			msg := parsed.RawMessage
			if msg == nil {
				msg = parsed.Message
			}
			if msg == nil {
				continue
			}
			item, err := portal.NewWAMessageItemFrom(&parsed.Info, msg, "history_sync")
			if err != nil {
				continue
			}
			if err := p.Enqueue(ctx, item); err != nil {
				u.log.Err(err).Msg("Failed to queue a history message")
				return false
			}
			if oldest.IsZero() || parsed.Info.Timestamp.Before(oldest) {
				oldest = parsed.Info.Timestamp
			}
			if parsed.Info.Timestamp.After(newest) {
				newest = parsed.Info.Timestamp
			}
		}
		if len(msgs) > 0 && !u.record(ctx, &archive.Entry{
			Kind: archive.KindHistorySync, Chat: chatKey(chat),
			Completeness: &archive.Completeness{From: oldest, To: newest, Reason: "history sync " + syncType},
		}) {
			return false
		}
		u.log.Info().Str("chat_jid", chat.String()).Int("messages", len(msgs)).Str("sync_type", syncType).Msg("Queued history")
	}
	return true
}
