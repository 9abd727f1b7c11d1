//go:build goolm

package bridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
)

// cryptoClient is a Matrix user's device with mautrix's crypto (the Go counterpart of what
// Element ships): it uploads its keys, takes room keys from its /sync and decrypts.
type cryptoClient struct {
	cli   *mautrix.Client
	mach  *crypto.OlmMachine
	state mautrix.StateStore
	since string
}

func newCryptoClient(t *testing.T, cli *mautrix.Client) *cryptoClient {
	t.Helper()
	ctx := context.Background()
	who, err := cli.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli.DeviceID = who.DeviceID
	state := mautrix.NewMemoryStateStore()
	cli.StateStore = state
	log := zerolog.New(newTestLogWriter(t)).With().Str("client", string(cli.UserID)).Logger()
	mach := crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state.(crypto.StateStore))
	if err := mach.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mach.ShareKeys(ctx, -1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mach.Destroy)
	return &cryptoClient{cli: cli, mach: mach, state: state}
}

// sync runs one /sync: crypto first (room keys), then the rooms' state into the state
// store; it joins invites from inviter and returns the rooms it joined.
func (c *cryptoClient) sync(t *testing.T, timeout time.Duration, inviter id.UserID) []id.RoomID {
	t.Helper()
	ctx := context.Background()
	resp, err := c.cli.SyncRequest(ctx, int(timeout.Milliseconds()), c.since, "", false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	c.mach.ProcessSyncResponse(ctx, resp, c.since)
	c.since = resp.NextBatch
	for roomID, room := range resp.Rooms.Join {
		for _, evt := range append(room.State.Events, room.Timeline.Events...) {
			evt.RoomID = roomID
			if evt.StateKey != nil {
				evt.Type.Class = event.StateEventType
				_ = evt.Content.ParseRaw(evt.Type)
				mautrix.UpdateStateStore(ctx, c.state, evt)
				if evt.Type == event.StateMember {
					c.mach.HandleMemberEvent(ctx, evt)
				}
			}
		}
	}
	var joined []id.RoomID
	for roomID, room := range resp.Rooms.Invite {
		if inviter == "" || isSpaceInvite(room.State.Events) {
			continue
		}
		for _, evt := range room.State.Events {
			if evt.Type == event.StateMember && evt.GetStateKey() == string(c.cli.UserID) && evt.Sender == inviter {
				if _, err := c.cli.JoinRoomByID(ctx, roomID); err != nil {
					t.Fatal(err)
				}
				joined = append(joined, roomID)
			}
		}
	}
	return joined
}

// waitInvite syncs until inviter invites the user, joins and returns the room.
func (c *cryptoClient) waitInvite(t *testing.T, inviter id.UserID) id.RoomID {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		if rooms := c.sync(t, 2*time.Second, inviter); len(rooms) > 0 {
			return rooms[0]
		}
	}
	t.Fatalf("%s: no invite from %s", c.cli.UserID, inviter)
	return ""
}

// decrypted is a room event as the user's client shows it.
type decrypted struct {
	evt       *event.Event
	encrypted bool
	err       error
}

// events reads the room's latest events and decrypts what it can.
func (c *cryptoClient) events(t *testing.T, room id.RoomID) []decrypted {
	t.Helper()
	ctx := context.Background()
	resp, err := c.cli.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []decrypted
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		evt := resp.Chunk[i]
		evt.RoomID = room
		if evt.Type != event.EventEncrypted {
			_ = evt.Content.ParseRaw(evt.Type)
			out = append(out, decrypted{evt: evt})
			continue
		}
		if err := evt.Content.ParseRaw(evt.Type); err != nil {
			out = append(out, decrypted{evt: evt, encrypted: true, err: err})
			continue
		}
		plain, err := c.mach.DecryptMegolmEvent(ctx, evt)
		if err != nil {
			out = append(out, decrypted{evt: evt, encrypted: true, err: err})
			continue
		}
		_ = plain.Content.ParseRaw(plain.Type)
		out = append(out, decrypted{evt: plain, encrypted: true})
	}
	return out
}

// waitDecrypted syncs (for room keys) and reads the room until sender sent an event that
// decrypts to one match accepts; it fails if that event arrived in plaintext.
func (c *cryptoClient) waitDecrypted(t *testing.T, room id.RoomID, sender id.UserID, match func(*event.Event) bool) *event.Event {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		c.sync(t, 500*time.Millisecond, "")
		for _, d := range c.events(t, room) {
			if d.evt.Sender != sender {
				continue
			}
			if d.err != nil {
				lastErr = d.err
				continue
			}
			if match(d.evt) {
				if !d.encrypted {
					t.Fatalf("%s's event %s reached the encrypted room in plaintext", sender, d.evt.ID)
				}
				return d.evt
			}
		}
	}
	t.Fatalf("no decryptable matching event from %s in %s (last decryption error: %v)", sender, room, lastErr)
	return nil
}

