package e2ee

import (
	"context"
	"errors"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// This file is the package's API in every build; machine.go and decrypt.go implement it with
// mautrix's crypto under the goolm tag, nocrypto.go without it.

// Why an encrypted event is rejected or not decrypted (the metric's reason label).
const (
	ReasonGarbled          = "garbled"
	ReasonUnknownAlgorithm = "unknown_algorithm"
	ReasonReplayed         = "replayed_index"
	ReasonKeyMissing       = "key_missing"
	ReasonUndecryptable    = "undecryptable"
	// To-device events: one from a device that is not the one it claims (its sender_key is
	// not a device of its sender, or its decrypted payload names another sender, recipient
	// or signing key), one decrypted before, one that does not decrypt.
	ReasonImpostor              = "impostor"
	ReasonToDeviceReplayed      = "to_device_replayed"
	ReasonToDeviceUndecryptable = "to_device_undecryptable"
)

// What became of the keys of a portal's earlier messages due to a device of its owner
// (Deps.CountHistory).
const (
	HistoryGiven     = "given"     // sent to the device as m.room_key
	HistoryHeld      = "held"      // the device got the session when it was shared
	HistoryUntrusted = "untrusted" // share_with does not allow the device (yet): nothing sent (counts the device once)
	HistoryFailed    = "failed"    // sending failed; retried
)

// ErrKeyMissing means the bridge does not (yet) have the room key of an event; the key may
// still arrive, from the sender's devices or in answer to a key request.
var ErrKeyMissing = errors.New("the room key of the encrypted event has not arrived")

// ErrRejected means an encrypted event can never be decrypted: it is garbled, uses an
// algorithm the bridge does not know, or replays a message index already used.
var ErrRejected = errors.New("encrypted event rejected")

// Decrypted says how an event that reached the bridge encrypted was encrypted; the bridge
// queues it with the plaintext event, so the archive can record the fact.
type Decrypted struct {
	Algorithm id.Algorithm `json:"algorithm"`
	SessionID id.SessionID `json:"session_id"`
	SenderKey id.SenderKey `json:"sender_key,omitempty"`
	Trust     string       `json:"trust"`
}

// Deps is what the machine needs from the bridge.
type Deps struct {
	Config config.Encryption
	DB     *database.Database
	// Login authenticates as the bot with the appservice token; Open logs the bot's device
	// in with it (m.login.application_service) and then uses the device's own token.
	Login *mautrix.Client
	// State answers which rooms are encrypted and who is in them.
	State State
	// RoomOwner names the Matrix user whose portal a room is (empty for none): the bridge
	// gives that user's other devices the keys of the sessions it made in the room, so a
	// user who lost their keys can read the portal's history again.
	RoomOwner func(ctx context.Context, room id.RoomID) id.UserID
	// Count, when set, hears about every event the machine rejects or cannot decrypt.
	Count func(reason string)
	// CountHistory, when set, hears what became of the history keys due to a portal
	// owner's device (one of the History outcomes) and how many.
	CountHistory func(outcome string, n int)
	Log          zerolog.Logger
}
