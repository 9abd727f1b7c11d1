package msgconv

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"maunium.net/go/mautrix/event"
)

// maxUnwrap bounds wrapper unwrapping: real messages nest two or three deep, and a hostile message must
// not make us loop.
const maxUnwrap = 8

// ToMatrix converts a decrypted WhatsApp message into what the portal must do on Matrix. info is the
// message's envelope as whatsmeow delivers it in events.Message.
func ToMatrix(ctx context.Context, info *types.MessageInfo, msg *waE2E.Message, r Resolver, opts *Options) (*ToMatrixResult, error) {
	if opts == nil {
		opts = &defaultOptions
	}
	c := toMatrix{ctx: ctx, info: info, r: r, opts: opts, res: &ToMatrixResult{}}
	if err := c.convert(msg, 0); err != nil {
		return nil, err
	}
	if info != nil && info.Chat.IsBroadcastList() && c.res.Action == ActionMessage {
		markBroadcast(c.res)
	}
	return c.res, nil
}

// broadcastMarker starts the body of a message sent to a broadcast list. WhatsApp shows such
// a message in the DM with its sender, as the portal does; the marker keeps the reader from
// taking a message to many for one addressed to them alone.
const broadcastMarker = "(broadcast) "

func markBroadcast(res *ToMatrixResult) {
	for _, part := range res.Events {
		mc, ok := part.Content.(*MessageContent)
		if !ok {
			continue
		}
		if mc.FileName == "" && (mc.URL != "" || mc.File != nil || mc.Info != nil) {
			mc.FileName = mc.Body // the body was the file's name; it becomes a caption
		}
		mc.Body = broadcastMarker + mc.Body
		if mc.FormattedBody != "" {
			mc.FormattedBody = "<em>(broadcast)</em> " + mc.FormattedBody
		}
	}
}

// toMatrix carries one conversion's inputs so the helpers need no long parameter lists.
type toMatrix struct {
	ctx      context.Context
	info     *types.MessageInfo
	r        Resolver
	opts     *Options
	res      *ToMatrixResult
	viewOnce bool

	lastJID    types.JID
	lastUser   User
	lastUserOK bool
}

