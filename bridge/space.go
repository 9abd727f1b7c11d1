package bridge

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

// portalRoomCreated is the portals' RoomCreated hook.
func (b *Bridge) portalRoomCreated(ctx context.Context, p *portal.Portal) {
	b.addToSpace(ctx, p.Key().Receiver, p.RoomID())
	b.offerMigration(ctx, p)
}

// addToSpace files a new portal room in the receiver's personal space, creating the space
// on first use, so all of a user's WhatsApp chats sit together in their client.
func (b *Bridge) addToSpace(ctx context.Context, receiver id.UserID, room id.RoomID) {
	space, err := b.spaceFor(ctx, receiver)
	if err == nil {
		via := map[string]any{"via": []string{b.cfg.Homeserver.Domain}}
		if _, err = b.bot.SendStateEvent(ctx, space, event.StateSpaceChild, room.String(), via); err == nil {
			_, err = b.bot.SendStateEvent(ctx, room, event.StateSpaceParent, space.String(),
				map[string]any{"via": []string{b.cfg.Homeserver.Domain}, "canonical": true})
		}
	}
	if err != nil {
		b.log.Warn().Err(err).Stringer("room_id", room).Msg("Failed to add a portal to the user's space")
	}
}

func (b *Bridge) spaceFor(ctx context.Context, receiver id.UserID) (id.RoomID, error) {
	u, err := b.getUser(ctx, receiver, true)
	if err != nil {
		return "", err
	}
	u.spaceMu.Lock()
	defer u.spaceMu.Unlock()
	u.mu.Lock()
	space := u.row.SpaceRoom
	u.mu.Unlock()
	if space != "" {
		return space, nil
	}
	resp, err := b.bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Visibility:      "private",
		Preset:          "private_chat",
		Name:            "WhatsApp",
		Topic:           "Your WhatsApp chats, bridged by Causeway",
		Invite:          []id.UserID{receiver},
		CreationContent: map[string]any{"type": "m.space"},
		PowerLevelOverride: &event.PowerLevelsEventContent{
			Users: map[id.UserID]int{b.bot.UserID: 100, receiver: 50},
		},
	})
	if err != nil {
		return "", fmt.Errorf("failed to create the personal space: %w", err)
	}
	u.mu.Lock()
	u.row.SpaceRoom = resp.RoomID
	row := *u.row
	u.mu.Unlock()
	if err := b.db.Users.Put(ctx, &row); err != nil {
		return "", err
	}
	return resp.RoomID, nil
}
