package bridge

import (
	"context"
	"errors"
	"sort"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
)

// The admin room is where the bridge tells its administrators that capture stopped for someone: a
// login refused, banned or logged out is a hole in the records office's archive, not only the user's
// problem. bridge.admin_room names an existing room; empty, the bot creates one the first time it has
// something to say and invites every user the permissions give the admin level by user ID.

// kvAdminRoom remembers the room the bot created.
const kvAdminRoom = "admin_room"

// notifyAdmins posts a notice to the admin room, creating it on first use. Failing to is logged, not
// returned: the user's own notice and the ledger do not depend on it.
func (b *Bridge) notifyAdmins(ctx context.Context, markdown string) {
	room, err := b.adminRoom(ctx)
	if err != nil {
		b.log.Warn().Err(err).Str("notice", markdown).Msg("Could not tell the admins")
		return
	}
	b.reply(ctx, room, markdown)
}

// AdminRoom is the admin room, once it exists.
func (b *Bridge) AdminRoom(ctx context.Context) id.RoomID {
	if r := b.cfg.Bridge.AdminRoom; r != "" {
		return id.RoomID(r)
	}
	room, _ := b.db.KV.Get(ctx, kvAdminRoom)
	return id.RoomID(room)
}

func (b *Bridge) adminRoom(ctx context.Context) (id.RoomID, error) {
	b.adminRoomMu.Lock()
	defer b.adminRoomMu.Unlock()
	if r := b.cfg.Bridge.AdminRoom; r != "" {
		room := id.RoomID(r)
		if !b.adminRoomJoined {
			// The operator invited the bot; accepting is idempotent, and a room it cannot join is
			// reported on every notice until someone fixes the config or the invite.
			if _, err := b.bot.JoinRoomByID(ctx, room); err != nil {
				return "", err
			}
			// An operator's encrypted room: its notices must go encrypted, to its members.
			b.learnRoom(ctx, room)
			b.adminRoomJoined = true
		}
		return room, nil
	}
	if room, err := b.db.KV.Get(ctx, kvAdminRoom); err != nil {
		return "", err
	} else if room != "" {
		return id.RoomID(room), nil
	}
	admins := adminUsers(b.cfg.Permissions)
	if len(admins) == 0 {
		return "", errors.New("no user has the admin level by user ID under permissions, so there is nobody to invite to an admin room; set bridge.admin_room or name an admin")
	}
	levels := map[id.UserID]int{b.bot.UserID: 100}
	for _, a := range admins {
		levels[a] = 100
	}
	resp, err := b.botCreateRoom(ctx, &mautrix.ReqCreateRoom{
		Visibility: "private",
		Preset:     "private_chat",
		Name:       "WhatsApp bridge administration",
		Topic:      "Notices from the WhatsApp bridge: when capture stops for someone, and when it resumes",
		PowerLevelOverride: &event.PowerLevelsEventContent{
			Users: levels,
		},
	})
	if err != nil {
		return "", err
	}
	if err := b.db.KV.Set(ctx, kvAdminRoom, resp.RoomID.String()); err != nil {
		return "", err
	}
	// One by one: an admin the homeserver does not know must not keep the others out.
	for _, a := range admins {
		if _, err := b.bot.InviteUser(ctx, resp.RoomID, &mautrix.ReqInviteUser{UserID: a}); err != nil {
			b.log.Warn().Err(err).Stringer("admin", a).Msg("Failed to invite an admin to the admin room")
		}
	}
	b.log.Info().Stringer("room_id", resp.RoomID).Int("admins", len(admins)).Msg("Created the admin room")
	return resp.RoomID, nil
}

// adminUsers are the users the permissions name as admins, sorted.
func adminUsers(p config.Permissions) []id.UserID {
	var out []id.UserID
	for key := range p {
		user := id.UserID(key)
		if _, _, err := user.Parse(); err == nil && p.LevelFor(user) == config.LevelAdmin {
			out = append(out, user)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
