package msgconv

import (
	"bytes"
	"context"
	"errors"
	"html"
	"net/url"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"
)

// This file turns Matrix HTML into WhatsApp markup with a small tokenizer over the tags the Matrix spec
// allows, instead of building a DOM: the reference converter spends 63% of its Matrix->WhatsApp time in a
// full HTML parse. Unknown tags pass their text through; nothing a user wrote is dropped except reply
// fallbacks (<mx-reply>), which WhatsApp shows as a real quote.

// maxHTMLDepth bounds the element stack; deeper nesting is treated as text, which keeps hostile input
// from growing memory without limit.
const maxHTMLDepth = 100

// maxQuoteDepth bounds nested quotes that get their own "> " prefix.
const maxQuoteDepth = 5

type elemKind uint8

const (
	elemOther elemKind = iota
	elemMark
	elemLink
	elemQuote
	elemList
	elemItem
	elemPre
	elemBlock
	elemSkip
	elemCell
	elemRow
)

type openElem struct {
	name   string
	kind   elemKind
	pos    int
	marker string
	href   string
	// ordered and n track list numbering.
	ordered bool
	n       int
}

type htmlConv struct {
	ctx       context.Context
	users     Users
	out       []byte
	stack     []openElem
	mentioned []string
	pre       int
	skip      int
	quotes    int
	// afterMarker is the output length just after the latest list marker: a block starting there is
	// already at the start of its line.
	afterMarker int
	err         error
}

// htmlToWhatsApp converts formatted_body to WhatsApp text and the JIDs of the users its pills mention.
func htmlToWhatsApp(c *toWA, s string) (string, []string, error) {
	h := htmlConv{ctx: c.ctx, users: c.r, out: make([]byte, 0, len(s)), stack: make([]openElem, 0, 6)}
	h.run(s)
	if h.err != nil {
		return "", nil, h.err
	}
	out := h.out
	for len(out) > 0 && (out[len(out)-1] == ' ' || out[len(out)-1] == '\n') {
		out = out[:len(out)-1]
	}
	return bytesToString(out), h.mentioned, nil
}

func (h *htmlConv) run(s string) {
	for i := 0; i < len(s) && h.err == nil; {
		if s[i] != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			h.text(s[i : i+j])
			i += j
			continue
		}
		if strings.HasPrefix(s[i:], "<!--") {
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				return
			}
			i += 4 + end + 3
			continue
		}
		n, ok := h.tag(s[i:])
		switch {
		case ok:
			i += n
		case n < 0:
			// A tag left open at the end of the input: the rest is text. Stopping here also keeps a run
			// of unterminated tags from being rescanned to the end once per '<'.
			h.text(s[i:])
			i = len(s)
		default:
			h.text("<")
			i++
		}
	}
	for len(h.stack) > 0 && h.err == nil {
		h.pop()
	}
}

// tag handles the tag at the start of s and returns its length; ok is false when s does not start a tag,
// and the length is then -1 when s starts a tag that the input never closes.
func (h *htmlConv) tag(s string) (int, bool) {
	i := 1
	closing := false
	if i < len(s) && s[i] == '/' {
		closing = true
		i++
	}
	start := i
	for i < len(s) && (isASCIIWord(s[i]) || s[i] == '-') {
		i++
	}
	if i == start || !isASCIILetter(s[start]) {
		// "<3" or "a < b" is text, as browsers read it.
		return 0, false
	}
	name := lowerASCII(s[start:i])
	// Find the end of the tag, skipping quoted attribute values that may contain '>'.
	attrStart := i
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			if c == quote {
				quote = 0
			}
			continue
		}
		if c == '"' || c == '\'' {
			quote = c
		} else if c == '>' {
			break
		}
	}
	if i >= len(s) {
		return -1, false
	}
	attrs := s[attrStart:i]
	selfClosing := strings.HasSuffix(attrs, "/")
	if closing {
		h.close(name)
	} else {
		h.open(name, attrs, selfClosing)
	}
	return i + 1, true
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// attr returns the value of attribute name in a tag's attribute text.
func attr(attrs, name string) string {
	for i := 0; i < len(attrs); {
		for i < len(attrs) && (isSpace(attrs[i]) || attrs[i] == '/') {
			i++
		}
		start := i
		for i < len(attrs) && attrs[i] != '=' && !isSpace(attrs[i]) && attrs[i] != '/' {
			i++
		}
		key := attrs[start:i]
		for i < len(attrs) && isSpace(attrs[i]) {
			i++
		}
		if i >= len(attrs) || attrs[i] != '=' {
			if i == start {
				i++
			}
			continue
		}
		i++
		for i < len(attrs) && isSpace(attrs[i]) {
			i++
		}
		var val string
		if i < len(attrs) && (attrs[i] == '"' || attrs[i] == '\'') {
			q := attrs[i]
			end := strings.IndexByte(attrs[i+1:], q)
			if end < 0 {
				val = attrs[i+1:]
				i = len(attrs)
			} else {
				val = attrs[i+1 : i+1+end]
				i += end + 2
			}
		} else {
			vs := i
			for i < len(attrs) && !isSpace(attrs[i]) {
				i++
			}
			val = attrs[vs:i]
		}
		if strings.EqualFold(key, name) {
			if strings.IndexByte(val, '&') >= 0 {
				val = html.UnescapeString(val)
			}
			return val
		}
	}
	return ""
}

