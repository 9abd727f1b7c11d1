package chatexport

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// lineScanner reads the chat text line by line, within maxLine, numbering lines from 1.
type lineScanner struct {
	sc *bufio.Scanner
	n  int
}

func newLineScanner(r io.Reader) *lineScanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &lineScanner{sc: sc}
}

func (s *lineScanner) next() (string, bool) {
	if !s.sc.Scan() {
		return "", false
	}
	s.n++
	line := s.sc.Text()
	if s.n == 1 {
		line = strings.TrimPrefix(line, "\uFEFF")
	}
	return line, true
}

func (s *lineScanner) err() error {
	if errors.Is(s.sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("chatexport: line %d is longer than %d bytes: this is not a chat export", s.n+1, maxLine)
	}
	if err := s.sc.Err(); err != nil {
		return fmt.Errorf("chatexport: read the chat text: %w", err)
	}
	return nil
}

// parse reads the chat text that open returns, twice: the first pass keeps only what the
// date order is decided on (the first header, and the first with a field above 12 in each
// position), the second builds the messages.
func parse(ctx context.Context, open func() (io.ReadCloser, error), loc *time.Location, lim Limits) (*Result, error) {
	maxMessages := lim.MaxMessages
	if maxMessages <= 0 {
		maxMessages = DefaultMaxMessages
	}
	order, first, err := scanOrder(ctx, open)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if first != nil {
		res.Format = first.layout(order.dayFirst) + " (" + order.why + ")"
	}
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	lines := newLineScanner(rc)
	unparsed := func(line int, text, reason string) {
		res.UnparsedTotal++
		if len(res.Unparsed) < maxUnparsed {
			res.Unparsed = append(res.Unparsed, Unparsed{Line: line, Text: text, Reason: reason})
		}
	}
	var cur *pending
	curSize := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		if len(res.Messages) == maxMessages {
			return fmt.Errorf("%w: the export holds more than %d messages (line %d starts message %d)",
				ErrTooManyMessages, maxMessages, cur.msg.Line, maxMessages+1)
		}
		res.Messages = append(res.Messages, cur.finish())
		cur = nil
		return nil
	}
	afterBad := false
	for {
		line, ok := lines.next()
		if !ok {
			break
		}
		if lines.n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n := lines.n
		if h := matchHeader(line, n); h != nil {
			if err := flush(); err != nil {
				return nil, err
			}
			t, reason := h.time(order.dayFirst, loc)
			if reason != "" {
				unparsed(n, line, reason)
				afterBad = true
				continue
			}
			afterBad = false
			cur, curSize = newPending(h, t), len(line)
			continue
		}
		if cur != nil {
			if curSize += len(line) + 1; curSize > maxMessageText {
				return nil, fmt.Errorf("chatexport: the message starting on line %d is longer than %d bytes: this is not a chat export", cur.msg.Line, maxMessageText)
			}
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
		unparsed(n, line, reason)
	}
	if err := lines.err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return res, nil
}

// scanOrder is parse's first pass.
func scanOrder(ctx context.Context, open func() (io.ReadCloser, error)) (dateOrder, *header, error) {
	rc, err := open()
	if err != nil {
		return dateOrder{}, nil, err
	}
	defer rc.Close()
	lines := newLineScanner(rc)
	// decideOrder looks at the first header and at the first with a field above 12 in
	// each position: those three, in file order, decide as all of them would.
	var first, firstBig, secondBig *header
	for {
		line, ok := lines.next()
		if !ok {
			break
		}
		if lines.n%4096 == 0 && ctx.Err() != nil {
			return dateOrder{}, nil, ctx.Err()
		}
		h := matchHeader(line, lines.n)
		if h == nil {
			continue
		}
		if first == nil {
			first = h
		}
		if firstBig == nil && h.d1 > 12 {
			firstBig = h
		}
		if secondBig == nil && h.d2 > 12 {
			secondBig = h
		}
	}
	if err := lines.err(); err != nil {
		return dateOrder{}, nil, err
	}
	var hs []*header
	for _, h := range []*header{first, firstBig, secondBig} {
		if h != nil && !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	slices.SortFunc(hs, func(a, b *header) int { return cmp.Compare(a.line, b.line) })
	return decideOrder(hs), first, nil
}
