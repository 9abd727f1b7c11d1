package msgconv

import "maunium.net/go/mautrix/id"

// The Matrix content types below are plain structs with json tags and no custom marshalers, on purpose:
// mautrix's event.Content with Raw extras re-encodes through a map, which costs 7-13x a typed marshal.

// MsgType is the msgtype of an m.room.message event.
type MsgType string

// The msgtypes of the Matrix spec this package produces or accepts.
const (
	MsgText     MsgType = "m.text"
	MsgNotice   MsgType = "m.notice"
	MsgEmote    MsgType = "m.emote"
	MsgImage    MsgType = "m.image"
	MsgVideo    MsgType = "m.video"
	MsgAudio    MsgType = "m.audio"
	MsgFile     MsgType = "m.file"
	MsgLocation MsgType = "m.location"
)

// FormatHTML is the only format of formatted_body in the spec.
const FormatHTML = "org.matrix.custom.html"

// MessageContent is the content of m.room.message and m.sticker events, in both directions.
type MessageContent struct {
	MsgType       MsgType             `json:"msgtype,omitempty"`
	Body          string              `json:"body"`
	Format        string              `json:"format,omitempty"`
	FormattedBody string              `json:"formatted_body,omitempty"`
	FileName      string              `json:"filename,omitempty"`
	URL           id.ContentURIString `json:"url,omitempty"`
	File          *EncryptedFile      `json:"file,omitempty"`
	Info          *FileInfo           `json:"info,omitempty"`
	GeoURI        string              `json:"geo_uri,omitempty"`
	Location      *LocationInfo       `json:"org.matrix.msc3488.location,omitempty"`
	Audio         *AudioInfo          `json:"org.matrix.msc1767.audio,omitempty"`
	Voice         *struct{}           `json:"org.matrix.msc3245.voice,omitempty"`
	// Mentions is always set on messages we produce, even empty: that turns off the legacy push rules
	// that would otherwise ping anyone whose name appears in a puppet's text.
	Mentions   *Mentions       `json:"m.mentions,omitempty"`
	RelatesTo  *RelatesTo      `json:"m.relates_to,omitempty"`
	NewContent *MessageContent `json:"m.new_content,omitempty"`
	Source     *Source         `json:"com.causeway.source,omitempty"`

	// mentionsBuf backs Mentions, which every message we produce has.
	mentionsBuf Mentions
}

// FileInfo is the info object of media messages.
type FileInfo struct {
	MimeType      string              `json:"mimetype,omitempty"`
	Size          uint64              `json:"size,omitempty"`
	Width         uint32              `json:"w,omitempty"`
	Height        uint32              `json:"h,omitempty"`
	Duration      uint32              `json:"duration,omitempty"`
	ThumbnailURL  id.ContentURIString `json:"thumbnail_url,omitempty"`
	ThumbnailFile *EncryptedFile      `json:"thumbnail_file,omitempty"`
	ThumbnailInfo *FileInfo           `json:"thumbnail_info,omitempty"`
	// These unspecced flags ask clients that know them to play a video like a GIF: WhatsApp GIFs are
	// silent looping MP4s, and a player with controls looks wrong.
	IsGIF        bool `json:"fi.mau.gif,omitempty"`
	Loop         bool `json:"fi.mau.loop,omitempty"`
	Autoplay     bool `json:"fi.mau.autoplay,omitempty"`
	HideControls bool `json:"fi.mau.hide_controls,omitempty"`
	NoAudio      bool `json:"fi.mau.no_audio,omitempty"`
}

// EncryptedFile is the file object of media in encrypted rooms (the portal fills it after encrypting).
type EncryptedFile struct {
	URL    id.ContentURIString `json:"url"`
	Key    JSONWebKey          `json:"key"`
	IV     string              `json:"iv"`
	Hashes map[string]string   `json:"hashes"`
	V      string              `json:"v"`
}

