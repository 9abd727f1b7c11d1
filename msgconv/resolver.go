package msgconv

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"
)

// Resolver is everything the converter needs to look up outside itself. The portal implements it on top of
// the puppet cache and the message table; tests use an in-memory map.
//
// Lookups that find nothing return an error wrapping ErrNotFound: the converter then degrades (a reply
// without a known target gets a quote fallback, for example). Any other error aborts the conversion.
type Resolver interface {
	Users
	Messages
	PollVotes
}

// User is the Matrix identity of a WhatsApp user.
type User struct {
	MXID id.UserID
	// Name is the display name used in pills and quote fallbacks.
	Name string
}

// Users maps identities between the two networks.
type Users interface {
	// UserByJID returns the Matrix user (a puppet, or the logged-in user themself) for a WhatsApp JID.
	UserByJID(ctx context.Context, jid types.JID) (User, error)
	// JIDByUser returns the WhatsApp JID behind a Matrix user, which is a puppet or the logged-in user.
	JIDByUser(ctx context.Context, mxid id.UserID) (types.JID, error)
}

// BridgedPart is one Matrix event a WhatsApp message was bridged to.
type BridgedPart struct {
	EventID id.EventID
	PartID  PartID
	// Sender is the WhatsApp author of the message, used to refuse edits from anyone else.
	Sender types.JID
}

// Messages maps message IDs between the two networks.
type Messages interface {
	// MessagePart returns the Matrix event of one part of a bridged WhatsApp message.
	MessagePart(ctx context.Context, chat types.JID, msgID types.MessageID, part PartID) (BridgedPart, error)
	// MessageParts returns every Matrix event a WhatsApp message was bridged to, in send order.
	MessageParts(ctx context.Context, chat types.JID, msgID types.MessageID) ([]BridgedPart, error)
	// ReactionEvent returns the Matrix event of sender's current reaction to a WhatsApp message.
	ReactionEvent(ctx context.Context, chat types.JID, target types.MessageID, sender types.JID) (id.EventID, error)
	// MessageByEvent returns the WhatsApp message (or reaction) a Matrix event maps to.
	MessageByEvent(ctx context.Context, evt id.EventID) (MessageRef, error)
}

// PollVotes decrypts poll votes. Votes are end-to-end encrypted with the poll's message secret, which lives
// in whatsmeow's store, so the portal does this (whatsmeow's Client.DecryptPollVote) on the converter's behalf.
type PollVotes interface {
	DecryptPollVote(ctx context.Context, info *types.MessageInfo, update *waE2E.PollUpdateMessage) (*waE2E.PollVoteMessage, error)
}

// MessageRef is what the portal knows about a WhatsApp message that a Matrix event refers to.
type MessageRef struct {
	Chat   types.JID
	ID     types.MessageID
	Sender types.JID
	// FromMe is true when the logged-in account sent the message; only those can be edited.
	FromMe    bool
	PartID    PartID
	Timestamp time.Time
	// ReactionTo is set when the Matrix event is a bridged reaction: it names the reacted-to message.
	ReactionTo *MessageRef
	// EditOf is set when the Matrix event is a bridged edit: it names the edited message, whose ID is
	// empty when the bridge does not know it. An edit's own ID names no message a phone shows, so
	// relations to an edit resolve to EditOf or are refused.
	EditOf *MessageRef
	// Quoted is the message as WhatsApp knows it, for the quote shown on phones. Optional: without it
	// replies carry an empty placeholder and phones look the quote up by ID.
	Quoted *waE2E.Message
	// PollOptions maps Matrix poll answer IDs to WhatsApp option names, for polls started on Matrix.
	PollOptions []PollOption
}

// PollOption pairs a Matrix poll answer ID with the WhatsApp option name it was sent as.
type PollOption struct {
	ID   string
	Name string
}

// PartID names one Matrix event among those a single WhatsApp message becomes. The first (usually only)
// event of a message has the empty PartID; replies, edits and reactions target that part.
type PartID string

// MainPart is the PartID of the first event of a message.
const MainPart PartID = ""
