//go:build goolm

package e2ee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

// Decrypt returns the plaintext form of an m.room.encrypted event as raw event JSON: the
// same event ID, room, sender and time, the decrypted type and content, and DecryptedField.
// It fails with ErrKeyMissing while the key may still come, and with ErrRejected for an
// event that never can be decrypted.
func (m *Machine) Decrypt(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	log := zerolog.Ctx(ctx)
	var evt event.Event
	if err := json.Unmarshal(raw, &evt); err != nil {
		return nil, m.reject(ctx, ReasonGarbled, fmt.Errorf("%w: not an event: %w", ErrRejected, err))
	}
	evt.Type.Class = event.MessageEventType
	// The algorithm first: mautrix refuses to parse content of an algorithm it does not know,
	// which would count as garbled.
	var alg struct {
		Algorithm id.Algorithm `json:"algorithm"`
	}
	if json.Unmarshal(evt.Content.VeryRaw, &alg) == nil && alg.Algorithm != id.AlgorithmMegolmV1 {
		return nil, m.reject(ctx, ReasonUnknownAlgorithm, fmt.Errorf("%w: algorithm %q is not %s", ErrRejected, alg.Algorithm, id.AlgorithmMegolmV1))
	}
	if err := evt.Content.ParseRaw(event.EventEncrypted); err != nil {
		return nil, m.reject(ctx, ReasonGarbled, fmt.Errorf("%w: content is not m.room.encrypted: %w", ErrRejected, err))
	}
	content := evt.Content.AsEncrypted()
	if content.Algorithm != id.AlgorithmMegolmV1 {
		return nil, m.reject(ctx, ReasonUnknownAlgorithm, fmt.Errorf("%w: algorithm %q is not %s", ErrRejected, content.Algorithm, id.AlgorithmMegolmV1))
	}
	plain, err := m.mach.DecryptMegolmEvent(ctx, &evt)
	switch {
	case errors.Is(err, crypto.ErrNoSessionFound):
		m.count(ReasonKeyMissing)
		return nil, fmt.Errorf("%w: session %s of %s", ErrKeyMissing, content.SessionID, evt.Sender)
	case errors.Is(err, crypto.ErrDuplicateMessageIndex):
		return nil, m.reject(ctx, ReasonReplayed, fmt.Errorf("%w: %w", ErrRejected, err))
	case errors.Is(err, crypto.ErrCorruptedMegolmPayload), errors.Is(err, crypto.ErrUnsupportedAlgorithm):
		return nil, m.reject(ctx, ReasonGarbled, fmt.Errorf("%w: %w", ErrRejected, err))
	case err != nil:
		return nil, m.reject(ctx, ReasonUndecryptable, fmt.Errorf("%w: %w", ErrRejected, err))
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, m.reject(ctx, ReasonGarbled, fmt.Errorf("%w: %w", ErrRejected, err))
	}
	typ, _ := json.Marshal(plain.Type.Type)
	out["type"] = typ
	out["content"] = plain.Content.VeryRaw
	trust := id.TrustStateUnset
	if plain.Mautrix.TrustState != 0 {
		trust = plain.Mautrix.TrustState
	}
	info, _ := json.Marshal(&Decrypted{Algorithm: content.Algorithm, SessionID: content.SessionID, SenderKey: content.SenderKey, Trust: trust.String()})
	out[portal.DecryptedField] = info
	result, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the decrypted event: %w", err)
	}
	log.Debug().Stringer("session_id", content.SessionID).Str("decrypted_type", plain.Type.Type).Msg("Decrypted a Matrix event")
	return result, nil
}

func (m *Machine) reject(ctx context.Context, reason string, err error) error {
	m.count(reason)
	zerolog.Ctx(ctx).Warn().Err(err).Str("reason", reason).Msg("Rejected an encrypted Matrix event")
	return err
}

// RequestKey asks the sender's devices for the room key of an event the bridge could not
// decrypt. The answer arrives as a to-device event on the bot's /sync.
func (m *Machine) RequestKey(ctx context.Context, raw json.RawMessage) error {
	var evt event.Event
	if err := json.Unmarshal(raw, &evt); err != nil {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if err := evt.Content.ParseRaw(event.EventEncrypted); err != nil {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	content := evt.Content.AsEncrypted()
	devices := []id.DeviceID{"*"}
	err := m.mach.SendRoomKeyRequest(ctx, evt.RoomID, content.SenderKey, content.SessionID, "",
		map[id.UserID][]id.DeviceID{evt.Sender: devices})
	if err != nil {
		return fmt.Errorf("failed to request the room key of %s from %s: %w", evt.ID, evt.Sender, err)
	}
	zerolog.Ctx(ctx).Info().Stringer("session_id", content.SessionID).Stringer("sender", evt.Sender).Msg("Asked the sender's devices for a missing room key")
	return nil
}

// allowKeyShare answers room key requests. The bridge gives out only the keys of sessions
// it created itself, to a device that got the session when it was shared, or (lost keys) to
// any device of the room's owner that share_with trusts: an official on a new device can
// read their portals' WhatsApp history again.
func (m *Machine) allowKeyShare(ctx context.Context, device *id.Device, info event.RequestedKeyInfo) *crypto.KeyShareRejection {
	log := zerolog.Ctx(ctx).With().Stringer("requester", device.UserID).Stringer("requester_device", device.DeviceID).
		Stringer("room_id", info.RoomID).Stringer("session_id", info.SessionID).Logger()
	if device.UserID == m.client.UserID {
		return &crypto.KeyShareRejectNoResponse
	}
	igs, err := m.store.GetGroupSession(ctx, info.RoomID, info.SessionID)
	if err != nil || igs == nil {
		return &crypto.KeyShareRejectUnavailable
	}
	if igs.SenderKey != m.mach.OwnIdentity().IdentityKey {
		log.Debug().Msg("Rejected a key request for a session another device made")
		return &crypto.KeyShareRejectNoResponse
	}
	if device.Trust == id.TrustStateBlacklisted {
		return &crypto.KeyShareRejectBlacklisted
	}
	// Who may have the key comes before how much the device is trusted: a stranger is
	// told they may not, not that verifying their device would help.
	shared, err := m.store.IsOutboundGroupSessionShared(ctx, device.UserID, device.IdentityKey, info.SessionID)
	owner := m.owner != nil && m.owner(ctx, info.RoomID) == device.UserID
	if !owner && (err != nil || !shared) {
		log.Info().Msg("Rejected a key request from a device that neither got the session nor belongs to the portal's owner")
		return &crypto.KeyShareRejectNotRecipient
	}
	if trust, _ := m.mach.ResolveTrustContext(ctx, device); trust < m.minTrust() {
		log.Info().Str("trust", trust.String()).Msg("Rejected a key request from a device share_with does not trust")
		return &crypto.KeyShareRejectUnverified
	}
	if !shared {
		log.Info().Msg("Sharing a portal's room key with a device of its owner that did not have it")
	}
	return nil
}
