//go:build goolm

package e2ee

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/crypto/olm"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/database/dbtest"
	"codeberg.org/causeway/causeway/e2ee/upgrades"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

// One PostgreSQL cluster serves the test binary; TestMain stops it.
var (
	pgOnce    sync.Once
	pgCluster *devserver.Postgres
	pgErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		_ = pgCluster.Stop()
	}
	os.Exit(code)
}

func postgresDB(t *testing.T) *database.Database {
	t.Helper()
	ctx := context.Background()
	pgOnce.Do(func() { pgCluster, pgErr = devserver.StartPostgres(ctx) })
	if pgErr != nil {
		t.Fatalf("starting PostgreSQL: %v", pgErr)
	}
	uri, err := pgCluster.CreateDatabase(ctx, "e2ee_history")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Database
	cfg.Type, cfg.URI = "postgres", uri
	db, err := database.Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestHistoryStore: the kept sessions and their holders mean the same on both databases: a
// portal keeps its latest sessions only, none older than max_age, a device is offered the
// newest first and only those it does not hold, and forgetting a session forgets its holders.
func TestHistoryStore(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(t *testing.T) *database.Database
	}{
		{"sqlite", func(t *testing.T) *database.Database { return dbtest.InMemory(t) }},
		{"postgres", postgresDB},
	} {
		t.Run(b.name, func(t *testing.T) { historyStoreOn(t, b.open(t)) })
	}
}

func historyStoreOn(t *testing.T, parent *database.Database) {
	ctx := context.Background()
	db := parent.Child("e2ee_version", upgrades.Table, "e2ee")
	if err := database.UpgradeChild(ctx, db, "e2ee"); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_700_000_000_000)
	s := &historyStore{db: db, perRoom: 2, maxAge: time.Hour, now: func() time.Time { return now }}
	const alice, bob = id.UserID("@alice:example.org"), id.UserID("@bob:example.org")
	add := func(room id.RoomID, owner id.UserID, session id.SessionID) {
		t.Helper()
		now = now.Add(time.Millisecond)
		if err := s.add(ctx, room, owner, session, []byte("pickle of "+session)); err != nil {
			t.Fatal(err)
		}
	}
	missing := func(owner id.UserID, key id.IdentityKey) []id.SessionID {
		t.Helper()
		got, err := s.missing(ctx, owner, key, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []id.SessionID
		for _, hs := range got {
			if hs.pickle != "pickle of "+string(hs.id) {
				t.Errorf("session %s came back with pickle %q", hs.id, hs.pickle)
			}
			ids = append(ids, hs.id)
		}
		return ids
	}
	check := func(what string, got, want []id.SessionID) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}

	add("!a:x", alice, "s1")
	add("!a:x", alice, "s2")
	add("!a:x", alice, "s3") // the room keeps two: s1 goes
	add("!a:x", alice, "s3") // kept once
	add("!b:x", alice, "s4")
	laptop := &id.Device{UserID: alice, DeviceID: "LAPTOP", IdentityKey: "laptop-key"}
	check("a new device lacks", missing(alice, laptop.IdentityKey), []id.SessionID{"s4", "s3", "s2"})
	if err := s.hold(ctx, "s3", laptop, true); err != nil {
		t.Fatal(err)
	}
	if err := s.hold(ctx, "s3", laptop, true); err != nil {
		t.Fatal(err)
	}
	check("after it got s3", missing(alice, laptop.IdentityKey), []id.SessionID{"s4", "s2"})
	check("another device lacks", missing(alice, "phone-key"), []id.SessionID{"s4", "s3", "s2"})
	check("bob, who owns no portal, is offered", missing(bob, "bob-key"), nil)
	for _, tt := range []struct {
		user id.UserID
		want bool
	}{{alice, true}, {bob, false}} {
		if got, err := s.isOwner(ctx, tt.user); err != nil || got != tt.want {
			t.Errorf("isOwner(%s) = %v, %v; want %v", tt.user, got, err, tt.want)
		}
	}

	now = now.Add(2 * time.Hour)
	check("past max_age, before pruning", missing(alice, "phone-key"), nil)
	add("!c:x", bob, "s5") // prunes alice's sessions, and with them who holds them
	owners, err := s.owners(ctx)
	if err != nil || !slices.Equal(owners, []id.UserID{bob}) {
		t.Errorf("owners = %v, %v; want only %s", owners, err, bob)
	}
	var sessions, holders int
	if err := db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM e2ee_history_session), (SELECT COUNT(*) FROM e2ee_history_holder)`).Scan(&sessions, &holders); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || holders != 0 {
		t.Errorf("after pruning %d sessions and %d holders remain, want 1 and 0", sessions, holders)
	}
}

// TestHistoryRoomKey: the m.room_key made from a session kept before its first message
// opens every message the session encrypts, from the first on; a session kept after its
// first message is refused, since its first key is gone.
func TestHistoryRoomKey(t *testing.T) {
	ogs, err := olm.NewOutboundGroupSession()
	if err != nil {
		t.Fatal(err)
	}
	pickle, err := ogs.Pickle(pickleKey)
	if err != nil {
		t.Fatal(err)
	}
	var ciphertexts [][]byte
	for i := range 3 {
		c, err := ogs.Encrypt([]byte(fmt.Sprintf("message %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ciphertexts = append(ciphertexts, c)
	}
	kept := historySession{id: ogs.ID(), room: "!a:x", pickle: string(pickle)}
	key, err := kept.roomKey()
	if err != nil {
		t.Fatal(err)
	}
	if key.SessionID != ogs.ID() || key.RoomID != "!a:x" || key.Algorithm != id.AlgorithmMegolmV1 {
		t.Errorf("m.room_key names %+v", key)
	}
	igs, err := olm.NewInboundGroupSession([]byte(key.SessionKey))
	if err != nil {
		t.Fatalf("the key is not the signed m.room_key form: %v", err)
	}
	for i, c := range ciphertexts {
		plain, index, err := igs.Decrypt(c)
		if err != nil || string(plain) != fmt.Sprintf("message %d", i) || index != uint(i) {
			t.Errorf("message %d: %q at index %d, %v", i, plain, index, err)
		}
	}

	late, err := ogs.Pickle(pickleKey) // at index 3 now
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (historySession{id: ogs.ID(), room: "!a:x", pickle: string(late)}).roomKey(); err == nil {
		t.Error("a session kept after its first message gave a key")
	}
	if _, err := (historySession{id: "other", room: "!a:x", pickle: string(pickle)}).roomKey(); err == nil {
		t.Error("a session kept under another ID gave a key")
	}
}