func (h *htmlConv) text(t string) {
	if h.skip > 0 || t == "" {
		return
	}
	if h.pre == 0 && strings.IndexByte(t, '\n') >= 0 {
		// Outside <pre>, source newlines are layout between tags, not line breaks (those are <br>).
		if strings.TrimSpace(t) == "" {
			return
		}
		t = strings.ReplaceAll(t, "\n", " ")
		if h.atLineStart() {
			t = strings.TrimLeft(t, " ")
		}
	}
	if strings.IndexByte(t, '&') >= 0 {
		h.out = appendUnescaped(h.out, t)
		return
	}
	h.out = append(h.out, t...)
}

// appendUnescaped appends t with its character references decoded. The five that Matrix clients emit
// in text are decoded in place; from the first other one on, the standard library takes over.
func appendUnescaped(out []byte, t string) []byte {
	for i := 0; i < len(t); {
		c := t[i]
		if c != '&' {
			out = append(out, c)
			i++
			continue
		}
		var rep byte
		var n int
		switch {
		case strings.HasPrefix(t[i:], "&amp;"):
			rep, n = '&', 5
		case strings.HasPrefix(t[i:], "&lt;"):
			rep, n = '<', 4
		case strings.HasPrefix(t[i:], "&gt;"):
			rep, n = '>', 4
		case strings.HasPrefix(t[i:], "&quot;"):
			rep, n = '"', 6
		case strings.HasPrefix(t[i:], "&#39;"):
			rep, n = '\'', 5
		default:
			return append(out, html.UnescapeString(t[i:])...)
		}
		out = append(out, rep)
		i += n
	}
	return out
}

// atLineStart reports whether nothing but a list marker is on the current output line.
func (h *htmlConv) atLineStart() bool {
	return len(h.out) == 0 || h.out[len(h.out)-1] == '\n' || len(h.out) == h.afterMarker
}

func (h *htmlConv) lineStart() {
	if !h.atLineStart() {
		h.out = append(h.out, '\n')
	}
}

// inItem reports whether a list item is open, where paragraphs do not get blank lines between them.
func (h *htmlConv) inItem() bool {
	for i := len(h.stack) - 1; i >= 0; i-- {
		if h.stack[i].kind == elemItem {
			return true
		}
	}
	return false
}

// markerFor returns the WhatsApp marker of an inline formatting tag, or "".
func markerFor(name string) string {
	switch name {
	case "b", "strong", "h1", "h2", "h3", "h4", "h5", "h6":
		return "*"
	case "i", "em":
		return "_"
	case "s", "del", "strike":
		return "~"
	}
	return ""
}

