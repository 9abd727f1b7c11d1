package wastore

import (
	"crypto/sha256"
	"errors"
	"strconv"
	"time"

	"context"
	"go.mau.fi/whatsmeow/util/keys"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// openTestContainer opens a fresh SQLite device store in the test's temp dir.
func openTestContainer(t *testing.T) (*Container, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wastore.db")
	c, err := OpenSQLite(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, path
}

// savedDevice creates and stores a device under jid, as pairing would.
func savedDevice(t *testing.T, c *Container, jid string) *store.Device {
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

type keysPreKey = keys.PreKey

func itoa(i int) string { return strconv.Itoa(i) }

var errTest = errors.New("test failure")

func hashOf(b []byte) [32]byte { return sha256.Sum256(b) }

func nowForTest() time.Time { return time.Now() }
