package msgconv

import (
	"context"
	"errors"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/id"
)

func ext(text string, ci *waE2E.ContextInfo) *waE2E.Message {
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text), ContextInfo: ci}}
}

func conv(text string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(text)} }

func fp(m *waE2E.Message) *waE2E.FutureProofMessage { return &waE2E.FutureProofMessage{Message: m} }

type toMatrixCase struct {
	name string
	msg  *waE2E.Message
	info func() *types.MessageInfo
	opts *Options
}

func TestToMatrix(t *testing.T) {
	for _, tc := range toMatrixCases() {
		t.Run(tc.name, func(t *testing.T) {
			info := groupInfo()
			if tc.info != nil {
				info = tc.info()
			}
			res, err := ToMatrix(context.Background(), info, tc.msg, newWorld(), tc.opts)
			if err != nil {
				t.Fatalf("ToMatrix: %v", err)
			}
			checkGolden(t, "tomatrix/"+tc.name, viewResult(t, res))
		})
	}
}

// toMatrixCases has one message of every kind; the fuzz target seeds its corpus from them too.
func toMatrixCases() []toMatrixCase {
	bench := benchMessages()
	dmInfo := func() *types.MessageInfo {
		i := groupInfo()
		i.Chat, i.IsGroup = bobJID, false
		return i
	}
	carolInfo := func() *types.MessageInfo {
		i := groupInfo()
		i.Sender = carolJID
		return i
	}
	broadcastInfo := func() *types.MessageInfo {
		i := groupInfo()
		i.Chat, i.IsGroup = types.NewJID("1700000000", types.BroadcastServer), true
		return i
	}
	unknownField := &waE2E.Message{}
	unknownField.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 9999, protowire.BytesType), []byte("x")))

	return []toMatrixCase{
		// Text and markup.
		{name: "plain", msg: bench["plain"]},
		{name: "plain_multiline", msg: conv("first line\nsecond line\n\nafter a blank line")},
		{name: "formatted", msg: bench["formatted"]},
		{name: "markup_nested", msg: conv("*_bold italic_* and ~*struck bold*~ and `*not bold*`")},
		{name: "markup_not_words", msg: conv("2*3*4 and snake_case_name and * spaced * and a_b")},
		{name: "markup_unclosed", msg: conv("*open _never ~closed `ever")},
		{name: "markup_escape", msg: conv("<b>not html</b> & *so \"bold\"*")},
		{name: "inline_code_block", msg: conv("run ```make test``` before pushing")},
		{name: "ordered_list_start", msg: conv("3. third\n4. fourth")},
		{name: "links", msg: conv("see https://example.org/a_b_c/ (or https://en.wikipedia.org/wiki/Foo_(bar)), *now*.")},
		{name: "link_only", msg: conv("https://example.org/x")},
		{name: "invalid_utf8", msg: conv("bad \xff byte *bold*")},
		{name: "ephemeral_wrapper", msg: &waE2E.Message{EphemeralMessage: fp(ext("disappears _soon_", &waE2E.ContextInfo{Expiration: proto.Uint32(86400)}))}},
		{name: "device_sent_wrapper", msg: &waE2E.Message{DeviceSentMessage: &waE2E.DeviceSentMessage{DestinationJID: proto.String(bobJID.String()), Message: conv("sent from my phone")}}},

		// Mentions and replies.
		{name: "reply_mention", msg: bench["reply_mention"]},
		{name: "mention_unknown_user", msg: ext("ping @4915550000000 and @491702222222", &waE2E.ContextInfo{MentionedJID: []string{"4915550000000@s.whatsapp.net", bobJID.String()}})},
		{name: "mention_lid", msg: ext("@123456789012345 hi", &waE2E.ContextInfo{MentionedJID: []string{danaJID.String()}})},
		{name: "mention_all", msg: ext("@all meeting moved to 3pm", &waE2E.ContextInfo{NonJIDMentions: proto.Uint32(1)})},
		{name: "mention_group", msg: ext("@120363025246125888 and @120363000000000000 read this", &waE2E.ContextInfo{GroupMentions: []*waE2E.GroupMention{
			{GroupJID: proto.String(groupJID.String()), GroupSubject: proto.String("This group")},
			{GroupJID: proto.String("120363000000000000@g.us"), GroupSubject: proto.String("Announcements")},
		}})},
		{name: "reply_known", msg: ext("yes, 12:30", &waE2E.ContextInfo{StanzaID: proto.String("3EB0KNOWN"), Participant: proto.String(carolJID.String()),
			QuotedMessage: conv("Lunch at noon?")})},
		{name: "reply_unknown", msg: ext("agreed", &waE2E.ContextInfo{StanzaID: proto.String("3EB0GONE"), Participant: proto.String(carolJID.String()),
			QuotedMessage: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("the <plan>")}}})},
		{name: "reply_unknown_formatted", msg: ext("*agreed*\nfully", &waE2E.ContextInfo{StanzaID: proto.String("3EB0GONE"), Participant: proto.String("4915550000000@s.whatsapp.net"),
			QuotedMessage: conv("line one\nline two")})},

		// Edits, revokes, reactions.
		{name: "edit", msg: bench["edit"]},
		{name: "edit_protocol_unwrapped", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0BOBMSG", false, ""), Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: ext("now with *bold* and @491703333333", &waE2E.ContextInfo{MentionedJID: []string{carolJID.String()}})}}},
		{name: "edit_unknown_target", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0GONE", false, ""), Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: conv("the new text")}}},
		{name: "edit_caption", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0BOBMSG", false, ""), Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("better caption")}}}}},
		{name: "edit_event", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0BOBMSG", false, ""), Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: &waE2E.Message{EventMessage: &waE2E.EventMessage{Name: proto.String("Team dinner"), StartTime: proto.Int64(1767225600)}}}}},
		{name: "revoke", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0MULTI", false, ""), Type: waE2E.ProtocolMessage_REVOKE.Enum()}}},
		{name: "revoke_by_admin", info: carolInfo, msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0BOBMSG", false, bobJID.String()), Type: waE2E.ProtocolMessage_REVOKE.Enum()}}},
		{name: "revoke_unknown", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0GONE", false, ""), Type: waE2E.ProtocolMessage_REVOKE.Enum()}}},
		{name: "reaction", msg: bench["reaction"]},
		{name: "reaction_first", info: carolInfo, msg: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key("3EB0KNOWN", true, ""), Text: proto.String("❤️")}}},
		{name: "reaction_not_emoji", msg: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key("3EB0KNOWN", false, carolJID.String()), Text: proto.String("nice one")}}},
		{name: "reaction_remove", msg: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key("3EB0KNOWN", false, carolJID.String()), Text: proto.String("")}}},
		{name: "reaction_unknown_target", msg: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key("3EB0GONE", false, ""), Text: proto.String("😂")}}},
		{name: "encrypted_reaction", msg: &waE2E.Message{EncReactionMessage: &waE2E.EncReactionMessage{TargetMessageKey: key("3EB0KNOWN", false, "")}}},

		// Media.
		{name: "image", msg: bench["image"]},
		{name: "image_thumbnail", msg: bench["image"], opts: &Options{InlineThumbnails: true}},
		{name: "image_no_caption_reply", msg: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Mimetype: proto.String("image/png"), DirectPath: proto.String("/v/img"), FileLength: proto.Uint64(10),
			ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("3EB0KNOWN"), Participant: proto.String(carolJID.String())}}}},
		{name: "video", msg: &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Mimetype: proto.String("video/mp4"), Seconds: proto.Uint32(42), Width: proto.Uint32(720), Height: proto.Uint32(1280),
			FileLength: proto.Uint64(3_000_000), DirectPath: proto.String("/v/vid"), Caption: proto.String("look at _this_")}}},
		{name: "gif", msg: &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Mimetype: proto.String("video/mp4"), Seconds: proto.Uint32(2), GifPlayback: proto.Bool(true),
			GifAttribution: waE2E.VideoMessage_GIPHY.Enum(), FileLength: proto.Uint64(90_000), DirectPath: proto.String("/v/gif")}}},
		{name: "video_note", msg: &waE2E.Message{PtvMessage: &waE2E.VideoMessage{Mimetype: proto.String("video/mp4"), Seconds: proto.Uint32(9), Width: proto.Uint32(480), Height: proto.Uint32(480),
			FileLength: proto.Uint64(400_000), DirectPath: proto.String("/v/ptv")}}},
		{name: "audio", msg: &waE2E.Message{AudioMessage: &waE2E.AudioMessage{Mimetype: proto.String("audio/mpeg"), Seconds: proto.Uint32(185), FileLength: proto.Uint64(2_900_000), DirectPath: proto.String("/v/aud")}}},
		{name: "voice_note", msg: &waE2E.Message{AudioMessage: &waE2E.AudioMessage{Mimetype: proto.String("audio/ogg; codecs=opus"), Seconds: proto.Uint32(7), PTT: proto.Bool(true),
			FileLength: proto.Uint64(12_000), DirectPath: proto.String("/v/ptt"), Waveform: []byte{0, 10, 50, 100, 120}}}},
		{name: "document", msg: &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Mimetype: proto.String("application/pdf"), FileName: proto.String("Haushaltsplan 2027.pdf"),
			Title: proto.String("Haushaltsplan 2027"), PageCount: proto.Uint32(12), FileLength: proto.Uint64(812_000), DirectPath: proto.String("/v/doc")}}},
		{name: "document_with_caption", msg: &waE2E.Message{DocumentWithCaptionMessage: fp(&waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			Mimetype: proto.String("application/vnd.openxmlformats-officedocument.wordprocessingml.document"), FileName: proto.String("draft.docx"),
			Caption: proto.String("the *final* draft"), FileLength: proto.Uint64(50_000), DirectPath: proto.String("/v/docx")}})}},
		{name: "sticker", msg: &waE2E.Message{StickerMessage: &waE2E.StickerMessage{Mimetype: proto.String("image/webp"), Width: proto.Uint32(512), Height: proto.Uint32(512),
			IsAnimated: proto.Bool(true), FileLength: proto.Uint64(30_000), DirectPath: proto.String("/v/stk")}}},
		{name: "view_once_bridged", msg: &waE2E.Message{ViewOnceMessageV2: fp(&waE2E.Message{ImageMessage: &waE2E.ImageMessage{Mimetype: proto.String("image/jpeg"),
			ViewOnce: proto.Bool(true), DirectPath: proto.String("/v/once"), FileLength: proto.Uint64(1000)}})}},
		{name: "view_once_notice", opts: &Options{ViewOnce: ViewOnceNotice}, msg: &waE2E.Message{ViewOnceMessageV2: fp(&waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Mimetype: proto.String("image/jpeg"), ViewOnce: proto.Bool(true), DirectPath: proto.String("/v/once")}})}},
		{name: "view_once_flag_notice", opts: &Options{ViewOnce: ViewOnceNotice}, msg: &waE2E.Message{VideoMessage: &waE2E.VideoMessage{ViewOnce: proto.Bool(true), Mimetype: proto.String("video/mp4")}}},

		// Everything else.
		{name: "location", msg: &waE2E.Message{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(52.520008), DegreesLongitude: proto.Float64(13.404954),
			Name: proto.String("Rotes Rathaus"), Address: proto.String("Rathausstraße 15, 10178 Berlin"), Comment: proto.String("entrance on the left")}}},
		{name: "live_location", msg: &waE2E.Message{LiveLocationMessage: &waE2E.LiveLocationMessage{DegreesLatitude: proto.Float64(48.1374), DegreesLongitude: proto.Float64(11.5755),
			Caption: proto.String("on my way"), SequenceNumber: proto.Int64(3)}}},
		{name: "contact", msg: &waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String("Dr. Erika Mustermann"),
			Vcard: proto.String("BEGIN:VCARD\nVERSION:3.0\nFN:Dr. Erika Mustermann\nTEL;type=CELL;waid=4915112345678:+49 151 12345678\nEND:VCARD")}}},
		{name: "contacts_array", msg: &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{DisplayName: proto.String("2 contacts"), Contacts: []*waE2E.ContactMessage{
			{DisplayName: proto.String("A/B"), Vcard: proto.String("BEGIN:VCARD\nFN:A\nEND:VCARD")},
			{DisplayName: proto.String("C"), Vcard: proto.String("BEGIN:VCARD\nFN:C\nEND:VCARD")}}}}},
		{name: "poll_create", msg: &waE2E.Message{PollCreationMessageV3: &waE2E.PollCreationMessage{Name: proto.String("Which day?"), SelectableOptionsCount: proto.Uint32(1),
			Options: []*waE2E.PollCreationMessage_Option{{OptionName: proto.String("Monday")}, {OptionName: proto.String("Tuesday")}}}, MessageContextInfo: messageContextInfo()}},
		{name: "poll_create_multi", msg: &waE2E.Message{PollCreationMessage: &waE2E.PollCreationMessage{Name: proto.String("Snacks"),
			Options: []*waE2E.PollCreationMessage_Option{{OptionName: proto.String("Fruit")}, {OptionName: proto.String("Cake")}, {OptionName: proto.String("Both")}}}}},
		{name: "poll_vote", msg: &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{PollCreationMessageKey: key("3EB0POLL", false, carolJID.String()),
			Vote: &waE2E.PollEncValue{EncPayload: []byte{1, 2, 3}, EncIV: []byte{4, 5, 6}}}}},
		{name: "poll_vote_unknown_poll", msg: &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{PollCreationMessageKey: key("3EB0GONE", false, "")}}},
		{name: "poll_snapshot", msg: &waE2E.Message{PollResultSnapshotMessage: &waE2E.PollResultSnapshotMessage{Name: proto.String("Which day?"),
			PollVotes: []*waE2E.PollResultSnapshotMessage_PollVote{{OptionName: proto.String("Monday"), OptionVoteCount: proto.Int64(2)}}}}},
		{name: "timer_set", info: dmInfo, msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_EPHEMERAL_SETTING.Enum(), EphemeralExpiration: proto.Uint32(7 * 86400)}}},
		{name: "timer_off", info: dmInfo, msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_EPHEMERAL_SETTING.Enum(), EphemeralExpiration: proto.Uint32(0)}}},
		{name: "group_invite", info: dmInfo, msg: &waE2E.Message{GroupInviteMessage: &waE2E.GroupInviteMessage{GroupJID: proto.String(groupJID.String()), InviteCode: proto.String("AbCdEf123"),
			InviteExpiration: proto.Int64(baseTime.Add(72 * 3600e9).Unix()), GroupName: proto.String("Referat 4"), Caption: proto.String("join us")}}},
		{name: "broadcast_list_text", info: broadcastInfo, msg: ext("to everyone on my *list*", nil)},
		{name: "broadcast_list_image", info: broadcastInfo, msg: bench["image"]},
		{name: "call", info: dmInfo, msg: &waE2E.Message{Call: &waE2E.Call{CallKey: []byte{1, 2, 3}}}},
		{name: "call_log_missed", info: dmInfo, msg: &waE2E.Message{CallLogMesssage: &waE2E.CallLogMessage{IsVideo: proto.Bool(true), CallOutcome: waE2E.CallLogMessage_MISSED.Enum()}}},
		{name: "call_log_connected", info: dmInfo, msg: &waE2E.Message{CallLogMesssage: &waE2E.CallLogMessage{CallOutcome: waE2E.CallLogMessage_CONNECTED.Enum(), DurationSecs: proto.Int64(312)}}},
		{name: "scheduled_call", msg: &waE2E.Message{ScheduledCallCreationMessage: &waE2E.ScheduledCallCreationMessage{ScheduledTimestampMS: proto.Int64(baseTime.Add(24 * 3600e9).UnixMilli()),
			CallType: waE2E.ScheduledCallCreationMessage_VIDEO.Enum(), Title: proto.String("Weekly")}}},
		{name: "event", msg: &waE2E.Message{EventMessage: &waE2E.EventMessage{Name: proto.String("Sommerfest"), Description: proto.String("bring *food*"),
			StartTime: proto.Int64(baseTime.Unix()), Location: &waE2E.LocationMessage{Name: proto.String("Park")}}}},
		{name: "pin", msg: &waE2E.Message{PinInChatMessage: &waE2E.PinInChatMessage{Key: key("3EB0KNOWN", false, ""), Type: waE2E.PinInChatMessage_PIN_FOR_ALL.Enum()}}},
		{name: "keep_in_chat", msg: &waE2E.Message{KeepInChatMessage: &waE2E.KeepInChatMessage{Key: key("3EB0GONE", false, ""), KeepType: waE2E.KeepType_KEEP_FOR_ALL.Enum()}}},
		{name: "album_header", msg: &waE2E.Message{AlbumMessage: &waE2E.AlbumMessage{ExpectedImageCount: proto.Uint32(3)}}},
		{name: "placeholder", msg: &waE2E.Message{PlaceholderMessage: &waE2E.PlaceholderMessage{Type: waE2E.PlaceholderMessage_MASK_LINKED_DEVICES.Enum()}}},
		{name: "unknown_type", msg: &waE2E.Message{ButtonsMessage: &waE2E.ButtonsMessage{ContentText: proto.String("pick one")}, MessageContextInfo: messageContextInfo()}},
		{name: "unknown_field", msg: unknownField},
		{name: "key_distribution_only", msg: &waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: proto.String(groupJID.String())}, MessageContextInfo: messageContextInfo()}},
		{name: "history_sync_notification", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum()}}},
		{name: "empty_ephemeral", msg: &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{}}},
	}
}

