package bridge

import (
	"context"
	"encoding/json"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

// queueSyncedRedaction hands a receiver's redaction in a portal room to the portal.
// Dendrite 0.13 does not push users' redactions to appservices; they reach the bot's sync
// only. The queue and the message table dedup by event ID, so a homeserver that does push
// them still relays each once.
func (b *Bridge) queueSyncedRedaction(ctx context.Context, room id.RoomID, evt *event.Event) {
	if evt.Type.Type != event.EventRedaction.Type {
		return
	}
	p, err := b.portals.ByRoom(ctx, room)
	if err != nil || p == nil || evt.Sender != p.Key().Receiver {
		return
	}
	evt.RoomID = room
	raw, err := json.Marshal(evt)
	if err != nil {
		return
	}
	env := &portal.MatrixEnvelope{Type: evt.Type.Type, ID: evt.ID, RoomID: room, Sender: evt.Sender}
	if err := p.Enqueue(ctx, portal.NewMatrixEventItem(env, raw)); err != nil {
		b.log.Err(err).Stringer("event_id", evt.ID).Msg("Failed to queue a redaction")
	}
}

// expireWaitingRedactions looks, a few times per bridge.redaction_wait, for deletions still
// waiting for the message they delete (portal/redactionwait.go) past that bound. The wait is
// counted from when a deletion was parked, in the database, so it survives restarts.
func (b *Bridge) expireWaitingRedactions(ctx context.Context) {
	wait := b.cfg.Bridge.RedactionWaitDuration()
	tick := time.NewTicker(min(max(wait/4, 100*time.Millisecond), 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := b.portals.ExpireWaitingRedactions(ctx, time.Now().Add(-wait)); err != nil && ctx.Err() == nil {
			b.log.Err(err).Msg("Failed to look for deletions still waiting for their message")
		}
	}
}
