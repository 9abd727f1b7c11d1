package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/e2ee"
	"codeberg.org/causeway/causeway/portal"
)

// The bot's own messages (command replies, notices, the login QR code, archive exports) and
// the rooms it creates (the admin room, `migrate`'s direct chats) go through the same
// encryption as the portals' (crypto.go): encrypted into encrypted rooms, created encrypted
// with encryption.default. Commands sent to it encrypted are decrypted here.

// botSend sends a message event as the bot, encrypted when the room is.
func (b *Bridge) botSend(ctx context.Context, room id.RoomID, typ event.Type, content any) (id.EventID, error) {
	typ, content, err := b.seal(ctx, room, typ, content, b.isPortalRoom(ctx, room))
	if err != nil {
		return "", err
	}
	resp, err := b.bot.SendMessageEvent(ctx, room, typ, content)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

func (b *Bridge) isPortalRoom(ctx context.Context, room id.RoomID) bool {
	if b.crypto.get() == nil || !b.cfg.Encryption.Require {
		return false // only encryption.require treats portals differently
	}
	p, err := b.portals.ByRoom(ctx, room)
	return err == nil && p != nil
}

// botFile is a file the bot uploaded for a room: at URL, or encrypted as File.
type botFile struct {
	url  id.ContentURIString
	file *event.EncryptedFileInfo
}

// into points a message's content at the file.
func (f botFile) into(content *event.MessageEventContent) {
	content.URL, content.File = f.url, f.file
}

// botUpload uploads a file of size bytes the bot sends into room. Into an encrypted room it
// is encrypted on the way (a stream, so an archive export of gigabytes is not held in
// memory) and only the ciphertext reaches the homeserver.
func (b *Bridge) botUpload(ctx context.Context, room id.RoomID, body io.Reader, size int64, mimeType, fileName string) (botFile, error) {
	enc, err := b.encrypts(ctx, room, b.isPortalRoom(ctx, room))
	if err != nil {
		return botFile{}, err
	}
	if !enc {
		resp, err := b.bot.UploadMedia(ctx, mautrix.ReqUploadMedia{Content: body, ContentLength: size, ContentType: mimeType, FileName: fileName})
		if err != nil {
			return botFile{}, err
		}
		return botFile{url: resp.ContentURI.CUString()}, nil
	}
	file := attachment.NewEncryptedFile()
	stream := file.EncryptStream(body)
	resp, err := b.bot.UploadMedia(ctx, mautrix.ReqUploadMedia{Content: stream, ContentLength: size, ContentType: encryptedMediaType})
	if err != nil {
		return botFile{}, err
	}
	// Close fills in the ciphertext's hash.
	if err := stream.Close(); err != nil {
		return botFile{}, fmt.Errorf("failed to finish encrypting %s: %w", fileName, err)
	}
	return botFile{file: &event.EncryptedFileInfo{EncryptedFile: *file, URL: resp.ContentURI.CUString()}}, nil
}

// botCreateRoom creates a room as the bot, encrypted with encryption.default.
func (b *Bridge) botCreateRoom(ctx context.Context, req *mautrix.ReqCreateRoom) (*mautrix.RespCreateRoom, error) {
	b.encryptNewRoom(req)
	return b.bot.CreateRoom(ctx, req)
}

// learnRoom reads the state of a room the bot just joined: the homeserver sent the
// appservice nothing of what happened before the bot was invited, so without it the bot
// would not know that a user's new management room is encrypted, nor whom to share its
// keys with.
func (b *Bridge) learnRoom(ctx context.Context, room id.RoomID) {
	if b.crypto.get() == nil {
		return
	}
	if _, err := b.bot.State(ctx, room); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", room).Msg("Failed to read the state of a room the bot joined")
	}
}

// maxCommandKeyWaits bounds the encrypted commands waiting for their keys at once: each
// holds a goroutine for up to encryption.key_wait.
const maxCommandKeyWaits = 32

