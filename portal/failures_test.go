package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"maunium.net/go/mautrix"

	"codeberg.org/causeway/causeway/database"
)

func TestMediaDownloadFailure(t *testing.T) {
	answer := func(status int, code string) error {
		return mautrix.HTTPError{Response: &http.Response{StatusCode: status},
			RespError: &mautrix.RespError{ErrCode: code, Err: "said the homeserver", StatusCode: status}}
	}
	tests := []struct {
		name      string
		err       error
		permanent bool
		words     string
	}{
		{"404 M_NOT_FOUND", answer(http.StatusNotFound, "M_NOT_FOUND"), true, "not on the homeserver"},
		{"404 without an errcode", mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusNotFound}}, true, "not on the homeserver"},
		{"413 M_TOO_LARGE", answer(http.StatusRequestEntityTooLarge, "M_TOO_LARGE"), true, "too large"},
		{"403 M_FORBIDDEN", answer(http.StatusForbidden, "M_FORBIDDEN"), true, "does not let the bridge"},
		{"502 from a proxy", mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusBadGateway}}, false, ""},
		{"429 M_LIMIT_EXCEEDED", answer(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED"), false, ""},
		{"500 M_UNKNOWN", answer(http.StatusInternalServerError, "M_UNKNOWN"), false, ""},
		{"no answer", mautrix.HTTPError{Message: "request error", WrappedError: errors.New("connection refused")}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mediaDownloadFailure(tt.err, "mxc://test/gone")
			var perm errPermanent
			if got := errors.As(err, &perm); got != tt.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			if words := failureWords(err); tt.words != "" && !strings.Contains(words, tt.words) {
				t.Errorf("words = %q, want %q in them", words, tt.words)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap the download's error", err)
			}
		})
	}
}

// matrixEventOfType queues a Matrix event of any type from the receiver.
func matrixEventOfType(t *testing.T, typ, evtID string, content map[string]any) *database.QueueItem {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"type": typ, "event_id": evtID, "room_id": "!room1:test", "sender": string(testReceiver),
		"origin_server_ts": 1_700_000_000_000, "content": content,
	})
	if err != nil {
		t.Fatal(err)
	}
	var env MatrixEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	return NewMatrixEventItem(&env, raw)
}

// TestFailureNoticeWords: the notice for an event that could not be relayed names the
// message it is about and says what went wrong in words, never in a Go decoder's.
func TestFailureNoticeWords(t *testing.T) {
	damaged := waMessage(t, "3A0DAMAGED", "never seen").Item
	var wm WAMessage
	if err := json.Unmarshal(damaged.Payload, &wm); err != nil {
		t.Fatal(err)
	}
	wm.Message = []byte{0xff, 0xff, 0xff} // not a protobuf
	damaged.Payload, _ = json.Marshal(&wm)

	tests := []struct {
		name string
		item *database.QueueItem
		// want are the words the notice must contain: the message's name and the reason.
		want []string
	}{
		{"relation that is not an object", matrixEventOfType(t, "m.room.message", "$bad1", map[string]any{
			"msgtype": "m.text", "body": "see you at noon", "m.relates_to": "oops"}),
			[]string{"“see you at noon”", "m.relates_to"}},
		{"long text is named by its beginning", matrixEventOfType(t, "m.room.message", "$bad2", map[string]any{
			"msgtype": "m.text", "body": strings.Repeat("word ", 40), "m.relates_to": []any{1}}),
			[]string{"“word word", "…”"}},
		{"image", matrixEventOfType(t, "m.room.message", "$bad3", map[string]any{
			"msgtype": "m.image", "body": "holiday.jpg", "url": "mxc://test/x", "info": "big"}),
			[]string{"image “holiday.jpg”", "info"}},
		{"reaction to a message never bridged", matrixEventOfType(t, "m.reaction", "$bad4", map[string]any{
			"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": "$elsewhere", "key": "👍"}}),
			[]string{"reaction “👍”", "not bridged"}},
		{"WhatsApp message stored damaged", damaged,
			[]string{"3A0DAMAGED", "damaged"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.portal()
			p.row.MXID = "!room1:test"
			if err := p.Enqueue(context.Background(), tt.item); err != nil {
				t.Fatal(err)
			}
			if !h.processAll(p) {
				t.Fatal("the item was not given up on its first attempt")
			}
			sent := h.mx.sent()
			if len(sent) != 1 || sent[0].as != testBot {
				t.Fatalf("room was told %+v, want one notice from the bot", sent)
			}
			notice := sent[0].body
			t.Log(notice)
			for _, goText := range []string{"json:", "Go struct", "Go value", "unmarshal", "proto:", "wire-format"} {
				if strings.Contains(notice, goText) {
					t.Errorf("notice speaks Go (%q): %s", goText, notice)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(notice, w) {
					t.Errorf("notice lacks %q: %s", w, notice)
				}
			}
		})
	}
}