// convert dispatches on the message kind. Wrappers recurse with depth+1.
func (c *toMatrix) convert(msg *waE2E.Message, depth int) error {
	if msg == nil {
		c.notice("Empty WhatsApp message")
		return nil
	}
	if depth > maxUnwrap {
		c.notice("Unsupported WhatsApp message (wrapped too deeply)")
		return nil
	}
	if inner, viewOnce, ok := unwrap(msg); ok {
		if viewOnce {
			c.viewOnce = true
		}
		return c.convert(inner, depth+1)
	}
	switch {
	case msg.ProtocolMessage != nil:
		return c.protocol(msg.ProtocolMessage, depth)
	case msg.ReactionMessage != nil:
		return c.reaction(msg.ReactionMessage)
	case msg.ExtendedTextMessage != nil:
		return c.extendedText(msg.ExtendedTextMessage)
	case msg.Conversation != nil:
		return c.text(msg.GetConversation(), nil)
	case msg.ImageMessage != nil:
		return c.image(msg.ImageMessage)
	case msg.VideoMessage != nil:
		return c.video(msg.VideoMessage, false)
	case msg.PtvMessage != nil:
		return c.video(msg.PtvMessage, true)
	case msg.AudioMessage != nil:
		return c.audio(msg.AudioMessage)
	case msg.DocumentMessage != nil:
		return c.document(msg.DocumentMessage)
	case msg.StickerMessage != nil:
		return c.sticker(msg.StickerMessage)
	case msg.LocationMessage != nil:
		return c.location(msg.LocationMessage)
	case msg.LiveLocationMessage != nil:
		return c.liveLocation(msg.LiveLocationMessage)
	case msg.ContactMessage != nil:
		return c.contacts([]*waE2E.ContactMessage{msg.ContactMessage}, msg.ContactMessage.GetContextInfo())
	case msg.ContactsArrayMessage != nil:
		return c.contacts(msg.ContactsArrayMessage.GetContacts(), msg.ContactsArrayMessage.GetContextInfo())
	case msg.PollCreationMessage != nil:
		return c.pollStart(msg.PollCreationMessage)
	case msg.PollCreationMessageV2 != nil:
		return c.pollStart(msg.PollCreationMessageV2)
	case msg.PollCreationMessageV3 != nil:
		return c.pollStart(msg.PollCreationMessageV3)
	case msg.PollCreationMessageV5 != nil:
		return c.pollStart(msg.PollCreationMessageV5)
	case msg.PollUpdateMessage != nil:
		return c.pollVote(msg.PollUpdateMessage)
	case msg.PollResultSnapshotMessage != nil:
		return c.pollSnapshot(msg.PollResultSnapshotMessage)
	case msg.PollResultSnapshotMessageV3 != nil:
		return c.pollSnapshot(msg.PollResultSnapshotMessageV3)
	case msg.GroupInviteMessage != nil:
		return c.groupInvite(msg.GroupInviteMessage)
	case msg.Call != nil:
		return c.call(msg.Call)
	case msg.CallLogMesssage != nil:
		return c.callLog(msg.CallLogMesssage)
	case msg.ScheduledCallCreationMessage != nil:
		return c.scheduledCall(msg.ScheduledCallCreationMessage)
	case msg.EventMessage != nil:
		return c.eventMessage(msg.EventMessage)
	case msg.PinInChatMessage != nil:
		return c.pin(msg.PinInChatMessage)
	case msg.KeepInChatMessage != nil:
		return c.keepInChat(msg.KeepInChatMessage)
	case msg.AlbumMessage != nil:
		// The album header only announces counts; each photo and video arrives as its own message.
		c.res.Action = ActionNone
		c.res.Note = "album header (its media arrive as separate messages)"
		return nil
	case msg.PlaceholderMessage != nil:
		c.notice("This message is only shown on the sender's phone, not on linked devices")
		return nil
	case msg.EncReactionMessage != nil:
		c.notice("Reacted to a message (encrypted reactions are not supported yet)")
		return nil
	}
	name := messageTypeName(msg)
	if name == "" {
		// Only key distribution or context info: these accompany real messages or prime the session.
		c.res.Action = ActionNone
		c.res.Note = "no content (key distribution or context info only)"
		return nil
	}
	c.notice("Unsupported WhatsApp message type: " + name)
	return nil
}

// unwrap returns the inner message of the wrapper kinds WhatsApp nests real content in.
func unwrap(msg *waE2E.Message) (inner *waE2E.Message, viewOnce, ok bool) {
	switch {
	case msg.EphemeralMessage != nil:
		return msg.EphemeralMessage.GetMessage(), false, true
	case msg.ViewOnceMessage != nil:
		return msg.ViewOnceMessage.GetMessage(), true, true
	case msg.ViewOnceMessageV2 != nil:
		return msg.ViewOnceMessageV2.GetMessage(), true, true
	case msg.ViewOnceMessageV2Extension != nil:
		return msg.ViewOnceMessageV2Extension.GetMessage(), true, true
	case msg.DocumentWithCaptionMessage != nil:
		return msg.DocumentWithCaptionMessage.GetMessage(), false, true
	case msg.EditedMessage != nil:
		return msg.EditedMessage.GetMessage(), false, true
	case msg.DeviceSentMessage != nil:
		return msg.DeviceSentMessage.GetMessage(), false, true
	case msg.GroupMentionedMessage != nil:
		return msg.GroupMentionedMessage.GetMessage(), false, true
	case msg.BotInvokeMessage != nil:
		return msg.BotInvokeMessage.GetMessage(), false, true
	case msg.BotForwardedMessage != nil:
		return msg.BotForwardedMessage.GetMessage(), false, true
	case msg.LottieStickerMessage != nil:
		return msg.LottieStickerMessage.GetMessage(), false, true
	case msg.AssociatedChildMessage != nil:
		return msg.AssociatedChildMessage.GetMessage(), false, true
	case msg.StatusMentionMessage != nil:
		return msg.StatusMentionMessage.GetMessage(), false, true
	case msg.GroupStatusMentionMessage != nil:
		return msg.GroupStatusMentionMessage.GetMessage(), false, true
	case msg.PollCreationMessageV4 != nil:
		return msg.PollCreationMessageV4.GetMessage(), false, true
	}
	return nil, false, false
}

