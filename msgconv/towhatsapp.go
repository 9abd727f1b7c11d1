package msgconv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/util/variationselector"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// MatrixEvent is a Matrix event as ToWhatsApp reads it. One struct holds the fields of every event kind
// it handles, so an event is decoded once, in one pass, and never re-decoded per kind.
type MatrixEvent struct {
	Type      string       `json:"type"`
	ID        id.EventID   `json:"event_id"`
	Sender    id.UserID    `json:"sender"`
	RoomID    id.RoomID    `json:"room_id"`
	Timestamp int64        `json:"origin_server_ts"`
	Redacts   id.EventID   `json:"redacts,omitempty"`
	Content   EventContent `json:"content"`
}

// EventContent is the union of the content fields of the event kinds ToWhatsApp handles.
type EventContent struct {
	MessageContent
	// Redacts is where room versions 11 and later put the target of a redaction.
	Redacts      id.EventID    `json:"redacts,omitempty"`
	PollStart    *PollStart    `json:"org.matrix.msc3381.poll.start,omitempty"`
	PollResponse *PollResponse `json:"org.matrix.msc3381.poll.response,omitempty"`
}

// DecodeEvent decodes a whole Matrix event (as in an appservice transaction).
func DecodeEvent(data []byte) (*MatrixEvent, error) {
	evt := &MatrixEvent{}
	if err := json.Unmarshal(data, evt); err != nil {
		return nil, fmt.Errorf("failed to decode Matrix event: %w", err)
	}
	return evt, nil
}

// DecodeContent decodes just the content, for callers that already parsed the envelope (mautrix's
// event.Event keeps the raw content in Content.VeryRaw).
func DecodeContent(raw []byte) (EventContent, error) {
	var content EventContent
	if err := json.Unmarshal(raw, &content); err != nil {
		return content, fmt.Errorf("failed to decode Matrix event content: %w", err)
	}
	return content, nil
}

// Chat is the WhatsApp side of the room a Matrix event was sent in.
type Chat struct {
	JID types.JID
	// Self is the logged-in WhatsApp account, the author of everything ToWhatsApp builds.
	Self types.JID
}

// ToWhatsAppResult is what a Matrix event becomes on WhatsApp.
type ToWhatsAppResult struct {
	Action Action
	// Message is the message to send. When Upload is set, complete it first.
	Message *waE2E.Message
	// Upload is Matrix media that must be put on WhatsApp's servers before Message can be sent.
	Upload *MediaUpload
	// Target is the message an edit, revoke, reaction or vote applies to.
	Target *MessageRef
	// PollVote is set instead of Message for poll responses: encrypt it against Target (whatsmeow's
	// Client.EncryptPollVote) and send the resulting PollUpdateMessage.
	PollVote *waE2E.PollVoteMessage
}

// ToWhatsApp converts a Matrix event into what to send to WhatsApp. Content that cannot be sent gets a
// *SendError; lookups that fail for other reasons get a wrapped error.
func ToWhatsApp(ctx context.Context, evt *MatrixEvent, chat Chat, r Resolver, opts *Options) (*ToWhatsAppResult, error) {
	if opts == nil {
		opts = &defaultOptions
	}
	c := toWA{ctx: ctx, evt: evt, chat: chat, r: r, opts: opts}
	switch evt.Type {
	case event.EventMessage.Type:
		return c.message(&evt.Content.MessageContent)
	case event.EventSticker.Type:
		return c.media(&evt.Content.MessageContent, MediaSticker)
	case event.EventReaction.Type:
		return c.reaction()
	case event.EventRedaction.Type:
		return c.redaction()
	case event.EventUnstablePollStart.Type:
		return c.pollStart()
	case event.EventUnstablePollResponse.Type:
		return c.pollResponse()
	}
	return nil, sendErr(ErrUnsupportedEventType, evt.Type)
}

type toWA struct {
	ctx  context.Context
	evt  *MatrixEvent
	chat Chat
	r    Resolver
	opts *Options
}

func (c *toWA) message(content *MessageContent) (*ToWhatsAppResult, error) {
	if rel := content.RelatesTo; rel != nil && rel.RelType == RelReplace {
		return c.edit(content)
	}
	switch content.MsgType {
	case MsgText, MsgNotice, MsgEmote:
		msg, err := c.textMessage(content)
		if err != nil {
			return nil, err
		}
		return &ToWhatsAppResult{Action: ActionMessage, Message: msg}, nil
	case MsgImage:
		return c.media(content, MediaImage)
	case MsgVideo:
		return c.media(content, MediaVideo)
	case MsgAudio:
		return c.media(content, MediaAudio)
	case MsgFile:
		return c.media(content, MediaDocument)
	case MsgLocation:
		return c.location(content)
	}
	return nil, sendErr(ErrUnsupportedMsgType, string(content.MsgType))
}

