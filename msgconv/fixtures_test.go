package msgconv

import (
	"bytes"
	"crypto/sha256"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/id"
)

// The test world: a group chat with the logged-in user (self), Bob, Carol and a LID-only member, Dana.
var (
	selfJID  = types.NewJID("491701111111", types.DefaultUserServer)
	bobJID   = types.NewJID("491702222222", types.DefaultUserServer)
	carolJID = types.NewJID("491703333333", types.DefaultUserServer)
	danaJID  = types.NewJID("123456789012345", types.HiddenUserServer)
	groupJID = types.NewJID("120363025246125888", types.GroupServer)

	selfMXID  = id.UserID("@alice:example.org")
	bobMXID   = id.UserID("@whatsapp_491702222222:example.org")
	carolMXID = id.UserID("@whatsapp_491703333333:example.org")
	danaMXID  = id.UserID("@whatsapp_lid-123456789012345:example.org")

	baseTime = time.Date(2026, 11, 3, 14, 30, 0, 0, time.UTC)
)

func newWorld() *memResolver {
	r := newMemResolver()
	r.addUser(selfJID, selfMXID, "Alice")
	r.addUser(bobJID, bobMXID, "Bob Builder")
	r.addUser(carolJID, carolMXID, "Carol")
	r.addUser(danaJID, danaMXID, "Dana")
	r.parts["3EB0KNOWN"] = []BridgedPart{{EventID: "$known", Sender: carolJID}}
	r.parts["3EB0BOBMSG"] = []BridgedPart{{EventID: "$bobmsg", Sender: bobJID}}
	r.parts["3EB0MULTI"] = []BridgedPart{{EventID: "$multi0", Sender: bobJID}, {EventID: "$multi1", PartID: "1", Sender: bobJID}}
	r.parts["3EB0POLL"] = []BridgedPart{{EventID: "$wapoll", Sender: carolJID}}
	r.reactions[reactionKey{"3EB0KNOWN", bobJID}] = "$oldreaction"
	r.votes["3EB0POLL"] = &waE2E.PollVoteMessage{SelectedOptions: [][]byte{sha256Of("Tuesday")}}

	r.refs["$known"] = MessageRef{Chat: groupJID, ID: "3EB0KNOWN", Sender: carolJID, Timestamp: baseTime.Add(-time.Minute),
		Quoted: &waE2E.Message{Conversation: proto.String("Lunch at noon?")}}
	r.refs["$mine"] = MessageRef{Chat: groupJID, ID: "3EB0MINE", Sender: selfJID, FromMe: true, Timestamp: baseTime.Add(-5 * time.Minute)}
	// Edits: one recorded with the message it edited, one from before edits recorded that.
	r.refs["$myedit"] = MessageRef{Chat: groupJID, ID: "3EB0EDIT", Sender: selfJID, FromMe: true, PartID: "edit:$myedit->3EB0MINE",
		Timestamp: baseTime.Add(-4 * time.Minute), EditOf: &MessageRef{Chat: groupJID, ID: "3EB0MINE", Sender: selfJID, FromMe: true, Timestamp: baseTime.Add(-5 * time.Minute)}}
	r.refs["$oldedit"] = MessageRef{Chat: groupJID, ID: "3EB0OLDEDIT", Sender: selfJID, FromMe: true, PartID: "edit:$oldedit",
		Timestamp: baseTime.Add(-4 * time.Minute), EditOf: &MessageRef{Chat: groupJID}}
	r.refs["$mineold"] = MessageRef{Chat: groupJID, ID: "3EB0MINEOLD", Sender: selfJID, FromMe: true, Timestamp: baseTime.Add(-72 * time.Hour)}
	r.refs["$myreaction"] = MessageRef{Chat: groupJID, ID: "3EB0REACT", Sender: selfJID, FromMe: true,
		ReactionTo: &MessageRef{Chat: groupJID, ID: "3EB0KNOWN", Sender: carolJID}}
	r.refs["$wapoll"] = MessageRef{Chat: groupJID, ID: "3EB0POLL", Sender: carolJID}
	r.refs["$mxpoll"] = MessageRef{Chat: groupJID, ID: "3EB0MXPOLL", Sender: selfJID, FromMe: true,
		PollOptions: []PollOption{{ID: "yes", Name: "Yes"}, {ID: "no", Name: "No"}}}
	return r
}

func sha256Of(s string) []byte { sum := sha256.Sum256([]byte(s)); return sum[:] }

// groupInfo is the envelope of a message Bob sends in the group.
func groupInfo() *types.MessageInfo {
	return &types.MessageInfo{
		MessageSource: types.MessageSource{Chat: groupJID, Sender: bobJID, IsGroup: true},
		ID:            "3EB0C431D2A1B2C3D4E5", PushName: "Bob", Timestamp: baseTime, Type: "text",
	}
}

// messageContextInfo is what phones attach to every message: device list hashes and the message secret.
func messageContextInfo() *waE2E.MessageContextInfo {
	return &waE2E.MessageContextInfo{
		DeviceListMetadata: &waE2E.DeviceListMetadata{
			SenderKeyHash:      bytes.Repeat([]byte{0x5a}, 10),
			SenderTimestamp:    proto.Uint64(uint64(baseTime.Unix()) - 86400),
			RecipientKeyHash:   bytes.Repeat([]byte{0xa5}, 10),
			RecipientTimestamp: proto.Uint64(uint64(baseTime.Unix()) - 3600),
		},
		DeviceListMetadataVersion: proto.Int32(2),
		MessageSecret:             bytes.Repeat([]byte{0x42}, 32),
	}
}

