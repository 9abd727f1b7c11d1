package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/archivecmd"
)

// deleteForMe is the app-state patch a phone sends when its user deletes a message for
// themself only.
func deleteForMe(chat, sender types.JID, msgID types.MessageID, fromMe bool) appstate.PatchInfo {
	from := "0"
	if fromMe {
		from = "1"
	}
	return appstate.PatchInfo{
		Type: appstate.WAPatchRegularHigh,
		Mutations: []appstate.MutationInfo{{
			Index:   []string{appstate.IndexDeleteMessageForMe, chat.String(), msgID, from, sender.String()},
			Version: 3,
			Value: &waSyncAction.SyncActionValue{DeleteMessageForMeAction: &waSyncAction.DeleteMessageForMeAction{
				DeleteMedia: proto.Bool(true), MessageTimestamp: proto.Int64(time.Now().UnixMilli()),
			}},
		}},
	}
}

// TestArchiveKeepsWhatUsersDelete: edits, delete-for-everyone, delete-for-me and a deleted
// chat change the Matrix room as configured (annotate), never the record.
func TestArchiveKeepsWhatUsersDelete(t *testing.T) {
	cfg := configFor(t, "sqlite")
	cfg.Bridge.Deletes = "annotate"
	permit(cfg, "user", "records_alice")
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "records_alice", "4915550901", "Alice R")
	bob := newPhone(t, "4915550902", "Bob R")
	ghost := cfg.PuppetUserID("4915550902")
	ctx := context.Background()
	chat := alice.phone.JID()

	edited, err := bob.SendText(ctx, chat, "the meeting is at 10")
	if err != nil {
		t.Fatal(err)
	}
	room := alice.waitInvite(t, ghost)
	if _, err := bob.SendEdit(ctx, chat, edited.ID, "the meeting is at 11"); err != nil {
		t.Fatal(err)
	}
	revoked, err := bob.SendText(ctx, chat, "forget I said this")
	if err != nil {
		t.Fatal(err)
	}
	revokedEvt := waitEvent(t, alice.mx, room, ghost, "to revoke", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == "forget I said this"
	})
	if _, err := bob.SendRevoke(ctx, chat, bob.JID(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	mine, err := bob.SendText(ctx, chat, "only alice deletes this")
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice.mx, room, ghost, "delete-for-me target", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().Body == "only alice deletes this"
	})

	// annotate: the deleted message is replaced by a notice, not redacted.
	annotation := waitEvent(t, alice.mx, room, ghost, "annotation", func(e *event.Event) bool {
		return relatesTo(e)["rel_type"] == "m.replace" && relatesTo(e)["event_id"] == string(revokedEvt.ID)
	})
	if nc, _ := raw(annotation)["m.new_content"].(map[string]any); !strings.Contains(nc["body"].(string), "deleted") {
		t.Errorf("annotation = %v", raw(annotation))
	}

	// Alice deletes a message for herself, then the whole chat, on her phone.
	if err := alice.phone.Client.SendAppState(ctx, deleteForMe(bob.JID(), bob.JID(), mine.ID, false)); err != nil {
		t.Fatal(err)
	}
	lastKey := &waCommon.MessageKey{RemoteJID: proto.String(bob.JID().String()), FromMe: proto.Bool(false), ID: proto.String(mine.ID)}
	if err := alice.phone.Client.SendAppState(ctx, appstate.BuildDeleteChat(bob.JID(), time.Now(), lastKey)); err != nil {
		t.Fatal(err)
	}
	if err := sim.WaitIdle(ctx, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	br := lastBridge.br
	a := br.Archive()
	deadline := time.Now().Add(60 * time.Second)
	kinds := map[archive.Kind]bool{}
	for time.Now().Before(deadline) && !(kinds[archive.KindDeleteForMe] && kinds[archive.KindChatDelete]) {
		kinds = map[archive.Kind]bool{}
		st, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for idx := uint64(0); idx < st.Size; idx++ {
			if e, err := a.Entry(ctx, idx); err == nil {
				kinds[e.Kind] = true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The room survives the chat deletion and keeps the message deleted for Alice only.
	if m := roomState(t, alice.mx, room, event.StateMember, string(alice.mx.UserID)); m["membership"] != "join" {
		t.Errorf("alice's membership after the chat was deleted on the phone: %v", m)
	}
	if bodies := roomBodies(t, alice.mx, room, ghost); !contains(bodies, "only alice deletes this") {
		t.Errorf("delete-for-me changed the room: %q", bodies)
	}

	// Stop the bridge (closing the archive issues a checkpoint), then verify what is kept.
	if err := br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(ctx, cfg.Database, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ro, err := archivecmd.OpenReadOnly(ctx, cfg, db, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	report, err := ro.Verify(ctx, archive.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK() {
		t.Fatalf("archive verify failed: %+v", report.Problems)
	}
	st, _ := ro.Status(ctx)
	texts := map[string]archive.Kind{}
	kinds = map[archive.Kind]bool{}
	for idx := uint64(0); idx < st.Size; idx++ {
		e, err := ro.Entry(ctx, idx)
		if err != nil {
			t.Fatalf("entry %d: %v", idx, err)
		}
		kinds[e.Kind] = true
		if e.Message != nil && e.Message.Text != "" {
			texts[e.Message.Text] = e.Kind
		}
	}
	for text, kind := range map[string]archive.Kind{
		"the meeting is at 10":    archive.KindMessage,
		"the meeting is at 11":    archive.KindEdit,
		"forget I said this":      archive.KindMessage,
		"only alice deletes this": archive.KindMessage,
	} {
		if texts[text] != kind {
			t.Errorf("archive: %q recorded as %q, want %q", text, texts[text], kind)
		}
	}
	for _, kind := range []archive.Kind{archive.KindRevoke, archive.KindDeleteForMe, archive.KindChatDelete, archive.KindConnected} {
		if !kinds[kind] {
			t.Errorf("archive has no %s entry (kinds: %v)", kind, kinds)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
