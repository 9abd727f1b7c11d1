//go:build unix

package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/harness/configtest"
	"codeberg.org/causeway/causeway/internal/secretfile"
)

// TestSecretFileModes follows the README's setup under the usual umask 022: the config
// copied from the example (0644) gets both tokens from -g, and the first start creates the
// data directory and the SQLite files that hold the WhatsApp keys. All of them must end up
// readable by the owner only, and files left readable by others must be named at start.
func TestSecretFileModes(t *testing.T) {
	// The umask is per process: this test must not run in parallel with one that creates files.
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })

	cfgPath := configtest.WriteExample(t, "domain: example.org", "domain: ministry.example")
	if err := os.Chmod(cfgPath, 0o644); err != nil { // what `cp config.example.yaml config.yaml` gives
		t.Fatal(err)
	}
	regPath := filepath.Join(filepath.Dir(cfgPath), "registration.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-c", cfgPath, "-g", "-r", regPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("-g exited %d: %s", code, stderr.String())
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	dataDir := filepath.Join(t.TempDir(), "data")
	cfg.Database.URI = filepath.Join(dataDir, "causeway.db")
	var logs bytes.Buffer
	db, err := database.Open(context.Background(), cfg.Database, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	// The WAL files exist while the database is open; check them before closing.
	tests := []struct {
		name string
		path string
		want fs.FileMode
	}{
		{"config after -g", cfgPath, 0o600},
		{"registration", regPath, 0o600},
		{"data directory", dataDir, 0o700},
		{"database", cfg.Database.URI, 0o600},
		{"database -wal", cfg.Database.URI + "-wal", 0o600},
		{"database -shm", cfg.Database.URI + "-shm", 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != tt.want {
				t.Errorf("%s has mode %04o, want %04o", tt.path, got, tt.want)
			}
		})
	}
	if strings.Contains(logs.String(), "readable by other users") {
		t.Errorf("warned about files it created itself: %s", logs.String())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("existing files readable by others are named at start", func(t *testing.T) {
		for _, p := range []string{cfgPath, cfg.Database.URI} {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var logs bytes.Buffer
		log := zerolog.New(&logs)
		secretfile.WarnIfExposed(log, cfgPath, "the appservice tokens") // what runBridge does first
		db, err := database.Open(context.Background(), cfg.Database, log)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, p := range []string{cfgPath, cfg.Database.URI} {
			if !strings.Contains(logs.String(), `"path":"`+p+`"`) {
				t.Errorf("no warning names %s: %s", p, logs.String())
			}
		}
		// Warned, not changed: the operator may have widened the mode on purpose.
		if st, err := os.Stat(cfg.Database.URI); err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("the database's mode was changed behind the operator's back: %v %v", st.Mode(), err)
		}
	})
}
