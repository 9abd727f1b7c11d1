package msgconv

import (
	"bytes"
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
)

// TestEncryptedFileConversion: our file object is, in JSON, the one mautrix (and so the
// clients) read, and converting it back opens the ciphertext it describes.
func TestEncryptedFileConversion(t *testing.T) {
	plain := []byte("a file for an encrypted room")
	ef := attachment.NewEncryptedFile()
	ciphertext := bytes.Clone(plain)
	ef.EncryptInPlace(ciphertext)
	ours := NewEncryptedFileFrom(ef, "mxc://example.org/cipher")

	got, err := json.Marshal(ours)
	if err != nil {
		t.Fatal(err)
	}
	var theirs event.EncryptedFileInfo
	if err := json.Unmarshal(got, &theirs); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(&event.EncryptedFileInfo{EncryptedFile: *ef, URL: "mxc://example.org/cipher"})
	var a, b map[string]any
	_ = json.Unmarshal(got, &a)
	_ = json.Unmarshal(want, &b)
	if ga, gb := mustJSON(t, a), mustJSON(t, b); ga != gb {
		t.Errorf("our file object\n%s\nis not mautrix's\n%s", ga, gb)
	}

	opened := bytes.Clone(ciphertext)
	if err := ours.Attachment().DecryptInPlace(opened); err != nil || !bytes.Equal(opened, plain) {
		t.Errorf("converted back, the file opens to %q (%v)", opened, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	out, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
