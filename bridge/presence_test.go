package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/wasim"
)

// waitEphemeral syncs as the user until an ephemeral event in room matches.
func (u *waUser) waitEphemeral(t *testing.T, room id.RoomID, what string, match func(*event.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := u.mx.SyncRequest(context.Background(), 2000, u.since, "", false, event.PresenceOnline)
		if err != nil {
			t.Fatal(err)
		}
		u.since = resp.NextBatch
		if joined, ok := resp.Rooms.Join[room]; ok {
			for _, evt := range joined.Ephemeral.Events {
				_ = evt.Content.ParseRaw(evt.Type)
				if match(evt) {
					return
				}
			}
		}
	}
	t.Fatalf("no %s in %s", what, room)
}

func TestReceiptsAndTyping(t *testing.T) {
	f := newDM(t, "receipts", "4915550501", "4915550502")
	ctx := context.Background()
	mx, room, c, alice := f.alice.mx, f.room, f.contact, f.alice

	t.Run("read on WhatsApp shows on Matrix", func(t *testing.T) {
		resp, err := mx.SendText(ctx, room, "did you read this?")
		if err != nil {
			t.Fatal(err)
		}
		msg := waitWAText(t, c, "did you read this?")
		if err := c.MarkRead(ctx, msg); err != nil {
			t.Fatal(err)
		}
		alice.waitEphemeral(t, room, "read receipt from the contact", func(e *event.Event) bool {
			if e.Type.Type != event.EphemeralEventReceipt.Type {
				return false
			}
			receipts := *e.Content.AsReceipt()
			_, ok := receipts[resp.EventID][event.ReceiptTypeRead][f.ghost]
			return ok
		})
	})

	t.Run("read on Matrix shows on WhatsApp", func(t *testing.T) {
		sent, err := c.SendText(ctx, alice.phone.JID(), "and this one?")
		if err != nil {
			t.Fatal(err)
		}
		evt := waitEvent(t, mx, room, f.ghost, "message", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().Body == "and this one?"
		})
		if err := mx.MarkRead(ctx, room, evt.ID); err != nil {
			t.Fatal(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err = wasim.WaitFor(waitCtx, c.Events, func(r *events.Receipt) bool {
			return r.Type == types.ReceiptTypeRead && len(r.MessageIDs) > 0 && r.MessageIDs[0] == sent.ID
		})
		if err != nil {
			t.Fatalf("the phone never saw the read receipt: %v", err)
		}
	})

	t.Run("typing on WhatsApp shows on Matrix", func(t *testing.T) {
		if err := c.SetTyping(ctx, alice.phone.JID(), true); err != nil {
			t.Fatal(err)
		}
		alice.waitEphemeral(t, room, "typing", func(e *event.Event) bool {
			return e.Type.Type == event.EphemeralEventTyping.Type && strings.Contains(strings.Join(idsOf(e.Content.AsTyping().UserIDs), ","), string(f.ghost))
		})
	})

	t.Run("typing on Matrix shows on WhatsApp", func(t *testing.T) {
		if _, err := mx.UserTyping(ctx, room, true, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := wasim.WaitFor(waitCtx, c.Events, func(p *events.ChatPresence) bool {
			return p.State == types.ChatPresenceComposing && p.Sender.User == alice.phone.JID().User
		})
		if err != nil {
			t.Fatalf("the phone never saw Alice typing: %v", err)
		}
	})
}

func idsOf(users []id.UserID) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = string(u)
	}
	return out
}
