package database

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database/wastore"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

var (
	pg      *devserver.Postgres
	pgCount atomic.Int32
)

func TestMain(m *testing.M) {
	var err error
	pg, err = devserver.StartPostgres(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "PostgreSQL is required for the database tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = pg.Stop()
	os.Exit(code)
}

// backends returns one fresh database config per supported backend.
func backends(t *testing.T) map[string]config.Database {
	t.Helper()
	uri, err := pg.CreateDatabase(context.Background(), fmt.Sprintf("dbtest_%d", pgCount.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	base := config.Default().Database
	sqlite, postgres := base, base
	sqlite.URI = filepath.Join(t.TempDir(), "causeway.db")
	postgres.Type, postgres.URI = "postgres", uri
	return map[string]config.Database{"sqlite": sqlite, "postgres": postgres}
}

// eachBackend runs test on a freshly opened database of each supported backend.
func eachBackend(t *testing.T, test func(t *testing.T, db *Database)) {
	t.Helper()
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			db, err := Open(context.Background(), cfg, zerolog.New(zerolog.NewTestWriter(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			test(t, db)
		})
	}
}

func TestOpenUpgradeAndReopen(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			log := zerolog.New(zerolog.NewTestWriter(t))
			db, err := Open(ctx, cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range []string{"bridge_user", "kv_store", "causeway_version", "mx_registrations", "mx_version", wastore.VersionTable} {
				if ok, err := db.TableExists(ctx, table); err != nil || !ok {
					t.Errorf("table %s missing after upgrade (%v)", table, err)
				}
			}
			alice := &User{MXID: "@alice:example.org", ManagementRoom: "!mgmt:example.org"}
			if err := db.Users.Put(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if err := db.KV.Set(ctx, "bot_profile", "v1"); err != nil {
				t.Fatal(err)
			}
			if err := db.StateStore.MarkRegistered(ctx, "@whatsapp_1:example.org"); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			db, err = Open(ctx, cfg, log)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer db.Close()
			got, err := db.Users.GetByManagementRoom(ctx, "!mgmt:example.org")
			if err != nil || got == nil || got.MXID != alice.MXID {
				t.Fatalf("user after reopen = %+v, %v", got, err)
			}
			if missing, err := db.Users.Get(ctx, "@nobody:example.org"); err != nil || missing != nil {
				t.Fatalf("unknown user = %+v, %v", missing, err)
			}
			if v, err := db.KV.Get(ctx, "bot_profile"); err != nil || v != "v1" {
				t.Fatalf("kv after reopen = %q, %v", v, err)
			}
			if ok, err := db.StateStore.IsRegistered(ctx, "@whatsapp_1:example.org"); err != nil || !ok {
				t.Fatalf("ghost registration lost: %v %v", ok, err)
			}
			// Updating keeps one row and the creation time.
			alice.ManagementRoom = "!other:example.org"
			if err := db.Users.Put(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if got, _ := db.Users.Get(ctx, alice.MXID); got.ManagementRoom != "!other:example.org" {
				t.Fatalf("management room not updated: %s", got.ManagementRoom)
			}
		})
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			log := zerolog.New(zerolog.NewTestWriter(t))
			db, err := Open(ctx, cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			// A future causeway wrote v99, incompatible below v99.
			if _, err := db.Exec(ctx, "UPDATE causeway_version SET version=99, compat=99"); err != nil {
				t.Fatal(err)
			}
			db.Close()

			_, err = Open(ctx, cfg, log)
			if !errors.Is(err, ErrSchemaTooNew) {
				t.Fatalf("opening a v99 database gave %v, want ErrSchemaTooNew", err)
			}
			if !strings.Contains(err.Error(), "v99") || !strings.Contains(err.Error(), "newer than this causeway binary") {
				t.Errorf("message does not explain the problem: %v", err)
			}
		})
	}
}

func TestSQLiteDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"causeway.db", "file:causeway.db?_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&_pragma=journal_mode%28WAL%29&_pragma=synchronous%28FULL%29&_txlock=immediate"},
		{"file:/data/c.db?_pragma=synchronous(NORMAL)", "file:/data/c.db?_pragma=synchronous%28NORMAL%29&_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&_pragma=journal_mode%28WAL%29&_txlock=immediate"},
	}
	for _, tt := range tests {
		if got := SQLiteDSN(tt.in); got != tt.want {
			t.Errorf("SQLiteDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSQLitePragmasApplied(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default().Database
	cfg.URI = filepath.Join(t.TempDir(), "p.db")
	db, err := Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fk int
	var mode string
	if err := db.QueryRow(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v)", fk, err)
	}
	if err := db.QueryRow(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v)", mode, err)
	}
}
