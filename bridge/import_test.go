package bridge_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/wasim"
)

// importFixture is one bridge with one logged-in user and a DM room per contact: imports
// into different rooms do not disturb each other, so every import test shares it.
type importFixture struct {
	cfg      *config.Config
	cfgPath  string // the config on disk, for the CLI
	alice    *waUser
	ownName  string
	ownGhost id.UserID              // says the user's own messages: the chats are direct, so the bot
	chats    map[string]*importChat // by contact number
}

type importChat struct {
	phone *wasim.Phone
	ghost id.UserID
	room  id.RoomID
}

func newImportFixture(t *testing.T, contacts []string) *importFixture {
	return newImportFixtureFor(t, "import_alice", "4915551400", contacts)
}

// newImportFixtureFor is newImportFixture with the importing user's localpart and number.
func newImportFixtureFor(t *testing.T, localpart, number string, contacts []string) *importFixture {
	t.Helper()
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", localpart, "import_bob")
	startRelayBridge(t, cfg)
	f := &importFixture{cfg: cfg, ownName: "Alice Import", ownGhost: cfg.BotUserID(), chats: map[string]*importChat{}}
	f.alice = loginWithQR(t, cfg, localpart, number, f.ownName)
	inviters := map[id.UserID]string{}
	for _, number := range contacts {
		c := &importChat{phone: newPhone(t, number, "Contact "+number), ghost: cfg.PuppetUserID(number)}
		if _, err := c.phone.SendText(context.Background(), f.alice.phone.JID(), "hi"); err != nil {
			t.Fatal(err)
		}
		f.chats[number] = c
		inviters[c.ghost] = number
	}
	for ghost, room := range f.alice.waitInvites(t, slices.Collect(maps.Keys(inviters))) {
		f.chats[inviters[ghost]].room = room
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.cfgPath = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(f.cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// photoFor is a real JPEG, different for each case, so the archive's content-addressed
// media cannot pass one case's photo off as another's.
func photoFor(t *testing.T, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for x := range 24 {
		for y := range 16 {
			img.Set(x, y, color.RGBA{uint8(seed * 40), uint8(x * 10), uint8(y * 15), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// buildExport zips files in the given order, the way a phone does: chat text first.
func buildExport(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportChatExport is the whole import on real Dendrite and simulated phones: an export
// in every supported language and platform through the bot, the same through `causeway
// import`, and the provisioning endpoint's refusals.
func TestImportChatExport(t *testing.T) {
	contacts := []string{cliContact}
	for _, c := range exportCases {
		contacts = append(contacts, c.contact)
	}
	f := newImportFixture(t, contacts)
	for i, c := range exportCases {
		t.Run(c.name, func(t *testing.T) { testImportCase(t, f, c, photoFor(t, i)) })
	}
	t.Run("CLI", func(t *testing.T) { testImportCLI(t, f) })
	t.Run("provisioning refusals", func(t *testing.T) { testProvisionRefusals(t, f) })
	t.Run("CLI with several users logged in", func(t *testing.T) { testImportCLISeveralUsers(t, f) })
}

func testImportCase(t *testing.T, f *importFixture, c exportCase, photo []byte) {
	ctx := context.Background()
	chat := f.chats[c.contact]
	mx, room, bot := f.alice.mx, chat.room, f.cfg.BotUserID()
	data := buildExport(t, [2]string{c.textFile, strings.ReplaceAll(c.chat, "{me}", f.ownName)}, [2]string{c.photoName, string(photo)})
	up, err := mx.UploadBytesWithName(ctx, data, "application/zip", "WhatsApp Chat.zip")
	if err != nil {
		t.Fatal(err)
	}
	importCmd := func() time.Time {
		start := time.Now()
		// The command is the zip's caption, as a user sends it from a Matrix client.
		if _, err := mx.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "!wa import", FileName: "WhatsApp Chat.zip", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "application/zip", Size: len(data)},
		}); err != nil {
			t.Fatal(err)
		}
		return start
	}
	report := waitForReply(t, mx, room, bot, importCmd(), "Imported")
	if want := fmt.Sprintf("Imported %d messages from the export (0 were already here", len(c.want)); !strings.Contains(report, want) {
		t.Errorf("report %q, want %q", report, want)
	}
	for _, u := range c.unparsed {
		if !strings.Contains(report, u) {
			t.Errorf("report does not say %q:\n%s", u, report)
		}
	}
	if len(c.unparsed) == 0 && strings.Contains(report, "could not be read") {
		t.Errorf("report lists unreadable lines of a clean export:\n%s", report)
	}
	checkImported(t, f, chat, c.want, photo)
	checkArchived(t, chat, len(c.want), photo)

	// The same zip again adds nothing, and the zip never went to WhatsApp.
	again := waitForReply(t, mx, room, bot, importCmd(), "Imported 0 messages")
	if want := fmt.Sprintf("%d were already here", len(c.want)); !strings.Contains(again, want) {
		t.Errorf("second import: %q, want %q", again, want)
	}
	checkImported(t, f, chat, c.want, photo)
	checkArchived(t, chat, len(c.want), photo)
	for _, e := range chat.phone.Events.All() {
		if m, ok := e.(*events.Message); ok && m.Message.GetDocumentMessage() != nil {
			t.Errorf("the export zip was sent to the contact on WhatsApp")
		}
	}
}

// checkImported compares the room's messages from before the bridge with want: same order,
// senders, original times and bodies, and the photo's bytes as uploaded.
func checkImported(t *testing.T, f *importFixture, chat *importChat, want []wantImported, photo []byte) {
	t.Helper()
	ctx := context.Background()
	var got []*event.Event
	// The homeserver has accepted every event when the import reports, but its read side
	// (what /messages serves) catches up a moment later.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := f.alice.mx.Messages(ctx, chat.room, "", "", mautrix.DirectionBackward, nil, 200)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for i := len(resp.Chunk) - 1; i >= 0; i-- {
			evt := resp.Chunk[i]
			// Everything imported is years old; the live "hi" is not.
			if evt.Type == event.EventMessage && (evt.Sender == chat.ghost || evt.Sender == f.ownGhost) &&
				time.UnixMilli(evt.Timestamp).Before(time.Now().Add(-24*time.Hour)) {
				_ = evt.Content.ParseRaw(evt.Type)
				got = append(got, evt)
			}
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	if len(got) != len(want) {
		t.Errorf("room has %d imported messages, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		evt, w := got[i], want[i]
		msg := evt.Content.AsMessage()
		sender := chat.ghost
		if w.own {
			sender = f.ownGhost
		}
		if evt.Sender != sender || msg.Body != w.body || evt.Timestamp != w.at.UnixMilli() {
			t.Errorf("message %d: %s %q at %v, want %s %q at %v", i, evt.Sender, msg.Body, time.UnixMilli(evt.Timestamp), sender, w.body, w.at)
		}
		if (msg.MsgType == event.MsgImage) != w.photo {
			t.Errorf("message %d %q is %s", i, msg.Body, msg.MsgType)
		}
		if !w.photo {
			continue
		}
		if msg.Info == nil || msg.Info.MimeType != "image/jpeg" || msg.Info.Size != len(photo) {
			t.Errorf("photo info %+v, want image/jpeg of %d bytes", msg.Info, len(photo))
		}
		uri, err := msg.URL.Parse()
		if err != nil {
			t.Fatalf("photo URL %q: %v", msg.URL, err)
		}
		got, err := f.alice.mx.DownloadBytes(ctx, uri)
		if err != nil || !bytes.Equal(got, photo) {
			t.Errorf("downloaded photo: %d bytes (%v), want the %d bytes of the export", len(got), err, len(photo))
		}
	}
}

// checkArchived finds the chat's imported messages in the archive, marked as coming from an
// export, with the photo stored as it was.
func checkArchived(t *testing.T, chat *importChat, want int, photo []byte) {
	t.Helper()
	ctx := context.Background()
	a := lastBridge.br.Archive()
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(photo)
	photoSHA := hex.EncodeToString(sum[:])
	n, photos := 0, 0
	for idx := uint64(0); idx < st.Size; idx++ {
		e, err := a.Entry(ctx, idx)
		if err != nil || e.Source != "export" || e.Chat != chat.phone.JID().String() {
			continue
		}
		n++
		if e.Message != nil && len(e.Message.Media) == 1 && e.Message.Media[0].SHA256 == photoSHA {
			photos++
			mf, err := a.OpenMedia(photoSHA)
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := io.ReadAll(mf)
			mf.Close()
			if !bytes.Equal(stored, photo) {
				t.Errorf("archived photo differs from the export's")
			}
		}
	}
	if n != want || photos != 1 {
		t.Errorf("archive has %d entries from the export (%d with the photo), want %d (1)", n, photos, want)
	}
}
