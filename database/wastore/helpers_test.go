package wastore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

// backend is one database for a test. open returns a new Container with its own connection
// pool on that database, upgraded, closed when the test ends: opening again is a restart.
type backend struct {
	name string
	open func(t testing.TB) *Container
}

// eachBackend runs fn against a fresh SQLite file and a fresh PostgreSQL database.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresBackend(t)) })
}

func sqliteBackend(t testing.TB) backend {
	path := filepath.Join(t.TempDir(), "wastore.db")
	return backend{name: "sqlite", open: func(t testing.TB) *Container {
		t.Helper()
		c, err := OpenSQLite(context.Background(), path, nil)
		if err != nil {
			t.Fatalf("OpenSQLite: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}}
}

// One PostgreSQL cluster serves the whole test binary; TestMain stops it.
var (
	pgOnce    sync.Once
	pgCluster *devserver.Postgres
	pgErr     error
	pgDBCount atomic.Int64
)

func postgresBackend(t *testing.T) backend {
	t.Helper()
	ctx := context.Background()
	pgOnce.Do(func() { pgCluster, pgErr = devserver.StartPostgres(ctx) })
	if pgErr != nil {
		t.Fatalf("starting PostgreSQL: %v", pgErr)
	}
	uri, err := pgCluster.CreateDatabase(ctx, fmt.Sprintf("wastore_%d", pgDBCount.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return backend{name: "postgres", open: func(t testing.TB) *Container {
		t.Helper()
		db, err := dbutil.NewWithDialect(uri, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		c := New(db, nil)
		c.ownsDB = true
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Upgrade(ctx); err != nil {
			t.Fatalf("Upgrade on PostgreSQL: %v", err)
		}
		return c
	}}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		if err := pgCluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
		}
	}
	os.Exit(code)
}

// savedDevice creates and stores a device under jid, as pairing would.
func savedDevice(t testing.TB, c *Container, jid string) *store.Device {
	t.Helper()
	dev := c.NewDevice()
	id := mustJID(jid)
	dev.ID = &id
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignatureKey: make([]byte, 32),
		AccountSignature:    make([]byte, 64),
		DeviceSignature:     make([]byte, 64),
	}
	if err := dev.Save(context.Background()); err != nil {
		t.Fatalf("saving device %s: %v", jid, err)
	}
	return dev
}

// countRows counts the rows of a per-device table that belong to device jid.
func countRows(t *testing.T, c *Container, table, jid string) int {
	t.Helper()
	var n int
	if err := c.db.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table+" WHERE device_jid=$1", jid).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

func mustJID(s string) types.JID {
	jid, err := types.ParseJID(s)
	if err != nil {
		panic(err)
	}
	return jid
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func preKeyIDs(keys []*keys.PreKey) []uint32 {
	ids := make([]uint32, len(keys))
	for i, k := range keys {
		ids[i] = k.KeyID
	}
	return ids
}

func itoa(i int) string { return strconv.Itoa(i) }

var errTest = errors.New("test failure")

func hashOf(b []byte) [32]byte { return sha256.Sum256(b) }

func nowForTest() time.Time { return time.Now() }

// EachBackendForTest lets the external end-to-end test (package wastore_test) run against
// both databases; open returns a new upgraded Container on the same database each call.
func EachBackendForTest(t *testing.T, fn func(t *testing.T, open func(t testing.TB) *Container)) {
	eachBackend(t, func(t *testing.T, b backend) { fn(t, b.open) })
}
