// Package chatexport reads the zip that WhatsApp's "Export chat" produces and
// returns its messages. It is pure: it reads only the zip it is given, so the
// importer can decide separately what goes into which room.
package chatexport

import (
	"archive/zip"
	"context"
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
	// Unparsed are the first unparsed lines; UnparsedTotal counts them all.
	Unparsed      []Unparsed
	UnparsedTotal int
	// Format describes the header layout found and why the day/month order
	// was chosen, so an operator can check an import that looks wrong.
	Format string
	// Files holds the zip's other files by base name; nil from ParseText.
	Files map[string]*zip.File
}

// Limits bound what one export may make the reader hold or do, so that a crafted zip (a
// few hundred kilobytes that inflate to millions of messages, or one endless line) cannot
// take the host's memory. The zero value means the defaults.
type Limits struct {
	// MaxMessages stops the parse with ErrTooManyMessages past this many messages
	// (system lines included). Default DefaultMaxMessages.
	MaxMessages int
}

// DefaultMaxMessages is Limits.MaxMessages when unset.
const DefaultMaxMessages = 100_000

// Fixed bounds: far above anything WhatsApp writes (its messages hold at most 65,536
// characters), far below what would strain the bridge.
const (
	// maxLine bounds one line of the chat text.
	maxLine = 1 << 20
	// maxMessageText bounds one message's text, continuation lines and all.
	maxMessageText = 1 << 20
	// maxUnparsed bounds the unparsed lines kept for the report; the rest are counted.
	maxUnparsed = 1000
)

// ErrTooManyMessages is returned when an export holds more messages than Limits allow.
var ErrTooManyMessages = errors.New("chatexport: too many messages")

// Read parses the export zip held in r with the default limits.
func Read(r io.ReaderAt, size int64, loc *time.Location) (*Result, error) {
	return ReadLimited(context.Background(), r, size, loc, Limits{})
}

// ReadLimited parses the export zip held in r. It streams the chat text twice (once to
// decide the date order, once to read the messages), so memory grows with the messages
// kept, never with the size of the text; it stops when ctx ends.
func ReadLimited(ctx context.Context, r io.ReaderAt, size int64, loc *time.Location, lim Limits) (*Result, error) {
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
	open := func() (io.ReadCloser, error) {
		rc, err := chat.Open()
		if err != nil {
			return nil, fmt.Errorf("chatexport: open %s: %w", chat.Name, err)
		}
		return rc, nil
	}
	res, err := parse(ctx, open, loc, lim)
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

// ParseText parses the bare chat text of an export, with the default limits.
func ParseText(text string, loc *time.Location) (*Result, error) {
	if loc == nil {
		return nil, errors.New("chatexport: nil location")
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }
	return parse(context.Background(), open, loc, Limits{})
}
