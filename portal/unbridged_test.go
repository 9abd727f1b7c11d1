package portal

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"codeberg.org/causeway/causeway/archive"
)

// fakeArchive keeps what portals archive.
type fakeArchive struct {
	mu      sync.Mutex
	entries []*archive.Entry
}

func (a *fakeArchive) Append(_ context.Context, e *archive.Entry) (archive.Appended, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return archive.Appended{}, nil
}

func (a *fakeArchive) PutMedia(_ context.Context, r io.Reader) (string, int64, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, r)
	return "sha", n, err
}

// TestUnbridgedTargetsRecorded: a revoke, edit or reaction of a message the bridge never saw
// shows nothing on Matrix, but is archived with why it was not relayed.
func TestUnbridgedTargetsRecorded(t *testing.T) {
	key := &waCommon.MessageKey{RemoteJID: proto.String(testContact.String()), FromMe: proto.Bool(false), ID: proto.String("NEVERSEEN")}
	tests := []struct {
		name string
		msg  *waE2E.Message
		kind archive.Kind
	}{
		{"revoke", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key}}, archive.KindRevoke},
		{"reaction", &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String("👍")}}, archive.KindReaction},
		{"edit whose new version is a revoke", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: key,
			EditedMessage: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key}},
		}}, archive.KindEdit},
		{"housekeeping is not recorded", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_REQUEST.Enum()}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			arch := &fakeArchive{}
			h.mgr.SetArchive(arch)
			p := h.portal()
			info := &types.MessageInfo{
				MessageSource: types.MessageSource{Chat: testContact, Sender: testContact},
				ID:            "ACT1", Timestamp: time.Unix(1_700_000_100, 0),
			}
			m, err := NewWAMessageItem(info, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			h.enqueue(p, m)
			if !h.processAll(p) {
				t.Fatal("the item failed")
			}
			h.settle(p)
			if n := len(h.mx.sent()); n != 0 {
				t.Fatalf("%d events sent to Matrix for a message acting on nothing bridged", n)
			}
			if tt.kind == "" {
				if len(arch.entries) != 0 {
					t.Fatalf("housekeeping archived: %+v", arch.entries[0])
				}
				return
			}
			if len(arch.entries) != 1 {
				t.Fatalf("%d entries archived, want 1", len(arch.entries))
			}
			e := arch.entries[0]
			if e.Kind != tt.kind || e.MessageID != "ACT1" || e.Target == nil || e.Target.MessageID != "NEVERSEEN" || e.Target.NotRelayed == "" {
				t.Fatalf("archived %+v (target %+v), want a %s of NEVERSEEN saying why it was not relayed", e, e.Target, tt.kind)
			}
		})
	}
}
