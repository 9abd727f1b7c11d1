package archive

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Kind says what an entry records. The relay path may use kinds not listed here; the archive only treats
// the audit and completeness kinds specially.
type Kind string

// Content kinds: what crossed the bridge. They carry a chat and are subject to retention.
const (
	KindMessage         Kind = "message"          // a WhatsApp message received (Message set)
	KindEdit            Kind = "edit"             // Target edited to Message
	KindRevoke          Kind = "revoke"           // Target deleted for everyone
	KindDeleteForMe     Kind = "delete_for_me"    // Target deleted on the account's own devices only
	KindChatDelete      Kind = "chat_delete"      // the whole chat deleted on the phone
	KindReaction        Kind = "reaction"         // Reaction to Target; empty Reaction removes it
	KindReceipt         Kind = "receipt"          // Receipt for message IDs
	KindGroupMembership Kind = "group_membership" // Group.Action on Group.Participants
	KindGroupSubject    Kind = "group_subject"    // Group.Subject set
	KindOutboundSend    Kind = "outbound_send"    // a Matrix->WhatsApp send attempt (Message, Outbound)
	KindOutboundResult  Kind = "outbound_result"  // the result of Target's send (Outbound.Status, Error)
	KindMediaBackfill   Kind = "media_backfill"   // Target's media, fetched after it was archived with a placeholder
	KindStatus          Kind = "status"           // a WhatsApp status update (Message set; Chat is status@broadcast)
	KindCall            Kind = "call"             // a WhatsApp call to the account (Call set), which the bridge cannot carry
	// KindMatrixMessage is a Matrix event in a portal that did not go to WhatsApp (Message,
	// Outbound with Status "not_relayed" and Error saying why): a Matrix user without the
	// room's WhatsApp login wrote, or the event is of a kind WhatsApp has no counterpart for.
	KindMatrixMessage Kind = "matrix_message"
)

// Completeness kinds: the ledger of what could not be captured. Never disposed.
const (
	KindConnected      Kind = "connected"
	KindDisconnected   Kind = "disconnected"
	KindLoggedOut      Kind = "logged_out"
	KindUndecryptable  Kind = "undecryptable"   // MessageID from Sender in Chat could not be decrypted
	KindHistorySync    Kind = "history_sync"    // Completeness.From..To of Chat was received by history sync
	KindArchiveStarted Kind = "archive_started" // written by Open
	KindArchiveStopped Kind = "archive_stopped" // written by Close
	// KindRedactionTargetMissing: a Matrix user deleted an event (Outbound names it) that had
	// not reached the bridge within bridge.redaction_wait, so its content was not captured.
	// Target is the WhatsApp ID it would have been sent with.
	KindRedactionTargetMissing Kind = "redaction_target_missing"
)

// completenessKinds are the completeness ledger's kinds.
var completenessKinds = []Kind{KindConnected, KindDisconnected, KindLoggedOut, KindUndecryptable, KindHistorySync,
	KindArchiveStarted, KindArchiveStopped, KindRedactionTargetMissing}

// Audit kinds: written only by the archive itself. Never disposed.
const (
	KindHoldAdded   Kind = "hold_added"
	KindHoldRemoved Kind = "hold_removed"
	KindDisposal    Kind = "disposal"
	KindExport      Kind = "export"
)

func (k Kind) isAudit() bool {
	return k == KindHoldAdded || k == KindHoldRemoved || k == KindDisposal || k == KindExport
}

func (k Kind) isCompleteness() bool {
	return slices.Contains(completenessKinds, k)
}

// disposable reports whether retention applies: only content, never the ledger or the audit trail, which
// hold no message content and are what proves the archive's history.
func (k Kind) disposable() bool {
	return !k.isAudit() && !k.isCompleteness()
}

// Entry is one archived event. Kind plus whichever typed part fits; JIDs are strings in whatsmeow's
// types.JID.String() form so the relay path can fill an Entry without the archive importing whatsmeow.
//
// Fields are declared in the byte order of their JSON names: encoding/json writes struct fields in
// declaration order, and that order is what makes the encoding canonical (sorted keys). A test holds
// every struct in this file to it.
type Entry struct {
	Account string `json:"account,omitempty"` // the bridged WhatsApp account that saw the event
	Actor   string `json:"actor,omitempty"`   // who did it, for audit entries
	// Broadcast is the broadcast list a message was sent to; Chat is then the sender's DM,
	// where WhatsApp shows it.
	Broadcast    string        `json:"broadcast,omitempty"`
	Call         *Call         `json:"call,omitempty"`
	Chat         string        `json:"chat,omitempty"`
	ChatName     string        `json:"chat_name,omitempty"`
	Completeness *Completeness `json:"completeness,omitempty"`
	Disposal     *Disposal     `json:"disposal,omitempty"`
	Export       *ExportRecord `json:"export,omitempty"`
	Group        *GroupChange  `json:"group,omitempty"`
	Hold         *HoldRecord   `json:"hold,omitempty"`
	Kind         Kind          `json:"kind"`
	Message      *Message      `json:"message,omitempty"`
	MessageID    string        `json:"message_id,omitempty"`
	Outbound     *Outbound     `json:"outbound,omitempty"`
	Reaction     string        `json:"reaction,omitempty"`
	Receipt      *Receipt      `json:"receipt,omitempty"`
	Sender       string        `json:"sender,omitempty"`
	SenderName   string        `json:"sender_name,omitempty"`
	Source       string        `json:"source,omitempty"` // how it reached the bridge when not live: history_sync, export
	Target       *Target       `json:"target,omitempty"`
	Time         time.Time     `json:"time,omitzero"` // when it happened according to WhatsApp
}

