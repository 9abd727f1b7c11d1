package wasim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

func TestMedia(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, bob, "bob-bridge")

	image := make([]byte, 150_000)
	if _, err := rand.Read(image); err != nil {
		t.Fatal(err)
	}
	sent, err := alice.SendImage(ctx, bob.Account.JID, image, "image/jpeg", "the minutes")
	if err != nil {
		t.Fatal(err)
	}
	msg := waitMessage(t, ctx, bridge.events, "image message", func(m *events.Message) bool { return m.Info.ID == sent.ID })
	img := msg.Message.GetImageMessage()
	if img == nil || img.GetCaption() != "the minutes" || msg.Info.MediaType != "image" {
		t.Fatalf("bridge got %v (media type %q)", msg.Message, msg.Info.MediaType)
	}
	got, err := bridge.cli.Download(ctx, img)
	if err != nil {
		t.Fatalf("download via url: %v", err)
	}
	if !bytes.Equal(got, image) {
		t.Fatal("downloaded image differs from the upload")
	}
	// Without a URL the client builds one from direct_path on the media_conn host.
	img.URL = nil
	if got, err = bridge.cli.Download(ctx, img); err != nil || !bytes.Equal(got, image) {
		t.Fatalf("download via direct path: %v", err)
	}

	doc := []byte("%PDF-1.4 minutes of the meeting")
	if _, err = bob.SendDocument(ctx, alice.Account.JID, doc, "application/pdf", "minutes.pdf"); err != nil {
		t.Fatal(err)
	}
	docMsg := waitMessage(t, ctx, alice.Events, "document", func(m *events.Message) bool { return m.Message.GetDocumentMessage() != nil })
	if got, err = alice.Client.Download(ctx, docMsg.Message.GetDocumentMessage()); err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("document download: %v", err)
	}

	// Expired media is gone for good: 410, which whatsmeow reports as a final error.
	if err = sim.ExpireMedia(img.GetDirectPath()); err != nil {
		t.Fatal(err)
	}
	if _, err = bridge.cli.Download(ctx, img); err == nil {
		t.Fatal("downloading expired media succeeded")
	}
	// A media retry request gets "not on the phone" rather than silence.
	if err = bridge.cli.SendMediaRetryReceipt(ctx, &msg.Info, img.GetMediaKey()); err != nil {
		t.Fatal(err)
	}
	retry, err := waitForMediaRetry(ctx, bridge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = whatsmeow.DecryptMediaRetryNotification(retry, img.GetMediaKey()); err == nil {
		t.Fatal("media retry unexpectedly succeeded")
	}

	// Profile pictures: set on the phone, seen by contacts, fetched through w:profile:picture.
	pictureID, err := alice.SetProfilePicture([]byte("\xff\xd8\xff fake jpeg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = waitPicture(ctx, bridge, alice.Account.JID.User); err != nil {
		t.Fatal(err)
	}
	info, err := bridge.cli.GetProfilePictureInfo(ctx, alice.Account.JID, nil)
	if err != nil || info == nil || info.ID != pictureID || info.URL == "" {
		t.Fatalf("profile picture info %+v, %v", info, err)
	}
	if _, err = bridge.cli.GetProfilePictureInfo(ctx, bob.Account.JID, nil); err == nil {
		t.Fatal("bob has no picture but one was returned")
	}
}

func waitForMediaRetry(ctx context.Context, c *companion) (*events.MediaRetry, error) {
	return wasim.WaitFor[*events.MediaRetry](ctx, c.events, nil)
}

func waitPicture(ctx context.Context, c *companion, user string) (*events.Picture, error) {
	return wasim.WaitFor(ctx, c.events, func(e *events.Picture) bool { return e.JID.User == user && !e.Remove })
}
