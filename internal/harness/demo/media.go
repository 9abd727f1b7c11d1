package demo

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/internal/harness/mxcrypto"
)

// attach uploads a file for content the way a client does: into an encrypted room as
// ciphertext with its key in the event (`file`), elsewhere as it is (`url`).
func (u *mxUser) attach(ctx context.Context, room id.RoomID, data []byte, mimeType string, content *event.MessageEventContent) error {
	if u.encrypted(ctx, room) {
		file, err := mxcrypto.UploadEncrypted(ctx, u.cli, data)
		if err != nil {
			return err
		}
		content.File = file
		return nil
	}
	up, err := u.cli.UploadBytesWithName(ctx, data, mimeType, content.Body)
	if err != nil {
		return err
	}
	content.URL = up.ContentURI.CUString()
	return nil
}

// download fetches the file of a media message and says where from. In an encrypted room the
// file must be encrypted (`file`): a plain `url` there would put the bytes on the homeserver
// in the clear.
func (u *mxUser) download(ctx context.Context, room id.RoomID, content *event.MessageEventContent) ([]byte, string, error) {
	if content.File != nil {
		data, err := mxcrypto.DownloadEncrypted(ctx, u.cli, content.File)
		return data, "decrypted from the encrypted file " + string(content.File.URL), err
	}
	if u.encrypted(ctx, room) {
		return nil, "", fmt.Errorf("the %s in the encrypted room has a plain url %q, not an encrypted file", content.MsgType, content.URL)
	}
	uri, err := content.URL.Parse()
	if err != nil {
		return nil, "", fmt.Errorf("the %s has no mxc:// URL: %w", content.MsgType, err)
	}
	data, err := u.cli.DownloadBytes(ctx, uri)
	if err != nil {
		return nil, "", fmt.Errorf("failed to download %s: %w", uri, err)
	}
	return data, "from " + uri.String(), nil
}
