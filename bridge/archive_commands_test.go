package bridge_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
)

// TestArchiveBotCommands is the records officer's path through the management room: status and
// verify answer, a hold placed while the bridge runs is listed, an export arrives as a file that
// verifies offline, and a user below the records level is refused.
func TestArchiveBotCommands(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "records", "archofficer")
	permit(cfg, "user", "archplain")
	bot := cfg.BotUserID()
	startBridge(t, cfg)

	officer := registerUser(t, "archofficer")
	start := time.Now()
	room := openDM(t, officer, bot)
	waitForReply(t, officer, room, bot, start, "management room")

	status := waitForReply(t, officer, room, bot, send(t, officer, room, "archive status"), "Records archive")
	for _, want := range []string{"Archive:      " + cfg.Archive.Origin, "Size:         ", "Legal holds:  0 active"} {
		if !strings.Contains(status, want) {
			t.Errorf("archive status lacks %q:\n%s", want, status)
		}
	}
	verified := waitForReply(t, officer, room, bot, send(t, officer, room, "archive verify"), "The archive verified")
	if !strings.Contains(verified, "OK") || strings.Contains(verified, "FAILED") {
		t.Errorf("archive verify:\n%s", verified)
	}

	// The bridge holds the archive's writer lease, so writing actions run here.
	placed := waitForReply(t, officer, room, bot,
		send(t, officer, room, "archive hold add chat 120363000000000001@g.us case 2026/17 pending"), "Placed hold")
	// Replies within a second of each other all count as new: wait for what only the list says.
	holds := waitForReply(t, officer, room, bot, send(t, officer, room, "archive hold list"), "chat 120363000000000001@g.us  placed")
	if !strings.Contains(holds, "by @archofficer:localhost: case 2026/17 pending") {
		t.Errorf("hold list after %q:\n%s", placed, holds)
	}

	sent := send(t, officer, room, "archive export")
	waitForReply(t, officer, room, bot, sent, "is attached above")
	bundle := downloadLatestFile(t, officer, room, bot)
	rep, err := archive.VerifyBundle(bytes.NewReader(bundle), int64(len(bundle)), archive.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Origin != cfg.Archive.Origin || rep.Entries < 3 {
		t.Errorf("exported bundle: ok=%v origin %q, %d entries, problems %v", rep.OK(), rep.Origin, rep.Entries, rep.Problems)
	}

	t.Run("user level is refused", func(t *testing.T) {
		plain := registerUser(t, "archplain")
		start := time.Now()
		room := openDM(t, plain, bot)
		waitForReply(t, plain, room, bot, start, "management room")
		waitForReply(t, plain, room, bot, send(t, plain, room, "archive export"), "`archive` needs the records permission level")
		help := waitForReply(t, plain, room, bot, send(t, plain, room, "help"), "Commands")
		if strings.Contains(help, "`archive") {
			t.Errorf("help offers archive to a user-level user:\n%s", help)
		}
	})
}

// downloadLatestFile fetches the newest m.file the bot sent to the room.
func downloadLatestFile(t *testing.T, cli *mautrix.Client, roomID id.RoomID, bot id.UserID) []byte {
	t.Helper()
	resp, err := cli.Messages(context.Background(), roomID, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, evt := range resp.Chunk {
		if evt.Sender != bot || evt.Type != event.EventMessage {
			continue
		}
		_ = evt.Content.ParseRaw(evt.Type)
		msg := evt.Content.AsMessage()
		if msg.MsgType != event.MsgFile {
			continue
		}
		if msg.Info == nil || msg.Info.MimeType != "application/zip" || msg.Info.Size == 0 {
			t.Errorf("bundle file info: %+v", msg.Info)
		}
		uri, err := msg.URL.Parse()
		if err != nil {
			t.Fatal(err)
		}
		data, err := cli.DownloadBytes(context.Background(), uri)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	t.Fatal("the bot sent no file")
	return nil
}
