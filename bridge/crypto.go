package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/e2ee"
	"codeberg.org/causeway/causeway/msgconv"
	"codeberg.org/causeway/causeway/portal"
)

// cryptoState is the bot's encryption device once Start has opened it (nil with
// encryption.allow off). Portal queues read it while Start may still be setting it.
type cryptoState struct {
	mach     atomic.Pointer[e2ee.Machine]
	rejected *prometheus.CounterVec
	// history counts what became of the history keys due to portal owners' devices.
	history *prometheus.CounterVec
	// keyWaits counts the encrypted commands waiting for their keys (botcrypto.go).
	keyWaits atomic.Int32
}

func (c *cryptoState) get() *e2ee.Machine {
	if c == nil {
		return nil
	}
	return c.mach.Load()
}

func newCryptoState(reg *prometheus.Registry) *cryptoState {
	c := &cryptoState{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_encrypted_events_failed_total",
			Help: "Encrypted Matrix events (room and to-device) the bridge rejected or could not decrypt (yet), by reason.",
		}, []string{"reason"}),
		history: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_encryption_history_keys_total",
			Help: "Keys of portals' earlier messages due to their owners' devices, by outcome: given, held (the device got the session " +
				"when it was shared), failed (sending failed; retried); untrusted counts the times a device share_with does not allow (yet) was passed over.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(c.rejected, c.history)
	return c
}

// openCrypto logs in the bot's encryption device (after setupBot: the bot must exist).
func (b *Bridge) openCrypto(ctx context.Context) error {
	if !b.cfg.Encryption.Allow {
		return nil
	}
	rejected, history := b.crypto.rejected, b.crypto.history
	m, err := e2ee.Open(ctx, e2ee.Deps{
		Config: b.cfg.Encryption, DB: b.db, Login: b.as.NewMautrixClient(b.as.BotMXID()), State: b.db.StateStore,
		RoomOwner:    b.portalOwner,
		Count:        func(reason string) { rejected.WithLabelValues(reason).Inc() },
		CountHistory: func(outcome string, n int) { history.WithLabelValues(outcome).Add(float64(n)) },
		Log:          b.log.With().Str("component", "crypto").Logger(),
	})
	if err != nil {
		return fmt.Errorf("encryption.allow is on, but the bot's encryption device failed: %w", err)
	}
	keepHomeserverConnections(m.Client().Client)
	b.crypto.mach.Store(m)
	return nil
}

func (b *Bridge) closeCrypto() {
	if m := b.crypto.get(); m != nil {
		m.Close()
	}
}

// portalOwner is the Matrix user whose WhatsApp chat a room carries.
func (b *Bridge) portalOwner(ctx context.Context, room id.RoomID) id.UserID {
	p, err := b.portals.ByRoom(ctx, room)
	if err != nil || p == nil {
		return ""
	}
	return p.Key().Receiver
}

// encryptingMatrix is portal.Matrix with encryption: every message event into an encrypted
// room is sent as m.room.encrypted, whichever user sends it (the bot's device encrypts for
// the contacts' users, which have no devices of their own); rooms it creates are encrypted
// when encryption.default is on; and with encryption.require nothing goes out in plaintext.
type encryptingMatrix struct {
	portal.Matrix
	b *Bridge
}

func (m encryptingMatrix) SendMessage(ctx context.Context, as id.UserID, room id.RoomID, typ event.Type, content any, opts portal.SendOptions) (id.EventID, error) {
	typ, content, err := m.b.seal(ctx, room, typ, content, true)
	if err != nil {
		return "", err
	}
	return m.Matrix.SendMessage(ctx, as, room, typ, content, opts)
}

// Upload encrypts a file for an encrypted room with a key of its own (the event that
// carries it, itself encrypted, holds the key) and uploads only the ciphertext, without a
// name or type that would tell the homeserver what it is.
func (m encryptingMatrix) Upload(ctx context.Context, as id.UserID, room id.RoomID, data []byte, mimeType, fileName string) (portal.Uploaded, error) {
	enc, err := m.b.encrypts(ctx, room, true)
	if err != nil {
		return portal.Uploaded{}, err
	} else if !enc {
		return m.Matrix.Upload(ctx, as, room, data, mimeType, fileName)
	}
	file := attachment.NewEncryptedFile()
	// A copy: the caller's bytes go to the archive too.
	ciphertext := bytes.Clone(data)
	file.EncryptInPlace(ciphertext)
	up, err := m.Matrix.Upload(ctx, as, room, ciphertext, encryptedMediaType, "")
	if err != nil {
		return portal.Uploaded{}, err
	}
	return portal.Uploaded{File: msgconv.NewEncryptedFileFrom(file, up.URL)}, nil
}

// encryptedMediaType is what the media repository is told an encrypted file is: Element
// uploads encrypted files the same way.
const encryptedMediaType = "application/octet-stream"

