package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"syscall"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/msgconv"
)

// The failures a send can end in, as mautrix reports them.
var (
	errStatus500 = mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusInternalServerError}, Message: "500"}
	errStatus403 = mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusForbidden}, Message: "403"}
	errCutOff    = mautrix.HTTPError{WrappedError: &url.Error{Op: "Put", URL: "http://hs", Err: io.ErrUnexpectedEOF}, Message: "cut off"}
	errRefused   = mautrix.HTTPError{WrappedError: &url.Error{Op: "Put", URL: "http://hs", Err: syscall.ECONNREFUSED}, Message: "refused"}
)

func TestUncertain(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{errStatus500, true},
		{errCutOff, true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("wrapped: %w", errStatus500), true},
		{errStatus403, false},
		{errRefused, false},
	} {
		if got := uncertain(tt.err); got != tt.want {
			t.Errorf("uncertain(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// visible lists the bodies of the room's timeline as clients see it, oldest first.
func (f *fakeMatrix) visible() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.sends {
		if !s.hidden {
			out = append(out, s.body)
		}
	}
	return out
}

// eventOf returns the event the mapping of WhatsApp message waID points at.
func (h *harness) eventOf(p *Portal, waID string) id.EventID {
	h.t.Helper()
	parts, err := h.db.Messages.GetParts(context.Background(), p.Key(), waID)
	if err != nil || len(parts) != 1 {
		h.t.Fatalf("mapping of %s: %d parts, %v", waID, len(parts), err)
	}
	return parts[0].MXID
}

func TestExactlyOnceIntoMatrix(t *testing.T) {
	failFirstWith := func(err error) func(n int, _ string) error {
		return func(n int, _ string) error {
			if n == 1 {
				return err
			}
			return nil
		}
	}
	tests := []struct {
		name string
		run  func(h *harness) *Portal
		// visible is the room's timeline afterwards; reads how many timeline reads it took.
		visible []string
		reads   int
		// mapped names, per message, the body its mapping must point at.
		mapped map[string]string
	}{
		{"answered 500 after the event was stored: found, not sent again", func(h *harness) *Portal {
			h.mx.cutOff = failFirstWith(errStatus500)
			p := h.portal()
			h.enqueue(p, waMessage(h.t, "m1", "one"))
			h.enqueue(p, waMessage(h.t, "m2", "two"))
			if h.processAll(p) {
				h.t.Fatal("the cut-off send counted as done")
			}
			h.processAll(p)
			return p
		}, []string{"one", "two"}, 1, map[string]string{"m1": "one"}},
		{"connection cut after the event was stored: found, not sent again", func(h *harness) *Portal {
			h.mx.cutOff = failFirstWith(errCutOff)
			p := h.portal()
			h.enqueue(p, waMessage(h.t, "m1", "one"))
			h.processAll(p)
			h.processAll(p)
			return p
		}, []string{"one"}, 1, map[string]string{"m1": "one"}},
		{"answered 500 before anything was stored: looked for, sent", func(h *harness) *Portal {
			h.mx.failSend = failFirstWith(errStatus500)
			p := h.portal()
			h.enqueue(p, waMessage(h.t, "m1", "one"))
			h.processAll(p)
			h.processAll(p)
			return p
		}, []string{"one"}, 1, map[string]string{"m1": "one"}},
		{"refused (403): sent again", func(h *harness) *Portal {
			h.mx.failSend = failFirstWith(errStatus403)
			p := h.portal()
			h.enqueue(p, waMessage(h.t, "m1", "one"))
			h.processAll(p)
			h.processAll(p)
			return p
		}, []string{"one"}, 1, map[string]string{"m1": "one"}},
		{"handed off in this process: sent without a read", func(h *harness) *Portal {
			p := h.portal()
			for i := range 3 {
				h.enqueue(p, waMessage(h.t, fmt.Sprintf("m%d", i), fmt.Sprint(i)))
			}
			h.processAll(p)
			return p
		}, []string{"0", "1", "2"}, 0, map[string]string{"m0": "0", "m2": "2"}},
		{"crash before the settle, homeserver forgot the transactions: one read for all", func(h *harness) *Portal {
			p := h.portal()
			for i := range 3 {
				h.enqueue(p, waMessage(h.t, fmt.Sprintf("m%d", i), fmt.Sprint(i)))
			}
			h.processAll(p) // sent, never settled
			h.restart()
			h.mx.restartHomeserver()
			p = h.portal()
			h.enqueue(p, waMessage(h.t, "m3", "3"))
			h.processAll(p)
			return p
		}, []string{"0", "1", "2", "3"}, 1, map[string]string{"m0": "0", "m1": "1", "m2": "2", "m3": "3"}},
		{"crash after the request, before its answer: found", func(h *harness) *Portal {
			h.mx.cutOff = failFirstWith(context.Canceled) // the process died waiting
			p := h.portal()
			h.enqueue(p, waMessage(h.t, "m1", "one"))
			h.processAll(p)
			h.restart()
			h.mx.restartHomeserver()
			p = h.portal()
			h.processAll(p)
			return p
		}, []string{"one"}, 1, map[string]string{"m1": "one"}},
		{"homeserver lost an accepted event, then went down: sent again before the next", func(h *harness) *Portal {
			h.mx.hide = func(n int, _ string) bool { return n == 2 } // accepted, never in the timeline
			down := true
			h.mx.failSend = func(n int, _ string) error {
				if n == 3 && down {
					return errRefused
				}
				return nil
			}
			p := h.portal()
			h.enqueue(p, waMessage(h.t, "m1", "one"))
			h.enqueue(p, waMessage(h.t, "m2", "two"))
			h.enqueue(p, waMessage(h.t, "m3", "three"))
			if h.processAll(p) {
				h.t.Fatal("a send to a homeserver that is down counted as done")
			}
			down = false
			h.mx.restartHomeserver()
			h.processAll(p)
			return p
		}, []string{"one", "two", "three"}, 1, map[string]string{"m1": "one", "m2": "two", "m3": "three"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := tt.run(h)
			h.settle(p)
			if n := len(h.pending(p)); n != 0 {
				t.Fatalf("%d items still queued", n)
			}
			if got := h.mx.visible(); !slices.Equal(got, tt.visible) {
				t.Errorf("the room shows %q, want %q", got, tt.visible)
			}
			if got := h.mx.readCount(); got != tt.reads {
				t.Errorf("%d timeline reads, want %d", got, tt.reads)
			}
			byID := map[id.EventID]sentEvent{}
			for _, s := range h.mx.sent() {
				byID[s.id] = s
			}
			for waID, body := range tt.mapped {
				s, ok := byID[h.eventOf(p, waID)]
				if !ok || s.body != body || s.hidden {
					t.Errorf("%s maps to %+v, want the visible event %q", waID, s, body)
				}
			}
		})
	}
}

// TestSourceInContent: every relayed event names its WhatsApp message, part and chat.
func TestSourceInContent(t *testing.T) {
	h := newHarness(t)
	p := h.portal()
	h.enqueue(p, waMessage(t, "m1", "one"))
	h.processAll(p)
	sent := h.mx.sent()
	if len(sent) != 1 {
		t.Fatalf("%d sends", len(sent))
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(sent[0].content, &c); err != nil {
		t.Fatal(err)
	}
	var src msgconv.Source
	if err := json.Unmarshal(c[msgconv.SourceKey], &src); err != nil {
		t.Fatalf("%s: %v in %s", msgconv.SourceKey, err, sent[0].content)
	}
	if want := (msgconv.Source{Chat: testKey.ChatJID, ID: "m1", Part: 0}); src != want {
		t.Errorf("source = %+v, want %+v", src, want)
	}
}

// TestReadFailureKeepsItem: a timeline read that fails fails the item, which stays queued.
func TestReadFailureKeepsItem(t *testing.T) {
	h := newHarness(t)
	h.mx.cutOff = func(n int, _ string) error {
		if n == 1 {
			return errStatus500
		}
		return nil
	}
	p := h.portal()
	h.enqueue(p, waMessage(t, "m1", "one"))
	h.processAll(p)
	h.mx.failRead = errors.New("homeserver unreachable")
	if h.processAll(p) {
		t.Fatal("the item passed although nobody could tell whether it was sent")
	}
	h.mx.failRead = nil
	if !h.processAll(p) {
		t.Fatal("the item did not pass once the timeline could be read")
	}
	if got := h.mx.visible(); !slices.Equal(got, []string{"one"}) {
		t.Errorf("the room shows %q", got)
	}
}
