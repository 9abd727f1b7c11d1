package wastore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite" // the pure-Go "sqlite" database/sql driver, for OpenSQLite
)

// ErrDeviceIDMustBeSet is returned when a device without a JID is saved or deleted, and by
// the device's stores before it has been saved (before pairing) or after it was deleted.
var ErrDeviceIDMustBeSet = errors.New("wastore: device JID must be known before accessing the database")

// ErrForeignKeysOff is returned by Upgrade on an SQLite connection without foreign keys:
// device deletion relies on ON DELETE CASCADE to wipe the key material.
var ErrForeignKeysOff = errors.New("wastore: SQLite foreign keys are off (add _pragma=foreign_keys(1) to the DSN)")

// ErrCorruptRow means a stored value cannot be what we wrote (e.g. a key of the wrong length).
var ErrCorruptRow = errors.New("wastore: corrupt row")

// Container implements store.DeviceContainer and creates devices whose stores are all backed
// by one database. Use one Container per database: the LID map cache lives here.
type Container struct {
	db     *dbutil.Database
	log    waLog.Logger
	lids   *lidMap
	ownsDB bool

	// Device stores with buffered-event clears still to write (see
	// ClearBufferedEventPlaintext); Close writes them. After Close, clears are written at once.
	pendingLock sync.Mutex
	pending     map[*deviceStore]struct{}
	closed      bool

	// Each device's buffered event hashes (see bufferFilter), by device JID.
	filterLock sync.Mutex
	filters    map[string]*bufferFilter
}

var _ store.DeviceContainer = (*Container)(nil)

// New wraps db. If db has no upgrade table of its own (a plain dbutil.NewWithDB database,
// for example), New works on db.Child(VersionTable, UpgradeTable, nil) instead, so the
// caller's value is never mutated; otherwise db must already be such a child, e.g.
// parent.Child("wastore_version", wastore.UpgradeTable, log). New does not touch the
// database: call Upgrade before use. A nil log means no logging.
func New(db *dbutil.Database, log waLog.Logger) *Container {
	if len(db.UpgradeTable) == 0 {
		db = db.Child(VersionTable, UpgradeTable, nil)
	}
	if log == nil {
		log = waLog.Noop
	}
	return &Container{db: db, log: log, lids: newLIDMap(db), pending: map[*deviceStore]struct{}{},
		filters: map[string]*bufferFilter{}}
}

// OpenSQLite opens (creating if needed) the SQLite file at path with foreign keys, a busy
// timeout and WAL, brings the schema up to date and returns a Container that closes the
// file on Close. Transactions take the write lock when they begin (_txlock=immediate): a
// deferred transaction that reads and then writes, as Signal decryption does, would fail
// with SQLITE_BUSY instead of waiting whenever another connection wrote in between.
func OpenSQLite(ctx context.Context, path string, log waLog.Logger) (*Container, error) {
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	rawDB, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to open SQLite database %s: %w", path, err)
	}
	db, err := dbutil.NewWithDB(rawDB, "sqlite")
	if err != nil {
		_ = rawDB.Close()
		return nil, fmt.Errorf("failed to wrap SQLite database %s: %w", path, err)
	}
	c := New(db, log)
	c.ownsDB = true
	if err := c.Upgrade(ctx); err != nil {
		_ = rawDB.Close()
		return nil, fmt.Errorf("failed to prepare device store in %s: %w", path, err)
	}
	return c, nil
}

// Close writes what the device stores left pending and closes the database if this
// container opened it (OpenSQLite); a database passed to New belongs to the caller and is
// left open, but must stay open until Close returns.
func (c *Container) Close() error {
	if c == nil {
		return nil
	}
	c.pendingLock.Lock()
	c.closed = true
	stores := make([]*deviceStore, 0, len(c.pending))
	for s := range c.pending {
		stores = append(stores, s)
	}
	clear(c.pending)
	c.pendingLock.Unlock()
	for _, s := range stores {
		s.flushClears()
	}
	if !c.ownsDB {
		return nil
	}
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("failed to close device store database: %w", err)
	}
	return nil
}

// Upgrade brings the device store schema up to date. On SQLite it refuses to run without
// foreign keys, because then deleting a device would leave its keys behind.
func (c *Container) Upgrade(ctx context.Context) error {
	if c.db.Dialect == dbutil.SQLite {
		var enabled bool
		if err := c.db.QueryRow(ctx, "PRAGMA foreign_keys").Scan(&enabled); err != nil {
			return fmt.Errorf("failed to check whether SQLite foreign keys are on: %w", err)
		} else if !enabled {
			return ErrForeignKeysOff
		}
	}
	if err := c.db.Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to upgrade device store schema: %w", err)
	}
	return nil
}