// textMessage builds the WhatsApp message for m.text, m.notice and m.emote.
func (c *toWA) textMessage(content *MessageContent) (*waE2E.Message, error) {
	text, mentioned, err := c.text(content)
	if err != nil {
		return nil, err
	}
	if content.MsgType == MsgEmote {
		// WhatsApp has no emotes; IRC's "/me" is the convention people recognise.
		text = "/me " + text
	}
	if strings.TrimSpace(text) == "" {
		return nil, sendErr(ErrEmptyMessage, "no text")
	}
	ci, err := c.contextInfo(content, mentioned)
	if err != nil {
		return nil, err
	}
	if ci == nil {
		return &waE2E.Message{Conversation: proto.String(text)}, nil
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text), ContextInfo: ci}}, nil
}

// text returns the WhatsApp text of a message and the JIDs its pills mention. The HTML is only parsed
// when there is HTML: a full DOM parse is 63% of the reference converter's Matrix->WhatsApp time.
func (c *toWA) text(content *MessageContent) (string, []string, error) {
	if content.Format == FormatHTML && content.FormattedBody != "" {
		return htmlToWhatsApp(c, content.FormattedBody)
	}
	body := content.Body
	if content.RelatesTo != nil && content.RelatesTo.InReplyTo != nil {
		body = stripReplyFallback(body)
	}
	return body, nil, nil
}

// stripReplyFallback removes the "> <@user> quoted" lines older clients put before a reply's body.
func stripReplyFallback(body string) string {
	if !strings.HasPrefix(body, "> ") {
		return body
	}
	rest := body
	for strings.HasPrefix(rest, ">") {
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			return body
		}
		rest = rest[nl+1:]
	}
	return strings.TrimPrefix(rest, "\n")
}

// contextInfo builds the mentions and the quote of a reply; nil when there are neither.
func (c *toWA) contextInfo(content *MessageContent, mentioned []string) (*waE2E.ContextInfo, error) {
	var replyTo id.EventID
	if rel := content.RelatesTo; rel != nil && rel.InReplyTo != nil {
		replyTo = rel.InReplyTo.EventID
	}
	if replyTo == "" && len(mentioned) == 0 {
		return nil, nil
	}
	ci := &waE2E.ContextInfo{MentionedJID: mentioned}
	if replyTo == "" {
		return ci, nil
	}
	ref, found, err := c.lookup(replyTo)
	if err != nil {
		return nil, err
	}
	if found && ref.EditOf != nil {
		// A reply to an edit quotes the message edited, which is what phones show.
		ref, found = *ref.EditOf, ref.EditOf.ID != ""
	}
	if !found {
		// The message still makes sense without its quote; phones just show it unquoted.
		if len(mentioned) == 0 {
			return nil, nil
		}
		return ci, nil
	}
	if ref.ReactionTo != nil {
		ref = *ref.ReactionTo
	}
	sender := ref.Sender
	if ref.FromMe || sender.IsEmpty() {
		sender = c.chat.Self
	}
	// One allocation for both string fields instead of one each.
	strs := &struct{ stanza, participant string }{ref.ID, sender.ToNonAD().String()}
	ci.StanzaID, ci.Participant = &strs.stanza, &strs.participant
	ci.QuotedMessage = ref.Quoted
	if ci.QuotedMessage == nil {
		// Phones find the quoted message by stanza ID; the placeholder only has to be present.
		ci.QuotedMessage = &waE2E.Message{Conversation: proto.String("")}
	}
	return ci, nil
}

func (c *toWA) lookup(evt id.EventID) (MessageRef, bool, error) {
	ref, err := c.r.MessageByEvent(c.ctx, evt)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return ref, false, nil
		}
		return ref, false, fmt.Errorf("failed to look up event %s: %w", evt, err)
	}
	return ref, true, nil
}

// target resolves the event a relation points at; unlike replies, edits and reactions cannot do without.
func (c *toWA) target(evt id.EventID) (*MessageRef, error) {
	if evt == "" {
		return nil, sendErr(ErrInvalidContent, "relation without event_id")
	}
	ref, found, err := c.lookup(evt)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, sendErr(ErrTargetNotFound, string(evt))
	}
	return &ref, nil
}

// key builds the key WhatsApp uses to name an existing message, as whatsmeow's BuildMessageKey does.
func (c *toWA) key(ref *MessageRef) *waCommon.MessageKey {
	key := &waCommon.MessageKey{
		RemoteJID: proto.String(c.chat.JID.String()),
		FromMe:    proto.Bool(ref.FromMe),
		ID:        proto.String(ref.ID),
	}
	if !ref.FromMe && !ref.Sender.IsEmpty() {
		switch c.chat.JID.Server {
		case types.DefaultUserServer, types.HiddenUserServer, types.MessengerServer:
		default:
			key.Participant = proto.String(ref.Sender.ToNonAD().String())
		}
	}
	return key
}

func (c *toWA) timestamp() time.Time { return time.UnixMilli(c.evt.Timestamp) }

