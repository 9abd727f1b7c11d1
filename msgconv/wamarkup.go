package msgconv

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"maunium.net/go/mautrix/id"
)

// This file turns WhatsApp markup into Matrix HTML with one forward scan per line, instead of a regex per
// markup kind: the reference converter spends 88% of a plain message in four backtracking regexes.
//
// WhatsApp's rules, as phones apply them: *bold*, _italic_, ~strike~ and `code` open only at the start of
// a word and close only at the end of one, never across lines; ```blocks``` may span lines and are not
// formatted inside; lines starting "> " quote, "- "/"* "/"• " bullet and "1. " number.

type mentionKind uint8

const (
	mentionUser mentionKind = iota // a pill for a Matrix user
	mentionRoom                    // @room
	mentionText                    // plain replacement text (a group mentioned by its JID)
)

// mention is one "@token" the WhatsApp text contains, resolved.
type mention struct {
	token string
	kind  mentionKind
	user  User
	text  string
}

// hasMarkup reports whether text may need HTML: markup runes, block prefixes at line starts, links, or
// (when the message mentions anyone) an '@'. False means body alone renders it exactly.
func hasMarkup(text string, mentions bool) bool {
	if blockPrefix(text) {
		return true
	}
	for i := 0; i < len(text); i++ {
		if !markupSpecial[text[i]] {
			continue
		}
		switch text[i] {
		case '*', '_', '~', '`':
			return true
		case '\n':
			if blockPrefix(text[i+1:]) {
				return true
			}
		case '@':
			if mentions {
				return true
			}
		case ':':
			if strings.HasPrefix(text[i:], "://") {
				return true
			}
		}
	}
	return false
}

// markupSpecial marks the bytes hasMarkup must look at; a table lookup per byte keeps the common
// no-markup case to one tight loop.
var markupSpecial = [256]bool{'*': true, '_': true, '~': true, '`': true, '\n': true, '@': true, ':': true}

// blockPrefix reports whether line starts a quote or list item.
func blockPrefix(line string) bool {
	k, _, _ := lineBlock(line)
	return k != blockParagraph
}

type blockKind uint8

const (
	blockNone blockKind = iota
	blockParagraph
	blockQuote
	blockUL
	blockOL
)

// lineBlock classifies a line by its prefix and returns the content after it (and a list's number).
func lineBlock(line string) (blockKind, string, int) {
	if len(line) < 2 {
		return blockParagraph, line, 0
	}
	switch {
	case line[0] == '>' && line[1] == ' ':
		return blockQuote, line[2:], 0
	case (line[0] == '-' || line[0] == '*') && line[1] == ' ':
		return blockUL, line[2:], 0
	case strings.HasPrefix(line, "• "):
		return blockUL, line[len("• "):], 0
	}
	n := 0
	for n < len(line) && n < 4 && line[n] >= '0' && line[n] <= '9' {
		n++
	}
	if n > 0 && n < 4 && n+1 < len(line) && line[n] == '.' && line[n+1] == ' ' {
		num, _ := strconv.Atoi(line[:n])
		return blockOL, line[n+2:], num
	}
	return blockParagraph, line, 0
}

// formatWhatsApp renders text as Matrix HTML. ok is false when the HTML adds nothing to the plain body
// (no tag but line breaks), so the caller can leave formatted_body out.
func formatWhatsApp(text string, mentions []mention) (html string, ok bool) {
	// Tags roughly double marked-up text; one right-sized buffer beats growing it twice.
	f := formatter{mentions: mentions, out: make([]byte, 0, 2*len(text)+64)}
	f.run(text)
	return bytesToString(f.out), f.tags > 0
}

// bytesToString hands over a buffer this package will never write again as a string without copying it,
// as strings.Builder does; it saves an allocation and a copy per converted message.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

type formatter struct {
	out      []byte
	mentions []mention
	// tags counts emitted elements other than <br>.
	tags  int
	block blockKind
	// newline is a line break waiting to be written before the next line of a paragraph or quote.
	newline bool
}

func (f *formatter) run(text string) {
	segStart, search := 0, 0
	for {
		open := indexFrom(text, "```", search)
		if open < 0 {
			break
		}
		end := indexFrom(text, "```", open+3)
		if end < 0 {
			break
		}
		inner := text[open+3 : end]
		if strings.TrimSpace(inner) == "" {
			search = open + 3
			continue
		}
		f.lines(text[segStart:open], segStart == 0 || text[segStart-1] == '\n')
		f.code(inner)
		segStart, search = end+3, end+3
	}
	f.lines(text[segStart:], segStart == 0 || text[segStart-1] == '\n')
	f.closeBlock()
}

func indexFrom(s, sub string, from int) int {
	if from > len(s) {
		return -1
	}
	i := strings.Index(s[from:], sub)
	if i < 0 {
		return -1
	}
	return from + i
}

