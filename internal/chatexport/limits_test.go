package chatexport

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// zipWith stores the chat text as _chat.txt, compressed (a crafted export is small).
func zipWith(t *testing.T, text string) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("_chat.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

func manyMessages(n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "02/01/2024, 22:%02d - Anna: message %d\n", i%60, i)
	}
	return sb.String()
}

func TestReadLimits(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		text     string
		ctx      context.Context
		lim      Limits
		wantErr  string
		wantIs   error
		messages int
	}{
		{name: "at the cap", text: manyMessages(50), lim: Limits{MaxMessages: 50}, messages: 50},
		{name: "past the cap", text: manyMessages(51), lim: Limits{MaxMessages: 50}, wantIs: ErrTooManyMessages,
			wantErr: "more than 50 messages (line 51 starts message 51)"},
		{name: "default cap", text: manyMessages(DefaultMaxMessages + 1), wantIs: ErrTooManyMessages,
			wantErr: fmt.Sprintf("more than %d messages", DefaultMaxMessages)},
		{name: "one endless line", text: "02/01/2024, 22:11 - Anna: " + strings.Repeat("x", maxLine+1) + "\n",
			wantErr: "line 1 is longer than 1048576 bytes"},
		{name: "one endless message", text: "02/01/2024, 22:11 - Anna: x\n" + strings.Repeat(strings.Repeat("y", 1000)+"\n", maxMessageText/1000+1),
			wantErr: "the message starting on line 1 is longer than 1048576 bytes"},
		{name: "requester gone", text: manyMessages(10_000), ctx: cancelled, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			z := zipWith(t, tt.text)
			res, err := ReadLimited(ctx, z, z.Size(), time.UTC, tt.lim)
			if tt.wantErr == "" && tt.wantIs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Messages) != tt.messages {
					t.Fatalf("%d messages, want %d", len(res.Messages), tt.messages)
				}
				return
			}
			if err == nil {
				t.Fatalf("read %d messages, want an error", len(res.Messages))
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("error %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

func TestUnparsedLinesBounded(t *testing.T) {
	text := strings.Repeat("not a header\n", maxUnparsed+500)
	res, err := ParseText(text, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unparsed) != maxUnparsed || res.UnparsedTotal != maxUnparsed+500 {
		t.Fatalf("kept %d unparsed lines of %d counted; want %d of %d", len(res.Unparsed), res.UnparsedTotal, maxUnparsed, maxUnparsed+500)
	}
}
