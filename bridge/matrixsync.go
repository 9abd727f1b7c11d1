package bridge

import (
	"context"
	"errors"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

// The homeserver does not push read receipts and typing to appservices (Dendrite has no
// MSC2409), nor, in Dendrite 0.13, users' redactions, so the bot, which sits in every portal
// room, syncs for them itself.
const botSyncFilter = `{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},` +
	`"room":{"timeline":{"types":["m.room.redaction"],"limit":100},"state":{"not_types":["*"]},"account_data":{"not_types":["*"]},` +
	`"ephemeral":{"types":["m.receipt","m.typing"]}}}`

// kvSyncSince remembers how far the bot's sync got, so redactions made while the bridge
// was down are still relayed.
const kvSyncSince = "bot_sync_since"

func (b *Bridge) startMatrixSync() {
	ctx, cancel := context.WithCancel(b.log.With().Str("component", "matrix_sync").Logger().WithContext(context.Background()))
	b.syncCancel = cancel
	b.syncDone = make(chan struct{})
	go func() {
		defer close(b.syncDone)
		b.syncLoop(ctx)
	}()
}

func (b *Bridge) stopMatrixSync() {
	if b.syncCancel != nil {
		b.syncCancel()
		<-b.syncDone
	}
}

func (b *Bridge) syncLoop(ctx context.Context) {
	cli := b.cryptoSyncClient()
	since, err := b.db.KV.Get(ctx, kvSyncSince)
	if err != nil {
		b.log.Err(err).Msg("Failed to load the sync position")
	}
	typing := map[id.RoomID]bool{} // was the receiver typing at the last sync
	backoff := time.Second
	for ctx.Err() == nil {
		resp, err := cli.SyncRequest(ctx, 30000, since, botSyncFilter, false, event.PresenceOffline)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return
			}
			b.log.Warn().Err(err).Msg("Receipt and typing sync failed")
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		// To-device events and key counts are never stale: room keys among them.
		b.cryptoSync(ctx, resp, since)
		first := since == ""
		if !first {
			for roomID, room := range resp.Rooms.Join {
				for _, evt := range room.Timeline.Events {
					b.queueSyncedRedaction(ctx, roomID, evt)
				}
				for _, evt := range room.Ephemeral.Events {
					b.handleEphemeral(ctx, roomID, evt, typing)
				}
			}
		} // else: a first sync only sets the position; older receipts are stale
		since = resp.NextBatch
		if err := b.db.KV.Set(ctx, kvSyncSince, since); err != nil {
			b.log.Err(err).Msg("Failed to save the sync position")
		}
	}
}

func (b *Bridge) handleEphemeral(ctx context.Context, roomID id.RoomID, evt *event.Event, typing map[id.RoomID]bool) {
	switch evt.Type.Type {
	case event.EphemeralEventReceipt.Type:
		evt.Type = event.EphemeralEventReceipt
	case event.EphemeralEventTyping.Type:
		evt.Type = event.EphemeralEventTyping
	default:
		return
	}
	_ = evt.Content.ParseRaw(evt.Type)
	p, err := b.portals.ByRoom(ctx, roomID)
	if err != nil || p == nil {
		return
	}
	receiver := p.Key().Receiver
	wa, ok := b.WhatsApp(receiver)
	if !ok {
		return
	}
	switch evt.Type {
	case event.EphemeralEventReceipt:
		receipts := *evt.Content.AsReceipt()
		for eventID, byType := range receipts {
			for _, rt := range []event.ReceiptType{event.ReceiptTypeRead, event.ReceiptTypeReadPrivate} {
				if _, ok := byType[rt][receiver]; ok {
					b.markReadOnWhatsApp(ctx, p, wa, eventID)
				}
			}
		}
	case event.EphemeralEventTyping:
		now := false
		for _, u := range evt.Content.AsTyping().UserIDs {
			if u == receiver {
				now = true
			}
		}
		if now != typing[roomID] {
			typing[roomID] = now
			if err := wa.SetTyping(ctx, p.Chat(), now); err != nil {
				b.log.Debug().Err(err).Msg("Failed to relay typing to WhatsApp")
			}
		}
	}
}

// markReadOnWhatsApp sends a read receipt for the WhatsApp message behind a Matrix event.
func (b *Bridge) markReadOnWhatsApp(ctx context.Context, p *portal.Portal, wa portal.WhatsApp, eventID id.EventID) {
	msg, err := b.db.Messages.GetByMXID(ctx, eventID)
	if err != nil || msg == nil || msg.FromMe || msg.ChatJID != p.Key().ChatJID {
		return
	}
	sender, err := types.ParseJID(msg.SenderJID)
	if err != nil {
		return
	}
	if !p.Chat().IsEmpty() && p.Chat().Server != types.GroupServer {
		sender = types.EmptyJID // in a DM the chat says who sent it
	}
	if err := wa.MarkRead(ctx, p.Chat(), sender, []types.MessageID{msg.WAID}, time.Now()); err != nil {
		b.log.Warn().Err(err).Msg("Failed to send a read receipt to WhatsApp")
	}
}
