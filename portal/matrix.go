package portal

import (
	"context"
	"encoding/json"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/msgconv"
)

// Matrix is everything a portal does on the homeserver. Every call names the user it acts
// as (the bridge bot, or a contact's ghost), so one implementation serves all of them and a
// wrapper sees every event on its way out: encryption wraps this interface, encrypting what
// SendMessage sends into an encrypted room and decrypting nothing (inbound events reach the
// portal already decrypted). The bridge adapts the appservice to it; tests use a fake.
type Matrix interface {
	// BotMXID is the bridge bot, who creates group rooms and speaks for the bridge.
	BotMXID() id.UserID
	// SendMessage sends a message event (m.room.message, m.reaction, m.sticker, ...). The
	// options' transaction ID is the same for every attempt at the same event.
	SendMessage(ctx context.Context, as id.UserID, room id.RoomID, typ event.Type, content any, opts SendOptions) (id.EventID, error)
	// SendState sets a state event with the original time of the change.
	SendState(ctx context.Context, as id.UserID, room id.RoomID, typ event.Type, stateKey string, content any, ts time.Time) (id.EventID, error)
	Redact(ctx context.Context, as id.UserID, room id.RoomID, target id.EventID, reason string) error
	// Upload stores media to be sent into room in the homeserver's repository. Into an
	// encrypted room the encryption wrapper uploads it encrypted and returns File, never a
	// plain URL: the homeserver's media repository would hold the plaintext. An empty room
	// (a profile picture) is never encrypted.
	Upload(ctx context.Context, as id.UserID, room id.RoomID, data []byte, mimeType, fileName string) (Uploaded, error)
	// Download fetches media that a Matrix user sent (the ciphertext of an encrypted file).
	Download(ctx context.Context, uri id.ContentURI) ([]byte, error)
	CreateRoom(ctx context.Context, as id.UserID, req *mautrix.ReqCreateRoom) (id.RoomID, error)
	// EnsureJoined joins as to the room, inviting it with the bot first when it is not invited.
	EnsureJoined(ctx context.Context, as id.UserID, room id.RoomID) error
	Leave(ctx context.Context, as id.UserID, room id.RoomID) error
	Kick(ctx context.Context, as id.UserID, room id.RoomID, user id.UserID, reason string) error
	SetPowerLevel(ctx context.Context, as id.UserID, room id.RoomID, user id.UserID, level int) error
	// MarkRead moves as's read receipt to evt.
	MarkRead(ctx context.Context, as id.UserID, room id.RoomID, evt id.EventID) error
	// GetEvent fetches an event of a room as the bot sees it (a redacted one without its
	// content).
	GetEvent(ctx context.Context, room id.RoomID, evt id.EventID) (*event.Event, error)
	// RecentEvents reads the room's timeline as clients see it (/messages), as as, backward
	// from the newest event: at most limit events, stopping before until when it is met.
	// Newest first.
	RecentEvents(ctx context.Context, as id.UserID, room id.RoomID, until id.EventID, limit int) ([]TimelineEvent, error)
}

// Uploaded is where Upload put a file: URL in an unencrypted room, File (with the URL of the
// ciphertext and its key) in an encrypted one.
type Uploaded struct {
	URL  id.ContentURIString
	File *msgconv.EncryptedFile
}

// complete fills a waiting transfer's content with the upload.
func (u Uploaded) complete(t *msgconv.MediaTransfer) {
	if u.File != nil {
		t.CompleteEncrypted(u.File)
		return
	}
	t.Complete(u.URL)
}

// TimelineEvent is one event of a room's timeline, as a delivery check reads it.
type TimelineEvent struct {
	ID      id.EventID
	Sender  id.UserID
	Content json.RawMessage
}

// SendOptions go with one SendMessage.
type SendOptions struct {
	// Timestamp is the event's original time (zero: now). Only appservices may set it.
	Timestamp time.Time
	// TransactionID makes a resend of the same event a no-op on the homeserver; empty lets
	// the implementation pick a fresh one. It is not enough on its own (see recovery.go).
	TransactionID string
}

// Ghost is a WhatsApp contact's Matrix user, as portals need it.
type Ghost struct {
	JID  types.JID
	MXID id.UserID
	Name string
	// Avatar is the contact's picture on the homeserver, empty when none is known.
	Avatar id.ContentURIString
}

// Ghosts are the contacts' Matrix users. The bridge adapts puppet.Manager to it.
type Ghosts interface {
	// Get returns the ghost of a contact, registering it on the homeserver on first use.
	Get(ctx context.Context, jid types.JID) (Ghost, error)
	// ByMXID returns the ghost behind a Matrix user ID; ok is false for anyone else.
	ByMXID(ctx context.Context, mxid id.UserID) (g Ghost, ok bool, err error)
	// UpdateName renders the ghost's display name from the names readNames returns, read
	// under the ghost's lock so that a slower update cannot write older names last.
	UpdateName(ctx context.Context, jid types.JID, readNames func(context.Context) config.ContactNames) error
}
