package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/msgconv"
)

// TestOpenAttachment: an encrypted file from Matrix is decrypted only when its ciphertext
// matches its hash and its encryption is one the bridge knows; each refusal says why.
func TestOpenAttachment(t *testing.T) {
	plain := []byte("minutes of the encrypted meeting")
	seal := func(edit func(ef *attachment.EncryptedFile, ciphertext []byte)) (*msgconv.MediaUpload, []byte) {
		ef := attachment.NewEncryptedFile()
		ciphertext := bytes.Clone(plain)
		ef.EncryptInPlace(ciphertext)
		if edit != nil {
			edit(ef, ciphertext)
		}
		return &msgconv.MediaUpload{FileName: "minutes.txt", File: msgconv.NewEncryptedFileFrom(ef, "mxc://test/cipher")}, ciphertext
	}
	tests := []struct {
		name  string
		edit  func(*attachment.EncryptedFile, []byte)
		words string // empty: opens
	}{
		{"intact", nil, ""},
		{"altered byte", func(_ *attachment.EncryptedFile, c []byte) { c[3] ^= 1 }, "does not match the hash"},
		{"no hash", func(ef *attachment.EncryptedFile, _ []byte) { ef.Hashes.SHA256 = "" }, "not one the bridge can open"},
		{"version 1", func(ef *attachment.EncryptedFile, _ []byte) { ef.Version = "v1" }, "not one the bridge can open"},
		{"other algorithm", func(ef *attachment.EncryptedFile, _ []byte) { ef.Key.Algorithm = "A128CBC" }, "not one the bridge can open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, data := seal(tt.edit)
			err := openAttachment(up, data)
			if tt.words == "" {
				if err != nil || !bytes.Equal(data, plain) {
					t.Fatalf("got %q, %v; want the plaintext", data, err)
				}
				return
			}
			var bad *badAttachmentError
			if !errors.As(err, &bad) || !strings.Contains(bad.words(), tt.words) || !strings.Contains(err.Error(), "minutes.txt") {
				t.Fatalf("got %v, want a refusal of minutes.txt saying %q", err, tt.words)
			}
		})
	}
}

// sealingMatrix uploads everything as an encryption wrapper does into an encrypted room.
type sealingMatrix struct {
	fakeMatrix
	rooms []id.RoomID
}

func (m *sealingMatrix) Upload(_ context.Context, _ id.UserID, room id.RoomID, data []byte, _, _ string) (Uploaded, error) {
	m.rooms = append(m.rooms, room)
	ef := attachment.NewEncryptedFile()
	ef.EncryptInPlace(bytes.Clone(data))
	return Uploaded{File: msgconv.NewEncryptedFileFrom(ef, "mxc://test/cipher")}, nil
}

// TestUploadMediaEncrypted: media and its thumbnail uploaded into an encrypted room end up
// as file and thumbnail_file, with no plain url left in the event.
func TestUploadMediaEncrypted(t *testing.T) {
	img := &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		Mimetype: proto.String("image/jpeg"), DirectPath: proto.String("/v/t62/x"), MediaKey: []byte("k"),
		FileSHA256: []byte("s"), FileEncSHA256: []byte("e"), FileLength: proto.Uint64(10),
		JPEGThumbnail: []byte{0xff, 0xd8, 0xff, 0xd9},
	}}
	info := &types.MessageInfo{ID: "3EB0IMG", MessageSource: types.MessageSource{
		Chat: types.NewJID("4915550000", types.DefaultUserServer), Sender: types.NewJID("4915550000", types.DefaultUserServer)}}
	res, err := msgconv.ToMatrix(context.Background(), info, img, noResolver{}, &msgconv.Options{InlineThumbnails: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Media) != 2 {
		t.Fatalf("%d transfers, want the image and its thumbnail", len(res.Media))
	}
	mx := &sealingMatrix{}
	p := &Portal{m: &Manager{matrix: mx}, row: &database.Portal{MXID: "!encrypted:test"}}
	if err := p.uploadMedia(context.Background(), testBot, res, [][]byte{[]byte("the image"), img.ImageMessage.JPEGThumbnail}); err != nil {
		t.Fatal(err)
	}
	for _, room := range mx.rooms {
		if room != "!encrypted:test" {
			t.Errorf("uploaded for room %q, want the portal's", room)
		}
	}
	raw, err := json.Marshal(res.Events[0].Content)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"file":{"url":"mxc://test/cipher"`, `"thumbnail_file":{"url":"mxc://test/cipher"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("content lacks %s: %s", want, raw)
		}
	}
	for _, plain := range []string{`"url":"mxc://test/media"`, `"thumbnail_url"`} {
		if strings.Contains(string(raw), plain) {
			t.Errorf("content has a plain %s: %s", plain, raw)
		}
	}
}

// noResolver answers nothing: a plain image needs no lookups.
type noResolver struct{ msgconv.Resolver }
