package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/internal/harness/mxcrypto"
	"codeberg.org/causeway/causeway/wasim"
)

// stepTimeout bounds how long any one check waits for the other side.
const stepTimeout = 90 * time.Second

// mxUser is the demo's Matrix user as their client sees things.
type mxUser struct {
	cli      *mautrix.Client
	password string
	bot      id.UserID
	mgmt     id.RoomID
	since    string
	rooms    []id.RoomID             // the portals joined so far
	invites  map[id.RoomID]id.UserID // pending invites by inviter
	// crypto is the user's encryption device, nil when the demo runs unencrypted. With it the
	// user encrypts what it sends into encrypted rooms and decrypts what it reads there.
	crypto *mxcrypto.Device
}

// poll calls check until it reports done, fails, or ctx ends.
func poll(ctx context.Context, what string, check func() (bool, error)) error {
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openManagementRoom creates a direct chat with the bot and waits for its greeting. With an
// encryption device the chat is encrypted, as Element creates direct chats.
func (u *mxUser) openManagementRoom(ctx context.Context) error {
	start := time.Now()
	req := &mautrix.ReqCreateRoom{Invite: []id.UserID{u.bot}, IsDirect: true, Preset: "trusted_private_chat"}
	if u.crypto != nil {
		req.InitialState = append(req.InitialState, &event.Event{
			Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
		})
	}
	resp, err := u.cli.CreateRoom(ctx, req)
	if err != nil {
		return fmt.Errorf("failed to create the management room: %w", err)
	}
	u.mgmt = resp.RoomID
	if u.crypto != nil {
		if _, err := u.crypto.LearnRoom(ctx, u.mgmt); err != nil {
			return err
		}
	}
	_, err = u.waitBot(ctx, start, "management room")
	return err
}

// command sends a command to the bot and returns its first answer containing want.
func (u *mxUser) command(ctx context.Context, cmd, want string) (string, error) {
	sent := time.Now()
	if _, err := u.sendText(ctx, u.mgmt, cmd); err != nil {
		return "", fmt.Errorf("failed to send %q to the bot: %w", cmd, err)
	}
	return u.waitBot(ctx, sent, want)
}

// waitBot waits until the bot has said something containing want in the management room
// since after.
func (u *mxUser) waitBot(ctx context.Context, after time.Time, want string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	var body string
	err := poll(ctx, fmt.Sprintf("the bot to say %q", want), func() (bool, error) {
		evt, err := u.findEvent(ctx, u.mgmt, u.bot, func(e *event.Event) bool {
			return e.Type == event.EventMessage && !time.UnixMilli(e.Timestamp).Before(after.Add(-time.Second)) &&
				strings.Contains(e.Content.AsMessage().Body, want)
		})
		if evt != nil {
			body = evt.Content.AsMessage().Body
		}
		return evt != nil, err
	})
	return body, err
}

// waitInvite syncs until inviter invites the user to a room, joins it and returns it.
func (u *mxUser) waitInvite(ctx context.Context, inviter id.UserID) (id.RoomID, error) {
	return u.waitInviteFrom(ctx, map[id.UserID]bool{inviter: true})
}

// waitInviteFrom syncs until one of the inviters invites the user to a room, joins it and
// returns it. Invites from others that arrive meanwhile are kept for later calls.
func (u *mxUser) waitInviteFrom(ctx context.Context, inviters map[id.UserID]bool) (id.RoomID, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	for {
		for roomID, inviter := range u.invites {
			if inviters[inviter] {
				delete(u.invites, roomID)
				return roomID, u.join(ctx, roomID)
			}
		}
		if err := u.sync(ctx, 5*time.Second); err != nil {
			return "", fmt.Errorf("waiting for an invite: %w", err)
		}
	}
}

// join joins a room; with encryption, the device learns at once whether the room is encrypted,
// so that the user's first message there is encrypted too.
func (u *mxUser) join(ctx context.Context, room id.RoomID) error {
	if _, err := u.cli.JoinRoomByID(ctx, room); err != nil {
		return fmt.Errorf("failed to join %s: %w", room, err)
	}
	if u.crypto != nil {
		if _, err := u.crypto.LearnRoom(ctx, room); err != nil {
			return err
		}
	}
	return nil
}

// sync runs one /sync as the user's client: the encryption device takes its room keys and
// the rooms' state, and invites are kept for waitInviteFrom.
func (u *mxUser) sync(ctx context.Context, timeout time.Duration) error {
	resp, err := u.cli.SyncRequest(ctx, int(timeout.Milliseconds()), u.since, "", false, event.PresenceOnline)
	if err != nil {
		return err
	}
	if u.crypto != nil {
		u.crypto.ProcessSync(ctx, resp, u.since)
	}
	u.since = resp.NextBatch
	for roomID, room := range resp.Rooms.Invite {
		if isSpaceInvite(room.State.Events) {
			continue // the user's personal WhatsApp space, not a chat
		}
		for _, evt := range room.State.Events {
			if evt.Type == event.StateMember && evt.GetStateKey() == string(u.cli.UserID) {
				if u.invites == nil {
					u.invites = map[id.RoomID]id.UserID{}
				}
				u.invites[roomID] = evt.Sender
			}
		}
	}
	return nil
}

// send sends an event as the user's client does: encrypted into an encrypted room.
func (u *mxUser) send(ctx context.Context, room id.RoomID, typ event.Type, content any) (id.EventID, error) {
	if u.crypto != nil {
		return u.crypto.Send(ctx, room, typ, content)
	}
	resp, err := u.cli.SendMessageEvent(ctx, room, typ, content)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

func (u *mxUser) sendText(ctx context.Context, room id.RoomID, text string) (id.EventID, error) {
	return u.send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
}

// encrypted says whether the user's device knows the room as encrypted.
func (u *mxUser) encrypted(ctx context.Context, room id.RoomID) bool {
	return u.crypto != nil && u.crypto.IsEncrypted(ctx, room)
}

// waitEvent waits until sender (anyone if empty) has sent an event matching match to the room.
func (u *mxUser) waitEvent(ctx context.Context, room id.RoomID, sender id.UserID, what string, match func(*event.Event) bool) (*event.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	var found *event.Event
	err := poll(ctx, what, func() (bool, error) {
		var err error
		found, err = u.findEvent(ctx, room, sender, match)
		return found != nil, err
	})
	return found, err
}

// findEvent looks through the room's latest events, as the user's client shows them: in an
// encrypted room it decrypts them, and a message that matches but came in plaintext is an
// error, not a find. Transient errors and events whose key has not arrived yet count as not
// found: the caller polls again.
func (u *mxUser) findEvent(ctx context.Context, room id.RoomID, sender id.UserID, match func(*event.Event) bool) (*event.Event, error) {
	if u.crypto != nil {
		_ = u.sync(ctx, 0) // room keys come as to-device events
	}
	resp, err := u.cli.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		return nil, nil
	}
	encrypted := u.encrypted(ctx, room)
	for _, evt := range resp.Chunk {
		if sender != "" && evt.Sender != sender {
			continue
		}
		evt.RoomID = room
		if evt.Type == event.EventEncrypted && u.crypto != nil {
			plain, err := u.crypto.Decrypt(ctx, evt)
			if err != nil {
				continue
			}
			if match(plain) {
				return plain, nil
			}
			continue
		}
		_ = evt.Content.ParseRaw(evt.Type)
		if match(evt) {
			if encrypted && evt.StateKey == nil {
				return nil, fmt.Errorf("%s's %s event %s reached the encrypted room %s in plaintext", evt.Sender, evt.Type.Type, evt.ID, room)
			}
			return evt, nil
		}
	}
	return nil, nil
}

// waitRedacted waits until the event has been redacted.
func (u *mxUser) waitRedacted(ctx context.Context, room id.RoomID, evtID id.EventID) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	return poll(ctx, "the redaction of "+string(evtID), func() (bool, error) {
		got, err := u.cli.GetEvent(ctx, room, evtID)
		return err == nil && got.Unsigned.RedactedBecause != nil, nil
	})
}

// rawContent is an event's content as plain JSON values, for checking relations.
func rawContent(evt *event.Event) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(evt.Content.VeryRaw, &m)
	return m
}

func relatesTo(evt *event.Event) map[string]any {
	rel, _ := rawContent(evt)["m.relates_to"].(map[string]any)
	return rel
}

func isText(body string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == body
	}
}

// waitWA waits until a phone receives a WhatsApp event matching match.
func waitWA[T any](ctx context.Context, phone *wasim.Phone, what string, match func(T) bool) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	got, err := wasim.WaitFor(ctx, phone.Events, match)
	if err != nil {
		return got, fmt.Errorf("%s never reached +%s on WhatsApp: %w", what, phone.JID().User, err)
	}
	return got, nil
}

// isSpaceInvite reports whether an invite's stripped state describes a space.
func isSpaceInvite(state []*event.Event) bool {
	for _, evt := range state {
		if evt.Type.Type == event.StateCreate.Type {
			var content struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(evt.Content.VeryRaw, &content); err == nil && content.Type == "m.space" {
				return true
			}
		}
	}
	return false
}
