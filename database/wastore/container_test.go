package wastore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// perDeviceTables lists every table that holds data of one device.
var perDeviceTables = []string{
	"wastore_identity", "wastore_session", "wastore_pre_key", "wastore_sender_key",
	"wastore_app_state_sync_key", "wastore_app_state_version", "wastore_app_state_mutation_mac",
	"wastore_contact", "wastore_chat_settings", "wastore_message_secret", "wastore_privacy_token",
	"wastore_event_buffer",
}

// fillEveryStore writes at least one row into every per-device table through the stores.
func fillEveryStore(t *testing.T, dev *store.Device) {
	t.Helper()
	ctx := context.Background()
	alice := types.NewJID("4915100000001", types.DefaultUserServer)
	steps := []struct {
		name string
		run  func() error
	}{
		{"identity", func() error { return dev.Identities.PutIdentity(ctx, "4915100000001:0", [32]byte{1}) }},
		{"session", func() error { return dev.Sessions.PutSession(ctx, "4915100000001:0", []byte("session")) }},
		{"prekeys", func() error { _, err := dev.PreKeys.GetOrGenPreKeys(ctx, 3); return err }},
		{"sender key", func() error { return dev.SenderKeys.PutSenderKey(ctx, "group@g.us", "4915100000001:0", []byte("sk")) }},
		{"sync key", func() error {
			return dev.AppStateKeys.PutAppStateSyncKey(ctx, []byte("key"), store.AppStateSyncKey{Data: []byte("d"), Fingerprint: []byte("f"), Timestamp: 1})
		}},
		{"app state version", func() error { return dev.AppState.PutAppStateVersion(ctx, "regular", 1, [128]byte{2}) }},
		{"mutation MACs", func() error {
			return dev.AppState.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{{IndexMAC: []byte("i"), ValueMAC: []byte("v")}})
		}},
		{"contact", func() error { _, _, err := dev.Contacts.PutPushName(ctx, alice, "Alice"); return err }},
		{"chat settings", func() error { return dev.ChatSettings.PutPinned(ctx, alice, true) }},
		{"message secret", func() error { return dev.MsgSecrets.PutMessageSecret(ctx, alice, alice, "MSG1", []byte("secret")) }},
		{"privacy token", func() error {
			return dev.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: alice, Token: []byte("t"), Timestamp: time.Unix(100, 0)})
		}},
		{"event buffer", func() error { return dev.EventBuffer.PutBufferedEvent(ctx, [32]byte{3}, []byte("pt"), time.Now()) }},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			t.Fatalf("filling %s: %v", step.name, err)
		}
	}
}

func TestUpgradeRefusesSQLiteWithoutForeignKeys(t *testing.T) {
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "nofk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	db, err := dbutil.NewWithDB(raw, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	err = New(db, nil).Upgrade(context.Background())
	if !errors.Is(err, ErrForeignKeysOff) {
		t.Fatalf("Upgrade without foreign keys: got %v, want ErrForeignKeysOff", err)
	}
}

func TestSchemaLivesUnderItsOwnVersionTable(t *testing.T) {
	eachBackend(t, testSchemaLivesUnderItsOwnVersionTable)
}

func testSchemaLivesUnderItsOwnVersionTable(t *testing.T, b backend) {
	c := b.open(t)
	ctx := context.Background()
	var version int
	if err := c.db.QueryRow(ctx, "SELECT version FROM "+VersionTable).Scan(&version); err != nil {
		t.Fatalf("reading %s: %v", VersionTable, err)
	}
	if version != len(UpgradeTable) {
		t.Errorf("schema version %d, want %d", version, len(UpgradeTable))
	}
	if exists, err := c.db.TableExists(ctx, "version"); err != nil || exists {
		t.Errorf("generic version table exists=%v err=%v; the store must not claim it", exists, err)
	}
	// A second upgrade of an up-to-date schema is a no-op, not an error.
	if err := c.Upgrade(ctx); err != nil {
		t.Errorf("second Upgrade: %v", err)
	}
}

func TestDeviceRoundTrip(t *testing.T) { eachBackend(t, testDeviceRoundTrip) }

