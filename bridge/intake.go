package bridge

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/portal"
)

// A Matrix user's event reaches the bridge by two routes: the homeserver pushes it in an
// appservice transaction (http.go), and the bot's own /sync returns it (matrixsync.go). The
// sync is there because Dendrite 0.13.8 pushes users' redactions not at all, and after a stall
// pushes nothing for minutes (docs/dendrite-duplicate-events.md). Both routes hand events to
// takeInMatrixEvent, and from there they take the same path. Whichever delivers an event first
// queues it, and records its ID in the same database transaction (accepted_matrix_event); the
// other finds the record and does nothing.
//
// Order: the sync delivers a room's events in timeline order, and an event is checked and
// queued before the next one of the same route is looked at. Dendrite's pushes are in order
// too, but can skip an event (docs/dendrite-duplicate-events.md, point 7), which the sync then
// brings late; so a pushed event first has the sync's earlier ones taken in (syncahead.go).
// When one route catches up with the other, everything it finds is already queued, in the order
// it was queued: no event overtakes one before it. The sync route carries only the events of the bridge's users
// (matrixsync.go), not the room's state or anyone else's messages, so it leaves each event to
// the push for a moment (pushGrace): while pushes flow, they come first and the bridge sees
// a room as before, a join or a leave before the message after it. Only events the push is
// late with are the sync's, and those may be handled before an earlier leave, or another
// member's message, that only the push brings.
type intakeRoute string

const (
	routeAppservice intakeRoute = "appservice"
	routeSync       intakeRoute = "sync"
)

// acceptedRetention is how long the bridge remembers an event it took in. The second route
// brings an event minutes after the first at worst, unless the bridge is down in between:
// then the homeserver pushes it again when the bridge is back, within Dendrite's retry
// (64 s at most). A week covers any downtime an operator would leave unnoticed; past it, an
// event that became a WhatsApp message is still known by its message row.
const acceptedRetention = 7 * 24 * time.Hour

// takeInMatrixEvent is where both routes hand over a Matrix event. Our own ghosts' and bot's
// events are echoes; commands are the bot's business (handleEvent), not the portal's.
func (b *Bridge) takeInMatrixEvent(ctx context.Context, route intakeRoute, env *portal.MatrixEnvelope, raw json.RawMessage) error {
	if b.isBridgeUser(env.Sender) || isCommand(env) {
		return nil
	}
	return b.queuePortalEvent(ctx, route, env, raw)
}

// enqueueMatrix queues an event unless the other route (or an earlier delivery) took it in.
func (b *Bridge) enqueueMatrix(ctx context.Context, route intakeRoute, p *portal.Portal, env *portal.MatrixEnvelope, item *database.QueueItem) error {
	first, err := p.EnqueueMatrixEvent(ctx, env.ID, item)
	if err != nil {
		return err
	}
	outcome := "first"
	if !first {
		outcome = "repeat"
	}
	b.metrics.intake.WithLabelValues(string(route), outcome).Inc()
	zerolog.Ctx(ctx).Debug().Stringer("event_id", env.ID).Str("route", string(route)).Bool("first", first).
		Msg("Matrix event delivered")
	return nil
}

// takeInSynced hands an event from the bot's sync to takeInMatrixEvent, in the form an
// appservice transaction carries it.
func (b *Bridge) takeInSynced(ctx context.Context, room id.RoomID, evt *event.Event) error {
	if evt.Unsigned.RedactedBecause != nil || string(evt.Content.VeryRaw) == "{}" {
		// Redacted before the sync read it: its content is gone. Its redaction follows it in
		// this sync; the push, which carries the content as sent, brings the event itself,
		// and the waiting redaction keeps it off WhatsApp (portal/redactionwait.go).
		return nil
	}
	// Sync events carry no room ID, and the content goes on exactly as received.
	e := *evt
	e.RoomID = room
	e.Content = event.Content{VeryRaw: evt.Content.VeryRaw}
	raw, err := json.Marshal(&e)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("event_id", evt.ID).Msg("Skipping a synced event that does not encode")
		return nil
	}
	var env portal.MatrixEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("event_id", evt.ID).Msg("Skipping an unparseable synced event")
		return nil
	}
	return b.takeInMatrixEvent(ctx, routeSync, &env, raw)
}

// pruneAccepted forgets, every hour, the events taken in more than acceptedRetention ago.
func (b *Bridge) pruneAccepted(ctx context.Context) {
	every(ctx, time.Hour, func() {
		n, err := b.db.Queue.PruneAccepted(ctx, time.Now().Add(-acceptedRetention))
		if err != nil && ctx.Err() == nil {
			b.log.Err(err).Msg("Failed to prune the record of Matrix events taken in")
		} else if n > 0 {
			b.log.Debug().Int64("rows", n).Msg("Pruned the record of Matrix events taken in")
		}
	})
}