// code writes a ``` block: multi-line ones as <pre>, single-line ones inline.
func (f *formatter) code(inner string) {
	f.tags++
	if strings.IndexByte(inner, '\n') < 0 {
		f.out = append(f.out, "<code>"...)
		f.escape(inner)
		f.out = append(f.out, "</code>"...)
		return
	}
	f.closeBlock()
	inner = strings.TrimPrefix(inner, "\n")
	inner = strings.TrimSuffix(inner, "\n")
	f.out = append(f.out, "<pre><code>"...)
	f.escape(inner)
	f.out = append(f.out, "</code></pre>"...)
}

func (f *formatter) lines(seg string, atLineStart bool) {
	if seg == "" && !atLineStart {
		return
	}
	for {
		nl := strings.IndexByte(seg, '\n')
		line := seg
		if nl >= 0 {
			line = seg[:nl]
		}
		f.line(line, atLineStart)
		if nl < 0 {
			return
		}
		f.newline = true
		seg = seg[nl+1:]
		atLineStart = true
	}
}

func (f *formatter) line(line string, atLineStart bool) {
	if !atLineStart {
		// The rest of a line after an inline code block stays in whatever block it was in.
		f.inline(line)
		return
	}
	kind, content, num := lineBlock(line)
	switch {
	case kind != f.block:
		f.closeBlock()
		f.openBlock(kind, num)
	case kind == blockParagraph || kind == blockQuote:
		if f.newline {
			f.out = append(f.out, "<br>"...)
		}
	}
	f.newline = false
	if kind == blockUL || kind == blockOL {
		f.out = append(f.out, "<li>"...)
		f.inline(content)
		f.out = append(f.out, "</li>"...)
		return
	}
	f.inline(content)
}

func (f *formatter) openBlock(kind blockKind, num int) {
	f.block = kind
	switch kind {
	case blockQuote:
		f.out = append(f.out, "<blockquote>"...)
	case blockUL:
		f.out = append(f.out, "<ul>"...)
	case blockOL:
		if num == 1 {
			f.out = append(f.out, "<ol>"...)
		} else {
			f.out = append(f.out, `<ol start="`...)
			f.out = strconv.AppendInt(f.out, int64(num), 10)
			f.out = append(f.out, `">`...)
		}
	default:
		return
	}
	f.tags++
}

func (f *formatter) closeBlock() {
	switch f.block {
	case blockQuote:
		f.out = append(f.out, "</blockquote>"...)
	case blockUL:
		f.out = append(f.out, "</ul>"...)
	case blockOL:
		f.out = append(f.out, "</ol>"...)
	}
	f.block = blockNone
	f.newline = false
}

var (
	openTags  = [...]string{"<strong>", "<em>", "<del>", "<code>"}
	closeTags = [...]string{"</strong>", "</em>", "</del>", "</code>"}
)

func markerIndex(c byte) int {
	switch c {
	case '*':
		return 0
	case '_':
		return 1
	case '~':
		return 2
	}
	return 3
}