// Message is message content: the decrypted protobuf as received, and the text as the bridge rendered it.
type Message struct {
	Media   []MediaRef `json:"media,omitempty"`
	Proto   []byte     `json:"proto,omitempty"` // decrypted waE2E.Message, protobuf wire format
	ReplyTo string     `json:"reply_to,omitempty"`
	Text    string     `json:"text,omitempty"`
	Type    string     `json:"type,omitempty"` // text, image, video, audio, document, sticker, location, ...
}

// MediaRef names a media blob by the hex SHA-256 of its plaintext. The blob itself is stored with PutMedia.
type MediaRef struct {
	FileName string `json:"file_name,omitempty"`
	MimeType string `json:"mime_type,omitempty"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size,omitempty"`
}

// Target is the message an edit, revoke, reaction or send result refers to.
type Target struct {
	MessageID string `json:"message_id"`
	// NotRelayed says why an entry acting on a message was not relayed: the bridge never saw
	// that message (a revoke, edit or reaction of one sent before the login, say).
	NotRelayed string `json:"not_relayed,omitempty"`
	Sender     string `json:"sender,omitempty"`
}

// Call describes a WhatsApp call; the bridge carries no calls, so each one is recorded.
type Call struct {
	ID    string `json:"id"`
	Media string `json:"media,omitempty"` // voice or video
	// Outcome is what the bridge saw: "offered" (ringing), or WhatsApp's reason for ending it.
	Outcome string `json:"outcome,omitempty"`
}

// Receipt records delivery, read or played receipts.
type Receipt struct {
	MessageIDs []string `json:"message_ids"`
	Type       string   `json:"type"`
}

// GroupChange records membership (join, leave, add, remove, promote, demote) or subject changes.
type GroupChange struct {
	Action       string   `json:"action,omitempty"`
	Participants []string `json:"participants,omitempty"`
	Subject      string   `json:"subject,omitempty"`
}

// Outbound describes a Matrix->WhatsApp send or its result.
type Outbound struct {
	Error         string `json:"error,omitempty"`
	MatrixEventID string `json:"matrix_event_id,omitempty"`
	MatrixRoomID  string `json:"matrix_room_id,omitempty"`
	MatrixSender  string `json:"matrix_sender,omitempty"`
	Status        string `json:"status,omitempty"` // attempted, sent, failed, withheld (deleted in Matrix before it was sent)
	// Encrypted is the algorithm the Matrix event was encrypted with (the entry holds what
	// the bridge decrypted); empty for an event sent in plaintext.
	Encrypted string `json:"encrypted,omitempty"`
}

// Completeness qualifies a completeness entry: why, and for history syncs the window received.
type Completeness struct {
	// Checkpoint, on archive_started, is the size of the checkpoint this start signed for entries the
	// previous run left unsigned because it ended without Close.
	Checkpoint uint64    `json:"checkpoint,omitempty"`
	From       time.Time `json:"from,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	To         time.Time `json:"to,omitzero"`
}

// HoldRecord is the body of hold_added and hold_removed entries.
type HoldRecord struct {
	ID     uint64    `json:"id,omitempty"` // for hold_removed: the hold's ID
	JID    string    `json:"jid,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Scope  HoldScope `json:"scope,omitempty"`
}

// Disposal is the body of a disposal entry: which entries lost their bodies, which media went, and why.
type Disposal struct {
	Before  time.Time    `json:"before"`
	Entries []IndexRange `json:"entries"`
	Held    int          `json:"held"` // past retention but kept by a hold
	Media   []string     `json:"media,omitempty"`
	Rules   []RuleCount  `json:"rules"`
}

// IndexRange is the half-open range of log indexes [Start, End).
type IndexRange struct {
	End   uint64 `json:"end"`
	Start uint64 `json:"start"`
}

// RuleCount says how many entries one retention rule disposed.
type RuleCount struct {
	Entries int    `json:"entries"`
	Rule    string `json:"rule"`
}