// sendEncrypted sends an event into an encrypted room the way a client does: share a
// session with the members' devices when needed, encrypt, send m.room.encrypted.
func (c *cryptoClient) sendEncrypted(t *testing.T, room id.RoomID, typ event.Type, content any) id.EventID {
	t.Helper()
	ctx := context.Background()
	enc, err := c.mach.EncryptMegolmEvent(ctx, room, typ, content)
	if errors.Is(err, crypto.ErrSessionExpired) || errors.Is(err, crypto.ErrNoGroupSession) || errors.Is(err, crypto.ErrSessionNotShared) {
		members, merr := c.cli.JoinedMembers(ctx, room)
		if merr != nil {
			t.Fatal(merr)
		}
		var users []id.UserID
		for u := range members.Joined {
			users = append(users, u)
		}
		if err := c.mach.ShareGroupSession(ctx, room, users); err != nil {
			t.Fatal(err)
		}
		enc, err = c.mach.EncryptMegolmEvent(ctx, room, typ, content)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.cli.SendMessageEvent(ctx, room, event.EventEncrypted, enc)
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

func (c *cryptoClient) sendText(t *testing.T, room id.RoomID, text string) id.EventID {
	t.Helper()
	return c.sendEncrypted(t, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
}

// encryptedConfig is a fresh config with encryption on and new portals encrypted.
func encryptedConfig(t *testing.T, dbType string, localparts ...string) *config.Config {
	t.Helper()
	cfg := configFor(t, dbType)
	permit(cfg, "user", localparts...)
	cfg.Encryption.Allow, cfg.Encryption.Default = true, true
	cfg.Encryption.KeyWait = "20s"
	return cfg
}

// plaintextFrom lists the events from senders that reached a room unencrypted (state
// events aside).
func plaintextFrom(evts []decrypted, senders ...id.UserID) []*event.Event {
	var out []*event.Event
	for _, d := range evts {
		if d.encrypted || d.evt.StateKey != nil {
			continue
		}
		for _, s := range senders {
			if d.evt.Sender == s {
				out = append(out, d.evt)
			}
		}
	}
	return out
}

// ciphertext fetches an event as the homeserver holds it, encrypted, with its Megolm
// fields parsed.
func ciphertext(t *testing.T, cli *mautrix.Client, room id.RoomID, evtID id.EventID) (*event.Event, *event.EncryptedEventContent) {
	t.Helper()
	evt, err := cli.GetEvent(context.Background(), room, evtID)
	if err != nil {
		t.Fatal(err)
	}
	evt.RoomID = room
	if evt.Type != event.EventEncrypted {
		t.Fatalf("%s is a plaintext %s", evtID, evt.Type.Type)
	}
	if err := evt.Content.ParseRaw(event.EventEncrypted); err != nil {
		t.Fatal(err)
	}
	return evt, evt.Content.AsEncrypted()
}

// requestKey asks every device of from for the room key of an encrypted event, the way a
// client that lacks a key does.
func (c *cryptoClient) requestKey(t *testing.T, room id.RoomID, content *event.EncryptedEventContent, from id.UserID) {
	t.Helper()
	err := c.mach.SendRoomKeyRequest(context.Background(), room, content.SenderKey, content.SessionID, "",
		map[id.UserID][]id.DeviceID{from: {"*"}})
	if err != nil {
		t.Fatal(err)
	}
}

// waitKeyAnswer syncs until the device has the session or was told it is withheld; it
// returns the refusal, nil when the key came.
func (c *cryptoClient) waitKeyAnswer(t *testing.T, room id.RoomID, session id.SessionID) *event.RoomKeyWithheldEventContent {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		c.sync(t, 500*time.Millisecond, "")
		if withheld, err := c.mach.CryptoStore.GetWithheldGroupSession(ctx, room, session); err != nil {
			t.Fatal(err)
		} else if withheld != nil {
			return withheld
		}
		if igs, err := c.mach.CryptoStore.GetGroupSession(ctx, room, session); err == nil && igs != nil {
			return nil
		}
	}
	t.Fatalf("%s/%s: neither the key of session %s nor a refusal arrived", c.cli.UserID, c.cli.DeviceID, session)
	return nil
}

// hasSession says whether the device holds a room key.
func (c *cryptoClient) hasSession(t *testing.T, room id.RoomID, session id.SessionID) bool {
	t.Helper()
	igs, err := c.mach.CryptoStore.GetGroupSession(context.Background(), room, session)
	if err != nil && !errors.Is(err, crypto.ErrGroupSessionWithheld) {
		t.Fatal(err)
	}
	return igs != nil
}

// crossSign gives the user cross-signing keys (kept in secret storage, as Element does) and
// signs this device with them; it returns the recovery key another device verifies with.
func (c *cryptoClient) crossSign(t *testing.T, password string) string {
	t.Helper()
	ctx := context.Background()
	recoveryKey, _, err := c.mach.GenerateAndUploadCrossSigningKeysWithPassword(ctx, password, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.mach.SignOwnDevice(ctx, c.mach.OwnIdentity()); err != nil {
		t.Fatal(err)
	}
	if err := c.mach.SignOwnMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	return recoveryKey
}

// waitKey syncs until the device has a session, which it asked for after being refused it
// (so a refusal it holds says nothing about the new request).
func (c *cryptoClient) waitKey(t *testing.T, room id.RoomID, session id.SessionID) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		c.sync(t, 500*time.Millisecond, "")
		if c.hasSession(t, room, session) {
			return
		}
	}
	withheld, _ := c.mach.CryptoStore.GetWithheldGroupSession(context.Background(), room, session)
	t.Fatalf("%s/%s: the key of session %s never came (refusal held: %+v)", c.cli.UserID, c.cli.DeviceID, session, withheld)
}