func (h *htmlConv) open(name, attrs string, selfClosing bool) {
	switch name {
	case "br":
		if h.skip == 0 {
			h.out = append(h.out, '\n')
		}
		return
	case "hr":
		if h.skip == 0 {
			h.lineStart()
			h.out = append(h.out, "---\n"...)
		}
		return
	case "img":
		if h.skip == 0 {
			alt := attr(attrs, "alt")
			if alt == "" {
				alt = attr(attrs, "title")
			}
			h.out = append(h.out, alt...)
		}
		return
	}
	if selfClosing || len(h.stack) >= maxHTMLDepth {
		return
	}
	e := openElem{name: name, pos: len(h.out)}
	if h.skip > 0 && name != "mx-reply" && name != "script" && name != "style" {
		// Inside a skipped element only the nesting matters, so its end tag is found.
		h.stack = append(h.stack, e)
		return
	}
	switch name {
	case "mx-reply", "script", "style":
		e.kind = elemSkip
		h.skip++
	case "a":
		e.kind = elemLink
		e.href = attr(attrs, "href")
	case "code":
		if h.pre == 0 {
			e.kind, e.marker = elemMark, "`"
		}
	case "pre":
		e.kind = elemPre
		h.lineStart()
		h.out = append(h.out, "```"...)
		e.pos = len(h.out)
		h.pre++
	case "blockquote":
		e.kind = elemQuote
		if h.quotes >= maxQuoteDepth {
			// Every level rewrites its whole content; past a few levels nobody reads the "> > >" anyway.
			e.kind = elemBlock
		} else {
			h.quotes++
		}
		h.lineStart()
		e.pos = len(h.out)
	case "ul", "ol":
		e.kind = elemList
		h.lineStart()
		e.ordered = name == "ol"
		e.n = 1
		if start, err := strconv.Atoi(attr(attrs, "start")); err == nil && e.ordered {
			e.n = start
		}
	case "li":
		e.kind = elemItem
		h.lineStart()
		h.listMarker()
		e.pos = len(h.out)
		h.afterMarker = len(h.out)
	case "p", "div", "details", "summary", "table", "thead", "tbody", "caption":
		e.kind = elemBlock
		h.lineStart()
	case "tr":
		e.kind = elemRow
		h.lineStart()
		e.pos = len(h.out)
	case "td", "th":
		e.kind = elemCell
		if len(h.out) > 0 && h.out[len(h.out)-1] != '\n' {
			h.out = append(h.out, " | "...)
		}
	default:
		if m := markerFor(name); m != "" {
			e.kind, e.marker = elemMark, m
			if name[0] == 'h' {
				h.lineStart()
				e.pos = len(h.out)
			}
		}
	}
	h.stack = append(h.stack, e)
}

// listMarker writes the bullet or number of a new list item, indented by list depth.
func (h *htmlConv) listMarker() {
	depth := 0
	var list *openElem
	for i := len(h.stack) - 1; i >= 0; i-- {
		if h.stack[i].kind == elemList {
			if list == nil {
				list = &h.stack[i]
			}
			depth++
		}
	}
	for i := 1; i < depth; i++ {
		h.out = append(h.out, "  "...)
	}
	if list != nil && list.ordered {
		h.out = strconv.AppendInt(h.out, int64(list.n), 10)
		h.out = append(h.out, ". "...)
		list.n++
		return
	}
	h.out = append(h.out, "- "...)
}

func (h *htmlConv) close(name string) {
	for i := len(h.stack) - 1; i >= 0; i-- {
		if h.stack[i].name == name {
			for len(h.stack) > i {
				h.pop()
			}
			return
		}
	}
	// A stray closing tag closes nothing.
}

func (h *htmlConv) pop() {
	e := h.stack[len(h.stack)-1]
	h.stack = h.stack[:len(h.stack)-1]
	switch e.kind {
	case elemSkip:
		h.skip--
	case elemMark:
		h.wrap(e.pos, e.marker)
		if e.name[0] == 'h' {
			h.out = append(h.out, '\n')
		}
	case elemLink:
		h.link(e)
	case elemPre:
		h.pre--
		if len(h.out) > e.pos && h.out[len(h.out)-1] == '\n' {
			h.out = h.out[:len(h.out)-1]
		}
		h.out = append(h.out, "```\n"...)
	case elemQuote:
		h.quotes--
		h.quote(e.pos)
	case elemList:
		h.lineStart()
		if !h.inItem() {
			// A top-level list ends its block like a paragraph does.
			h.out = append(h.out, '\n')
		}
	case elemItem, elemRow:
		h.lineStart()
	case elemBlock:
		h.lineStart()
		if e.name == "p" && !h.inItem() {
			// Paragraphs are separated by a blank line, as clients render them.
			h.out = append(h.out, '\n')
		}
	}
}