// inline formats one line's worth of text: emphasis, code, mentions and links.
func (f *formatter) inline(s string) {
	// noClose remembers markers with no closer left in s: later openers of the same kind cannot find one
	// either, which keeps a line of unmatched markers linear instead of quadratic.
	var noClose [4]bool
	// Text between special bytes is copied as is: the loop stops at every byte that needs escaping, so
	// each byte is looked at once.
	plain := 0
	for i := 0; i < len(s); {
		for i < len(s) && !inlineSpecial[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		switch c := s[i]; c {
		case '&', '<', '>', '"', '\'':
			f.out = append(f.out, s[plain:i]...)
			f.out = appendEscaped(f.out, s[i:i+1])
			i++
			plain = i
			continue
		case '*', '_', '~', '`':
			m := markerIndex(c)
			if noClose[m] || !canOpen(s, i) {
				break
			}
			j := findClose(s, i)
			if j < 0 {
				noClose[m] = true
				break
			}
			f.out = append(f.out, s[plain:i]...)
			f.out = append(f.out, openTags[m]...)
			if c == '`' {
				f.escape(s[i+1 : j])
			} else {
				f.inline(s[i+1 : j])
			}
			f.out = append(f.out, closeTags[m]...)
			f.tags++
			i = j + 1
			plain = i
			continue
		case '@':
			if m, n := f.mentionAt(s, i); n > 0 {
				f.out = append(f.out, s[plain:i]...)
				f.writeMention(m)
				i += n
				plain = i
				continue
			}
		case ':':
			// Links are found from their "://", which is rarer than the 'h' they start with.
			if start := linkStart(s, i); start >= plain {
				if n := linkLen(s, start); n > 0 {
					f.out = append(f.out, s[plain:start]...)
					url := s[start : start+n]
					f.out = append(f.out, `<a href="`...)
					f.escape(url)
					f.out = append(f.out, `">`...)
					f.escape(url)
					f.out = append(f.out, "</a>"...)
					f.tags++
					i = start + n
					plain = i
					continue
				}
			}
		}
		i++
	}
	f.out = append(f.out, s[plain:]...)
}

// linkStart returns where "http" or "https" starts when s[i:] begins "://", or -1.
func linkStart(s string, i int) int {
	if !strings.HasPrefix(s[i:], "://") {
		return -1
	}
	switch {
	case i >= 5 && s[i-5:i] == "https":
		return i - 5
	case i >= 4 && s[i-4:i] == "http":
		return i - 4
	}
	return -1
}

// inlineSpecial marks the bytes inline must stop at: markup, mentions, links and HTML-special bytes.
var inlineSpecial = [256]bool{'*': true, '_': true, '~': true, '`': true, '@': true, ':': true,
	'&': true, '<': true, '>': true, '"': true, '\'': true}

// htmlSpecial marks the bytes appendEscaped replaces.
var htmlSpecial = [256]bool{'&': true, '<': true, '>': true, '"': true, '\'': true}

func (f *formatter) mentionAt(s string, i int) (*mention, int) {
	for k := range f.mentions {
		m := &f.mentions[k]
		if m.token == "" || !strings.HasPrefix(s[i+1:], m.token) {
			continue
		}
		end := i + 1 + len(m.token)
		if end < len(s) && isWordAt(s, end) {
			continue
		}
		return m, end - i
	}
	return nil, 0
}

func (f *formatter) writeMention(m *mention) {
	switch {
	case m.kind == mentionRoom:
		f.out = append(f.out, "@room"...)
	case m.kind == mentionText:
		f.escape(m.text)
	case m.user.MXID == "":
		f.out = append(f.out, '@')
		f.escape(m.user.Name)
	default:
		f.out = appendPill(f.out, m.user.MXID, m.user.Name)
		f.tags++
	}
}

// appendPill writes a Matrix user pill, the form clients render as a mention chip.
func appendPill(out []byte, mxid id.UserID, name string) []byte {
	out = append(out, `<a href="https://matrix.to/#/`...)
	out = appendEscaped(out, string(mxid))
	out = append(out, `">`...)
	out = appendEscaped(out, name)
	return append(out, "</a>"...)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isASCIIWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isWordAt reports whether a letter or digit starts at s[i].
func isWordAt(s string, i int) bool {
	if c := s[i]; c < utf8.RuneSelf {
		return isASCIIWord(c)
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// isWordBefore reports whether a letter or digit ends just before s[i].
func isWordBefore(s string, i int) bool {
	if c := s[i-1]; c < utf8.RuneSelf {
		return isASCIIWord(c)
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func canOpen(s string, i int) bool {
	return i+1 < len(s) && !isSpace(s[i+1]) && (i == 0 || !isWordBefore(s, i))
}

// findClose returns the index of the marker closing the one at s[i], or -1.
func findClose(s string, i int) int {
	c := s[i]
	for k := i + 2; k < len(s); {
		idx := strings.IndexByte(s[k:], c)
		if idx < 0 {
			return -1
		}
		j := k + idx
		if !isSpace(s[j-1]) && (j+1 == len(s) || !isWordAt(s, j+1)) {
			return j
		}
		k = j + 1
	}
	return -1
}

// linkLen returns the length of an http(s) URL starting at s[i], or 0.
func linkLen(s string, i int) int {
	rest := s[i:]
	var scheme int
	switch {
	case strings.HasPrefix(rest, "https://"):
		scheme = len("https://")
	case strings.HasPrefix(rest, "http://"):
		scheme = len("http://")
	default:
		return 0
	}
	if i > 0 && isWordBefore(s, i) {
		return 0
	}
	n := scheme
	for n < len(rest) && rest[n] > ' ' && rest[n] != 0x7f {
		n++
	}
	// Sentence punctuation after a link is not part of it; a ')' is, when the link opened one.
	opens, closes := strings.Count(rest[:n], "("), strings.Count(rest[:n], ")")
	for n > scheme {
		c := rest[n-1]
		if strings.IndexByte(".,;:!?'\"", c) >= 0 || c == ')' && opens < closes {
			if c == ')' {
				closes--
			}
			n--
			continue
		}
		break
	}
	if n == scheme {
		return 0
	}
	return n
}

func (f *formatter) escape(s string) { f.out = appendEscaped(f.out, s) }

// appendEscaped appends s with the five HTML-special characters escaped.
func appendEscaped(out []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if !htmlSpecial[s[i]] {
			continue
		}
		var rep string
		switch s[i] {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '"':
			rep = "&quot;"
		case '\'':
			rep = "&#39;"
		default:
			continue
		}
		out = append(out, s[last:i]...)
		out = append(out, rep...)
		last = i + 1
	}
	return append(out, s[last:]...)
}

// replaceMentions rewrites "@token" in the plain body to the names the HTML shows. It returns text itself
// when nothing matches.
func replaceMentions(text string, mentions []mention) string {
	var out []byte
	last := 0
	f := formatter{mentions: mentions}
	for i := 0; i < len(text); i++ {
		if text[i] != '@' {
			continue
		}
		m, n := f.mentionAt(text, i)
		if n == 0 {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(text)+32)
		}
		out = append(out, text[last:i]...)
		switch m.kind {
		case mentionRoom:
			out = append(out, "@room"...)
		case mentionText:
			out = append(out, m.text...)
		default:
			out = append(out, '@')
			out = append(out, m.user.Name...)
		}
		i += n - 1
		last = i + 1
	}
	if out == nil {
		return text
	}
	return bytesToString(append(out, text[last:]...))
}