func (c *toWA) edit(content *MessageContent) (*ToWhatsAppResult, error) {
	ref, err := c.target(content.RelatesTo.EventID)
	if err != nil {
		return nil, err
	}
	if ref.EditOf != nil {
		// The spec makes an edit of an edit invalid; clients edit the original.
		return nil, sendErr(ErrEditOfEdit, string(content.RelatesTo.EventID))
	}
	if !ref.FromMe {
		return nil, sendErr(ErrNotOwnMessage, string(content.RelatesTo.EventID))
	}
	if !ref.Timestamp.IsZero() && c.timestamp().Sub(ref.Timestamp) > c.opts.editWindow() {
		return nil, sendErr(ErrEditTooOld, fmt.Sprintf("sent %s before the edit", c.timestamp().Sub(ref.Timestamp).Round(time.Minute)))
	}
	newContent := content.NewContent
	if newContent == nil {
		// Clients that predate m.new_content put the new text, with a "* " prefix, at the top level.
		stripped := *content
		stripped.RelatesTo = nil
		stripped.Body = strings.TrimPrefix(stripped.Body, "* ")
		stripped.FormattedBody = strings.TrimPrefix(stripped.FormattedBody, "* ")
		newContent = &stripped
	}
	switch newContent.MsgType {
	case MsgText, MsgNotice, MsgEmote, "":
	default:
		// Sent as a text edit, the new media would read as its file name.
		return nil, sendErr(ErrEditChangesType, string(newContent.MsgType))
	}
	text, mentioned, err := c.text(newContent)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(text) == "" {
		return nil, sendErr(ErrEmptyMessage, "the edit has no text")
	}
	edited := &waE2E.Message{Conversation: proto.String(text)}
	if len(mentioned) > 0 {
		edited = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String(text), ContextInfo: &waE2E.ContextInfo{MentionedJID: mentioned},
		}}
	}
	msg := &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
		ProtocolMessage: &waE2E.ProtocolMessage{
			Key:           c.key(ref),
			Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: edited,
			TimestampMS:   proto.Int64(c.evt.Timestamp),
		},
	}}}
	return &ToWhatsAppResult{Action: ActionEdit, Message: msg, Target: ref}, nil
}

func (c *toWA) redaction() (*ToWhatsAppResult, error) {
	redacts := c.evt.Content.Redacts
	if redacts == "" {
		redacts = c.evt.Redacts
	}
	ref, err := c.target(redacts)
	if err != nil {
		return nil, err
	}
	if ref.EditOf != nil {
		// Revoking the edit's ID would delete nothing, and revoking the original would delete
		// too much; going back to the previous text needs that text, which the converter
		// does not have.
		return nil, sendErr(ErrUndoEdit, string(redacts))
	}
	if ref.ReactionTo != nil {
		// Redacting a reaction withdraws it: an empty reaction on WhatsApp.
		msg := &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key: c.key(ref.ReactionTo), Text: proto.String(""), SenderTimestampMS: proto.Int64(c.evt.Timestamp),
		}}
		return &ToWhatsAppResult{Action: ActionReactionRemove, Message: msg, Target: ref.ReactionTo}, nil
	}
	if !ref.FromMe && c.chat.JID.Server != types.GroupServer {
		return nil, sendErr(ErrNotOwnMessage, "only group admins can delete other people's messages")
	}
	if !ref.Timestamp.IsZero() && c.timestamp().Sub(ref.Timestamp) > c.opts.revokeWindow() {
		return nil, sendErr(ErrRevokeTooOld, fmt.Sprintf("sent %s before the deletion", c.timestamp().Sub(ref.Timestamp).Round(time.Hour)))
	}
	msg := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_REVOKE.Enum(),
		Key:  c.key(ref),
	}}
	return &ToWhatsAppResult{Action: ActionRevoke, Message: msg, Target: ref}, nil
}

func (c *toWA) reaction() (*ToWhatsAppResult, error) {
	rel := c.evt.Content.RelatesTo
	if rel == nil || rel.RelType != RelAnnotation || rel.Key == "" {
		return nil, sendErr(ErrInvalidContent, "reaction without an annotation")
	}
	ref, err := c.target(rel.EventID)
	if err != nil {
		return nil, err
	}
	if ref.ReactionTo != nil {
		return nil, sendErr(ErrUnsupportedEventType, "WhatsApp has no reactions to reactions")
	}
	if ref.EditOf != nil {
		// A reaction to an edit is a reaction to the message, as phones show it.
		if ref.EditOf.ID == "" {
			return nil, sendErr(ErrTargetNotFound, string(rel.EventID))
		}
		ref = ref.EditOf
	}
	// WhatsApp sends emoji without the variation selector Matrix clients add; matching its form keeps
	// one emoji from showing as two different reactions on phones.
	key := variationselector.Remove(rel.Key)
	if !isEmoji(key) {
		return nil, sendErr(ErrNotEmoji, "")
	}
	msg := &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
		Key: c.key(ref), Text: proto.String(key), SenderTimestampMS: proto.Int64(c.evt.Timestamp),
	}}
	return &ToWhatsAppResult{Action: ActionReaction, Message: msg, Target: ref}, nil
}