// NewDevice returns a device with fresh keys and every store wired to this container. The
// device is not stored until it has a JID and is saved; pairing does that. Account stays nil
// until pairing provides it (PutDevice accepts that).
func (c *Container) NewDevice() *store.Device {
	identity := keys.NewKeyPair()
	device := &store.Device{
		Log:            c.log,
		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    identity,
		SignedPreKey:   identity.CreateSignedPreKey(1),
		RegistrationID: newRegistrationID(),
		AdvSecretKey:   randomBytes(32),
	}
	c.wire(device, "")
	return device
}

// wire points every store of device at a fresh deviceStore bound to jid ("" = not yet known).
func (c *Container) wire(device *store.Device, jid string) {
	s := newDeviceStore(c, jid)
	device.Identities = s
	device.Sessions = s
	device.PreKeys = s
	device.SenderKeys = s
	device.AppStateKeys = s
	device.AppState = s
	device.Contacts = s
	device.ChatSettings = s
	device.MsgSecrets = s
	device.PrivacyTokens = s
	device.EventBuffer = s
	device.LIDs = c.lids
	device.Container = c
	device.Initialized = true
}

// ownStore is the device's deviceStore if it belongs to this container.
func (c *Container) ownStore(device *store.Device) *deviceStore {
	s, ok := device.Identities.(*deviceStore)
	if !ok || s.c != c {
		return nil
	}
	return s
}

const deviceColumns = `jid, lid, registration_id, noise_priv, identity_priv,
	signed_pre_key_id, signed_pre_key_priv, signed_pre_key_sig, adv_secret_key, account,
	platform, business_name, push_name, facebook_uuid, lid_migration_ts`

func (c *Container) scanDevice(row dbutil.Scannable) (*store.Device, error) {
	var (
		device                                   store.Device
		jid                                      types.JID
		regID, preKeyID                          int64
		noise, identity, preKey, preKeySig, acct []byte
		fbUUID                                   sql.NullString
	)
	err := row.Scan(&jid, &device.LID, &regID, &noise, &identity,
		&preKeyID, &preKey, &preKeySig, &device.AdvSecretKey, &acct,
		&device.Platform, &device.BusinessName, &device.PushName, &fbUUID, &device.LIDMigrationTimestamp)
	if err != nil {
		return nil, err
	}
	if len(noise) != 32 || len(identity) != 32 || len(preKey) != 32 || len(preKeySig) != 64 {
		return nil, fmt.Errorf("%w: device %s has keys of the wrong length", ErrCorruptRow, jid)
	}
	device.ID = &jid
	device.RegistrationID = uint32(regID)
	device.NoiseKey = keys.NewKeyPairFromPrivateKey([32]byte(noise))
	device.IdentityKey = keys.NewKeyPairFromPrivateKey([32]byte(identity))
	device.SignedPreKey = &keys.PreKey{
		KeyPair:   *keys.NewKeyPairFromPrivateKey([32]byte(preKey)),
		KeyID:     uint32(preKeyID),
		Signature: (*[64]byte)(preKeySig),
	}
	if acct != nil {
		device.Account = &waAdv.ADVSignedDeviceIdentity{}
		if err := proto.Unmarshal(acct, device.Account); err != nil {
			return nil, fmt.Errorf("%w: account identity of device %s: %w", ErrCorruptRow, jid, err)
		}
	}
	if fbUUID.Valid {
		if device.FacebookUUID, err = uuid.Parse(fbUUID.String); err != nil {
			return nil, fmt.Errorf("%w: facebook UUID of device %s: %w", ErrCorruptRow, jid, err)
		}
	}
	device.Log = c.log
	c.wire(&device, jid.String())
	return &device, nil
}

// GetAllDevices returns every stored device, ordered by JID.
func (c *Container) GetAllDevices(ctx context.Context) ([]*store.Device, error) {
	rows, err := c.db.Query(ctx, "SELECT "+deviceColumns+" FROM wastore_device ORDER BY jid")
	if err != nil {
		return nil, fmt.Errorf("failed to query devices: %w", err)
	}
	defer rows.Close()
	devices := make([]*store.Device, 0)
	for rows.Next() {
		device, err := c.scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to read device: %w", err)
		}
		devices = append(devices, device)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to iterate devices: %w", err)
	}
	return devices, nil
}

