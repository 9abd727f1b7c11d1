package portal

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
)

// Power levels in portal rooms: the bot and the creator administer the room; WhatsApp
// group admins' ghosts moderate; the receiver may do what a WhatsApp member may.
const (
	powerAdmin     = 100
	powerModerator = 50
)

// ensureRoom creates the Matrix room on first use: a DM created by the contact's ghost and
// marked direct, or a group room created by the bot with the group's name, topic and members.
func (p *Portal) ensureRoom(ctx context.Context) error {
	if p.RoomID() != "" {
		return nil
	}
	receiver := p.row.Receiver
	bot := p.m.bot
	req := &mautrix.ReqCreateRoom{
		Visibility: "private",
		Preset:     "private_chat",
		Invite:     []id.UserID{receiver},
		PowerLevelOverride: &event.PowerLevelsEventContent{
			Users: map[id.UserID]int{bot.UserID: powerAdmin},
		},
	}
	creator := bot
	var members []types.JID
	var admins map[types.JID]bool
	if p.row.IsGroup {
		wa, err := p.whatsApp()
		if err != nil {
			return err
		}
		info, err := wa.GroupInfo(ctx, p.chat)
		if err != nil {
			return fmt.Errorf("failed to get the group's info: %w", err)
		}
		p.row.Name, p.row.Topic = info.Name, info.Topic
		req.Name, req.Topic = info.Name, info.Topic
		// The receiver may manage the room; WhatsApp decides whether they may manage the
		// group, and a refusal is reported in the room.
		req.PowerLevelOverride.Users[receiver] = powerModerator
		own := wa.OwnJID()
		admins = map[types.JID]bool{}
		for _, part := range info.Participants {
			jid := participantJID(part)
			if jid.User == own.User {
				continue
			}
			members = append(members, jid)
			if part.IsAdmin || part.IsSuperAdmin {
				admins[jid] = true
			}
		}
	} else {
		pup, err := p.m.deps.Puppets.Get(ctx, p.chat)
		if err != nil {
			return err
		}
		if wa, ok := p.m.deps.Logins.WhatsApp(receiver); ok {
			if err := p.m.deps.Puppets.UpdateName(ctx, pup, func(ctx context.Context) config.ContactNames { return wa.ContactNames(ctx, p.chat) }); err != nil {
				p.log.Warn().Err(err).Msg("Failed to update the contact's name")
			}
		}
		creator = p.m.deps.Puppets.Intent(pup)
		req.IsDirect = true
		req.Invite = append(req.Invite, bot.UserID)
		req.PowerLevelOverride.Users[creator.UserID] = powerAdmin
	}
	resp, err := creator.CreateRoom(ctx, req)
	if err != nil {
		return fmt.Errorf("failed to create the Matrix room: %w", err)
	}
	p.roomMu.Lock()
	p.row.MXID = resp.RoomID
	p.roomMu.Unlock()
	if err := p.m.deps.DB.Portals.Put(ctx, p.row); err != nil {
		return err
	}
	p.m.roomCreated(p)
	p.log.Info().Stringer("room_id", resp.RoomID).Bool("group", p.row.IsGroup).Msg("Created the portal room")
	if !p.row.IsGroup {
		if _, err := bot.JoinRoomByID(ctx, resp.RoomID); err != nil {
			p.log.Warn().Err(err).Msg("The bot failed to join the DM")
		}
	}
	for _, jid := range members {
		if err := p.joinMember(ctx, jid, admins[jid]); err != nil {
			p.log.Warn().Err(err).Str("member", jid.String()).Msg("Failed to add a group member")
		}
	}
	// The hook runs once the room is complete: it may have the bot speak in it.
	if hook := p.m.deps.RoomCreated; hook != nil {
		hook(ctx, p)
	}
	return nil
}

// joinMember brings a WhatsApp group member's ghost into the room.
func (p *Portal) joinMember(ctx context.Context, jid types.JID, admin bool) error {
	pup, err := p.m.deps.Puppets.Get(ctx, jid)
	if err != nil {
		return err
	}
	if wa, ok := p.m.deps.Logins.WhatsApp(p.row.Receiver); ok {
		if err := p.m.deps.Puppets.UpdateName(ctx, pup, func(ctx context.Context) config.ContactNames { return wa.ContactNames(ctx, jid) }); err != nil {
			p.log.Debug().Err(err).Msg("Failed to update a member's name")
		}
	}
	intent := p.m.deps.Puppets.Intent(pup)
	if err := intent.EnsureJoined(ctx, p.RoomID()); err != nil {
		return err
	}
	if admin {
		if _, err := p.m.bot.SetPowerLevel(ctx, p.RoomID(), intent.UserID, powerModerator); err != nil {
			return fmt.Errorf("failed to make %s a moderator: %w", intent.UserID, err)
		}
	}
	return nil
}

// participantJID prefers the phone-number JID, which names the same ghost as the contact's DM.
func participantJID(part types.GroupParticipant) types.JID {
	if part.JID.Server == types.HiddenUserServer && !part.PhoneNumber.IsEmpty() {
		return part.PhoneNumber.ToNonAD()
	}
	return part.JID.ToNonAD()
}

var (
	evtRoomName = event.StateRoomName
	evtTopic    = event.StateTopic
)
