package msgconv

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// allowedTags are the tags this package emits, all of them in the Matrix spec's allowed list, with the
// attributes each may carry.
var allowedTags = map[string][]string{
	"strong": nil, "em": nil, "del": nil, "code": nil, "pre": nil, "blockquote": nil,
	"ul": nil, "ol": {"start"}, "li": nil, "a": {"href"}, "br": nil,
}

// checkHTML fails unless s is valid UTF-8 and made of allowed, properly nested tags and escaped text.
func checkHTML(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("formatted_body is not valid UTF-8: %q", s)
	}
	var stack []string
	for i := 0; i < len(s); {
		if s[i] != '<' {
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			t.Fatalf("unterminated tag at %d in %q", i, s)
		}
		tag := s[i+1 : i+end]
		i += end + 1
		closing := strings.HasPrefix(tag, "/")
		tag = strings.TrimPrefix(tag, "/")
		name, attrs, _ := strings.Cut(tag, " ")
		allowed, ok := allowedTags[name]
		if !ok {
			t.Fatalf("disallowed tag <%s> in %q", name, s)
		}
		if attrs != "" {
			key, _, _ := strings.Cut(attrs, "=")
			if len(allowed) == 0 || key != allowed[0] || strings.Count(attrs, `"`) != 2 {
				t.Fatalf("disallowed attributes %q on <%s> in %q", attrs, name, s)
			}
		}
		switch {
		case name == "br":
		case closing:
			if len(stack) == 0 || stack[len(stack)-1] != name {
				t.Fatalf("</%s> does not close %v in %q", name, stack, s)
			}
			stack = stack[:len(stack)-1]
		default:
			stack = append(stack, name)
		}
	}
	if len(stack) > 0 {
		t.Fatalf("unclosed %v in %q", stack, s)
	}
}

// checkStrings fails if any string reachable from v is not valid UTF-8: the portal uses names and
// mimetypes directly, not only through JSON (which would hide bad bytes by replacing them).
func checkStrings(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			t.Fatalf("%s is not valid UTF-8: %q", path, v.String())
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkStrings(t, path, v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				checkStrings(t, path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			checkStrings(t, path, v.Index(i))
		}
	}
}

// checkResult checks every content of a ToMatrix result.
func checkResult(t *testing.T, res *ToMatrixResult) {
	t.Helper()
	for _, m := range res.Media {
		checkStrings(t, "media", reflect.ValueOf(MediaTransfer{MimeType: m.MimeType, FileName: m.FileName}))
	}
	checkStrings(t, "note", reflect.ValueOf(res.Note))
	checkStrings(t, "redactions", reflect.ValueOf(res.Redactions))
	for _, e := range res.Events {
		data, err := json.Marshal(e.Content)
		if err != nil {
			t.Fatalf("content does not marshal: %v", err)
		}
		if !utf8.Valid(data) {
			t.Fatalf("content JSON is not valid UTF-8: %q", data)
		}
		checkStrings(t, "content", reflect.ValueOf(e.Content))
		if mc, ok := e.Content.(*MessageContent); ok {
			for ; mc != nil; mc = mc.NewContent {
				if mc.Format != "" {
					checkHTML(t, mc.FormattedBody)
				}
				if !utf8.ValidString(mc.Body) {
					t.Fatalf("body is not valid UTF-8: %q", mc.Body)
				}
			}
		}
	}
}

func FuzzWhatsAppMarkup(f *testing.F) {
	for _, s := range []string{plainText, formattedText, replyMentionText, "*_~`x`~_*", "```a\nb```c", "> q\n- l\n1. o",
		"https://x.org/a_b_(c)", "@491703333333 @all", "* *a* *", "\xff*\xfe*", "``````", "2. x\n\n3. y"} {
		f.Add(s)
	}
	ctx := context.Background()
	r := newWorld()
	f.Fuzz(func(t *testing.T, text string) {
		msg := ext(text, &waE2E.ContextInfo{MentionedJID: []string{carolJID.String(), "4915550000000@s.whatsapp.net"},
			NonJIDMentions: proto.Uint32(1)})
		res, err := ToMatrix(ctx, groupInfo(), msg, r, nil)
		if err != nil {
			t.Fatalf("ToMatrix: %v", err)
		}
		checkResult(t, res)

		// Without mentions, markup may only remove marker characters: every letter must survive.
		res, err = ToMatrix(ctx, groupInfo(), conv(text), r, nil)
		if err != nil {
			t.Fatalf("ToMatrix: %v", err)
		}
		checkResult(t, res)
		if c := res.Events[0].Content.(*MessageContent); c.Format != "" {
			if got, want := letters(htmlText(c.FormattedBody)), letters(validUTF8(text)); got != want {
				t.Fatalf("letters changed:\n got %q\nwant %q\nhtml %q", got, want, c.FormattedBody)
			}
		}
	})
}

