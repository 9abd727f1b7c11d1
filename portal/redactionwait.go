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
	"codeberg.org/causeway/causeway/msgconv"
)

// A Matrix user's deletion can reach the bridge before what it deletes: Dendrite hands users'
// redactions to the bridge through the bot's sync and everything else through appservice
// transactions, and nothing orders the two. Such a redaction is parked, durably, under its
// target (database.ParkedRedactionQuery), and the target, when its turn in the queue comes,
// is not sent to WhatsApp at all: deleting it there after the fact would still have shown it
// on the phones. A target that has not come within bridge.redaction_wait gets the user a
// notice and the archive a completeness entry, and is still not sent if it comes later.

// KindRedactionOverdue is a parked redaction whose wait is over (Manager.ExpireWaitingRedactions).
const KindRedactionOverdue = "redaction_overdue"

type redactionOverdue struct {
	Target    id.EventID `json:"target"`
	Redaction id.EventID `json:"redaction"`
}

// redactedEvent is the target of a redaction: room versions 11 and later name it in the content.
func redactedEvent(evt *msgconv.MatrixEvent) id.EventID {
	if evt.Content.Redacts != "" {
		return evt.Content.Redacts
	}
	return evt.Redacts
}

// parkRedaction handles a redaction whose target the queue has not sent: the target may still
// be on its way. One the bridge will never send (someone else's event, the bot's notice, a
// room change) fails with cause, as before; the homeserver says which it is. When the
// homeserver cannot say, the redaction waits rather than being dropped.
func (p *Portal) parkRedaction(ctx context.Context, env *MatrixEnvelope, evt *msgconv.MatrixEvent, cause error) error {
	log := zerolog.Ctx(ctx)
	target := redactedEvent(evt)
	r := &database.ParkedRedaction{
		PortalKey: p.row.PortalKey, Target: target, Redaction: env.ID,
		RedactedAt: time.UnixMilli(evt.Timestamp), ParkedAt: time.Now(),
	}
	queued, err := p.m.deps.DB.Queue.Has(ctx, database.ToWhatsApp, p.row.Receiver, "evt:"+string(target))
	if err != nil {
		return err
	}
	if known, err := p.m.matrix.GetEvent(ctx, env.RoomID, target); err != nil {
		log.Warn().Err(err).Stringer("target_id", target).Msg("The homeserver did not show a deleted event; its deletion waits for it")
	} else {
		if !queued && (known.Sender != env.Sender || known.StateKey != nil || known.Type == event.EventRedaction ||
			!IsRelayed(known.Type.Type, false)) {
			return permanent(cause)
		}
		r.TargetType, r.TargetSentAt = known.Type.Type, time.UnixMilli(known.Timestamp)
	}
	// With the item's removal from the queue: the target's item, behind this one, settles
	// the batch before it runs, so it sees the row.
	p.inflight.atCommit(func(ctx context.Context) error { return p.m.deps.DB.ParkedRedactions.Park(ctx, r) })
	log.Info().Stringer("target_id", target).Bool("target_queued", queued).
		Msg("A deletion came before what it deletes; it waits for it")
	return nil
}

// withholdDeleted keeps an event whose redaction came first off WhatsApp, and archives it as
// withheld. It reports whether the event was withheld.
func (p *Portal) withholdDeleted(ctx context.Context, item *database.QueueItem, env *MatrixEnvelope) (bool, error) {
	db := p.m.deps.DB
	r, err := db.ParkedRedactions.ByTarget(ctx, p.row.Receiver, env.ID)
	if err != nil || r == nil {
		return false, err
	}
	zerolog.Ctx(ctx).Info().Stringer("event_id", env.ID).Stringer("redaction_id", r.Redaction).Str("state", string(r.State)).
		Msg("Not sending an event that was deleted before it reached the bridge")
	if r.State == database.ParkedWithheld {
		return true, nil // a redelivery
	}
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		return p.withheldEntries(env, item.Payload, r), nil
	}); err != nil {
		return true, err
	}
	p.inflight.atCommit(func(ctx context.Context) error {
		return db.ParkedRedactions.SetState(ctx, p.row.Receiver, env.ID, database.ParkedWithheld)
	})
	return true, nil
}

// withheldEntries record what the user wrote and deleted before it reached WhatsApp: the
// attempt, and its outcome, so the transcript shows it with the reason it was not sent.
func (p *Portal) withheldEntries(env *MatrixEnvelope, raw []byte, r *database.ParkedRedaction) []*archive.Entry {
	msg := &archive.Message{Type: env.Type}
	if evt, err := msgconv.DecodeEvent(raw); err == nil {
		msg.Text, msg.Type = evt.Content.Body, string(evt.Content.MsgType)
		if rel := evt.Content.RelatesTo; evt.Type == event.EventReaction.Type && rel != nil {
			msg.Text, msg.Type = rel.Key, "reaction"
		}
	}
	msgID := MessageIDFor(env.ID)
	out := func(status, cause string) *archive.Outbound {
		return &archive.Outbound{Status: status, Error: cause, MatrixEventID: string(env.ID),
			MatrixRoomID: string(env.RoomID), MatrixSender: string(env.Sender)}
	}
	base := archive.Entry{Account: string(p.row.Receiver), Chat: p.row.ChatJID, ChatName: p.row.Name, MessageID: msgID}
	send, result := base, base
	send.Kind, send.Sender, send.Time, send.Message = archive.KindOutboundSend, string(env.Sender), time.UnixMilli(env.Timestamp), msg
	send.Outbound = out("withheld", "")
	result.Kind, result.Target, result.Time = archive.KindOutboundResult, &archive.Target{MessageID: msgID}, time.Now()
	result.Outbound = out("withheld", fmt.Sprintf("deleted in Matrix (%s) before it reached the bridge, so not sent to WhatsApp", r.Redaction))
	return []*archive.Entry{&send, &result}
}

