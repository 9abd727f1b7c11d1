package msgconv

import (
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/variationselector"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
)

// This file holds the WhatsApp messages that act on other messages: edits, revokes, reactions, and the
// protocol messages around them.

func (c *toMatrix) protocol(p *waE2E.ProtocolMessage, depth int) error {
	switch p.GetType() {
	case waE2E.ProtocolMessage_REVOKE:
		return c.revoke(p.GetKey())
	case waE2E.ProtocolMessage_MESSAGE_EDIT:
		return c.edit(p.GetKey(), p.GetEditedMessage(), depth)
	case waE2E.ProtocolMessage_EPHEMERAL_SETTING:
		c.timer(p.GetEphemeralExpiration())
		return nil
	}
	// Key shares, history sync notifications, peer data operations and the like are whatsmeow's business;
	// they never show in a chat.
	c.res.Action = ActionNone
	c.res.Note = "protocol message " + p.GetType().String()
	return nil
}

func (c *toMatrix) revoke(key *waCommon.MessageKey) error {
	target := key.GetID()
	c.res.Target = target
	parts, err := c.r.MessageParts(c.ctx, c.info.Chat, target)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("failed to look up revoked message %s: %w", target, err)
	}
	if len(parts) == 0 {
		c.res.Action, c.res.Unbridged, c.res.UnbridgedAction = ActionNone, true, ActionRevoke
		c.res.Note = "revoke of a message that was not bridged"
		return nil
	}
	reason := "Deleted on WhatsApp"
	if s := parts[0].Sender; !s.IsEmpty() && s.Server == c.info.Sender.Server && s.User != c.info.Sender.User {
		reason = "Deleted by a group admin on WhatsApp"
	}
	c.res.Action = ActionRevoke
	c.res.Redactions = make([]Redaction, len(parts))
	for i, p := range parts {
		c.res.Redactions[i] = Redaction{EventID: p.EventID, Reason: reason}
	}
	return nil
}

func (c *toMatrix) edit(key *waCommon.MessageKey, edited *waE2E.Message, depth int) error {
	target := key.GetID()
	c.res.Target = target
	part, found, err := c.lookupPart(target, MainPart)
	if err != nil {
		return err
	}
	if found && !part.Sender.IsEmpty() && part.Sender.Server == c.info.Sender.Server && part.Sender.User != c.info.Sender.User {
		return fmt.Errorf("message %s: %w", target, ErrForgedEdit)
	}
	for i := 0; edited != nil && i < maxUnwrap; i++ {
		inner, _, ok := unwrap(edited)
		if !ok {
			break
		}
		edited = inner
	}
	text, ci, isText := editedText(edited)
	if !found {
		// Matrix has nothing to replace: show the new version rather than lose it.
		if edited.GetProtocolMessage() != nil || edited.GetReactionMessage() != nil || edited.GetPollUpdateMessage() != nil {
			// An edit's new version must be content; acting on a nested revoke or reaction would let an
			// edit do what its sender may not do directly.
			c.res.Action, c.res.Unbridged, c.res.UnbridgedAction = ActionNone, true, ActionEdit
			c.res.Note = "edit of a message that was not bridged, whose new version is not content"
			return nil
		}
		if err := c.convert(edited, depth+1); err != nil {
			return err
		}
		c.res.Target = target
		if len(c.res.Events) == 0 {
			c.res.Action, c.res.Unbridged, c.res.UnbridgedAction = ActionNone, true, ActionEdit
			c.res.Note = "edit of a message that was not bridged, with nothing to show: " + c.res.Note
			return nil
		}
		c.res.Action = ActionMessage
		c.res.Note = "edit of a message that was not bridged, sent as a new message"
		return nil
	}
	newContent := c.newContent(MsgText)
	if err := c.fillBody(newContent, text, ci); err != nil {
		return err
	}
	if !isText {
		// A caption edit cannot be an m.replace of the media event without its media URL, which only the
		// portal has; a notice under the media says what changed instead.
		newContent.MsgType = MsgNotice
		newContent.Body = "Edited the caption to: " + newContent.Body
		if newContent.Format == FormatHTML {
			newContent.FormattedBody = "Edited the caption to: " + newContent.FormattedBody
		}
		newContent.RelatesTo = &RelatesTo{InReplyTo: &InReplyTo{EventID: part.EventID}}
		c.res.Action = ActionMessage
		c.addEvent(event.EventMessage, newContent)
		return nil
	}
	top := &MessageContent{MsgType: newContent.MsgType, Body: "* " + newContent.Body, NewContent: newContent}
	// Top-level mentions of an edit should only name newly mentioned users; without the old content we
	// cannot tell, and re-pinging everyone on every edit is worse than not pinging.
	top.Mentions = &top.mentionsBuf
	top.RelatesTo = &RelatesTo{RelType: RelReplace, EventID: part.EventID}
	if newContent.Format == FormatHTML {
		top.Format = FormatHTML
		top.FormattedBody = "* " + newContent.FormattedBody
	}
	c.res.Action = ActionEdit
	c.addEvent(event.EventMessage, top)
	return nil
}

