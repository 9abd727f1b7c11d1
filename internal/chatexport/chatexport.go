// Package chatexport reads the zip that WhatsApp's "Export chat" produces and
// returns its messages. It is pure: it reads only the zip it is given, so the
// importer can decide separately what goes into which room.
package chatexport

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Message is one message (or system line) of an exported chat.
type Message struct {
	Time       time.Time // in the loc passed in
	Sender     string    // display name or phone number as written in the export ("" for system lines)
	Text       string    // multi-line messages joined with \n
	Attachment string    // file name inside the zip when the message references one
	Omitted    bool      // media left out of the export
	System     bool      // e.g. "Messages and calls are end-to-end encrypted", group events
	Line       int       // 1-based line in the text file where it starts
}

// Unparsed is a line that could not be attributed to a message.
type Unparsed struct {
	Line   int
	Text   string
	Reason string
}

// Result is everything read from one export.
type Result struct {
	Messages []Message
	Unparsed []Unparsed
	// Format describes the header layout found and why the day/month order
	// was chosen, so an operator can check an import that looks wrong.
	Format string
	// Files holds the zip's other files by base name; nil from ParseText.
	Files map[string]*zip.File
}

// maxChatText bounds how much of the text file is read, so a crafted zip
// cannot make the daemon allocate without limit.
const maxChatText = 512 << 20

// Read parses the export zip held in r.
func Read(r io.ReaderAt, size int64, loc *time.Location) (*Result, error) {
	if loc == nil {
		return nil, errors.New("chatexport: nil location")
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("chatexport: open zip: %w", err)
	}
	chat, err := findChatFile(zr.File)
	if err != nil {
		return nil, err
	}
	text, err := readLimited(chat)
	if err != nil {
		return nil, err
	}
	res, err := ParseText(text, loc)
	if err != nil {
		return nil, err
	}
	res.Files = make(map[string]*zip.File)
	for _, f := range zr.File {
		if f == chat || f.FileInfo().IsDir() || isMacMetadata(f.Name) {
			continue
		}
		// Messages name attachments without a directory; keep the first of
		// any clashing base names rather than silently preferring the last.
		base := path.Base(f.Name)
		if _, dup := res.Files[base]; !dup {
			res.Files[base] = f
		}
	}
	return res, nil
}

func readLimited(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("chatexport: open %s: %w", f.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxChatText+1))
	if err != nil {
		return "", fmt.Errorf("chatexport: read %s: %w", f.Name, err)
	}
	if len(data) > maxChatText {
		return "", fmt.Errorf("chatexport: %s is larger than %d bytes", f.Name, maxChatText)
	}
	return string(data), nil
}

func isMacMetadata(name string) bool {
	return strings.HasPrefix(name, "__MACOSX/") || strings.HasPrefix(path.Base(name), "._")
}

// findChatFile picks the chat text: iOS names it _chat.txt, Android names it
// after the chat in the phone's language ("WhatsApp Chat with X.txt",
// "WhatsApp-Chat mit X.txt", "Discussion WhatsApp avec X.txt", ...).
func findChatFile(files []*zip.File) (*zip.File, error) {
	var txt, named []*zip.File
	for _, f := range files {
		if f.FileInfo().IsDir() || isMacMetadata(f.Name) {
			continue
		}
		base := path.Base(f.Name)
		if base == "_chat.txt" {
			return f, nil
		}
		if strings.EqualFold(path.Ext(base), ".txt") {
			txt = append(txt, f)
			if strings.Contains(strings.ToLower(base), "whatsapp") {
				named = append(named, f)
			}
		}
	}
	switch {
	case len(named) == 1:
		return named[0], nil
	case len(txt) == 1:
		return txt[0], nil
	case len(txt) == 0:
		return nil, errors.New("chatexport: no chat text file (_chat.txt or WhatsApp*.txt) in the zip")
	default:
		return nil, fmt.Errorf("chatexport: %d text files and none is clearly the chat", len(txt))
	}
}

// ParseText parses the bare chat text of an export.
func ParseText(text string, loc *time.Location) (*Result, error) {
	if loc == nil {
		return nil, errors.New("chatexport: nil location")
	}
	text = strings.TrimPrefix(text, "\uFEFF")
	lines := strings.Split(text, "\n")
	if len(lines) > 1 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the file's final newline ends a line, it does not start one
	}
	heads := make([]*header, len(lines))
	var found []*header
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
		if h := matchHeader(lines[i], i+1); h != nil {
			heads[i] = h
			found = append(found, h)
		}
	}
	order := decideOrder(found)
	res := &Result{}
	if len(found) > 0 {
		res.Format = found[0].layout(order.dayFirst) + " (" + order.why + ")"
	}

	var cur *pending
	flush := func() {
		if cur != nil {
			res.Messages = append(res.Messages, cur.finish())
			cur = nil
		}
	}
	afterBad := false
	for i, line := range lines {
		if h := heads[i]; h != nil {
			flush()
			t, reason := h.time(order.dayFirst, loc)
			if reason != "" {
				res.Unparsed = append(res.Unparsed, Unparsed{Line: i + 1, Text: line, Reason: reason})
				afterBad = true
				continue
			}
			afterBad = false
			cur = newPending(h, t)
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, line)
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		reason := "text before the first message header"
		if afterBad {
			reason = "continues a message whose header could not be parsed"
		}
		res.Unparsed = append(res.Unparsed, Unparsed{Line: i + 1, Text: line, Reason: reason})
	}
	flush()
	return res, nil
}
