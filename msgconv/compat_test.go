package msgconv_test

import (
	"testing"

	"go.mau.fi/whatsmeow"

	"codeberg.org/causeway/causeway/msgconv"
)

// TestWhatsmeowCompat pins the contracts the portal relies on: an UploadResponse converts to an
// UploadResult, media kinds name whatsmeow's media types, and media sources are downloadable.
func TestWhatsmeowCompat(t *testing.T) {
	resp := whatsmeow.UploadResponse{URL: "u", DirectPath: "/d", FileLength: 3}
	if got := msgconv.UploadResult(resp); got.URL != "u" || got.DirectPath != "/d" || got.FileLength != 3 {
		t.Errorf("converted %+v", got)
	}
	for kind, want := range map[msgconv.MediaKind]whatsmeow.MediaType{
		msgconv.MediaImage: whatsmeow.MediaImage, msgconv.MediaVideo: whatsmeow.MediaVideo,
		msgconv.MediaAudio: whatsmeow.MediaAudio, msgconv.MediaDocument: whatsmeow.MediaDocument,
		msgconv.MediaSticker: whatsmeow.MediaImage,
	} {
		if whatsmeow.MediaType(kind.AppInfo()) != want {
			t.Errorf("kind %d is %q, want %q", kind, kind.AppInfo(), want)
		}
	}
	var src msgconv.Downloadable
	var _ whatsmeow.DownloadableMessage = src
}