func TestToMatrixForgedEdit(t *testing.T) {
	msg := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key("3EB0KNOWN", false, carolJID.String()),
		Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), EditedMessage: conv("I never said that")}}
	_, err := ToMatrix(context.Background(), groupInfo(), msg, newWorld(), nil)
	if !errors.Is(err, ErrForgedEdit) {
		t.Fatalf("got %v, want ErrForgedEdit", err)
	}
}

func TestToMatrixResolverFailure(t *testing.T) {
	boom := errors.New("database is gone")
	bench := benchMessages()
	for _, name := range []string{"reply_mention", "edit", "reaction"} {
		r := newWorld()
		r.fail = boom
		_, err := ToMatrix(context.Background(), groupInfo(), bench[name], r, nil)
		if !errors.Is(err, boom) {
			t.Errorf("%s: got %v, want the resolver's error", name, err)
		}
	}
}

func TestMediaTransferComplete(t *testing.T) {
	res, err := ToMatrix(context.Background(), groupInfo(), benchMessages()["image"], newWorld(), &Options{InlineThumbnails: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Media) != 2 {
		t.Fatalf("got %d transfers, want media and thumbnail", len(res.Media))
	}
	res.Media[0].Complete("mxc://example.org/full")
	res.Media[1].CompleteEncrypted(&EncryptedFile{URL: "mxc://example.org/thumb", V: "v2"})
	content := res.Events[0].Content.(*MessageContent)
	if content.URL != "mxc://example.org/full" {
		t.Errorf("url = %q", content.URL)
	}
	if content.Info.ThumbnailFile == nil || content.Info.ThumbnailFile.URL != "mxc://example.org/thumb" {
		t.Errorf("thumbnail_file = %+v", content.Info.ThumbnailFile)
	}
	if src, ok := res.Media[0].Source.(*waE2E.ImageMessage); !ok || src.GetDirectPath() == "" {
		t.Errorf("source = %T, want the image message to download", res.Media[0].Source)
	}
}

var _ = id.EventID("")