// ignoredFields accompany content without being content themselves.
var ignoredFields = map[protoreflect.Name]bool{
	"messageContextInfo":                         true,
	"senderKeyDistributionMessage":               true,
	"fastRatchetKeySenderKeyDistributionMessage": true,
}

// messageTypeName names the first content field of msg, for the notice about unsupported kinds. It returns
// "" when msg carries no content at all.
func messageTypeName(msg *waE2E.Message) string {
	var name string
	msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if ignoredFields[fd.Name()] {
			return true
		}
		name = string(fd.Name())
		return false
	})
	if name != "" {
		return name
	}
	// Fields newer than our protobuf definitions land in the unknown set; name them by number.
	if unknown := msg.ProtoReflect().GetUnknown(); len(unknown) > 0 {
		if num, _, n := protowire.ConsumeTag(unknown); n > 0 {
			return "field " + strconv.Itoa(int(num))
		}
		return "unparseable field"
	}
	return ""
}

// notice makes the result a single m.notice, the fallback that keeps anything from vanishing silently.
func (c *toMatrix) notice(text string) {
	c.res.Action = ActionMessage
	content := c.newContent(MsgNotice)
	content.Body = text
	content.Mentions = &content.mentionsBuf
	c.addEvent(event.EventMessage, content)
}

// newContent returns an empty message content of a msgtype.
func (c *toMatrix) newContent(mt MsgType) *MessageContent {
	return &MessageContent{MsgType: mt}
}

func (c *toMatrix) addEvent(typ event.Type, content any) int {
	part := MainPart
	if n := len(c.res.Events); n > 0 {
		part = PartID(strconv.Itoa(n))
	}
	if c.res.Events == nil {
		c.res.Events = c.res.eventsBuf[:0]
	}
	c.res.Events = append(c.res.Events, MatrixPart{PartID: part, Type: typ, Content: content})
	return len(c.res.Events) - 1
}

// lookupPart returns a bridged part, or ok=false when the resolver does not know it.
func (c *toMatrix) lookupPart(msgID string, part PartID) (BridgedPart, bool, error) {
	p, err := c.r.MessagePart(c.ctx, c.info.Chat, msgID, part)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return p, false, nil
		}
		return p, false, fmt.Errorf("failed to look up message %s: %w", msgID, err)
	}
	return p, true, nil
}

// user resolves a JID; unknown users degrade to their phone number so a message never fails on a name.
func (c *toMatrix) user(jid types.JID) (User, bool, error) {
	// A reply to someone the message also mentions is common; the second lookup is free.
	if c.lastUserOK && c.lastJID == jid {
		return c.lastUser, true, nil
	}
	u, err := c.r.UserByJID(c.ctx, jid)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// The JID comes from the message, so it is as untrusted as the text.
			name := validUTF8(jid.User)
			if jid.Server == types.DefaultUserServer {
				name = "+" + name
			}
			return User{Name: name}, false, nil
		}
		return u, false, fmt.Errorf("failed to look up user %s: %w", jid, err)
	}
	u.Name = validUTF8(u.Name)
	c.lastJID, c.lastUser, c.lastUserOK = jid, u, true
	return u, true, nil
}
