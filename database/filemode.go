package database

import (
	"net/url"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/internal/secretfile"
)

// sqliteSidecars are the files SQLite keeps next to the database in WAL mode; they hold
// recent writes, WhatsApp keys included, as much as the database does.
var sqliteSidecars = []string{"-wal", "-shm"}

// sqliteFile is the file an SQLite URI opens, or "" for an in-memory database.
func sqliteFile(pathOrURI string) string {
	base, query, _ := strings.Cut(strings.TrimPrefix(pathOrURI, "file:"), "?")
	values, _ := url.ParseQuery(query)
	if base == "" || base == ":memory:" || values.Get("mode") == "memory" {
		return ""
	}
	return base
}

// prepareSQLiteFile creates the database's directory (0700) and the database file (0600)
// when they are missing, before SQLite creates the file with the umask's mode (0644 under
// the usual 022) and its WAL files after it: the store holds the WhatsApp private keys.
// Existing ones are left alone but named in a warning when others can read them.
func prepareSQLiteFile(path string, log zerolog.Logger) error {
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // "." in a warning would not say which directory
	}
	secretfile.WarnIfExposed(log, dir, "the database directory")
	if err := secretfile.MkdirPrivate(dir); err != nil {
		return err
	}
	for _, p := range append([]string{path}, sidecarPaths(path)...) {
		secretfile.WarnIfExposed(log, p, "the WhatsApp session keys")
	}
	return secretfile.CreatePrivate(path)
}

// restrictSidecars brings the WAL files SQLite has opened down to 0600 when the database
// file itself is private. SQLite gives new ones the database's mode, but files left from a
// run before the operator narrowed the database (as the warning says to) keep their old
// mode. A database that is still readable by others is left consistent with its WAL files:
// whoever widened it may need both.
func restrictSidecars(path string) error {
	if _, exposed, err := secretfile.Exposed(path); err != nil || exposed {
		return err
	}
	for _, p := range sidecarPaths(path) {
		if err := secretfile.Restrict(p); err != nil {
			return err
		}
	}
	return nil
}

func sidecarPaths(path string) []string {
	out := make([]string, len(sqliteSidecars))
	for i, s := range sqliteSidecars {
		out[i] = path + s
	}
	return out
}
