//go:build goolm

package e2ee

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync/atomic"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// mautrix drops an encrypted to-device event it cannot decrypt, or whose decrypted payload
// it refuses (another sender, recipient or signing key than the event's), with this error
// line and nothing returned to its caller. The bridge counts the lines to learn of them.
const olmFailedMessage = "Failed to decrypt to-device event"

// olmFailures is a hook on the machine's logger counting olmFailedMessage lines.
type olmFailures struct{ n atomic.Int64 }

func (h *olmFailures) Run(_ *zerolog.Event, level zerolog.Level, msg string) {
	if level == zerolog.ErrorLevel && msg == olmFailedMessage {
		h.n.Add(1)
	}
}

// ProcessSync takes what the bot device's /sync carries for crypto: device-list changes,
// to-device events (room keys, key requests) and one-time-key counts. It is mautrix's
// ProcessSyncResponse with each encrypted to-device event checked and, when rejected,
// counted and logged with the reason.
func (m *Machine) ProcessSync(ctx context.Context, resp *mautrix.RespSync, since string) {
	m.toDeviceMu.Lock()
	defer m.toDeviceMu.Unlock()
	m.mach.HandleDeviceLists(ctx, &resp.DeviceLists, since)
	m.history.changed(ctx, resp.DeviceLists.Changed)
	for _, evt := range resp.ToDevice.Events {
		evt.Type.Class = event.ToDeviceEventType
		if err := evt.Content.ParseRaw(evt.Type); err != nil {
			if evt.Type == event.ToDeviceEncrypted {
				m.rejectToDevice(ctx, evt, ReasonGarbled, fmt.Errorf("%w: %w", ErrRejected, err))
			} else {
				zerolog.Ctx(ctx).Warn().Err(err).Str("event_type", evt.Type.Type).Stringer("sender", evt.Sender).
					Msg("Skipped a to-device event whose content does not parse")
			}
			continue
		}
		m.handleToDevice(ctx, evt)
	}
	m.mach.HandleOTKCounts(ctx, &resp.DeviceOTKCount)
	m.mach.MarkOlmHashSavePoint(ctx)
}

func (m *Machine) handleToDevice(ctx context.Context, evt *event.Event) {
	content, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
	if !ok {
		m.mach.HandleToDeviceEvent(ctx, evt)
		return
	}
	if content.Algorithm == id.AlgorithmOlmV1 {
		if err := m.checkSenderKey(ctx, evt.Sender, content.SenderKey); err != nil {
			m.rejectToDevice(ctx, evt, ReasonImpostor, err)
			return
		}
	}
	hash, hashed := m.olmHash(content)
	seenBefore := hashed && m.olmHandled(ctx, hash)
	failures := m.olmFailed.n.Load()
	m.mach.HandleToDeviceEvent(ctx, evt)
	if m.olmFailed.n.Load() == failures {
		return
	}
	// mautrix marks a message handled as soon as it decrypts, before it checks the
	// payload: handled now but not before means the payload was refused.
	switch {
	case seenBefore:
		m.rejectToDevice(ctx, evt, ReasonToDeviceReplayed, fmt.Errorf("%w: the Olm message was decrypted before", ErrRejected))
	case hashed && m.olmHandled(ctx, hash):
		m.rejectToDevice(ctx, evt, ReasonImpostor, fmt.Errorf("%w: the decrypted payload claims another sender, recipient or signing key than the event", ErrRejected))
	default:
		m.rejectToDevice(ctx, evt, ReasonToDeviceUndecryptable, fmt.Errorf("%w: the Olm message does not decrypt for this device", ErrRejected))
	}
}

// checkSenderKey refuses an Olm event whose sender_key is not the identity key of one of
// its sender's devices (mautrix, for now, accepts such events with a warning). The sender
// is the homeserver's word; the key is only the event's.
func (m *Machine) checkSenderKey(ctx context.Context, sender id.UserID, key id.SenderKey) error {
	if dev, err := m.store.FindDeviceByKey(ctx, sender, key); err == nil && dev != nil {
		return nil
	}
	devices, err := m.mach.FetchKeys(ctx, []id.UserID{sender}, true)
	if err != nil {
		// Cannot tell: mautrix's own checks still apply.
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("sender", sender).Msg("Could not fetch a to-device sender's devices to check its key")
		return nil
	}
	for _, dev := range devices[sender] {
		if dev.IdentityKey == key {
			return nil
		}
	}
	return fmt.Errorf("%w: %s has no device with identity key %s", ErrRejected, sender, key)
}

// olmHash is how mautrix names an Olm message it has handled: the SHA-256 of the
// ciphertext addressed to this device.
func (m *Machine) olmHash(content *event.EncryptedEventContent) ([32]byte, bool) {
	own, ok := content.OlmCiphertext[m.mach.OwnIdentity().IdentityKey]
	if !ok || own.Body == "" {
		return [32]byte{}, false
	}
	raw, err := base64.RawStdEncoding.DecodeString(own.Body)
	if err != nil {
		return [32]byte{}, false
	}
	return sha256.Sum256(raw), true
}

func (m *Machine) olmHandled(ctx context.Context, hash [32]byte) bool {
	at, err := m.store.GetOlmHash(ctx, hash)
	return err == nil && !at.IsZero()
}

func (m *Machine) rejectToDevice(ctx context.Context, evt *event.Event, reason string, err error) {
	m.count(reason)
	log := zerolog.Ctx(ctx).Warn().Err(err).Str("reason", reason).Stringer("sender", evt.Sender).Str("event_type", evt.Type.Type)
	if content, ok := evt.Content.Parsed.(*event.EncryptedEventContent); ok {
		log = log.Stringer("sender_key", content.SenderKey)
	}
	log.Msg("Rejected an encrypted to-device event")
}
