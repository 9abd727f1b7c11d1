package mxcrypto

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
)

// Attachments need no Olm: AES-CTR with a SHA-256 of the ciphertext (mautrix's attachment
// package), so they work in every build.

// UploadEncrypted encrypts data with a new key, uploads the ciphertext and returns the `file`
// object of an event in an encrypted room: the homeserver only ever holds ciphertext.
func UploadEncrypted(ctx context.Context, cli *mautrix.Client, data []byte) (*event.EncryptedFileInfo, error) {
	file := attachment.NewEncryptedFile()
	ciphertext := file.Encrypt(data)
	up, err := cli.UploadBytes(ctx, ciphertext, "application/octet-stream")
	if err != nil {
		return nil, fmt.Errorf("failed to upload an encrypted attachment: %w", err)
	}
	return &event.EncryptedFileInfo{EncryptedFile: *file, URL: up.ContentURI.CUString()}, nil
}

// DownloadEncrypted downloads the ciphertext of a `file` object and decrypts it, checking its
// hash.
func DownloadEncrypted(ctx context.Context, cli *mautrix.Client, file *event.EncryptedFileInfo) ([]byte, error) {
	uri, err := file.URL.Parse()
	if err != nil {
		return nil, fmt.Errorf("the encrypted file has no mxc:// URL: %w", err)
	}
	ciphertext, err := cli.DownloadBytes(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("failed to download %s: %w", uri, err)
	}
	if err := file.DecryptInPlace(ciphertext); err != nil {
		return nil, fmt.Errorf("%s does not decrypt with the key in the event: %w", uri, err)
	}
	return ciphertext, nil
}
