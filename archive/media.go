package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Media blobs are files in MediaDir named by the hex SHA-256 of their content (ab/abcdef...), not database
// rows: WhatsApp media reach 2 GiB, and in the database they would bloat every backup, the SQLite WAL and
// PostgreSQL's TOAST for data that never changes. Content addressing stores each blob once however many
// chats forward it, and makes any change to a file detectable by name alone. archive_media is the
// inventory verify checks the directory against.

func (a *Archive) mediaPath(sha string) string {
	return filepath.Join(a.mediaDir, sha[:2], sha)
}

func validSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// PutMedia stores a media blob and returns its hex SHA-256, to be put in the MediaRef of the entry that
// references it. It returns once the blob is durable, so an entry appended after it never points at
// media a crash could lose. Storing the same content twice keeps one copy.
func (a *Archive) PutMedia(ctx context.Context, r io.Reader) (sha string, size int64, err error) {
	if a.opts.ReadOnly {
		return "", 0, ErrReadOnly
	}
	if err = os.MkdirAll(a.mediaDir, 0o700); err != nil {
		return "", 0, fmt.Errorf("archive: media directory: %w", err)
	}
	tmp, err := os.CreateTemp(a.mediaDir, ".incoming-*")
	if err != nil {
		return "", 0, fmt.Errorf("archive: media temp file: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	h := sha256.New()
	if size, err = io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		return "", 0, fmt.Errorf("archive: write media: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("archive: sync media: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("archive: close media: %w", err)
	}
	sha = hex.EncodeToString(h.Sum(nil))
	final := a.mediaPath(sha)

	a.mediaMu.Lock()
	defer a.mediaMu.Unlock()
	if _, statErr := os.Stat(final); errors.Is(statErr, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
			return "", 0, fmt.Errorf("archive: media directory: %w", err)
		}
		if err = os.Rename(tmp.Name(), final); err != nil {
			return "", 0, fmt.Errorf("archive: install media: %w", err)
		}
		if err = syncDir(filepath.Dir(final)); err != nil {
			return "", 0, fmt.Errorf("archive: %w", err)
		}
	} else if statErr != nil {
		return "", 0, fmt.Errorf("archive: stat media: %w", statErr)
	}
	now := a.now().UnixMilli()
	// last_put_ts lets disposal leave alone a blob someone is about to reference again.
	_, err = a.db.Exec(ctx, `
		INSERT INTO archive_media (sha256, size, stored_ts, last_put_ts) VALUES ($1, $2, $3, $3)
		ON CONFLICT (sha256) DO UPDATE SET last_put_ts=excluded.last_put_ts, disposed_ts=NULL`,
		sha, size, now)
	if err != nil {
		return "", 0, fmt.Errorf("archive: record media: %w", err)
	}
	return sha, size, nil
}

// OpenMedia returns a stored blob, or an error wrapping fs.ErrNotExist if it was never stored or was disposed.
func (a *Archive) OpenMedia(sha string) (*os.File, error) {
	if !validSHA256Hex(sha) {
		return nil, fmt.Errorf("archive: %q is not a hex SHA-256: %w", sha, fs.ErrNotExist)
	}
	f, err := os.Open(a.mediaPath(sha))
	if err != nil {
		return nil, fmt.Errorf("archive: open media: %w", err)
	}
	return f, nil
}

func hashFile(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, 0, err
	}
	return h.Sum(nil), n, nil
}
