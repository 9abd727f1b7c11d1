package bridge_test

import (
	"archive/zip"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
)

func exportZip(t *testing.T, chat string, photo []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("_chat.txt")
	_, _ = w.Write([]byte(chat))
	w, _ = zw.Create("00000003-PHOTO-2020-01-02-10-13-00.jpg")
	_, _ = w.Write(photo)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportChatExport(t *testing.T) {
	f := newDM(t, "import_alice", "4915551301", "4915551302")
	ctx := context.Background()
	mx, room := f.alice.mx, f.room
	photo := append([]byte("\xff\xd8\xff\xe0 jpeg "), bytes.Repeat([]byte("x"), 200)...)
	// An iOS export in German, with the user's own messages under her push name.
	chat := "[02.01.20, 10:11:00] Contact 4915551302: Hallo aus 2020\n" +
		"[02.01.20, 10:12:00] Alice import_alice: Antwort von mir\nzweite Zeile\n" +
		"[02.01.20, 10:13:00] Contact 4915551302: \u200e<Anhang: 00000003-PHOTO-2020-01-02-10-13-00.jpg>\n" +
		"[31.31.20, 10:14:00] Contact 4915551302: kaputt\n"
	data := exportZip(t, chat, photo)
	up, err := mx.UploadBytesWithName(ctx, data, "application/zip", "WhatsApp Chat - Contact.zip")
	if err != nil {
		t.Fatal(err)
	}
	importCmd := func() time.Time {
		start := time.Now()
		_, err := mx.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "!wa import", FileName: "WhatsApp Chat - Contact.zip", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "application/zip", Size: len(data)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return start
	}
	bot := lastBridge.cfg.BotUserID()
	report := waitForReply(t, mx, room, bot, importCmd(), "Imported")
	if !strings.Contains(report, "Imported 3 messages") || !strings.Contains(report, "31.31.20 is not a valid date") {
		t.Errorf("import report: %q", report)
	}
	ownGhost := lastBridge.cfg.PuppetUserID("4915551301")
	mine := waitMessage(t, mx, room, ownGhost, bodyIs("Antwort von mir\nzweite Zeile"))
	want := time.Date(2020, 1, 2, 10, 12, 0, 0, time.Local).UnixMilli()
	if mine.Timestamp != want {
		t.Errorf("imported message time %d, want %d", mine.Timestamp, want)
	}
	waitMessage(t, mx, room, f.ghost, func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgImage
	})

	// Importing again adds nothing; the zip never went to WhatsApp.
	again := waitForReply(t, mx, room, bot, importCmd(), "3 were already here")
	if !strings.Contains(again, "Imported 0 messages") {
		t.Errorf("second import: %q", again)
	}
	for _, e := range f.contact.Events.All() {
		if m, ok := e.(*events.Message); ok && m.Message.GetDocumentMessage() != nil {
			t.Errorf("the export zip was sent to the contact on WhatsApp")
		}
	}

	a := lastBridge.br.Archive()
	st, _ := a.Status(ctx)
	exported := 0
	for idx := uint64(0); idx < st.Size; idx++ {
		if e, err := a.Entry(ctx, idx); err == nil && e.Source == "export" {
			exported++
		}
	}
	if exported != 3 {
		t.Errorf("archive has %d entries marked source export, want 3", exported)
	}
}