// wrap puts WhatsApp markers around the text written since pos. WhatsApp only honours markers that touch
// a word on the inside and never span lines, so each line is wrapped on its own, with its surrounding
// spaces moved outside the markers.
func (h *htmlConv) wrap(pos int, marker string) {
	if h.skip > 0 || pos >= len(h.out) {
		return
	}
	if first, last := h.out[pos], h.out[len(h.out)-1]; !isSpace(first) && !isSpace(last) && bytes.IndexByte(h.out[pos:], '\n') < 0 {
		// The usual case, one line with no outer spaces: insert the markers in place.
		end := len(h.out)
		h.out = append(h.out, marker...)
		h.out = append(h.out, marker...)
		copy(h.out[pos+len(marker):], h.out[pos:end])
		copy(h.out[pos:], marker)
		return
	}
	content := string(h.out[pos:])
	h.out = h.out[:pos]
	for first := true; ; first = false {
		nl := strings.IndexByte(content, '\n')
		line := content
		if nl >= 0 {
			line = content[:nl]
		}
		if !first {
			h.out = append(h.out, '\n')
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			h.out = append(h.out, line...)
		} else {
			lead := strings.Index(line, trimmed)
			h.out = append(h.out, line[:lead]...)
			h.out = append(h.out, marker...)
			h.out = append(h.out, trimmed...)
			h.out = append(h.out, marker...)
			h.out = append(h.out, line[lead+len(trimmed):]...)
		}
		if nl < 0 {
			return
		}
		content = content[nl+1:]
	}
}

// quote prefixes every line written since pos with "> ".
func (h *htmlConv) quote(pos int) {
	content := strings.TrimRight(string(h.out[pos:]), "\n")
	h.out = h.out[:pos]
	for first := true; ; first = false {
		nl := strings.IndexByte(content, '\n')
		line := content
		if nl >= 0 {
			line = content[:nl]
		}
		if !first {
			h.out = append(h.out, '\n')
		}
		h.out = append(h.out, "> "...)
		h.out = append(h.out, line...)
		if nl < 0 {
			break
		}
		content = content[nl+1:]
	}
	h.out = append(h.out, '\n')
}

// link turns a pill into a WhatsApp mention and any other link into its text and URL.
func (h *htmlConv) link(e openElem) {
	if h.skip > 0 {
		return
	}
	if user, ok := pillUser(e.href); ok {
		jid, err := h.users.JIDByUser(h.ctx, user)
		switch {
		case err == nil && jid.User != "":
			h.out = append(h.out[:e.pos], '@')
			h.out = append(h.out, jid.User...)
			s := jid.ToNonAD().String()
			for _, m := range h.mentioned {
				if m == s {
					return
				}
			}
			h.mentioned = append(h.mentioned, s)
			return
		case err != nil && !errors.Is(err, ErrNotFound):
			h.err = err
			return
		}
		// A Matrix user with no WhatsApp identity stays as their name.
		return
	}
	text := string(h.out[e.pos:])
	if e.href == "" || text == e.href || "mailto:"+text == e.href {
		return
	}
	if target, ok := strings.CutPrefix(e.href, "https://matrix.to/#/"); ok {
		// Room pills and permalinks whose text is the alias say all a WhatsApp reader can use.
		if unescaped, err := url.PathUnescape(target); err == nil && unescaped == text {
			return
		}
	}
	if text == "" {
		h.out = append(h.out, e.href...)
		return
	}
	h.out = append(h.out, " ("...)
	h.out = append(h.out, e.href...)
	h.out = append(h.out, ')')
}

// pillUser extracts the user ID of a user pill (matrix.to or matrix: URI).
func pillUser(href string) (id.UserID, bool) {
	var rest string
	switch {
	case strings.HasPrefix(href, "https://matrix.to/#/"):
		rest = href[len("https://matrix.to/#/"):]
	case strings.HasPrefix(href, "matrix:u/"):
		rest = "@" + href[len("matrix:u/"):]
	default:
		return "", false
	}
	if i := strings.IndexAny(rest, "?/"); i >= 0 {
		rest = rest[:i]
	}
	if strings.IndexByte(rest, '%') >= 0 {
		if unescaped, err := url.PathUnescape(rest); err == nil {
			rest = unescaped
		}
	}
	if len(rest) < 3 || rest[0] != '@' || strings.IndexByte(rest, ':') < 0 {
		return "", false
	}
	return id.UserID(rest), true
}