// GetFirstDevice returns the stored device with the lowest JID, or a NewDevice when there
// is none. Only for single-login programs (tests, simulator phones).
func (c *Container) GetFirstDevice(ctx context.Context) (*store.Device, error) {
	device, err := c.scanDevice(c.db.QueryRow(ctx, "SELECT "+deviceColumns+" FROM wastore_device ORDER BY jid LIMIT 1"))
	if errors.Is(err, sql.ErrNoRows) {
		return c.NewDevice(), nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get first device: %w", err)
	}
	return device, nil
}

// GetDevice returns the device stored under jid (an AD-JID, with the device number), or
// nil, nil when there is none.
func (c *Container) GetDevice(ctx context.Context, jid types.JID) (*store.Device, error) {
	device, err := c.scanDevice(c.db.QueryRow(ctx, "SELECT "+deviceColumns+" FROM wastore_device WHERE jid=$1", jid.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get device %s: %w", jid, err)
	}
	return device, nil
}

// The counter column next_pre_key_id is deliberately absent: it belongs to the prekey store.
const putDeviceQuery = `
	INSERT INTO wastore_device (` + deviceColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
	ON CONFLICT (jid) DO UPDATE SET
		lid=excluded.lid, registration_id=excluded.registration_id,
		noise_priv=excluded.noise_priv, identity_priv=excluded.identity_priv,
		signed_pre_key_id=excluded.signed_pre_key_id, signed_pre_key_priv=excluded.signed_pre_key_priv,
		signed_pre_key_sig=excluded.signed_pre_key_sig, adv_secret_key=excluded.adv_secret_key,
		account=excluded.account, platform=excluded.platform, business_name=excluded.business_name,
		push_name=excluded.push_name, facebook_uuid=excluded.facebook_uuid,
		lid_migration_ts=excluded.lid_migration_ts
`

// PutDevice inserts or updates the device (every field of it), then makes sure its stores
// are this container's and bound to its JID. whatsmeow calls it through Device.Save.
func (c *Container) PutDevice(ctx context.Context, device *store.Device) error {
	if device.ID == nil || device.ID.IsEmpty() {
		return ErrDeviceIDMustBeSet
	}
	jid := device.ID.String()
	if device.NoiseKey == nil || device.IdentityKey == nil || device.SignedPreKey == nil || device.SignedPreKey.Signature == nil {
		return fmt.Errorf("wastore: device %s is missing its noise, identity or signed prekey", jid)
	}
	var account []byte
	if device.Account != nil {
		var err error
		if account, err = proto.Marshal(device.Account); err != nil {
			return fmt.Errorf("failed to encode account identity of device %s: %w", jid, err)
		}
	}
	var fbUUID sql.NullString
	if device.FacebookUUID != uuid.Nil {
		fbUUID = sql.NullString{String: device.FacebookUUID.String(), Valid: true}
	}
	_, err := c.db.Exec(ctx, putDeviceQuery,
		jid, device.LID, int64(device.RegistrationID), device.NoiseKey.Priv[:], device.IdentityKey.Priv[:],
		int64(device.SignedPreKey.KeyID), device.SignedPreKey.Priv[:], device.SignedPreKey.Signature[:],
		device.AdvSecretKey, account, device.Platform, device.BusinessName, device.PushName, fbUUID,
		device.LIDMigrationTimestamp)
	if err != nil {
		return fmt.Errorf("failed to store device %s: %w", jid, err)
	}
	if s := c.ownStore(device); s != nil {
		s.bind(jid)
	} else {
		c.wire(device, jid)
	}
	return nil
}

// DeleteDevice deletes the device and, through ON DELETE CASCADE, everything stored for it.
// Its stores are unbound, so later calls on them fail with ErrDeviceIDMustBeSet.
func (c *Container) DeleteDevice(ctx context.Context, device *store.Device) error {
	if device.ID == nil || device.ID.IsEmpty() {
		return ErrDeviceIDMustBeSet
	}
	if _, err := c.db.Exec(ctx, "DELETE FROM wastore_device WHERE jid=$1", device.ID.String()); err != nil {
		return fmt.Errorf("failed to delete device %s: %w", device.ID, err)
	}
	if s := c.ownStore(device); s != nil {
		s.bind("")
	}
	return nil
}

// newRegistrationID picks a random non-zero Signal registration ID.
func newRegistrationID() uint32 {
	for {
		if id := binary.BigEndian.Uint32(randomBytes(4)); id != 0 {
			return id
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (it panics instead).
	_, _ = rand.Read(b)
	return b
}
