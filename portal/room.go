package portal

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/redact"
	"codeberg.org/causeway/causeway/puppet"
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
	bot := p.m.matrix.BotMXID()
	req := &mautrix.ReqCreateRoom{
		Visibility: "private",
		Preset:     "private_chat",
		Invite:     []id.UserID{receiver},
		PowerLevelOverride: &event.PowerLevelsEventContent{
			Users: map[id.UserID]int{bot: powerAdmin},
		},
	}
	creator := bot
	var members []types.JID
	var admins map[types.JID]bool
	switch {
	case p.isStatus():
		p.statusRoom(req)
	case p.row.IsGroup:
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
			jid := puppet.PreferPhone(part.JID, part.PhoneNumber)
			if jid.User == own.User {
				continue
			}
			members = append(members, jid)
			if part.IsAdmin || part.IsSuperAdmin {
				admins[jid] = true
			}
		}
	default:
		p.updateGhostName(ctx, p.chat)
		g, err := p.m.ghosts.Get(ctx, p.chat)
		if err != nil {
			return err
		}
		creator = g.MXID
		req.IsDirect = true
		req.Invite = append(req.Invite, bot)
		req.PowerLevelOverride.Users[creator] = powerAdmin
		p.dmLooksLikeContact(req, g)
	}
	p.withBridgeInfo(req)
	roomID, err := p.m.matrix.CreateRoom(ctx, creator, req)
	if err != nil {
		return fmt.Errorf("failed to create the Matrix room: %w", err)
	}
	p.roomMu.Lock()
	p.row.MXID = roomID
	p.roomMu.Unlock()
	if err := p.m.deps.DB.Portals.Put(ctx, p.row); err != nil {
		return err
	}
	p.m.roomCreated(p)
	if err := p.recordBridgeInfo(ctx); err != nil {
		p.log.Warn().Err(err).Msg("Failed to record the room's bridge info; it is sent again on next use")
	}
	p.log.Info().Stringer("room_id", roomID).Bool("group", p.row.IsGroup).Msg("Created the portal room")
	if !p.row.IsGroup && !p.isStatus() {
		if err := p.m.matrix.EnsureJoined(ctx, bot, roomID); err != nil {
			p.log.Warn().Err(err).Msg("The bot failed to join the DM")
		}
	}
	for _, jid := range members {
		if err := p.joinMember(ctx, jid, admins[jid]); err != nil {
			p.log.Warn().Err(err).Str("member", redact.ForConfig(p.m.deps.Config).JID(jid.String())).Msg("Failed to add a group member")
		}
	}
	// The hook runs once the room is complete: it may have the bot speak in it.
	if hook := p.m.deps.RoomCreated; hook != nil {
		hook(ctx, p)
	}
	return nil
}

// updateGhostName refreshes a contact's ghost name from the receiver's address book, when
// the login is connected. A failure only leaves an older name.
func (p *Portal) updateGhostName(ctx context.Context, jid types.JID) {
	wa, ok := p.m.deps.Logins.WhatsApp(p.row.Receiver)
	if !ok {
		return
	}
	if err := p.m.ghosts.UpdateName(ctx, jid, func(ctx context.Context) config.ContactNames { return wa.ContactNames(ctx, jid) }); err != nil {
		p.log.Warn().Err(err).Str("jid", redact.ForConfig(p.m.deps.Config).JID(jid.String())).Msg("Failed to update a contact's name")
	}
}

// joinMember brings a WhatsApp group member's ghost into the room.
func (p *Portal) joinMember(ctx context.Context, jid types.JID, admin bool) error {
	p.updateGhostName(ctx, jid)
	ghost, err := p.joinedGhost(ctx, jid)
	if err != nil {
		return err
	}
	if admin {
		if err := p.m.matrix.SetPowerLevel(ctx, p.m.matrix.BotMXID(), p.RoomID(), ghost, powerModerator); err != nil {
			return fmt.Errorf("failed to make %s a moderator: %w", ghost, err)
		}
	}
	return nil
}