// editedText pulls the new text out of an edit; isText is false for caption edits of media.
func editedText(m *waE2E.Message) (text string, ci *waE2E.ContextInfo, isText bool) {
	switch {
	case m == nil:
		return "", nil, true
	case m.Conversation != nil:
		return m.GetConversation(), nil, true
	case m.ExtendedTextMessage != nil:
		return m.ExtendedTextMessage.GetText(), m.ExtendedTextMessage.GetContextInfo(), true
	case m.EventMessage != nil:
		// Event messages are shown as text, so an edit of one (WhatsApp sends those
		// secret-encrypted, EVENT_EDIT) replaces the text.
		return eventText(m.EventMessage), m.EventMessage.GetContextInfo(), true
	case m.ImageMessage != nil:
		return m.ImageMessage.GetCaption(), m.ImageMessage.GetContextInfo(), false
	case m.VideoMessage != nil:
		return m.VideoMessage.GetCaption(), m.VideoMessage.GetContextInfo(), false
	case m.DocumentMessage != nil:
		return m.DocumentMessage.GetCaption(), m.DocumentMessage.GetContextInfo(), false
	}
	return summarize(m), nil, false
}

func (c *toMatrix) reaction(r *waE2E.ReactionMessage) error {
	target := r.GetKey().GetID()
	c.res.Target = target
	part, found, err := c.lookupPart(target, MainPart)
	if err != nil {
		return err
	}
	if !found {
		c.res.Action, c.res.Unbridged, c.res.UnbridgedAction = ActionNone, true, ActionReaction
		c.res.Note = "reaction to a message that was not bridged"
		return nil
	}
	text := r.GetText()
	if text != "" && !isEmoji(text) {
		// WhatsApp's own clients only send emoji. Text in a reaction (a modified client) is
		// not relayed as one: it would sit under the message as an arbitrary label. The
		// reaction it would have replaced stays.
		return c.noticeAbout("Reacted with something that is not an emoji, which is not bridged", target)
	}
	old, err := c.r.ReactionEvent(c.ctx, c.info.Chat, target, c.info.Sender)
	switch {
	case err == nil && old != "":
		// WhatsApp allows one reaction per user and message: a new one replaces the old.
		c.res.Redactions = []Redaction{{EventID: old, Reason: "Reaction changed on WhatsApp"}}
	case err != nil && !errors.Is(err, ErrNotFound):
		return fmt.Errorf("failed to look up previous reaction to %s: %w", target, err)
	}
	if text == "" {
		c.res.Action = ActionReactionRemove
		if len(c.res.Redactions) > 0 {
			c.res.Redactions[0].Reason = "Reaction removed on WhatsApp"
		}
		return nil
	}
	c.res.Action = ActionReaction
	// WhatsApp sends emoji without the variation selector; Matrix clients add it where the
	// spec asks (Element's 👍 is 👍 U+FE0F), and a key without it is a reaction group of its own.
	key := variationselector.Add(validUTF8(text))
	c.addEvent(event.EventReaction, &ReactionContent{RelatesTo: RelatesTo{RelType: RelAnnotation, EventID: part.EventID, Key: key}})
	return nil
}

func (c *toMatrix) timer(seconds uint32) {
	d := time.Duration(seconds) * time.Second
	c.notice(timerText(d))
	c.res.Action = ActionTimer
	c.res.Timer = &d
}

func timerText(d time.Duration) string {
	if d == 0 {
		return "Turned off disappearing messages"
	}
	return "Set the disappearing message timer to " + humanDuration(d)
}

// humanDuration writes the durations WhatsApp offers (hours to 90 days) the way its own UI does.
func humanDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return unit(int64(d/time.Second), "second")
}

func (c *toMatrix) pin(p *waE2E.PinInChatMessage) error {
	verb := "Pinned a message"
	if p.GetType() == waE2E.PinInChatMessage_UNPIN_FOR_ALL {
		verb = "Unpinned a message"
	}
	return c.noticeAbout(verb, p.GetKey().GetID())
}

func (c *toMatrix) keepInChat(k *waE2E.KeepInChatMessage) error {
	verb := "Kept a message in the chat"
	if k.GetKeepType() == waE2E.KeepType_UNDO_KEEP_FOR_ALL {
		verb = "Stopped keeping a message in the chat"
	}
	return c.noticeAbout(verb, k.GetKey().GetID())
}

// noticeAbout sends a notice replying to the message it is about, when Matrix has that message.
func (c *toMatrix) noticeAbout(text string, target types.MessageID) error {
	c.notice(text)
	c.res.Target = target
	part, found, err := c.lookupPart(target, MainPart)
	if err != nil {
		return err
	}
	if found {
		c.res.Events[len(c.res.Events)-1].Content.(*MessageContent).RelatesTo = &RelatesTo{InReplyTo: &InReplyTo{EventID: part.EventID}}
	}
	return nil
}
