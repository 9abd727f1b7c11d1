// Package secretfile keeps the files that hold the bridge's secrets (the appservice tokens
// in the config, the WhatsApp private keys in the SQLite database) readable by their owner
// only, whatever the process umask, and finds the ones that are not.
package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/rs/zerolog"
)

// Modes for secrets: owner only.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// Exposed reports whether path is readable (or, for a directory, listable) by its group or
// by others. A missing path is not exposed.
func Exposed(path string) (perm fs.FileMode, exposed bool, err error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("failed to check the mode of %s: %w", path, err)
	}
	return st.Mode().Perm(), st.Mode().Perm()&0o077 != 0, nil
}

// WarnIfExposed logs a warning naming path when others than its owner can read it. It
// changes nothing: an operator may have widened the mode on purpose (a backup user's
// group), and silently narrowing it would break that.
func WarnIfExposed(log zerolog.Logger, path, holds string) {
	perm, exposed, err := Exposed(path)
	switch {
	case err != nil:
		log.Warn().Err(err).Str("path", path).Msg("Cannot check who may read a file with secrets")
	case exposed:
		want := FileMode
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			want = DirMode
		}
		log.Warn().Str("path", path).Str("mode", fmt.Sprintf("%04o", perm)).Str("holds", holds).
			Str("fix", fmt.Sprintf("chmod %04o %s", want, path)).
			Msg("A file with secrets is readable by other users of this host")
	}
}

// MkdirPrivate creates dir (and missing parents) with mode 0700. An existing directory is
// left as it is.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("failed to create %s: %w", dir, err)
	}
	return nil
}

// CreatePrivate creates path with mode 0600 when it does not exist, so that a program that
// creates it later with the umask's mode (SQLite) finds it already there. An existing file
// is left as it is.
func CreatePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to create %s: %w", path, err)
	}
	return nil
}

// Restrict sets path to mode 0600 if it exists and others than its owner can read it.
func Restrict(path string) error {
	_, exposed, err := Exposed(path)
	if err != nil || !exposed {
		return err
	}
	if err := os.Chmod(path, FileMode); err != nil {
		return fmt.Errorf("failed to set the mode of %s: %w", path, err)
	}
	return nil
}