// encrypts says whether what is sent into room must be encrypted: the room is encrypted,
// or, with encryption.require, it is a portal (portalRoom), which is then turned encrypted
// before anything is sent. Other rooms (management rooms, the admin room) are encrypted when
// they were made so; encryption.require is about the chats.
func (b *Bridge) encrypts(ctx context.Context, room id.RoomID, portalRoom bool) (bool, error) {
	mach := b.crypto.get()
	if mach == nil || room == "" {
		return false, nil
	}
	if mach.IsEncrypted(ctx, room) {
		return true, nil
	}
	if !portalRoom || !b.cfg.Encryption.Require {
		return false, nil
	}
	return true, b.encryptRoom(ctx, room)
}

// seal is what goes out for a message event into room: the event itself, or its
// m.room.encrypted form when the room wants encryption. An error means nothing may be sent.
func (b *Bridge) seal(ctx context.Context, room id.RoomID, typ event.Type, content any, portalRoom bool) (event.Type, any, error) {
	if typ == event.EventEncrypted {
		return typ, content, nil
	}
	enc, err := b.encrypts(ctx, room, portalRoom)
	if err != nil || !enc {
		return typ, content, err
	}
	sealed, err := b.crypto.get().Encrypt(ctx, room, typ, content)
	if err != nil {
		return typ, nil, err
	}
	return event.EventEncrypted, sealed, nil
}

// encryptRoom turns encryption on in a portal before anything is sent into it
// (encryption.require).
func (b *Bridge) encryptRoom(ctx context.Context, room id.RoomID) error {
	content := b.encryptionEvent()
	if _, err := (asMatrix{b.as}).SendState(ctx, b.as.BotMXID(), room, event.StateEncryption, "", content, time.Now()); err != nil {
		return fmt.Errorf("encryption.require: failed to turn on encryption in %s before sending: %w", room, err)
	}
	if err := b.db.StateStore.SetEncryptionEvent(ctx, room, content); err != nil {
		return fmt.Errorf("failed to remember that %s is encrypted: %w", room, err)
	}
	return nil
}

func (m encryptingMatrix) CreateRoom(ctx context.Context, as id.UserID, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	m.b.encryptNewRoom(req)
	return m.Matrix.CreateRoom(ctx, as, req)
}

// encryptNewRoom makes a room the bridge creates encrypted when encryption.default is on.
func (b *Bridge) encryptNewRoom(req *mautrix.ReqCreateRoom) {
	if b.cfg.Encryption.Allow && b.cfg.Encryption.Default && !hasEncryption(req) {
		req.InitialState = append(req.InitialState, &event.Event{
			Type: event.StateEncryption, Content: event.Content{Parsed: b.encryptionEvent()},
		})
	}
}

func hasEncryption(req *mautrix.ReqCreateRoom) bool {
	for _, evt := range req.InitialState {
		if evt.Type == event.StateEncryption {
			return true
		}
	}
	return false
}

// encryptionEvent is the m.room.encryption the bridge puts in rooms, with its rotation.
func (b *Bridge) encryptionEvent() *event.EncryptionEventContent {
	rot := b.cfg.Encryption.Rotation
	return &event.EncryptionEventContent{
		Algorithm:              id.AlgorithmMegolmV1,
		RotationPeriodMillis:   rot.AgeDuration().Milliseconds(),
		RotationPeriodMessages: rot.Messages,
	}
}

// cryptoDecrypter gives portals the bot device's decryption.
type cryptoDecrypter struct{ b *Bridge }

func (d cryptoDecrypter) Decrypt(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	mach := d.b.crypto.get()
	if mach == nil {
		return nil, fmt.Errorf("%w: the encryption device is not open yet", portal.ErrRoomKeyMissing)
	}
	plain, err := mach.Decrypt(ctx, raw)
	if errors.Is(err, e2ee.ErrKeyMissing) {
		return nil, fmt.Errorf("%w: %w", portal.ErrRoomKeyMissing, err)
	}
	return plain, err
}

func (d cryptoDecrypter) RequestKey(ctx context.Context, raw json.RawMessage) error {
	mach := d.b.crypto.get()
	if mach == nil {
		return nil
	}
	return mach.RequestKey(ctx, raw)
}

// cryptoSyncClient is the client the bot's /sync must use: the encryption device's when
// there is one, since to-device events are addressed to a device.
func (b *Bridge) cryptoSyncClient() *mautrix.Client {
	if m := b.crypto.get(); m != nil {
		return m.Client()
	}
	return b.as.BotClient()
}

// cryptoSync hands the crypto parts of a /sync to the encryption device.
func (b *Bridge) cryptoSync(ctx context.Context, resp *mautrix.RespSync, since string) {
	if m := b.crypto.get(); m != nil {
		m.ProcessSync(ctx, resp, since)
	}
}

// cryptoMember lets a membership change rotate the room's session.
func (b *Bridge) cryptoMember(ctx context.Context, evt *event.Event) {
	if m := b.crypto.get(); m != nil {
		m.HandleMember(ctx, evt)
	}
}