func testDeviceRoundTrip(t *testing.T, b backend) {
	c := b.open(t)
	ctx := context.Background()

	fresh := c.NewDevice()
	if _, err := fresh.Sessions.GetSession(ctx, "x:0"); !errors.Is(err, ErrDeviceIDMustBeSet) {
		t.Errorf("store of unsaved device: got %v, want ErrDeviceIDMustBeSet", err)
	}
	if err := c.PutDevice(ctx, fresh); !errors.Is(err, ErrDeviceIDMustBeSet) {
		t.Errorf("PutDevice without JID: got %v, want ErrDeviceIDMustBeSet", err)
	}
	if first, err := c.GetFirstDevice(ctx); err != nil || first.ID != nil || first.Container != c {
		t.Errorf("GetFirstDevice on empty store = %+v, %v; want a new unsaved device", first, err)
	}

	dev := savedDevice(t, c, "4915112345678:7@s.whatsapp.net")
	dev.LID = mustJID("123456789:7@lid")
	dev.Platform, dev.BusinessName, dev.PushName = "android", "Ministry", "Clerk"
	dev.FacebookUUID = uuid.New()
	dev.LIDMigrationTimestamp = 1700000000
	if err := dev.Save(ctx); err != nil {
		t.Fatalf("re-saving: %v", err)
	}
	// The stores were bound at save time and work now.
	if err := dev.Sessions.PutSession(ctx, "a:1", []byte("s")); err != nil {
		t.Fatalf("PutSession after save: %v", err)
	}
	other := savedDevice(t, c, "4915100000000:2@s.whatsapp.net")

	// Read back as a restarted process would.
	must(t, c.Close())
	c2 := b.open(t)
	got, err := c2.GetDevice(ctx, *dev.ID)
	if err != nil || got == nil {
		t.Fatalf("GetDevice = %v, %v", got, err)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"ID", *got.ID, *dev.ID},
		{"LID", got.LID, dev.LID},
		{"RegistrationID", got.RegistrationID, dev.RegistrationID},
		{"NoiseKey.Priv", *got.NoiseKey.Priv, *dev.NoiseKey.Priv},
		{"NoiseKey.Pub", *got.NoiseKey.Pub, *dev.NoiseKey.Pub},
		{"IdentityKey.Pub", *got.IdentityKey.Pub, *dev.IdentityKey.Pub},
		{"SignedPreKey.KeyID", got.SignedPreKey.KeyID, dev.SignedPreKey.KeyID},
		{"SignedPreKey.Pub", *got.SignedPreKey.Pub, *dev.SignedPreKey.Pub},
		{"SignedPreKey.Signature", *got.SignedPreKey.Signature, *dev.SignedPreKey.Signature},
		{"AdvSecretKey", string(got.AdvSecretKey), string(dev.AdvSecretKey)},
		{"Account", proto.Equal(got.Account, dev.Account), true},
		{"Platform", got.Platform, dev.Platform},
		{"BusinessName", got.BusinessName, dev.BusinessName},
		{"PushName", got.PushName, dev.PushName},
		{"FacebookUUID", got.FacebookUUID, dev.FacebookUUID},
		{"LIDMigrationTimestamp", got.LIDMigrationTimestamp, dev.LIDMigrationTimestamp},
		{"Container", got.Container == store.DeviceContainer(c2), true},
		{"LIDs wired", got.LIDs != nil, true},
		{"Initialized", got.Initialized, true},
	}
	for _, check := range checks {
		if check.got != check.want {
			t.Errorf("%s: got %v, want %v", check.field, check.got, check.want)
		}
	}
	if sess, err := got.Sessions.GetSession(ctx, "a:1"); err != nil || string(sess) != "s" {
		t.Errorf("session via loaded device = %q, %v", sess, err)
	}

	all, err := c2.GetAllDevices(ctx)
	if err != nil || len(all) != 2 || *all[0].ID != *other.ID || *all[1].ID != *dev.ID {
		t.Errorf("GetAllDevices = %v, %v; want both devices ordered by JID", all, err)
	}
	if first, err := c2.GetFirstDevice(ctx); err != nil || first.ID == nil || *first.ID != *other.ID {
		t.Errorf("GetFirstDevice = %v, %v; want %s", first, err, other.ID)
	}
	if missing, err := c2.GetDevice(ctx, mustJID("1:1@s.whatsapp.net")); missing != nil || err != nil {
		t.Errorf("GetDevice of unknown JID = %v, %v; want nil, nil", missing, err)
	}
}

func TestDeleteDeviceCascades(t *testing.T) { eachBackend(t, testDeleteDeviceCascades) }

func testDeleteDeviceCascades(t *testing.T, b backend) {
	c := b.open(t)
	ctx := context.Background()
	gone := savedDevice(t, c, "4915111111111:3@s.whatsapp.net")
	kept := savedDevice(t, c, "4915122222222:4@s.whatsapp.net")
	fillEveryStore(t, gone)
	fillEveryStore(t, kept)
	goneJID, keptJID := gone.ID.String(), kept.ID.String()
	for _, table := range perDeviceTables {
		if countRows(t, c, table, goneJID) == 0 {
			t.Fatalf("%s has no rows for %s before deletion; the test fills nothing", table, goneJID)
		}
	}

	if err := gone.Delete(ctx); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if gone.ID != nil {
		t.Errorf("Device.Delete left ID %v", gone.ID)
	}
	for _, table := range perDeviceTables {
		if n := countRows(t, c, table, goneJID); n != 0 {
			t.Errorf("%s still has %d rows of the deleted device", table, n)
		}
		if n := countRows(t, c, table, keptJID); n == 0 {
			t.Errorf("%s lost the other device's rows", table)
		}
	}
	if dev, err := c.GetDevice(ctx, mustJID(goneJID)); dev != nil || err != nil {
		t.Errorf("GetDevice after delete = %v, %v", dev, err)
	}
	if err := gone.Sessions.PutSession(ctx, "x:0", []byte("s")); !errors.Is(err, ErrDeviceIDMustBeSet) {
		t.Errorf("store of deleted device: got %v, want ErrDeviceIDMustBeSet", err)
	}
}

func TestNewKeepsTheCallersChildSchema(t *testing.T) {
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "shared.db")+"?_pragma=foreign_keys(1)")
	must(t, err)
	defer raw.Close()
	parent, err := dbutil.NewWithDB(raw, "sqlite")
	must(t, err)
	c := New(parent.Child("bridge_wa_version", UpgradeTable, nil), nil)
	must(t, c.Upgrade(ctx))
	for table, want := range map[string]bool{"bridge_wa_version": true, VersionTable: false, "wastore_device": true} {
		if exists, err := parent.TableExists(ctx, table); err != nil || exists != want {
			t.Errorf("table %s exists=%v (err %v), want %v", table, exists, err, want)
		}
	}
	// The container does not own a database it was given.
	must(t, c.Close())
	if err := raw.PingContext(ctx); err != nil {
		t.Errorf("Close closed the caller's database: %v", err)
	}
}
