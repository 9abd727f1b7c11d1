package msgconv

import (
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Action says what a WhatsApp message does on the Matrix side, so the portal knows which rows to write.
type Action int

const (
	// ActionMessage: new events to send and store as the message's parts.
	ActionMessage Action = iota
	// ActionEdit: Events holds the m.replace event of Target.
	ActionEdit
	// ActionRevoke: Redactions removes Target's events.
	ActionRevoke
	// ActionReaction: the sender's reaction to Target is now Events[0]; any previous one is in Redactions.
	ActionReaction
	// ActionReactionRemove: the sender withdrew their reaction to Target (Redactions, possibly empty).
	ActionReactionRemove
	// ActionPollVote: Events holds the sender's poll response to Target.
	ActionPollVote
	// ActionTimer: the chat's disappearing-message timer changed to Timer; Events holds a notice.
	ActionTimer
	// ActionNone: nothing to show on Matrix; Note says why (protocol housekeeping, unknown targets).
	ActionNone
)

var actionNames = [...]string{"message", "edit", "revoke", "reaction", "reaction_remove", "poll_vote", "timer", "none"}

func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// ToMatrixResult is what a WhatsApp message becomes on Matrix. The portal carries it out in this order:
// media transfers (filling the contents), redactions, then events.
type ToMatrixResult struct {
	Action Action
	// Target is the WhatsApp message an edit, revoke, reaction or poll vote applies to.
	Target types.MessageID
	Events []MatrixPart
	// Redactions are events to redact: a revoked message's parts, or a replaced reaction.
	Redactions []Redaction
	// Media lists the transfers whose results the contents in Events wait for.
	Media []*MediaTransfer
	// Timer is the chat's new disappearing-message timer when Action is ActionTimer (0 turns it off).
	Timer *time.Duration
	// Note explains, for the log and the archive, why a message produced nothing or was degraded.
	Note string
	// Unbridged marks an ActionNone that is not protocol housekeeping: a revoke, edit, reaction
	// or poll vote of a message the bridge never saw (sent before the login, say). Nothing shows
	// on Matrix, but the record keeps it, as UnbridgedAction: what it would have done.
	Unbridged       bool
	UnbridgedAction Action

	// eventsBuf backs Events for the common single-event result. Allocation cost here grows with bytes
	// more than with count, so only small, nearly always used buffers are embedded like this.
	eventsBuf [1]MatrixPart
}

// MatrixPart is one Matrix event to send.
type MatrixPart struct {
	PartID PartID
	Type   event.Type
	// Content is one of *MessageContent, *ReactionContent, *PollStartContent or *PollResponseContent,
	// ready for json.Marshal.
	Content any
}

// SetSource names in the part's content the WhatsApp message it was made from. The portal sets it
// rather than the conversion: it names the chat as the portal keys it, and keeps what the
// conversion returns independent of where the message goes.
func (p MatrixPart) SetSource(s *Source) {
	switch c := p.Content.(type) {
	case *MessageContent:
		c.Source = s
	case *ReactionContent:
		c.Source = s
	case *PollStartContent:
		c.Source = s
	case *PollResponseContent:
		c.Source = s
	}
}

// Redaction is a Matrix event to redact.
type Redaction struct {
	EventID id.EventID
	Reason  string
}

// Downloadable is the subset of whatsmeow's DownloadableMessage the converter hands out. Source values are
// the concrete waE2E media messages, so they can go straight to whatsmeow's Client.Download, which picks the
// media type from the concrete type.
type Downloadable interface {
	GetDirectPath() string
	GetMediaKey() []byte
	GetFileSHA256() []byte
	GetFileEncSHA256() []byte
}

// MediaTransfer is media the portal must put on the Matrix media repository before sending Events[Part]:
// download Source from WhatsApp (or take Data as is), upload it, then call Complete or CompleteEncrypted.
type MediaTransfer struct {
	Part int
	// Source is the WhatsApp media message to download; nil when Data is set.
	Source Downloadable
	// Data is content to upload as is (vCards, embedded thumbnails).
	Data     []byte
	MimeType string
	FileName string
	Size     uint64

	content   *MessageContent
	thumbnail bool
}

// Complete records the uploaded media's URI in the waiting content (unencrypted rooms).
func (t *MediaTransfer) Complete(uri id.ContentURIString) {
	if t.thumbnail {
		if t.content.Info != nil {
			t.content.Info.ThumbnailURL = uri
		}
		return
	}
	t.content.URL = uri
}

// CompleteEncrypted records the uploaded media's encrypted file object in the waiting content.
func (t *MediaTransfer) CompleteEncrypted(file *EncryptedFile) {
	if t.thumbnail {
		if t.content.Info != nil {
			t.content.Info.ThumbnailFile = file
		}
		return
	}
	t.content.File = file
}