// ExportRecord is the body of an export entry: the filter the export was made with, and the set it
// exported, so that the checkpoint signing the entry pins what the bundle must hold (see exportset.go).
type ExportRecord struct {
	Chat string `json:"chat,omitempty"`
	// Entries is how many entries the bundle holds besides the export entry, and EntriesSHA256 the
	// digest of their indices.
	Entries       int       `json:"entries,omitempty"`
	EntriesSHA256 string    `json:"entries_sha256,omitempty"`
	From          time.Time `json:"from,omitzero"`
	// Media is how many media files the bundle holds, and MediaSHA256 the digest of their hashes.
	Media       int    `json:"media,omitempty"`
	MediaSHA256 string `json:"media_sha256,omitempty"`
	// Through is the log size the selection was made at: every exported entry but the export entry
	// is below it, and an unfiltered export holds all of them.
	Through uint64    `json:"through,omitempty"`
	To      time.Time `json:"to,omitzero"`
	User    string    `json:"user,omitempty"`
}

// bodyVersion is the envelope format version; a reader refuses versions it does not know.
const bodyVersion = 1

// envelope is the committed body: the entry plus its position, so a body moved to another row or an
// altered predecessor is caught and named even where no checkpoint narrows it down.
type envelope struct {
	Captured time.Time       `json:"captured"`
	Entry    json.RawMessage `json:"entry"`
	Index    uint64          `json:"index"`
	Prev     string          `json:"prev"` // hex RFC 6962 leaf hash of entry Index-1, "" for entry 0
	V        int             `json:"v"`
}

// encodeEntry produces the canonical entry JSON. Times are normalised to UTC because time.Time encodes its
// zone offset, and the same instant must always give the same bytes.
func encodeEntry(e *Entry) ([]byte, error) {
	if e.Kind == "" {
		return nil, errors.New("entry has no kind")
	}
	c := *e
	c.Time = utc(c.Time)
	if c.Completeness != nil {
		cc := *c.Completeness
		cc.From, cc.To = utc(cc.From), utc(cc.To)
		c.Completeness = &cc
	}
	if c.Disposal != nil {
		dc := *c.Disposal
		dc.Before = utc(dc.Before)
		c.Disposal = &dc
	}
	if c.Export != nil {
		xc := *c.Export
		xc.From, xc.To = utc(xc.From), utc(xc.To)
		c.Export = &xc
	}
	data, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode %s entry: %w", e.Kind, err)
	}
	return data, nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// buildBody wraps pre-encoded entry JSON in the envelope. It is written by hand because it runs inside
// the group-commit loop; the key order matches envelope's (sorted), which a test checks.
func buildBody(entry []byte, captured time.Time, index uint64, prev []byte) []byte {
	buf := make([]byte, 0, len(entry)+160)
	buf = append(buf, `{"captured":"`...)
	buf = captured.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","entry":`...)
	buf = append(buf, entry...)
	buf = append(buf, `,"index":`...)
	buf = strconv.AppendUint(buf, index, 10)
	buf = append(buf, `,"prev":"`...)
	buf = hex.AppendEncode(buf, prev)
	buf = append(buf, `","v":`...)
	buf = strconv.AppendInt(buf, bodyVersion, 10)
	buf = append(buf, '}')
	return buf
}

// decodedBody is a body parsed back into its parts.
type decodedBody struct {
	Captured time.Time
	Index    uint64
	Prev     []byte
	Entry    Entry
}

func decodeBody(body []byte) (*decodedBody, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("parse body: %w", err)
	}
	if env.V != bodyVersion {
		return nil, fmt.Errorf("body format version %d is not supported (want %d)", env.V, bodyVersion)
	}
	prev, err := hex.DecodeString(env.Prev)
	if err != nil {
		return nil, fmt.Errorf("parse body prev hash: %w", err)
	}
	out := &decodedBody{Captured: env.Captured, Index: env.Index, Prev: prev}
	if err = json.Unmarshal(env.Entry, &out.Entry); err != nil {
		return nil, fmt.Errorf("parse body entry: %w", err)
	}
	return out, nil
}

// eventTime is the time retention and filters go by: when it happened, else when it was captured.
func eventTime(e *Entry, captured time.Time) time.Time {
	if !e.Time.IsZero() {
		return e.Time
	}
	return captured
}

// mediaHashes lists the media an entry references, deduplicated, in order of first mention.
func (e *Entry) mediaHashes() []string {
	if e.Message == nil || len(e.Message.Media) == 0 {
		return nil
	}
	out := make([]string, 0, len(e.Message.Media))
	for _, m := range e.Message.Media {
		dup := false
		for _, seen := range out {
			dup = dup || seen == m.SHA256
		}
		if !dup {
			out = append(out, m.SHA256)
		}
	}
	return out
}