// ExpireWaitingRedactions queues, in their portals, the parked redactions that have waited
// for their target since before parkedBefore (handleRedactionOverdue).
func (m *Manager) ExpireWaitingRedactions(ctx context.Context, parkedBefore time.Time) error {
	overdue, err := m.deps.DB.ParkedRedactions.Overdue(ctx, parkedBefore)
	if err != nil {
		return err
	}
	for _, r := range overdue {
		p, err := m.Get(ctx, r.PortalKey, false)
		if err != nil {
			return err
		}
		payload, err := json.Marshal(redactionOverdue{Target: r.Target, Redaction: r.Redaction})
		if err != nil {
			return fmt.Errorf("failed to encode an overdue redaction: %w", err)
		}
		// In the queue, behind anything of the chat already there, the target included if it
		// came meanwhile; the dedup key keeps later sweeps from queueing it again.
		if err := p.Enqueue(ctx, &database.QueueItem{
			Direction: database.ToMatrix, DedupKey: "redaction_overdue:" + string(r.Redaction),
			Kind: KindRedactionOverdue, Payload: payload,
		}); err != nil {
			return err
		}
	}
	return nil
}

// handleRedactionOverdue tells the user that a deletion found nothing to delete in time, and
// records in the archive's completeness ledger that the deleted event was never captured.
func (p *Portal) handleRedactionOverdue(ctx context.Context, item *database.QueueItem) error {
	var due redactionOverdue
	if err := json.Unmarshal(item.Payload, &due); err != nil {
		return permanent(fmt.Errorf("queued overdue redaction is corrupt: %w", err))
	}
	db := p.m.deps.DB
	r, err := db.ParkedRedactions.ByTarget(ctx, p.row.Receiver, due.Target)
	if err != nil {
		return err
	}
	if r == nil || r.State != database.ParkedWaiting || r.Redaction != due.Redaction {
		return nil
	}
	if queued, err := db.Queue.Has(ctx, database.ToWhatsApp, p.row.Receiver, "evt:"+string(due.Target)); err != nil {
		return err
	} else if queued {
		return nil // it came after all: when its turn comes it is withheld
	}
	wait := p.m.deps.Config.Bridge.RedactionWaitDuration()
	room := p.RoomID()
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		return []*archive.Entry{{
			Kind: archive.KindRedactionTargetMissing, Account: string(p.row.Receiver), Chat: p.row.ChatJID, ChatName: p.row.Name,
			MessageID: MessageIDFor(r.Target), Target: &archive.Target{MessageID: MessageIDFor(r.Target)},
			Sender: string(p.row.Receiver), Time: r.RedactedAt,
			Outbound: &archive.Outbound{MatrixEventID: string(r.Target), MatrixRoomID: string(room), MatrixSender: string(p.row.Receiver)},
			Completeness: &archive.Completeness{Reason: fmt.Sprintf(
				"was deleted by %s and had not reached the bridge %s later: its content was not captured, and it is not sent to WhatsApp",
				r.Redaction, wait)},
		}}, nil
	}); err != nil {
		return err
	}
	if room != "" {
		text := fmt.Sprintf("⚠️ Your deletion of your %s was not carried out on WhatsApp: the bridge had not received that %s %s after the deletion. "+
			"It was not sent to WhatsApp, and will not be if it reaches the bridge later.", describeParkedTarget(r), eventNoun(r.TargetType, ""), wait)
		rendered := format.RenderMarkdown(text, false, false)
		content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: rendered.Body, Format: rendered.Format,
			FormattedBody: rendered.FormattedBody, RelatesTo: (&event.RelatesTo{}).SetReplyTo(r.Target)}
		if _, err := p.m.matrix.SendMessage(ctx, p.m.matrix.BotMXID(), room, event.EventMessage, content, SendOptions{
			TransactionID: "cw.redwait." + string(r.Redaction),
		}); err != nil {
			return fmt.Errorf("failed to tell the user about a deletion that found nothing: %w", err)
		}
	}
	p.inflight.atCommit(func(ctx context.Context) error {
		return db.ParkedRedactions.SetState(ctx, p.row.Receiver, r.Target, database.ParkedExpired)
	})
	zerolog.Ctx(ctx).Warn().Stringer("target_id", r.Target).Stringer("redaction_id", r.Redaction).Dur("waited", wait).
		Msg("A deletion's target never reached the bridge")
	return nil
}

// describeParkedTarget names the deleted event for the notice: the bridge never had its
// content, so by its kind and the time it was sent.
func describeParkedTarget(r *database.ParkedRedaction) string {
	noun := eventNoun(r.TargetType, "")
	if r.TargetSentAt.IsZero() {
		return fmt.Sprintf("%s %s", noun, r.Target)
	}
	return fmt.Sprintf("%s sent %s", noun, r.TargetSentAt.Format(time.DateTime))
}
