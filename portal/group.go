package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
)

// GroupChange is a change to a WhatsApp group, as queued.
type GroupChange struct {
	ID        string      `json:"id"`
	Sender    types.JID   `json:"sender"`
	Timestamp time.Time   `json:"timestamp"`
	Name      *string     `json:"name,omitempty"`
	Topic     *string     `json:"topic,omitempty"`
	Join      []types.JID `json:"join,omitempty"`
	Leave     []types.JID `json:"leave,omitempty"`
	Promote   []types.JID `json:"promote,omitempty"`
	Demote    []types.JID `json:"demote,omitempty"`
}

// NewGroupChangeItem wraps a group change for the queue.
func NewGroupChangeItem(change *GroupChange) (*database.QueueItem, error) {
	payload, err := json.Marshal(change)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the group change: %w", err)
	}
	return &database.QueueItem{
		Direction: database.ToMatrix, DedupKey: "group:" + change.ID, Kind: KindWAGroupEvent,
		Payload: payload, QueuedAt: change.Timestamp,
	}, nil
}

func (p *Portal) handleWAGroupEvent(ctx context.Context, item *database.QueueItem) error {
	var change GroupChange
	if err := json.Unmarshal(item.Payload, &change); err != nil {
		return permanent(fmt.Errorf("queued group change is corrupt: %w", err))
	}
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) { return p.groupEntries(&change), nil }); err != nil {
		return err
	}
	if p.RoomID() == "" {
		// The room will be created with the group's current state, which includes this change.
		return p.ensureRoom(ctx)
	}
	room := p.RoomID()
	bot := p.m.matrix.BotMXID()
	actor := bot
	if !change.Sender.IsEmpty() {
		if ghost, err := p.joinedGhost(ctx, change.Sender); err == nil {
			actor = ghost
		}
	}
	ts := change.Timestamp
	if change.Name != nil && *change.Name != p.row.Name {
		if _, err := p.m.matrix.SendState(ctx, actor, room, event.StateRoomName, "", map[string]string{"name": *change.Name}, ts); err != nil {
			return fmt.Errorf("failed to rename the room: %w", err)
		}
		p.row.Name = *change.Name
	}
	if change.Topic != nil && *change.Topic != p.row.Topic {
		if _, err := p.m.matrix.SendState(ctx, actor, room, event.StateTopic, "", map[string]string{"topic": *change.Topic}, ts); err != nil {
			return fmt.Errorf("failed to set the topic: %w", err)
		}
		p.row.Topic = *change.Topic
	}
	if err := p.m.deps.DB.Portals.Put(ctx, p.row); err != nil {
		return err
	}
	wa, _ := p.m.deps.Logins.WhatsApp(p.row.Receiver)
	for _, jid := range change.Join {
		if wa != nil && jid.User == wa.OwnJID().User {
			continue
		}
		if err := p.joinMember(ctx, jid, false); err != nil {
			return fmt.Errorf("failed to add %s: %w", jid, err)
		}
	}
	for _, jid := range change.Leave {
		if wa != nil && jid.User == wa.OwnJID().User {
			continue // the receiver left the group on the phone; the room and its record stay
		}
		target, err := p.m.ghosts.Get(ctx, jid)
		if err != nil {
			return err
		}
		if change.Sender.IsEmpty() || change.Sender.User == jid.User {
			err = p.m.matrix.Leave(ctx, target.MXID, room)
		} else {
			err = p.m.matrix.Kick(ctx, actor, room, target.MXID, removedReason)
			if err != nil && actor != bot { // the remover's ghost may lack the power; the bot has it
				err = p.m.matrix.Kick(ctx, bot, room, target.MXID, removedReason)
			}
		}
		if err != nil {
			p.log.Warn().Err(err).Str("member", jid.String()).Msg("Failed to remove a member from the room")
		}
	}
	for _, change := range []struct {
		users []types.JID
		level int
	}{{change.Promote, powerModerator}, {change.Demote, 0}} {
		for _, jid := range change.users {
			g, err := p.m.ghosts.Get(ctx, jid)
			if err != nil {
				return err
			}
			if err := p.m.matrix.SetPowerLevel(ctx, bot, room, g.MXID, change.level); err != nil {
				return fmt.Errorf("failed to change the power level of %s: %w", g.MXID, err)
			}
		}
	}
	return nil
}

const removedReason = "Removed from the WhatsApp group"