// JSONWebKey is the key of an EncryptedFile.
type JSONWebKey struct {
	Kty    string   `json:"kty"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	K      string   `json:"k"`
	Ext    bool     `json:"ext"`
}

// LocationInfo is the MSC3488 location object, which newer clients render as a map.
type LocationInfo struct {
	URI         string `json:"uri"`
	Description string `json:"description,omitempty"`
}

// AudioInfo is the MSC1767 audio object; clients draw voice messages from its waveform.
type AudioInfo struct {
	Duration int   `json:"duration,omitempty"` // milliseconds
	Waveform []int `json:"waveform,omitempty"` // 0..1024
}

// Mentions is the m.mentions object.
type Mentions struct {
	UserIDs []id.UserID `json:"user_ids,omitempty"`
	Room    bool        `json:"room,omitempty"`
}

// RelatesTo is the m.relates_to object: replies, edits, reactions and poll responses.
type RelatesTo struct {
	RelType   string     `json:"rel_type,omitempty"`
	EventID   id.EventID `json:"event_id,omitempty"`
	Key       string     `json:"key,omitempty"`
	InReplyTo *InReplyTo `json:"m.in_reply_to,omitempty"`
	// IsFallingBack marks an in_reply_to inside a thread relation as a fallback for unthreaded clients.
	IsFallingBack bool `json:"is_falling_back,omitempty"`
}

// InReplyTo is the m.in_reply_to object.
type InReplyTo struct {
	EventID id.EventID `json:"event_id"`
}

// Relation types.
const (
	RelReplace    = "m.replace"
	RelAnnotation = "m.annotation"
	RelReference  = "m.reference"
	RelThread     = "m.thread"
)

// ReactionContent is the content of m.reaction.
type ReactionContent struct {
	RelatesTo RelatesTo `json:"m.relates_to"`
	Source    *Source   `json:"com.causeway.source,omitempty"`
}

// PollStartContent is the content of an MSC3381 (unstable prefix) poll start event.
type PollStartContent struct {
	PollStart PollStart `json:"org.matrix.msc3381.poll.start"`
	// Text is the MSC1767 fallback clients without poll support show.
	Text      string     `json:"org.matrix.msc1767.text"`
	Mentions  *Mentions  `json:"m.mentions,omitempty"`
	RelatesTo *RelatesTo `json:"m.relates_to,omitempty"`
	Source    *Source    `json:"com.causeway.source,omitempty"`
}

// PollStart is the poll definition inside a poll start event.
type PollStart struct {
	Kind          string       `json:"kind"`
	MaxSelections int          `json:"max_selections"`
	Question      PollText     `json:"question"`
	Answers       []PollAnswer `json:"answers"`
}

// PollText is an MSC1767 text block.
type PollText struct {
	Text string `json:"org.matrix.msc1767.text"`
}

// PollAnswer is one answer of a poll.
type PollAnswer struct {
	ID   string `json:"id"`
	Text string `json:"org.matrix.msc1767.text"`
}

// Poll kinds.
const (
	PollKindDisclosed   = "org.matrix.msc3381.poll.disclosed"
	PollKindUndisclosed = "org.matrix.msc3381.poll.undisclosed"
)

// PollResponseContent is the content of an MSC3381 poll response event.
type PollResponseContent struct {
	Response  PollResponse `json:"org.matrix.msc3381.poll.response"`
	RelatesTo RelatesTo    `json:"m.relates_to"`
	Source    *Source      `json:"com.causeway.source,omitempty"`
}

// PollResponse holds the chosen answer IDs; an empty list withdraws the vote.
type PollResponse struct {
	Answers []string `json:"answers"`
}

// SourceKey is the content key under which an event the bridge sends names what it was made from.
const SourceKey = "com.causeway.source"

// Source names the WhatsApp message part an event was made from. It travels in the event's content so
// that the bridge can recognise its own event in the room's timeline when it cannot tell whether a send
// reached the homeserver: the homeserver's transaction IDs do not survive every failure (see
// docs/dendrite-duplicate-events.md).
type Source struct {
	Chat string `json:"chat"`
	ID   string `json:"id"`
	Part int    `json:"part"`
}
