package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// The export `import` reads is a file the user sent to the portal: found among the room's
// recent events, decrypted first when the room is encrypted, and downloaded to a temporary
// file (decrypted on the way when it was sent encrypted), never held in memory whole.

// roomZip is a chat export a user sent to a room.
type roomZip struct {
	name string
	// size is what the sender's client declared, 0 when it did not: a zip declared larger
	// than an import takes is refused before anything is downloaded.
	size int64
	uri  id.ContentURI
	// file is the encryption of a zip sent into an encrypted room (nil for a plain one).
	file *event.EncryptedFileInfo
}

// zipIn returns the zip a message carries, if it carries one.
func zipIn(c *event.MessageEventContent) (*roomZip, error) {
	name := c.FileName
	if name == "" {
		name = c.Body
	}
	if c.MsgType != event.MsgFile || !strings.HasSuffix(strings.ToLower(name), ".zip") {
		return nil, nil
	}
	z := &roomZip{name: name, file: c.File}
	if c.Info != nil {
		z.size = int64(c.Info.Size)
	}
	url := c.URL
	if c.File != nil {
		url = c.File.URL
	}
	uri, err := url.Parse()
	if err != nil {
		return nil, fmt.Errorf("the URL of %s is not valid: %w", name, err)
	}
	z.uri = uri
	return z, nil
}

// latestZip finds the zip the command came with (as its caption), or else the newest zip
// file the user sent to the room.
func (b *Bridge) latestZip(ctx context.Context, room id.RoomID, sender id.UserID, commandEvent id.EventID) (*roomZip, error) {
	if evt, err := b.bot.GetEvent(ctx, room, commandEvent); err == nil {
		if c := b.readMessage(ctx, room, evt); c != nil {
			if z, err := zipIn(c); z != nil || err != nil {
				return z, err
			}
		}
	}
	resp, err := b.bot.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		return nil, fmt.Errorf("could not read the room: %w", err)
	}
	for _, evt := range resp.Chunk {
		if evt.Sender != sender {
			continue
		}
		c := b.readMessage(ctx, room, evt)
		if c == nil || strings.HasPrefix(c.Body, commandPrefix) {
			continue // an earlier import's zip, with the command as its caption
		}
		if z, err := zipIn(c); z != nil || err != nil {
			return z, err
		}
	}
	return nil, fmt.Errorf("no .zip file from you among the room's last 100 events; send the export first")
}

// readMessage is the message an event of the room's timeline carries, decrypted by the bot's
// device when it arrived encrypted; nil for anything else, or what the device cannot decrypt.
func (b *Bridge) readMessage(ctx context.Context, room id.RoomID, evt *event.Event) *event.MessageEventContent {
	evt.RoomID = room
	if evt.Type.Type == event.EventEncrypted.Type {
		mach := b.crypto.get()
		if mach == nil {
			return nil
		}
		raw, err := json.Marshal(evt)
		if err != nil {
			return nil
		}
		plain, err := mach.Decrypt(ctx, raw)
		if err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Stringer("event_id", evt.ID).Msg("Could not decrypt an event while looking for a chat export")
			return nil
		}
		evt = &event.Event{}
		if err := json.Unmarshal(plain, evt); err != nil {
			return nil
		}
	}
	if evt.Type.Type != event.EventMessage.Type {
		return nil
	}
	if err := evt.Content.ParseRaw(event.EventMessage); err != nil {
		return nil
	}
	return evt.Content.AsMessage()
}

// errZipDamaged is an encrypted zip whose ciphertext does not match its hash.
var errZipDamaged = errors.New("the zip the homeserver holds does not match the hash your client sent with it, so it was damaged or altered on the way; nothing was imported")

// fetchZip downloads the export to a temporary file, at most maxImportZip bytes of it, and
// decrypts it on the way when it was sent encrypted. A zip declared or served larger than
// that is refused before it is read. The caller drops the file (dropSpool).
func (b *Bridge) fetchZip(ctx context.Context, z *roomZip) (*os.File, int64, error) {
	if z.size > maxImportZip {
		return nil, 0, fmt.Errorf("%s is %d MiB: %w", z.name, z.size>>20, errZipTooLarge)
	}
	if z.file != nil {
		// Before anything is read: mautrix's decrypting stream needs the decoded keys.
		if err := z.file.PrepareForDecryption(); err != nil {
			return nil, 0, fmt.Errorf("the encryption of %s is not one the bridge can open: %w", z.name, err)
		}
	}
	resp, err := b.bot.Download(ctx, z.uri)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > maxImportZip {
		return nil, 0, fmt.Errorf("the homeserver serves %s as %d MiB: %w", z.name, resp.ContentLength>>20, errZipTooLarge)
	}
	if z.file == nil {
		return spoolZip(resp.Body)
	}
	// AES-CTR: the ciphertext is as long as the zip, so spoolZip's bound holds for both.
	dec := z.file.DecryptStream(resp.Body)
	f, n, err := spoolZip(dec)
	if err != nil {
		return nil, 0, err
	}
	// Close checks the hash of all that was read, which was the whole file.
	if err := dec.Close(); err != nil {
		dropSpool(f)
		if errors.Is(err, attachment.ErrHashMismatch) {
			return nil, 0, errZipDamaged
		}
		return nil, 0, fmt.Errorf("failed to finish decrypting %s: %w", z.name, err)
	}
	return f, n, nil
}