func key(id string, fromMe bool, participant string) *waCommon.MessageKey {
	k := &waCommon.MessageKey{RemoteJID: proto.String(groupJID.String()), FromMe: proto.Bool(fromMe), ID: proto.String(id)}
	if participant != "" {
		k.Participant = proto.String(participant)
	}
	return k
}

// The benchmark fixtures, as phones send them.
const (
	plainText     = "Running 10 minutes late, the train is stuck outside Hamburg again 🙈 sorry!"
	formattedText = "*Agenda* for _tomorrow_ (~Monday~ Tuesday):\n" +
		"- review the `budget.xlsx` numbers\n- sign off the *press release*\n\n" +
		"1. coffee\n2. meeting at 10\n\n> Please bring your laptops\n" +
		"```\nroom: B-204\nbadge: required\n```\nThanks!"
	replyMentionText = "@491703333333 can you take this one? I'm out until Friday"
)

func benchMessages() map[string]*waE2E.Message {
	return map[string]*waE2E.Message{
		"plain": {Conversation: proto.String(plainText), MessageContextInfo: messageContextInfo()},
		"reply_mention": {ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String(replyMentionText),
			ContextInfo: &waE2E.ContextInfo{
				StanzaID: proto.String("3EB0KNOWN"), Participant: proto.String(carolJID.String()),
				QuotedMessage: &waE2E.Message{Conversation: proto.String("Who can review the contract draft?")},
				MentionedJID:  []string{carolJID.String()},
			},
			InviteLinkGroupTypeV2: waE2E.ExtendedTextMessage_DEFAULT.Enum(),
		}, MessageContextInfo: messageContextInfo()},
		"formatted": {ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String(formattedText), InviteLinkGroupTypeV2: waE2E.ExtendedTextMessage_DEFAULT.Enum(),
		}, MessageContextInfo: messageContextInfo()},
		"image": {ImageMessage: &waE2E.ImageMessage{
			URL:                  proto.String("https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m232/up-oil-image-abc123?ccb=9-4&oh=01_Q5AaIM&oe=6789ABCD&_nc_sid=5e03e0&mms3=true"),
			Mimetype:             proto.String("image/jpeg"),
			Caption:              proto.String("The whiteboard after today's session"),
			FileSHA256:           bytes.Repeat([]byte{1}, 32),
			FileLength:           proto.Uint64(184233),
			Height:               proto.Uint32(1600),
			Width:                proto.Uint32(1200),
			MediaKey:             bytes.Repeat([]byte{2}, 32),
			FileEncSHA256:        bytes.Repeat([]byte{3}, 32),
			DirectPath:           proto.String("/o1/v/t62.7118-24/f1/m232/up-oil-image-abc123?ccb=9-4&oh=01_Q5AaIM&oe=6789ABCD&_nc_sid=5e03e0"),
			MediaKeyTimestamp:    proto.Int64(baseTime.Unix()),
			JPEGThumbnail:        bytes.Repeat([]byte{0xff, 0xd8, 0x10}, 600),
			ScansSidecar:         bytes.Repeat([]byte{4}, 40),
			ScanLengths:          []uint32{4210, 21044, 40123, 118856},
			MidQualityFileSHA256: bytes.Repeat([]byte{5}, 32),
		}, MessageContextInfo: messageContextInfo()},
		"edit": {EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Key:  key("3EB0BOBMSG", false, bobJID.String()),
			Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
				Text: proto.String("Running 15 minutes late, the train is stuck outside Hamburg again 🙈 sorry!"),
			}},
			TimestampMS: proto.Int64(baseTime.UnixMilli()),
		}}}, MessageContextInfo: messageContextInfo()},
		"reaction": {ReactionMessage: &waE2E.ReactionMessage{
			Key: key("3EB0KNOWN", false, carolJID.String()), Text: proto.String("👍"),
			SenderTimestampMS: proto.Int64(baseTime.UnixMilli()),
		}, MessageContextInfo: messageContextInfo()},
	}
}

// benchEvents are Matrix events as a homeserver delivers them to the appservice.
var benchEvents = map[string]string{
	"plain": `{"type":"m.room.message","room_id":"!portal:example.org","sender":"@alice:example.org",` +
		`"event_id":"$Wq1yHm7aGk2bXe3sPq9Rt8Uv5Yz0Ab4Cd6Ef","origin_server_ts":1793716200000,` +
		`"content":{"msgtype":"m.text","body":"Running 10 minutes late, the train is stuck outside Hamburg again 🙈 sorry!","m.mentions":{}},` +
		`"unsigned":{"age":112,"transaction_id":"m1793716199876.12"}}`,
	"html_mention_reply": `{"type":"m.room.message","room_id":"!portal:example.org","sender":"@alice:example.org",` +
		`"event_id":"$Xr2zIn8bHl3cYf4tQr0Su9Vw6Za1Bc5De7Fg","origin_server_ts":1793716200000,` +
		`"content":{"msgtype":"m.text","body":"Carol: can you take this one? I'm **out** until _Friday_",` +
		`"format":"org.matrix.custom.html",` +
		`"formatted_body":"<a href=\"https://matrix.to/#/@whatsapp_491703333333:example.org\">Carol</a>: can you take this one? I&#39;m <strong>out</strong> until <em>Friday</em>",` +
		`"m.mentions":{"user_ids":["@whatsapp_491703333333:example.org"]},` +
		`"m.relates_to":{"m.in_reply_to":{"event_id":"$known"}}},` +
		`"unsigned":{"age":98,"transaction_id":"m1793716199912.13"}}`,
}
