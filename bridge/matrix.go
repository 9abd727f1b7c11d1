package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// commandPrefix lets a user address the bot in rooms other than their management room.
const commandPrefix = "!wa"

func (b *Bridge) isBridgeUser(userID id.UserID) bool {
	if userID == b.bot.UserID {
		return true
	}
	_, isPuppet := b.cfg.IsPuppet(userID)
	return isPuppet
}

func (b *Bridge) handleMember(ctx context.Context, evt *event.Event) {
	content := evt.Content.AsMember()
	if id.UserID(evt.GetStateKey()) != b.bot.UserID || content.Membership != event.MembershipInvite {
		return
	}
	if b.isBridgeUser(evt.Sender) {
		return // a ghost creating a portal; the portal joins the bot itself
	}
	b.handleBotInvite(ctx, evt, content)
}

func (b *Bridge) handleBotInvite(ctx context.Context, evt *event.Event, content *event.MemberEventContent) {
	log := zerolog.Ctx(ctx)
	level := b.cfg.Permissions.LevelFor(evt.Sender)
	if _, err := b.bot.JoinRoomByID(ctx, evt.RoomID); err != nil {
		log.Err(err).Msg("Failed to accept an invite")
		return
	}
	b.learnRoom(ctx, evt.RoomID)
	if level < config.LevelRelay {
		log.Info().Msg("Refused an invite from a user outside the bridge's permissions")
		b.reply(ctx, evt.RoomID, refusal(evt.Sender))
		if _, err := b.bot.LeaveRoom(ctx, evt.RoomID, nil); err != nil {
			log.Err(err).Msg("Failed to leave after refusing")
		}
		return
	}
	if !content.IsDirect {
		members, err := b.bot.JoinedMembers(ctx, evt.RoomID)
		if err != nil || len(members.Joined) > 2 {
			// A room shared with others is not a management room; the bot answers there only to "!wa".
			b.reply(ctx, evt.RoomID, fmt.Sprintf("Hello! Address me here with `%s help`.", commandPrefix))
			return
		}
	}
	user, err := b.db.Users.Get(ctx, evt.Sender)
	if err != nil {
		log.Err(err).Msg("Failed to load the user")
		return
	} else if user == nil {
		user = &database.User{MXID: evt.Sender}
	}
	user.ManagementRoom = evt.RoomID
	if err := b.db.Users.Put(ctx, user); err != nil {
		log.Err(err).Msg("Failed to save the management room")
		b.reply(ctx, evt.RoomID, "Sorry, I could not save this room as your management room. Please try again later.")
		return
	}
	log.Info().Msg("New management room")
	b.reply(ctx, evt.RoomID, "Hello! I am the WhatsApp bridge. This is your management room: "+
		"send me commands here without a prefix. Send `help` to see what I can do.")
}

func refusal(userID id.UserID) string {
	return fmt.Sprintf("Sorry, %s is not allowed to use this bridge. Ask the bridge's administrator to add you to its permissions.", userID)
}

func (b *Bridge) handleMessage(ctx context.Context, evt *event.Event) {
	if b.isBridgeUser(evt.Sender) {
		return
	}
	content := evt.Content.AsMessage()
	// A file whose caption is a command carries the command's input (a chat export to import).
	isCaption := content.MsgType == event.MsgFile && content.FileName != "" && content.Body != content.FileName
	if content.MsgType != event.MsgText && content.MsgType != event.MsgNotice && !isCaption {
		return
	}
	body := strings.TrimSpace(content.Body)
	user, err := b.db.Users.GetByManagementRoom(ctx, evt.RoomID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to look up the room")
		return
	}
	isManagement := user != nil && user.MXID == evt.Sender
	if rest, ok := cutCommandPrefix(body); ok {
		body = rest
	} else if !isManagement {
		return // ordinary chat in a room the bot is in
	}
	level := b.cfg.Permissions.LevelFor(evt.Sender)
	if level < config.LevelRelay {
		zerolog.Ctx(ctx).Info().Msg("Refused a command from a user outside the bridge's permissions")
		b.reply(ctx, evt.RoomID, refusal(evt.Sender))
		return
	}
	b.commands.run(ctx, &commandEvent{
		roomID: evt.RoomID, eventID: evt.ID, sender: evt.Sender, level: level,
		isManagement: isManagement, text: body,
	})
}

func cutCommandPrefix(body string) (string, bool) {
	if !strings.HasPrefix(body, commandPrefix) {
		return "", false
	}
	rest := body[len(commandPrefix):]
	if rest != "" && rest[0] != ' ' {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// reply sends a notice from the bot, rendering Markdown into HTML.
func (b *Bridge) reply(ctx context.Context, roomID id.RoomID, markdown string) {
	content := format.RenderMarkdown(markdown, true, false)
	content.MsgType = event.MsgNotice
	if _, err := b.botSend(ctx, roomID, event.EventMessage, &content); err != nil {
		zerolog.Ctx(ctx).Err(err).Stringer("room_id", roomID).Msg("Failed to send a bot reply")
	}
}
