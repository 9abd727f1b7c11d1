package portal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/crypto/attachment"

	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/msgconv"
)

// UnrelayedBadAttachment: an encrypted file (`file` with key, iv and hashes) whose bytes on
// the homeserver do not match its hash, or whose encryption the bridge cannot open. What the
// homeserver handed over is not what the sender's client encrypted, so nothing of it goes to
// WhatsApp.
const UnrelayedBadAttachment = "attachment_undecryptable"

// badAttachmentError is an encrypted file that failed its check.
type badAttachmentError struct {
	fileName string
	err      error
}

func (e *badAttachmentError) Error() string {
	return fmt.Sprintf("encrypted file %q failed its check: %v", e.fileName, e.err)
}

func (e *badAttachmentError) Unwrap() error { return e.err }

// words says what went wrong, for the sender.
func (e *badAttachmentError) words() string {
	if errors.Is(e.err, attachment.ErrHashMismatch) {
		return "the file the homeserver holds does not match the hash your client sent with it, so it was damaged or altered on the way"
	}
	return fmt.Sprintf("its encryption is not one the bridge can open (%v)", e.err)
}

// openAttachment checks the ciphertext of a Matrix user's encrypted file against its hash
// and decrypts it in place.
func openAttachment(up *msgconv.MediaUpload, data []byte) error {
	if err := up.File.Attachment().DecryptInPlace(data); err != nil {
		return &badAttachmentError{fileName: up.FileName, err: err}
	}
	return nil
}

// refuseAttachment records a message whose encrypted file failed its check as not relayed
// and tells its sender, naming the message and the file.
func (p *Portal) refuseAttachment(ctx context.Context, item *database.QueueItem, env *MatrixEnvelope, bad *badAttachmentError) error {
	zerolog.Ctx(ctx).Warn().Err(bad).Stringer("event_id", env.ID).Stringer("sender", env.Sender).
		Msg("An encrypted file from Matrix failed its check; not relaying it")
	when := time.UnixMilli(env.Timestamp).UTC().Format("15:04 UTC")
	detail := fmt.Sprintf("the file %q of your message of %s could not be opened: %s", bad.fileName, when, bad.words())
	return p.recordUnrelayed(ctx, item, &unrelayedItem{Reason: UnrelayedBadAttachment, Detail: detail, Event: item.Payload}, env)
}