// htmlText is the text of our own HTML output: tags removed, entities decoded.
func htmlText(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			break
		}
		s = s[i+end+1:]
	}
	return html.UnescapeString(b.String())
}

func letters(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func FuzzWhatsAppMessage(f *testing.F) {
	for _, tc := range toMatrixCases() {
		data, _ := proto.Marshal(tc.msg)
		f.Add(data)
	}
	ctx := context.Background()
	r := newWorld()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &waE2E.Message{}
		if err := proto.Unmarshal(data, msg); err != nil {
			return
		}
		res, err := ToMatrix(ctx, groupInfo(), msg, r, &Options{InlineThumbnails: true})
		if err != nil {
			if errors.Is(err, ErrForgedEdit) {
				return
			}
			t.Fatalf("ToMatrix: %v", err)
		}
		if res.Action != ActionNone && len(res.Events) == 0 && len(res.Redactions) == 0 {
			t.Fatalf("action %s with nothing to do and note %q", res.Action, res.Note)
		}
		if res.Action == ActionNone && res.Note == "" {
			t.Fatal("nothing to do and no note saying why")
		}
		checkResult(t, res)
	})
}

func FuzzMatrixHTML(f *testing.F) {
	for _, s := range []string{
		`<a href="https://matrix.to/#/@whatsapp_491703333333:example.org">Carol</a>: <strong>out</strong> <em>Fri</em>`,
		`<ul><li>a<ol start="2"><li>b</li></ol></li></ul><blockquote>q<blockquote>n</blockquote></blockquote>`,
		`<pre><code>x</code></pre><mx-reply><b>gone</b></mx-reply><p>p</p><br><hr><img alt="a">`,
		`a < b <3 <b>bold <i>both</b> after</i> </x> <a href='x'>y`, `<!-- c --><b> </b>&amp;&#x1F600;`,
	} {
		f.Add(s)
	}
	ctx := context.Background()
	r := newWorld()
	chat := Chat{JID: groupJID, Self: selfJID}
	f.Fuzz(func(t *testing.T, formatted string) {
		content, _ := json.Marshal(map[string]any{"msgtype": "m.text", "body": "fallback", "format": FormatHTML, "formatted_body": formatted})
		evt, err := DecodeEvent([]byte(msgEvent(string(content))))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		res, err := ToWhatsApp(ctx, evt, chat, r, nil)
		if err != nil {
			if errors.Is(err, ErrEmptyMessage) {
				return
			}
			t.Fatalf("ToWhatsApp: %v", err)
		}
		text := res.Message.GetConversation() + res.Message.GetExtendedTextMessage().GetText()
		if !utf8.ValidString(text) {
			t.Fatalf("WhatsApp text is not valid UTF-8: %q", text)
		}
		// Every letter sent must come from the input (text, link targets or image alt text).
		source := evt.Content.FormattedBody
		if source == "" {
			source = evt.Content.Body // An empty formatted_body falls back to the plain body.
		}
		have := map[rune]int{}
		for _, r := range html.UnescapeString(source) {
			have[r]++
		}
		for _, r := range letters(text) {
			if have[r]--; have[r] < 0 {
				t.Fatalf("letter %q in the output is not in the input: %q", r, text)
			}
		}
		if _, err := proto.Marshal(res.Message); err != nil {
			t.Fatalf("marshal: %v", err)
		}
		// What we send must come back as clean Matrix HTML when the other side echoes it.
		back, err := ToMatrix(ctx, groupInfo(), &waE2E.Message{Conversation: proto.String(text)}, r, nil)
		if err != nil {
			t.Fatalf("ToMatrix of our own output: %v", err)
		}
		checkResult(t, back)
	})
}
