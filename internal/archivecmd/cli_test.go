package archivecmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/harness/configtest"
	"codeberg.org/causeway/causeway/internal/harness/ziptest"
)

const (
	chatA = "4915550001@s.whatsapp.net"
	chatB = "120363000000000001@g.us"
	alice = "4915550001@s.whatsapp.net"
)

// run runs `causeway ARGS...` for args that start with "archive", as the binary would.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "archive" {
		panic("not an archive command line")
	}
	return Run(args[1:], stdout, stderr, func(_ config.Logging, w io.Writer) zerolog.Logger {
		return zerolog.New(w).Level(zerolog.WarnLevel)
	})
}

// archiveSetup is a config from the example with its own SQLite file and archive directory, and a
// retention of one day so disposal can be tried on entries dated ten days ago.
type archiveSetup struct {
	t          *testing.T
	configPath string
	cfg        *config.Config
	dbPath     string
}

func newArchiveSetup(t *testing.T) *archiveSetup {
	t.Helper()
	data := t.TempDir()
	s := &archiveSetup{t: t, dbPath: filepath.Join(data, "causeway.db")}
	s.configPath = configtest.WriteExample(t,
		"address: http://localhost:8008", "address: http://127.0.0.1:8008",
		"uri: causeway.db", "uri: "+s.dbPath,
		"dir: archive", "dir: "+filepath.Join(data, "archive"),
		"retention_days: 3650", "retention_days: 1",
		"level: info", "level: warn")
	var err error
	if s.cfg, err = config.Load(s.configPath); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs `causeway archive ARGS...` in process, with -c inserted after the verb(s) that need it.
func (s *archiveSetup) run(args ...string) (code int, stdout, stderr string) {
	s.t.Helper()
	full := append([]string{"archive"}, args...)
	if args[0] != "verify-bundle" {
		full = append(full, "-c", s.configPath)
	}
	var out, errOut bytes.Buffer
	code = run(full, &out, &errOut)
	return code, out.String(), errOut.String()
}

func (s *archiveSetup) mustRun(args ...string) string {
	s.t.Helper()
	code, out, errOut := s.run(args...)
	if code != 0 {
		s.t.Fatalf("archive %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// withDB opens the bridge database the way the bridge does.
func (s *archiveSetup) withDB(fn func(ctx context.Context, db *database.Database)) {
	s.t.Helper()
	ctx := context.Background()
	db, err := database.Open(ctx, s.cfg.Database, zerolog.Nop())
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	fn(ctx, db)
}

// populate appends a conversation dated ten days ago through the archive package, as the relay path
// would, and closes the archive (which issues a checkpoint).
func (s *archiveSetup) populate(texts ...string) {
	s.t.Helper()
	s.withDB(func(ctx context.Context, db *database.Database) {
		a, err := OpenWriter(ctx, s.cfg, db, zerolog.Nop(), "the test", false)
		if err != nil {
			s.t.Fatal(err)
		}
		when := time.Now().Add(-10 * 24 * time.Hour)
		sha, size, err := a.PutMedia(ctx, strings.NewReader("a photo of the minutes"))
		if err != nil {
			s.t.Fatal(err)
		}
		entries := []*archive.Entry{
			{Kind: archive.KindMessage, Account: alice, Chat: chatB, Sender: alice, MessageID: "M-media",
				Message: &archive.Message{Type: "image", Media: []archive.MediaRef{{SHA256: sha, Size: size, MimeType: "image/jpeg"}}}},
		}
		for i, text := range texts {
			id := "M" + strconv.Itoa(i)
			entries = append(entries,
				&archive.Entry{Kind: archive.KindMessage, Account: alice, Chat: chatA, Sender: alice, MessageID: id, Message: &archive.Message{Type: "text", Text: text}},
				&archive.Entry{Kind: archive.KindEdit, Account: alice, Chat: chatA, Sender: alice, MessageID: id + "e", Target: &archive.Target{MessageID: id}, Message: &archive.Message{Type: "text", Text: text + " (edited)"}},
				&archive.Entry{Kind: archive.KindRevoke, Account: alice, Chat: chatA, Sender: alice, MessageID: id + "r", Target: &archive.Target{MessageID: id}})
		}
		for _, e := range entries {
			e.Time = when
			if _, err := a.Append(ctx, e); err != nil {
				s.t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			s.t.Fatal(err)
		}
	})
}

// entryIndex finds the entry holding text in its body.
func (s *archiveSetup) entryIndex(text string) (idx int64) {
	s.t.Helper()
	s.withDB(func(ctx context.Context, db *database.Database) {
		err := db.QueryRow(ctx, `SELECT idx FROM archive_entry WHERE kind='message' AND CAST(body AS TEXT) LIKE $1`, "%"+text+"%").Scan(&idx)
		if err != nil {
			s.t.Fatalf("find the entry with %q: %v", text, err)
		}
	})
	return idx
}

func TestArchiveCLILifeCycle(t *testing.T) {
	s := newArchiveSetup(t)
	s.populate("first minutes", "second minutes")

	status := s.mustRun("status")
	// archive_started, the media message, 2×(message, edit, revoke), archive_stopped.
	for _, want := range []string{"Size:         9 entries (9 with their body, 0 disposed)", "Checkpoint:   size 9, root ", "Media:        1 blob, 22 bytes", "Legal holds:  0 active"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	if out := s.mustRun("verify"); !strings.HasSuffix(out, "OK\n") || !strings.Contains(out, "9 bodies against their leaves") {
		t.Errorf("verify of an intact archive:\n%s", out)
	}
	if out := s.mustRun("gaps", "--from", "2000-01-01"); !strings.Contains(out, "archive_not_running") {
		t.Errorf("gaps does not show the time the archive was not running:\n%s", out)
	}

	t.Run("holds", func(t *testing.T) {
		out := s.mustRun("hold", "add", "--chat", chatB, "--reason", "case 2026/17", "--by", "officer")
		m := regexp.MustCompile(`Placed hold (\d+) on chat `).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("hold add output: %q", out)
		}
		if list := s.mustRun("hold", "list"); !strings.Contains(list, "hold "+m[1]+"  chat "+chatB) || !strings.Contains(list, "by officer: case 2026/17") {
			t.Errorf("hold list:\n%s", list)
		}
		if code, _, errOut := s.run("hold", "remove", "9999", "--reason", "typo"); code != exitFailure || !strings.Contains(errOut, "hold 9999 is not an active hold") {
			t.Errorf("removing an unknown hold: exit %d, %q", code, errOut)
		}
		s.mustRun("hold", "remove", m[1], "--reason", "case closed", "--by", "officer")
		if list := s.mustRun("hold", "list"); !strings.Contains(list, "No active legal holds") {
			t.Errorf("hold list after remove:\n%s", list)
		}
		if list := s.mustRun("hold", "list", "--all"); !strings.Contains(list, "removed ") || !strings.Contains(list, "by officer") {
			t.Errorf("hold list --all does not show the removed hold:\n%s", list)
		}
		// A hold that stays, so disposal has something to keep.
		s.mustRun("hold", "add", "--chat", chatB, "--reason", "keep the photo")
	})

	t.Run("export and verify-bundle", func(t *testing.T) {
		bundle := filepath.Join(t.TempDir(), "bundle.zip")
		out := s.mustRun("export", "--chat", chatA, "--out", bundle, "--actor", "officer")
		// Chat A's six entries, the export's own entry and the completeness ledger of the window.
		m := regexp.MustCompile(`Exported (\d+) entries \(0 disposed\), 0 media files`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("export output:\n%s", out)
		}
		if n, _ := strconv.Atoi(m[1]); n < 7 {
			t.Errorf("export of chat A has %d entries, want its 6 plus the export entry and the ledger", n)
		}
		verified := s.mustRun("verify-bundle", bundle)
		if !strings.Contains(verified, "Contents:     "+m[1]+" entries") || !strings.Contains(verified, "Chats:        "+chatA+"\n") ||
			!strings.HasSuffix(verified, "OK\n") {
			t.Errorf("verify-bundle:\n%s", verified)
		}
		pub := filepath.Join(s.cfg.Archive.Dir, "keys", "archive-signing.pub")
		if out := s.mustRun("verify-bundle", bundle, "--key", pub); !strings.Contains(out, "matches the pinned key") {
			t.Errorf("verify-bundle --key:\n%s", out)
		}

		idx := s.entryIndex("first minutes")
		tampered := ziptest.Rewrite(t, bundle, "entries.jsonl", func(b []byte) []byte {
			return bytes.Replace(b, []byte("first minutes"), []byte("First minutes"), 1)
		})
		code, out, _ := s.run("verify-bundle", tampered)
		if code != exitFailure || !strings.Contains(out, "entry "+strconv.FormatInt(idx, 10)+": ") {
			t.Errorf("verify-bundle of a bundle with one byte changed in entry %d: exit %d\n%s", idx, code, out)
		}
	})

	t.Run("dispose", func(t *testing.T) {
		tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
		out := s.mustRun("dispose", "--before", tomorrow, "--by", "officer")
		// Chat A's six entries are past the one-day retention; the photo in chat B is on hold.
		for _, want := range []string{"Removed: 6 bodies and 0 media blobs (default 1d: 6)", "Kept: 1 under a legal hold"} {
			if !strings.Contains(out, want) {
				t.Errorf("dispose output lacks %q:\n%s", want, out)
			}
		}
		verified := s.mustRun("verify")
		if !strings.HasSuffix(verified, "OK\n") || !strings.Contains(verified, "Disposed bodies: 6, by 1 disposal") ||
			!strings.Contains(verified, "by officer: 6 bodies and 0 media blobs") {
			t.Errorf("verify after a legitimate disposal:\n%s", verified)
		}
	})
}

func TestArchiveCLIVerifyNamesTamperedEntry(t *testing.T) {
	s := newArchiveSetup(t)
	s.populate("first minutes", "second minutes")
	idx := s.entryIndex("second minutes")
	s.withDB(func(ctx context.Context, db *database.Database) {
		var body []byte
		if err := db.QueryRow(ctx, `SELECT body FROM archive_entry WHERE idx=$1`, idx).Scan(&body); err != nil {
			t.Fatal(err)
		}
		body = bytes.Replace(body, []byte("second minutes"), []byte("forged minutes"), 1)
		if _, err := db.Exec(ctx, `UPDATE archive_entry SET body=$1 WHERE idx=$2`, body, idx); err != nil {
			t.Fatal(err)
		}
	})
	code, out, errOut := s.run("verify")
	if code != exitFailure {
		t.Fatalf("verify of a tampered archive: exit %d\n%s%s", code, out, errOut)
	}
	if want := "entry " + strconv.FormatInt(idx, 10) + ": " + archive.ProblemBodyAltered; !strings.Contains(out, want) || !strings.Contains(out, "FAILED") {
		t.Errorf("verify output does not name %q:\n%s", want, out)
	}
}

func TestArchiveCLIVerifyCatchesRollback(t *testing.T) {
	s := newArchiveSetup(t)
	s.populate("first minutes")
	saved := copySQLite(t, s.dbPath, filepath.Join(t.TempDir(), "saved.db"))

	s.populate("minutes after the copy")
	cpFile := filepath.Join(t.TempDir(), "checkpoint.txt")
	if out := s.mustRun("status", "--checkpoint-out", cpFile); !strings.Contains(out, "Wrote the checkpoint at size 12 to") {
		t.Fatalf("status --checkpoint-out:\n%s", out)
	}
	copySQLite(t, saved, s.dbPath)

	// The earlier copy is self-consistent: only the checkpoint kept outside shows what is missing.
	if out := s.mustRun("verify"); !strings.HasSuffix(out, "OK\n") || !strings.Contains(out, "6 entries") {
		t.Fatalf("verify of the restored copy without an outside checkpoint:\n%s", out)
	}
	code, out, _ := s.run("verify", "--checkpoint", cpFile)
	if code != exitFailure || !strings.Contains(out, "entry 6: "+archive.ProblemRolledBack) || !strings.Contains(out, "entries 6..11 are missing") {
		t.Errorf("verify --checkpoint after a rollback: exit %d\n%s", code, out)
	}
}

// copySQLite copies a closed SQLite database, without any WAL left at the destination.
func copySQLite(t *testing.T, from, to string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(from + suffix); err == nil {
			t.Fatalf("%s%s exists: the database was not closed cleanly", from, suffix)
		}
		_ = os.Remove(to + suffix)
	}
	if err = os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}

func TestArchiveCLIWritersRefuseWhileAnotherProcessWrites(t *testing.T) {
	s := newArchiveSetup(t)
	s.populate("first minutes")
	writes := [][]string{
		{"hold", "add", "--user", alice, "--reason", "r"},
		{"dispose", "--before", "2026-01-01"},
		{"export", "--out", filepath.Join(t.TempDir(), "b.zip")},
	}
	host, _ := os.Hostname()

	// A bridge has the archive open for writing (in this process, which the lease cannot tell from
	// another one).
	s.withDB(func(ctx context.Context, db *database.Database) {
		bridge, err := OpenWriter(ctx, s.cfg, db, zerolog.Nop(), "the bridge", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range writes {
			code, _, errOut := s.run(args...)
			want := fmt.Sprintf("open for writing: the bridge (pid %d on %s", os.Getpid(), host)
			if code != exitFailure || !strings.Contains(errOut, want) || !strings.Contains(errOut, "bot's `archive") {
				t.Errorf("%v while a bridge holds the archive: exit %d, %q", args, code, errOut)
			}
		}
		// Reading needs no lease.
		if out := s.mustRun("status"); !strings.Contains(out, "Size:         7 entries") {
			t.Errorf("status while a bridge holds the archive:\n%s", out)
		}
		s.mustRun("verify")
		// Closing the bridge's archive ends its lease at once.
		if err := bridge.Close(); err != nil {
			t.Fatal(err)
		}
	})
	s.mustRun("hold", "add", "--user", alice, "--reason", "after the bridge stopped")

	// A bridge on another host whose lease is renewed is waited for; one whose lease lapsed is not.
	plant := func(expires time.Time) {
		s.withDB(func(ctx context.Context, db *database.Database) {
			_, err := db.Exec(ctx, `INSERT INTO archive_writer (id, token, purpose, host, machine, pid_ns, pid, pid_start, lock_file, taken_ts, expires_ts)
				VALUES (1, 'elsewhere', 'the bridge', 'records-host', 'records-host boot b', 'pid:[1]', 4242, '1', '', $1, $2)`,
				time.Now().Add(-time.Hour).UnixMilli(), expires.UnixMilli())
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	plant(time.Now().Add(time.Minute))
	if code, _, errOut := s.run(writes[0]...); code != exitFailure || !strings.Contains(errOut, "the bridge (pid 4242 on records-host") {
		t.Errorf("while a bridge on another host holds the archive: exit %d, %q", code, errOut)
	}
	s.withDB(func(ctx context.Context, db *database.Database) {
		if _, err := db.Exec(ctx, `DELETE FROM archive_writer`); err != nil {
			t.Fatal(err)
		}
	})
	plant(time.Now().Add(-time.Second))
	s.mustRun("hold", "add", "--user", alice, "--reason", "after the lease lapsed")
}

func TestArchiveCLIUsage(t *testing.T) {
	s := newArchiveSetup(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", []string{"archive"}, exitUsage, "verify-bundle"},
		{"unknown command", []string{"archive", "shred"}, exitUsage, `unknown command "shred"`},
		{"export without --out", []string{"archive", "export", "-c", s.configPath}, exitUsage, "--out is required"},
		{"bad date", []string{"archive", "gaps", "--from", "31.03.2026", "-c", s.configPath}, exitUsage, "neither a date (YYYY-MM-DD) nor an RFC 3339 time"},
		{"hold without scope", []string{"archive", "hold", "add", "--reason", "r", "-c", s.configPath}, exitUsage, "exactly one of --chat and --user"},
		{"hold without verb", []string{"archive", "hold"}, exitUsage, "say add, remove or list"},
		{"verify-bundle without file", []string{"archive", "verify-bundle"}, exitUsage, "expected 1 argument"},
		{"missing config", []string{"archive", "status", "-c", filepath.Join(t.TempDir(), "none.yaml")}, exitUsage, "bad config"},
		{"not a bundle", []string{"archive", "verify-bundle", s.configPath}, exitFailure, "not a zip file"},
		{"bad key", []string{"archive", "verify", "--key", "nonsense", "-c", s.configPath}, exitUsage, "neither a verifier key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tt.code, stderr.String(), tt.stderr)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"archive", "help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Only one process may append") {
		t.Errorf("archive help: exit %d\n%s", code, stdout.String())
	}
}

// The records tools reach the archive without the bridge: a records officer's `causeway archive` must
// not need (or break with) the daemon's code, and the bridge must not be the archive's only way in.
func TestArchiveCLIDoesNotDependOnTheBridge(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "goolm", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "codeberg.org/causeway/causeway/archive") {
		t.Fatalf("go list -deps does not list the archive package:\n%s", out)
	}
	if slices.Contains(deps, "codeberg.org/causeway/causeway/bridge") {
		t.Errorf("internal/archivecmd depends on the bridge package")
	}
}