// handleEncryptedOutsidePortal reads an encrypted event in a room that is not a portal (a
// management room, or a room where someone addresses the bot with !wa) for the command it
// may carry. Its key usually reaches the bot's /sync a moment after the event reaches the
// appservice; in the sender's management room the bot waits for it, up to key_wait.
func (b *Bridge) handleEncryptedOutsidePortal(ctx context.Context, env *portal.MatrixEnvelope, raw json.RawMessage) {
	mach := b.crypto.get()
	if mach == nil {
		b.tellEncryptedOutsidePortal(ctx, env)
		return
	}
	plain, err := mach.Decrypt(ctx, raw)
	if !errors.Is(err, e2ee.ErrKeyMissing) || !b.isManagementRoomOf(ctx, env) {
		b.runDecrypted(ctx, env, plain, err)
		return
	}
	if b.crypto.keyWaits.Add(1) > maxCommandKeyWaits {
		b.crypto.keyWaits.Add(-1)
		b.runDecrypted(ctx, env, nil, fmt.Errorf("%w (and %d other messages are waiting for theirs)", err, maxCommandKeyWaits))
		return
	}
	raw, env = bytes.Clone(raw), ptrCopy(env)
	started := b.jobs.Go(context.WithoutCancel(ctx), "encrypted command", func(ctx context.Context) {
		defer b.crypto.keyWaits.Add(-1)
		plain, err := b.awaitKey(ctx, mach, raw)
		b.runDecrypted(ctx, env, plain, err)
	})
	if !started {
		b.crypto.keyWaits.Add(-1)
	}
}

func ptrCopy[T any](v *T) *T {
	c := *v
	return &c
}

// commandKeyAsk is how long a command waits for its key before asking the sender's devices.
const commandKeyAsk = 3 * time.Second

// awaitKey waits for the key of an encrypted command and decrypts it. The sender's devices
// are asked for the key when it does not come by itself.
func (b *Bridge) awaitKey(ctx context.Context, mach *e2ee.Machine, raw json.RawMessage) (json.RawMessage, error) {
	wait := b.cfg.Encryption.KeyWaitDuration()
	first := min(commandKeyAsk, wait)
	if !mach.WaitForKey(ctx, raw, first) {
		if err := mach.RequestKey(ctx, raw); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to request the key of an encrypted command")
		}
		if !mach.WaitForKey(ctx, raw, wait-first) {
			return nil, fmt.Errorf("%w: its key did not reach the bridge within %s", e2ee.ErrKeyMissing, wait)
		}
	}
	return mach.Decrypt(ctx, raw)
}

func (b *Bridge) isManagementRoomOf(ctx context.Context, env *portal.MatrixEnvelope) bool {
	user, err := b.db.Users.GetByManagementRoom(ctx, env.RoomID)
	return err == nil && user != nil && user.MXID == env.Sender
}

// runDecrypted hands a decrypted event to the bot's command handling. An event that could
// not be decrypted is answered in the sender's management room, where it was surely meant
// for the bot; anywhere else the log and the metric record it, as for any event there.
func (b *Bridge) runDecrypted(ctx context.Context, env *portal.MatrixEnvelope, plain json.RawMessage, derr error) {
	log := zerolog.Ctx(ctx).With().Stringer("event_id", env.ID).Stringer("room_id", env.RoomID).Stringer("sender", env.Sender).Logger()
	if derr != nil {
		log.Warn().Err(derr).Msg("Could not decrypt an encrypted event sent to the bot")
		if b.isManagementRoomOf(ctx, env) {
			when := time.UnixMilli(env.Timestamp).UTC().Format("15:04 UTC")
			b.reply(ctx, env.RoomID, fmt.Sprintf("⚠️ Your message of %s could not be decrypted (%v), so I could not read it as a command. Please send it again.", when, derr))
		}
		return
	}
	var evt event.Event
	if err := json.Unmarshal(plain, &evt); err != nil {
		log.Warn().Err(err).Msg("A decrypted event sent to the bot does not parse")
		return
	}
	evt.Type.Class = event.MessageEventType
	if evt.Type != event.EventMessage {
		return
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil {
		log.Debug().Err(err).Msg("Failed to parse decrypted event content")
		return
	}
	b.handleMessage(log.WithContext(ctx), &evt)
}

// portalCommand takes a command sent encrypted into a portal (`!wa migrate`), which only
// its decryption in the portal's queue shows to be one: it must not go to WhatsApp as text.
// It runs apart from the queue, as the commands may queue work behind the very item.
func (b *Bridge) portalCommand(ctx context.Context, plain json.RawMessage) bool {
	var env portal.MatrixEnvelope
	if json.Unmarshal(plain, &env) != nil || !isCommand(&env) {
		return false
	}
	plain = bytes.Clone(plain)
	if !b.jobs.Go(context.WithoutCancel(ctx), "encrypted command", func(ctx context.Context) { b.runDecrypted(ctx, &env, plain, nil) }) {
		zerolog.Ctx(ctx).Warn().Stringer("event_id", env.ID).Msg("Dropped an encrypted command: the bridge is stopping")
	}
	return true
}
