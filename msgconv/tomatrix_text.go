package msgconv

import (
	"strings"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func (c *toMatrix) extendedText(ext *waE2E.ExtendedTextMessage) error {
	return c.text(ext.GetText(), ext.GetContextInfo())
}

func (c *toMatrix) text(text string, ci *waE2E.ContextInfo) error {
	content := c.newContent(MsgText)
	if err := c.fillText(content, text, ci); err != nil {
		return err
	}
	c.res.Action = ActionMessage
	c.addEvent(event.EventMessage, content)
	return nil
}

// fillText sets body and formatted_body from WhatsApp text and applies the context info's mentions and
// reply. Media captions go through here too.
func (c *toMatrix) fillText(content *MessageContent, text string, ci *waE2E.ContextInfo) error {
	if err := c.fillBody(content, text, ci); err != nil {
		return err
	}
	return c.reply(content, ci)
}

// fillBody is fillText without the reply, for the new content of edits.
func (c *toMatrix) fillBody(content *MessageContent, text string, ci *waE2E.ContextInfo) error {
	text = validUTF8(text)
	mentions, userIDs, room, err := c.mentions(ci)
	if err != nil {
		return err
	}
	content.Body = text
	if hasMarkup(text, len(mentions) > 0) {
		if html, ok := formatWhatsApp(text, mentions); ok {
			content.Format = FormatHTML
			content.FormattedBody = html
		}
		if len(mentions) > 0 {
			content.Body = replaceMentions(text, mentions)
		}
	}
	content.mentionsBuf = Mentions{UserIDs: userIDs, Room: room}
	content.Mentions = &content.mentionsBuf
	return nil
}

// validUTF8 repairs text from WhatsApp: its protobufs are proto2, which does not check UTF-8, and Matrix
// content must be valid JSON strings.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// mentions resolves the users and groups a message mentions.
func (c *toMatrix) mentions(ci *waE2E.ContextInfo) ([]mention, []id.UserID, bool, error) {
	jids := ci.GetMentionedJID()
	groups := ci.GetGroupMentions()
	room := false
	if len(jids) == 0 && len(groups) == 0 && ci.GetNonJIDMentions() == 0 {
		return nil, nil, false, nil
	}
	n := len(jids) + len(groups)
	if ci.GetNonJIDMentions() > 0 {
		n++
	}
	out := make([]mention, 0, n)
	var userIDs []id.UserID
	for _, s := range jids {
		jid, err := parseJID(s)
		if err != nil || jid.User == "" {
			continue // A malformed JID stays as the text the sender typed.
		}
		u, ok, err := c.user(jid)
		if err != nil {
			return nil, nil, false, err
		}
		out = append(out, mention{token: jid.User, kind: mentionUser, user: u})
		if ok && !containsUser(userIDs, u.MXID) {
			userIDs = append(userIDs, u.MXID)
		}
	}
	for _, g := range groups {
		jid, err := parseJID(g.GetGroupJID())
		if err != nil || jid.User == "" {
			continue
		}
		if jid == c.info.Chat {
			room = true
			out = append(out, mention{token: jid.User, kind: mentionRoom})
		} else {
			out = append(out, mention{token: jid.User, kind: mentionText, text: "@" + validUTF8(g.GetGroupSubject())})
		}
	}
	// WhatsApp's "@all" is not a JID mention: it only bumps this counter.
	if ci.GetNonJIDMentions() > 0 && c.info.IsGroup {
		room = true
		out = append(out, mention{token: "all", kind: mentionRoom})
	}
	return out, userIDs, room, nil
}

func containsUser(list []id.UserID, u id.UserID) bool {
	for _, x := range list {
		if x == u {
			return true
		}
	}
	return false
}

// reply turns a WhatsApp quote into m.in_reply_to, or into a quote fallback when the quoted message was
// never bridged (sent before the bridge, or lost), so the reader still sees what was answered.
func (c *toMatrix) reply(content *MessageContent, ci *waE2E.ContextInfo) error {
	stanza := ci.GetStanzaID()
	if stanza == "" {
		return nil
	}
	part, found, err := c.lookupPart(stanza, MainPart)
	if err != nil {
		return err
	}
	quotedSender := part.Sender
	if p := ci.GetParticipant(); p != "" {
		if jid, err := parseJID(p); err == nil {
			quotedSender = jid
		}
	}
	var quoted User
	quotedKnown := false
	if !quotedSender.IsEmpty() {
		if quoted, quotedKnown, err = c.user(quotedSender.ToNonAD()); err != nil {
			return err
		}
	}
	if found {
		content.RelatesTo = &RelatesTo{InReplyTo: &InReplyTo{EventID: part.EventID}}
		// Replying notifies the replied-to user, as Matrix clients do for their own replies.
		if quotedKnown && quotedSender.User != c.info.Sender.User && !containsUser(content.Mentions.UserIDs, quoted.MXID) {
			content.Mentions.UserIDs = append(content.Mentions.UserIDs, quoted.MXID)
		}
		return nil
	}
	c.quoteFallback(content, quoted, summarize(ci.GetQuotedMessage()))
	return nil
}

// quoteFallback prefixes the content with a quote of a message Matrix does not have.
func (c *toMatrix) quoteFallback(content *MessageContent, quoted User, text string) {
	name := quoted.Name
	if name == "" {
		name = "Unknown"
	}
	var body strings.Builder
	body.Grow(len(content.Body) + len(text) + len(name) + 16)
	body.WriteString("> ")
	body.WriteString(name)
	body.WriteString(":\n")
	for _, line := range strings.Split(text, "\n") {
		body.WriteString("> ")
		body.WriteString(line)
		body.WriteByte('\n')
	}
	body.WriteByte('\n')
	body.WriteString(content.Body)

	html := make([]byte, 0, len(text)+len(content.Body)+128)
	html = append(html, "<blockquote>"...)
	if quoted.MXID != "" {
		html = appendPill(html, quoted.MXID, name)
	} else {
		html = appendEscaped(html, name)
	}
	html = append(html, ":<br>"...)
	html = appendEscapedLines(html, text)
	html = append(html, "</blockquote>"...)
	if content.Format == FormatHTML {
		html = append(html, content.FormattedBody...)
	} else {
		html = appendEscapedLines(html, content.Body)
	}
	content.Body = body.String()
	content.Format = FormatHTML
	content.FormattedBody = string(html)
}

// appendEscapedLines escapes plain text for HTML and turns its line breaks into <br>.
func appendEscapedLines(out []byte, s string) []byte {
	for {
		nl := strings.IndexByte(s, '\n')
		if nl < 0 {
			return appendEscaped(out, s)
		}
		out = appendEscaped(out, s[:nl])
		out = append(out, "<br>"...)
		s = s[nl+1:]
	}
}

// summarize describes a quoted message in one line of text, for quote fallbacks.
func summarize(msg *waE2E.Message) string {
	for i := 0; msg != nil && i < maxUnwrap; i++ {
		inner, _, ok := unwrap(msg)
		if !ok {
			break
		}
		msg = inner
	}
	var s string
	switch {
	case msg == nil:
		s = "a message"
	case msg.Conversation != nil:
		s = msg.GetConversation()
	case msg.ExtendedTextMessage != nil:
		s = msg.ExtendedTextMessage.GetText()
	case msg.ImageMessage != nil:
		s = captioned("Image", msg.ImageMessage.GetCaption())
	case msg.VideoMessage != nil:
		s = captioned("Video", msg.VideoMessage.GetCaption())
	case msg.PtvMessage != nil:
		s = "Video note"
	case msg.AudioMessage != nil:
		s = "Audio"
	case msg.DocumentMessage != nil:
		s = captioned("File", msg.DocumentMessage.GetFileName())
	case msg.StickerMessage != nil:
		s = "Sticker"
	case msg.LocationMessage != nil:
		s = "Location"
	case msg.LiveLocationMessage != nil:
		s = "Live location"
	case msg.ContactMessage != nil:
		s = captioned("Contact", msg.ContactMessage.GetDisplayName())
	case msg.PollCreationMessage != nil, msg.PollCreationMessageV2 != nil, msg.PollCreationMessageV3 != nil:
		s = "Poll"
	default:
		s = "a message"
	}
	return validUTF8(s)
}

func captioned(kind, caption string) string {
	if caption == "" {
		return kind
	}
	return kind + ": " + caption
}

// parseJID parses the plain "user@server" JIDs of mentions and quotes without the allocations of
// types.ParseJID, which it falls back to for device and agent forms.
func parseJID(s string) (types.JID, error) {
	user, server, ok := strings.Cut(s, "@")
	if !ok || strings.ContainsAny(user, ".:_") {
		return types.ParseJID(s)
	}
	return types.JID{User: user, Server: server}, nil
}
