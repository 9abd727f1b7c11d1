package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
)

// Decrypter opens the encrypted events Matrix users send into portals. The bridge's
// encryption device implements it; without one, encrypted events are not relayed
// (UnrelayedEncrypted).
type Decrypter interface {
	// Decrypt returns the plaintext event (raw JSON, with DecryptedField). It fails with an
	// error wrapping ErrRoomKeyMissing while the key may still arrive; any other error means
	// the event can never be decrypted.
	Decrypt(ctx context.Context, raw json.RawMessage) (json.RawMessage, error)
	// RequestKey asks the sender's devices for the missing key of an event.
	RequestKey(ctx context.Context, raw json.RawMessage) error
}

// ErrRoomKeyMissing means the key of an encrypted event has not reached the bridge (yet).
var ErrRoomKeyMissing = errors.New("room key missing")

// DecryptedField is the top-level field of a queued plaintext event that arrived encrypted:
// {"algorithm": ..., "session_id": ..., "trust": ...}.
const DecryptedField = "com.causeway.decrypted"

// UnrelayedUndecryptable: an encrypted event whose key never reached the bridge within
// encryption.key_wait, or that can never be decrypted (garbled, unknown algorithm, replayed).
const UnrelayedUndecryptable = "undecryptable"

// UnrelayedPlaintext: a plaintext event from Matrix into a bridge with encryption.require.
const UnrelayedPlaintext = "plaintext"

// errAwaitingKey holds the queue at an encrypted event whose key may still come: nothing
// behind it is relayed first, so a late key relays it once, late, in order.
type errAwaitingKey struct{ retryIn time.Duration }

func (e errAwaitingKey) Error() string { return "waiting for the room key of an encrypted event" }

// keyPollInterval is how often a waiting event tries again; the key arrives on the bot's
// /sync, which does not poke the queue.
const keyPollInterval = time.Second

// decryptQueued replaces an encrypted item's event with its plaintext. handled reports that
// the event could not be decrypted for good and has been archived as a gap and answered, or
// that it was a command, or of a type that is not relayed, and was dealt with as such.
func (p *Portal) decryptQueued(ctx context.Context, item *database.QueueItem, env *MatrixEnvelope) (handled bool, err error) {
	if handled, err := p.openQueued(ctx, item, env); handled || err != nil {
		return handled, err
	}
	if p.isCommand(ctx, item.Payload) {
		return true, nil
	}
	if !IsRelayed(env.Type, false) {
		return true, p.recordUnrelayed(ctx, item, &unrelayedItem{Reason: UnrelayedNoCounterpart, Event: item.Payload}, env)
	}
	return false, nil
}

// isCommand hands a decrypted event to the bot when it is a command for it.
func (p *Portal) isCommand(ctx context.Context, plain json.RawMessage) bool {
	cmd := p.m.deps.Command
	return cmd != nil && cmd(ctx, plain)
}

// openQueued decrypts the encrypted event in item.Payload and replaces the item's event with
// its plaintext. While the key may still come it holds the queue (errAwaitingKey); when it
// cannot be decrypted for good, it archives the gap, tells the sender and reports handled.
func (p *Portal) openQueued(ctx context.Context, item *database.QueueItem, env *MatrixEnvelope) (handled bool, err error) {
	dec := p.m.deps.Decrypter
	plain, derr := dec.Decrypt(ctx, item.Payload)
	if derr == nil {
		var penv MatrixEnvelope
		if err := json.Unmarshal(plain, &penv); err != nil {
			derr = fmt.Errorf("the decrypted event does not parse: %w", err)
		} else {
			// Only the type and content may change: the homeserver vouches for the rest.
			penv.ID, penv.RoomID, penv.Sender, penv.Timestamp, penv.StateKey = env.ID, env.RoomID, env.Sender, env.Timestamp, nil
			item.Payload, *env = plain, penv
			return false, nil
		}
	}
	wait := p.m.deps.Config.Encryption.KeyWaitDuration()
	if errors.Is(derr, ErrRoomKeyMissing) {
		if left := wait - time.Since(item.QueuedAt); left > 0 {
			if item.Attempts == 0 {
				if err := dec.RequestKey(ctx, item.Payload); err != nil {
					zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to request a missing room key")
				}
				item.Attempts++
				if err := p.m.deps.DB.Queue.Failed(ctx, item.Seq, derr); err != nil {
					zerolog.Ctx(ctx).Err(err).Msg("Failed to record the key request")
				}
			}
			return false, errAwaitingKey{retryIn: min(keyPollInterval, left)}
		}
	}
	zerolog.Ctx(ctx).Warn().Err(derr).Stringer("event_id", env.ID).Stringer("sender", env.Sender).
		Msg("An encrypted Matrix event could not be decrypted; recording the gap")
	u := &unrelayedItem{Reason: UnrelayedUndecryptable, Event: item.Payload}
	when := time.UnixMilli(env.Timestamp).UTC().Format("15:04 UTC")
	why := fmt.Sprintf("your message of %s could not be decrypted by the bridge (%v)", when, derr)
	if errors.Is(derr, ErrRoomKeyMissing) {
		why = fmt.Sprintf("your message of %s could not be decrypted: its key did not reach the bridge within %s", when, wait)
	}
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		return []*archive.Entry{p.unrelayedEntry(u, env, why)}, nil
	}); err != nil {
		return false, err
	}
	return true, p.tellUnrelayed(ctx, u, env, why)
}

// recordUnrelayed archives an event that stops at the bridge and tells its sender.
func (p *Portal) recordUnrelayed(ctx context.Context, item *database.QueueItem, u *unrelayedItem, env *MatrixEnvelope) error {
	why := p.unrelayedWhy(u, env)
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		return []*archive.Entry{p.unrelayedEntry(u, env, why)}, nil
	}); err != nil {
		return err
	}
	return p.tellUnrelayed(ctx, u, env, why)
}

// decryptedAlgorithm is the algorithm a queued plaintext event arrived encrypted with, or
// empty when it arrived in plaintext.
func decryptedAlgorithm(payload []byte) string {
	if !bytes.Contains(payload, []byte(DecryptedField)) {
		return ""
	}
	var marker map[string]json.RawMessage
	if json.Unmarshal(payload, &marker) != nil {
		return ""
	}
	var d struct {
		Algorithm string `json:"algorithm"`
	}
	if json.Unmarshal(marker[DecryptedField], &d) != nil {
		return ""
	}
	return d.Algorithm
}

// isEncryptedEvent says whether an envelope is an m.room.encrypted event.
func isEncryptedEvent(env *MatrixEnvelope) bool { return env.Type == event.EventEncrypted.Type }
