package msgconv

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type waView struct {
	Action   string          `json:"action,omitempty"`
	Message  json.RawMessage `json:"message,omitempty"`
	Upload   *uploadView     `json:"upload,omitempty"`
	Target   string          `json:"target,omitempty"`
	PollVote []string        `json:"poll_vote,omitempty"`
	Error    string          `json:"error,omitempty"`
}

type uploadView struct {
	Kind     string `json:"kind"`
	URL      string `json:"url"`
	MimeType string `json:"mimetype"`
	FileName string `json:"filename"`
	Size     uint64 `json:"size"`
}

// protoJSON renders a message as stable JSON: protojson randomises whitespace on purpose.
func protoJSON(t *testing.T, m proto.Message) json.RawMessage {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func viewWA(t *testing.T, res *ToWhatsAppResult, err error) waView {
	if err != nil {
		var se *SendError
		if !errors.As(err, &se) {
			t.Fatalf("error %v is not a *SendError", err)
		}
		return waView{Error: err.Error()}
	}
	v := waView{Action: res.Action.String()}
	if res.Message != nil {
		v.Message = protoJSON(t, res.Message)
	}
	if res.Upload != nil {
		v.Upload = &uploadView{Kind: res.Upload.Kind.AppInfo(), URL: string(res.Upload.URL), MimeType: res.Upload.MimeType,
			FileName: res.Upload.FileName, Size: res.Upload.Size}
	}
	if res.Target != nil {
		v.Target = res.Target.ID
	}
	if res.PollVote != nil {
		for _, h := range res.PollVote.SelectedOptions {
			v.PollVote = append(v.PollVote, hex.EncodeToString(h))
		}
	}
	return v
}

// mxEvent wraps content into an event sent by the logged-in user in the portal room.
func mxEvent(typ, content string) string {
	return `{"type":"` + typ + `","room_id":"!portal:example.org","sender":"@alice:example.org","event_id":"$new",` +
		`"origin_server_ts":1793716200000,"content":` + content + `}`
}

func msgEvent(content string) string { return mxEvent("m.room.message", content) }

func TestToWhatsApp(t *testing.T) {
	group := Chat{JID: groupJID, Self: selfJID}
	dm := Chat{JID: bobJID, Self: selfJID}
	cases := []struct {
		name  string
		event string
		chat  *Chat
		opts  *Options
	}{
		// Text.
		{name: "plain", event: benchEvents["plain"]},
		{name: "html_mention_reply", event: benchEvents["html_mention_reply"]},
		{name: "notice", event: msgEvent(`{"msgtype":"m.notice","body":"automated reminder"}`)},
		{name: "emote", event: msgEvent(`{"msgtype":"m.emote","body":"waves","format":"org.matrix.custom.html","formatted_body":"<em>waves</em>"}`)},
		{name: "html_all_tags", event: msgEvent(`{"msgtype":"m.text","body":"x","format":"org.matrix.custom.html","formatted_body":` +
			jsonString(`<h1>Title</h1><p>Para with <b>bold</b>, <i>it</i>, <s>gone</s>, <u>under</u>, <code>x&lt;y</code> and <a href="https://example.org">a link</a> `+
				`and <a href="https://example.org/same">https://example.org/same</a>.</p>`+"\n"+`<p>Second&nbsp;para <span data-mx-color="#f00">red</span> <font color="red">font</font> <sup>1</sup> <img src="mxc://x/y" alt=":cat:"></p>`+
				"\n"+`<ul><li>one</li><li>two<ol start="3"><li>three</li><li>four</li></ol></li></ul><blockquote><p>quoted</p><blockquote>nested</blockquote></blockquote>`+
				`<pre><code class="language-go">fmt.Println("*x*")`+"\n"+`</code></pre><hr><table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table><!-- comment --><details><summary>more</summary>hidden</details>`) + `}`)},
		{name: "html_marker_spacing", event: msgEvent(`{"msgtype":"m.text","body":"x","format":"org.matrix.custom.html","formatted_body":"say<b> hi </b>and <em>two<br>lines</em><strong> </strong>end"}`)},
		{name: "html_loose_list", event: msgEvent(`{"msgtype":"m.text","body":"x","format":"org.matrix.custom.html","formatted_body":"<p>Intro</p>\n<ul>\n<li>\n<p>first</p>\n</li>\n<li>\n<p>second</p>\n</li>\n</ul>\n<p>Outro</p>\n"}`)},
		{name: "html_reply_fallback", event: msgEvent(`{"msgtype":"m.text","body":"> <@x:y> old\n\nnew","format":"org.matrix.custom.html",` +
			`"formatted_body":"<mx-reply><blockquote><a href=\"https://matrix.to/#/!r:y/$known\">In reply to</a> old</blockquote></mx-reply>new","m.relates_to":{"m.in_reply_to":{"event_id":"$known"}}}`)},
		{name: "plain_reply_fallback", event: msgEvent(`{"msgtype":"m.text","body":"> <@x:y> old\n> more\n\nnew text","m.relates_to":{"m.in_reply_to":{"event_id":"$known"}}}`)},
		{name: "reply_unknown_event", event: msgEvent(`{"msgtype":"m.text","body":"hello","m.relates_to":{"m.in_reply_to":{"event_id":"$nowhere"}}}`)},
		{name: "reply_to_own_message", event: msgEvent(`{"msgtype":"m.text","body":"also","m.relates_to":{"m.in_reply_to":{"event_id":"$mine"}}}`)},
		{name: "thread_fallback_reply", event: msgEvent(`{"msgtype":"m.text","body":"in thread","m.relates_to":{"rel_type":"m.thread","event_id":"$root","is_falling_back":true,"m.in_reply_to":{"event_id":"$known"}}}`)},
		{name: "pills", event: msgEvent(`{"msgtype":"m.text","body":"x","format":"org.matrix.custom.html","formatted_body":` +
			jsonString(`<a href="https://matrix.to/#/%40whatsapp_491702222222%3Aexample.org">Bob</a>, <a href="matrix:u/whatsapp_lid-123456789012345:example.org?action=chat">Dana</a>, `+
				`<a href="https://matrix.to/#/@stranger:matrix.org">Stranger</a>, <a href="https://matrix.to/#/@whatsapp_491702222222:example.org">Bob again</a> and <a href="https://matrix.to/#/#room:example.org">#room:example.org</a>`) + `}`)},
		{name: "html_malformed", event: msgEvent(`{"msgtype":"m.text","body":"x","format":"org.matrix.custom.html","formatted_body":"a < b <3 <b>bold <i>both</b> after</i> </nonsense> <a href='x'>y"}`)},
		{name: "empty_body", event: msgEvent(`{"msgtype":"m.text","body":"  "}`)},
		{name: "unsupported_msgtype", event: msgEvent(`{"msgtype":"m.key.verification.request","body":"verify"}`)},
		{name: "unsupported_event_type", event: mxEvent("m.room.encrypted", `{"algorithm":"m.megolm.v1.aes-sha2"}`)},

		// Edits, redactions, reactions.
		{name: "edit", event: msgEvent(`{"msgtype":"m.text","body":"* fixed *typo*","m.new_content":{"msgtype":"m.text","body":"fixed typo","format":"org.matrix.custom.html","formatted_body":"fixed <b>typo</b>"},"m.relates_to":{"rel_type":"m.replace","event_id":"$mine"}}`)},
		{name: "edit_without_new_content", event: msgEvent(`{"msgtype":"m.text","body":"* fixed","m.relates_to":{"rel_type":"m.replace","event_id":"$mine"}}`)},
		{name: "edit_not_own", event: msgEvent(`{"msgtype":"m.text","body":"* x","m.new_content":{"msgtype":"m.text","body":"x"},"m.relates_to":{"rel_type":"m.replace","event_id":"$known"}}`)},
		{name: "edit_too_old", event: msgEvent(`{"msgtype":"m.text","body":"* x","m.new_content":{"msgtype":"m.text","body":"x"},"m.relates_to":{"rel_type":"m.replace","event_id":"$mineold"}}`)},
		{name: "edit_unknown", event: msgEvent(`{"msgtype":"m.text","body":"* x","m.new_content":{"msgtype":"m.text","body":"x"},"m.relates_to":{"rel_type":"m.replace","event_id":"$nowhere"}}`)},
		{name: "edit_of_edit", event: msgEvent(`{"msgtype":"m.text","body":"* again","m.new_content":{"msgtype":"m.text","body":"again"},"m.relates_to":{"rel_type":"m.replace","event_id":"$myedit"}}`)},
		{name: "edit_text_to_image", event: msgEvent(`{"msgtype":"m.text","body":"* pic.png","m.new_content":{"msgtype":"m.image","body":"pic.png","url":"mxc://example.org/pic"},"m.relates_to":{"rel_type":"m.replace","event_id":"$mine"}}`)},
		{name: "redact_edit", event: mxEvent("m.room.redaction", `{"redacts":"$myedit"}`)},
		{name: "reply_to_edit", event: msgEvent(`{"msgtype":"m.text","body":"about that","m.relates_to":{"m.in_reply_to":{"event_id":"$myedit"}}}`)},
		{name: "reply_to_unresolved_edit", event: msgEvent(`{"msgtype":"m.text","body":"about that","m.relates_to":{"m.in_reply_to":{"event_id":"$oldedit"}}}`)},
		{name: "reaction_to_edit", event: mxEvent("m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$myedit","key":"👍"}}`)},
		{name: "redact_own", event: `{"type":"m.room.redaction","sender":"@alice:example.org","event_id":"$new","origin_server_ts":1793716200000,"redacts":"$mine","content":{"reason":"oops"}}`},
		{name: "redact_v11", event: mxEvent("m.room.redaction", `{"redacts":"$mine"}`)},
		{name: "redact_admin", event: mxEvent("m.room.redaction", `{"redacts":"$known"}`)},
		{name: "redact_other_in_dm", chat: &dm, event: mxEvent("m.room.redaction", `{"redacts":"$known"}`)},
		{name: "redact_too_old", event: mxEvent("m.room.redaction", `{"redacts":"$mineold"}`)},
		{name: "redact_reaction", event: mxEvent("m.room.redaction", `{"redacts":"$myreaction"}`)},
		{name: "redact_unknown", event: mxEvent("m.room.redaction", `{"redacts":"$nowhere"}`)},
		{name: "reaction", event: mxEvent("m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$known","key":"❤️"}}`)},
		{name: "reaction_in_dm", chat: &dm, event: mxEvent("m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$known","key":"👍"}}`)},
		{name: "reaction_unknown", event: mxEvent("m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$nowhere","key":"👍"}}`)},
		{name: "reaction_not_emoji", event: mxEvent("m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$known","key":"+1"}}`)},
		{name: "reaction_to_reaction", event: mxEvent("m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$myreaction","key":"👍"}}`)},

		// Media and the rest.
		{name: "image", event: msgEvent(`{"msgtype":"m.image","body":"IMG_2041.jpg","filename":"IMG_2041.jpg","url":"mxc://example.org/abc","info":{"mimetype":"image/jpeg","size":204800,"w":1024,"h":768}}`)},
		{name: "image_caption_reply", event: msgEvent(`{"msgtype":"m.image","body":"look <b>here</b>","format":"org.matrix.custom.html","formatted_body":"look <b>here</b>","filename":"a.png","url":"mxc://example.org/abc","info":{"mimetype":"image/png"},"m.relates_to":{"m.in_reply_to":{"event_id":"$known"}}}`)},
		{name: "image_encrypted", event: msgEvent(`{"msgtype":"m.image","body":"a.jpg","file":{"url":"mxc://example.org/enc","key":{"kty":"oct","key_ops":["encrypt","decrypt"],"alg":"A256CTR","k":"abc","ext":true},"iv":"iv","hashes":{"sha256":"h"},"v":"v2"},"info":{"mimetype":"image/jpeg"}}`)},
		{name: "gif_video", event: msgEvent(`{"msgtype":"m.video","body":"party.mp4","url":"mxc://example.org/gif","info":{"mimetype":"video/mp4","duration":3000,"fi.mau.gif":true}}`)},
		{name: "voice", event: msgEvent(`{"msgtype":"m.audio","body":"Voice message.ogg","url":"mxc://example.org/v","info":{"mimetype":"audio/ogg","duration":5400,"size":9000},"org.matrix.msc1767.audio":{"duration":5400,"waveform":[0,512,1024,256]},"org.matrix.msc3245.voice":{}}`)},
		{name: "file_caption", event: msgEvent(`{"msgtype":"m.file","body":"minutes attached","filename":"Protokoll.pdf","url":"mxc://example.org/pdf","info":{"mimetype":"application/pdf","size":81234}}`)},
		{name: "sticker", event: mxEvent("m.sticker", `{"body":"cat","url":"mxc://example.org/stk","info":{"mimetype":"image/webp","w":256,"h":256}}`)},
		{name: "media_without_url", event: msgEvent(`{"msgtype":"m.image","body":"a.jpg"}`)},
		{name: "location", event: msgEvent(`{"msgtype":"m.location","body":"Brandenburger Tor","geo_uri":"geo:52.5163,13.3777;u=35","org.matrix.msc3488.location":{"uri":"geo:52.5163,13.3777;u=35","description":"Brandenburger Tor"}}`)},
		{name: "location_bad_uri", event: msgEvent(`{"msgtype":"m.location","body":"somewhere","geo_uri":"geo:north,south"}`)},
		{name: "poll_start", opts: &Options{Random: bytes.NewReader(bytes.Repeat([]byte{7}, 32))}, event: mxEvent("org.matrix.msc3381.poll.start",
			`{"org.matrix.msc3381.poll.start":{"kind":"org.matrix.msc3381.poll.disclosed","max_selections":1,"question":{"org.matrix.msc1767.text":"Lunch?"},`+
				`"answers":[{"id":"yes","org.matrix.msc1767.text":"Yes"},{"id":"no","org.matrix.msc1767.text":"No"}]},"org.matrix.msc1767.text":"Lunch?\n1. Yes\n2. No"}`)},
		{name: "poll_start_duplicate", event: mxEvent("org.matrix.msc3381.poll.start",
			`{"org.matrix.msc3381.poll.start":{"max_selections":1,"question":{"org.matrix.msc1767.text":"?"},"answers":[{"id":"a","org.matrix.msc1767.text":"Same"},{"id":"b","org.matrix.msc1767.text":"Same"}]}}`)},
		{name: "poll_start_too_many", opts: &Options{MaxPollOptions: 2}, event: mxEvent("org.matrix.msc3381.poll.start",
			`{"org.matrix.msc3381.poll.start":{"max_selections":1,"question":{"org.matrix.msc1767.text":"?"},"answers":[{"id":"a","org.matrix.msc1767.text":"A"},{"id":"b","org.matrix.msc1767.text":"B"},{"id":"c","org.matrix.msc1767.text":"C"}]}}`)},
		{name: "poll_response_wa_poll", event: mxEvent("org.matrix.msc3381.poll.response",
			`{"org.matrix.msc3381.poll.response":{"answers":["7d8af1de1262f150187d5938bf649d6c35726970685f916d1ec6392a801b9762"]},"m.relates_to":{"rel_type":"m.reference","event_id":"$wapoll"}}`)},
		{name: "poll_response_matrix_poll", event: mxEvent("org.matrix.msc3381.poll.response",
			`{"org.matrix.msc3381.poll.response":{"answers":["no"]},"m.relates_to":{"rel_type":"m.reference","event_id":"$mxpoll"}}`)},
		{name: "poll_response_unknown_answer", event: mxEvent("org.matrix.msc3381.poll.response",
			`{"org.matrix.msc3381.poll.response":{"answers":["maybe"]},"m.relates_to":{"rel_type":"m.reference","event_id":"$mxpoll"}}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evt, err := DecodeEvent([]byte(tc.event))
			if err != nil {
				t.Fatal(err)
			}
			chat := group
			if tc.chat != nil {
				chat = *tc.chat
			}
			res, err := ToWhatsApp(context.Background(), evt, chat, newWorld(), tc.opts)
			checkGolden(t, "towhatsapp/"+tc.name, viewWA(t, res, err))
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestMediaUploadComplete(t *testing.T) {
	evt, err := DecodeEvent([]byte(msgEvent(`{"msgtype":"m.file","body":"a.pdf","url":"mxc://example.org/pdf","info":{"mimetype":"application/pdf"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ToWhatsApp(context.Background(), evt, Chat{JID: groupJID, Self: selfJID}, newWorld(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Upload.Complete(UploadResult{URL: "https://mmg.whatsapp.net/x", DirectPath: "/v/x", MediaKey: []byte{1}, FileEncSHA256: []byte{2}, FileSHA256: []byte{3}, FileLength: 4})
	doc := res.Message.GetDocumentMessage()
	if doc.GetURL() != "https://mmg.whatsapp.net/x" || doc.GetDirectPath() != "/v/x" || doc.GetFileLength() != 4 ||
		!bytes.Equal(doc.GetMediaKey(), []byte{1}) || !bytes.Equal(doc.GetFileEncSHA256(), []byte{2}) || !bytes.Equal(doc.GetFileSHA256(), []byte{3}) ||
		doc.GetMediaKeyTimestamp() != 1793716200 {
		t.Errorf("document after Complete = %v", doc)
	}
}

func TestToWhatsAppResolverFailure(t *testing.T) {
	boom := errors.New("database is gone")
	evt, err := DecodeEvent([]byte(benchEvents["html_mention_reply"]))
	if err != nil {
		t.Fatal(err)
	}
	r := newWorld()
	r.fail = boom
	_, err = ToWhatsApp(context.Background(), evt, Chat{JID: groupJID, Self: selfJID}, r, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the resolver's error", err)
	}
	var se *SendError
	if errors.As(err, &se) {
		t.Fatalf("a lookup failure must not look like unsendable content: %v", err)
	}
}

func TestSendErrorIs(t *testing.T) {
	evt, _ := DecodeEvent([]byte(msgEvent(`{"msgtype":"m.text","body":"* x","m.new_content":{"msgtype":"m.text","body":"x"},"m.relates_to":{"rel_type":"m.replace","event_id":"$mineold"}}`)))
	_, err := ToWhatsApp(context.Background(), evt, Chat{JID: groupJID, Self: selfJID}, newWorld(), nil)
	if !errors.Is(err, ErrEditTooOld) || !strings.Contains(err.Error(), "72h") {
		t.Fatalf("got %v, want ErrEditTooOld naming the age", err)
	}
}
