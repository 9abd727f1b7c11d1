//go:build goolm

package mxcrypto

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Available says whether this build has Matrix encryption.
const Available = true

// Device is a Matrix user's encryption device. Its keys live in memory: it lasts as long as
// the process, like a browser tab that is never reloaded.
type Device struct {
	cli   *mautrix.Client
	mach  *crypto.OlmMachine
	state mautrix.StateStore
}

// New makes cli's login an encryption device: it uploads the device keys and one-time keys.
// From then on the caller hands every /sync of cli to ProcessSync.
func New(ctx context.Context, cli *mautrix.Client, log zerolog.Logger) (*Device, error) {
	who, err := cli.Whoami(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to learn the device of %s: %w", cli.UserID, err)
	}
	cli.DeviceID = who.DeviceID
	state := mautrix.NewMemoryStateStore()
	cli.StateStore = state
	mlog := log.With().Str("component", "user_crypto").Stringer("user_id", cli.UserID).Logger()
	mach := crypto.NewOlmMachine(cli, &mlog, crypto.NewMemoryStore(nil), state.(crypto.StateStore))
	if err := mach.Load(ctx); err != nil {
		return nil, fmt.Errorf("failed to create the Olm account of %s: %w", cli.UserID, err)
	}
	if err := mach.ShareKeys(ctx, -1); err != nil {
		mach.Destroy()
		return nil, fmt.Errorf("failed to upload the device keys of %s: %w", cli.UserID, err)
	}
	return &Device{cli: cli, mach: mach, state: state}, nil
}

// ProcessSync takes what one /sync carries for the device: crypto first (room keys, device
// lists, one-time-key counts), then the joined rooms' state, so that the device knows which
// rooms are encrypted and who is in them.
func (d *Device) ProcessSync(ctx context.Context, resp *mautrix.RespSync, since string) {
	d.mach.ProcessSyncResponse(ctx, resp, since)
	for roomID, room := range resp.Rooms.Join {
		for _, evt := range append(room.State.Events, room.Timeline.Events...) {
			if evt.StateKey == nil {
				continue
			}
			evt.RoomID = roomID
			evt.Type.Class = event.StateEventType
			_ = evt.Content.ParseRaw(evt.Type)
			mautrix.UpdateStateStore(ctx, d.state, evt)
			if evt.Type == event.StateMember {
				d.mach.HandleMemberEvent(ctx, evt)
			}
		}
	}
}

// LearnRoom reads a room's encryption and members from the homeserver, for a room just
// joined: a /sync may not have carried them yet. It says whether the room is encrypted.
func (d *Device) LearnRoom(ctx context.Context, room id.RoomID) (bool, error) {
	var enc event.EncryptionEventContent
	err := d.cli.StateEvent(ctx, room, event.StateEncryption, "", &enc)
	if errors.Is(err, mautrix.MNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("failed to read the encryption of %s: %w", room, err)
	}
	if err := d.state.SetEncryptionEvent(ctx, room, &enc); err != nil {
		return false, err
	}
	return true, nil
}

// IsEncrypted says whether the device knows the room as encrypted.
func (d *Device) IsEncrypted(ctx context.Context, room id.RoomID) bool {
	ok, _ := d.state.IsEncrypted(ctx, room)
	return ok
}

// Decrypt decrypts an m.room.encrypted event of a room. It fails with ErrNoSession while the
// room key has not arrived.
func (d *Device) Decrypt(ctx context.Context, evt *event.Event) (*event.Event, error) {
	evt.Type.Class = event.MessageEventType
	if err := evt.Content.ParseRaw(event.EventEncrypted); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
		return nil, fmt.Errorf("event %s is not m.room.encrypted: %w", evt.ID, err)
	}
	plain, err := d.mach.DecryptMegolmEvent(ctx, evt)
	if errors.Is(err, crypto.ErrNoSessionFound) {
		return nil, fmt.Errorf("%w: %w", ErrNoSession, err)
	} else if err != nil {
		return nil, err
	}
	_ = plain.Content.ParseRaw(plain.Type)
	return plain, nil
}

// Send sends an event into a room, encrypted when the room is: it shares a Megolm session
// with the members' devices when there is none yet, as clients do.
func (d *Device) Send(ctx context.Context, room id.RoomID, typ event.Type, content any) (id.EventID, error) {
	if !d.IsEncrypted(ctx, room) {
		resp, err := d.cli.SendMessageEvent(ctx, room, typ, content)
		if err != nil {
			return "", err
		}
		return resp.EventID, nil
	}
	enc, err := d.mach.EncryptMegolmEvent(ctx, room, typ, content)
	if errors.Is(err, crypto.ErrSessionExpired) || errors.Is(err, crypto.ErrNoGroupSession) || errors.Is(err, crypto.ErrSessionNotShared) {
		members, merr := d.cli.JoinedMembers(ctx, room)
		if merr != nil {
			return "", fmt.Errorf("failed to list the members of %s to share a room key with: %w", room, merr)
		}
		users := make([]id.UserID, 0, len(members.Joined))
		for u := range members.Joined {
			users = append(users, u)
		}
		if err := d.mach.ShareGroupSession(ctx, room, users); err != nil {
			return "", fmt.Errorf("failed to share a room key in %s: %w", room, err)
		}
		enc, err = d.mach.EncryptMegolmEvent(ctx, room, typ, content)
	}
	if err != nil {
		return "", fmt.Errorf("failed to encrypt a %s event for %s: %w", typ.Type, room, err)
	}
	resp, err := d.cli.SendMessageEvent(ctx, room, event.EventEncrypted, enc)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// Close stops the device's background work.
func (d *Device) Close() { d.mach.Destroy() }
