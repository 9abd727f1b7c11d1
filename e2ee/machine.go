//go:build goolm

package e2ee

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/e2ee/upgrades"
)

// pickleKey encrypts the Olm and Megolm pickles in the database. It is a constant on
// purpose: the store sits in the bridge's database next to the WhatsApp Signal keys, which
// are no better protected, and a key derived from the config would make every session
// unreadable the day an operator rotates as_token.
var pickleKey = []byte("causeway e2ee")

// deviceDisplayName is what users see for the bot's device in their clients.
const deviceDisplayName = "Causeway bridge"

// State is the part of the bridge's Matrix state store the machine reads.
type State interface {
	crypto.StateStore
	GetRoomJoinedOrInvitedMembers(ctx context.Context, room id.RoomID) ([]id.UserID, error)
}

// Machine is the bot's encryption device.
type Machine struct {
	cfg    config.Encryption
	mach   *crypto.OlmMachine
	client *mautrix.Client
	// store is the crypto store, with the outbound sessions in memory (outbound.go).
	store *outboundStore
	// db holds the package's own tables (e2ee/upgrades).
	db    *dbutil.Database
	state State
	owner func(ctx context.Context, room id.RoomID) id.UserID
	count func(reason string)
	// countHistory hears what became of history keys (Deps.CountHistory).
	countHistory func(outcome string, n int)
	log          zerolog.Logger

	// encryptedRooms are the rooms IsEncrypted has seen encrypted.
	encryptedRooms sync.Map

	// toDeviceMu makes one /sync's to-device events the only ones in the machine at a
	// time, so that a failure olmFailed counts belongs to the event being handled.
	toDeviceMu sync.Mutex
	olmFailed  *olmFailures

	// roomLocks keeps two senders in one room from sharing a new session twice.
	roomLocksMu sync.Mutex
	roomLocks   map[id.RoomID]*sync.Mutex

	// history gives portal owners' new devices the keys of their portals' history.
	history *historyKeys
}

// Open logs the bot's device in (the same device every time: its ID is in the crypto
// store), loads or creates its Olm account, uploads its device keys and one-time keys and
// tries to cross-sign it.
func Open(ctx context.Context, d Deps) (*Machine, error) {
	log := d.Log
	store := crypto.NewSQLCryptoStore(d.DB.Database, dbutil.ZeroLogger(log.With().Str("db_section", "crypto").Logger()),
		string(d.Login.UserID), "", pickleKey)
	if err := database.UpgradeChild(ctx, store.DB, "crypto"); err != nil {
		return nil, err
	}
	db := d.DB.Child("e2ee_version", upgrades.Table, "e2ee")
	if err := database.UpgradeChild(ctx, db, "encryption history keys"); err != nil {
		return nil, err
	}
	deviceID, err := store.FindDeviceID(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read the bot's device ID: %w", err)
	}
	client := d.Login
	resp, err := client.Login(ctx, &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypeAppservice,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: string(client.UserID)},
		DeviceID:                 deviceID,
		InitialDeviceDisplayName: deviceDisplayName,
		StoreCredentials:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to log in the bridge bot's encryption device: %w", err)
	}
	// From here on the client is the device, not the appservice: ?user_id= would be
	// meaningless with the device's own token.
	client.SetAppServiceUserID = false
	store.DeviceID = resp.DeviceID
	log = log.With().Stringer("bot_device", resp.DeviceID).Logger()
	if deviceID != "" && deviceID != resp.DeviceID {
		return nil, fmt.Errorf("the homeserver gave the bot device %s instead of its stored device %s", resp.DeviceID, deviceID)
	}

	outbound, err := newOutboundStore(ctx, store)
	if err != nil {
		return nil, err
	}
	m := &Machine{cfg: d.Config, client: client, store: outbound, db: db, state: d.State, owner: d.RoomOwner, count: d.Count,
		log: log, roomLocks: map[id.RoomID]*sync.Mutex{}}
	if m.count == nil {
		m.count = func(string) {}
	}
	m.countHistory = d.CountHistory
	if m.countHistory == nil {
		m.countHistory = func(string, int) {}
	}
	m.olmFailed = &olmFailures{}
	mlog := log.With().Str("component", "olm").Logger().Hook(m.olmFailed)
	m.mach = crypto.NewOlmMachine(client, &mlog, outbound, d.State)
	m.mach.ShareKeysMinTrust = m.minTrust()
	m.mach.SendKeysMinTrust = m.minTrust()
	m.mach.AllowKeyShare = m.allowKeyShare
	if err := m.mach.Load(ctx); err != nil {
		return nil, fmt.Errorf("failed to load the bot's Olm account: %w", err)
	}
	if err := m.mach.ShareKeys(ctx, -1); err != nil {
		m.mach.Destroy()
		return nil, fmt.Errorf("failed to upload the bot device's keys: %w", err)
	}
	m.crossSign(ctx)
	m.history = newHistoryKeys(m)
	m.history.start()
	log.Info().Bool("new_device", deviceID == "").Str("olm_driver", Driver()).Msg("Bridge bot's encryption device is ready")
	return m, nil
}

func (m *Machine) minTrust() id.TrustState {
	if m.cfg.ShareWith == config.ShareWithCrossSignedOnly {
		return id.TrustStateCrossSignedTOFU
	}
	return id.TrustStateUnset
}

// crossSign signs the bot's device with the bot's own cross-signing keys, so that clients
// show the device as verified by its owner. Homeservers demand interactive auth to publish
// cross-signing keys (Dendrite 0.13.8 only accepts a password, which an appservice bot
// does not have), so failing here leaves the device working, only unverified.
func (m *Machine) crossSign(ctx context.Context) {
	hasKeys, verified, err := m.mach.GetOwnVerificationStatus(ctx)
	if err != nil {
		m.log.Warn().Err(err).Msg("Failed to read the bot's cross-signing status")
		return
	}
	if hasKeys && verified {
		return
	}
	if hasKeys {
		m.log.Warn().Msg("The bot has cross-signing keys on the homeserver that this bridge does not hold; its device stays unverified")
		return
	}
	if _, err := m.mach.GenerateAndVerifyWithRecoveryKey(ctx); err != nil {
		m.log.Warn().Err(err).Msg("Could not publish cross-signing keys for the bridge bot (the homeserver wants interactive auth); its device stays unverified")
		return
	}
	m.log.Info().Msg("Cross-signed the bridge bot's device")
}

// Client is the bot's device: the bridge's /sync must use it, or to-device events for the
// device would never arrive.
func (m *Machine) Client() *mautrix.Client { return m.client }

// DeviceID is the bot's device.
func (m *Machine) DeviceID() id.DeviceID { return m.client.DeviceID }

// HandleMember rotates the room's outbound session when someone leaves (or joins): a
// leaver must not read what is sent after.
func (m *Machine) HandleMember(ctx context.Context, evt *event.Event) {
	m.mach.HandleMemberEvent(ctx, evt)
}

// IsEncrypted says whether a room has m.room.encryption. Every message the bridge sends asks;
// a room once encrypted stays so (Matrix has no way to turn encryption off), so a yes is
// remembered instead of read from the state store again.
func (m *Machine) IsEncrypted(ctx context.Context, room id.RoomID) bool {
	if _, ok := m.encryptedRooms.Load(room); ok {
		return true
	}
	ok, err := m.state.IsEncrypted(ctx, room)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", room).Msg("Failed to read whether a room is encrypted")
	}
	if ok {
		m.encryptedRooms.Store(room, struct{}{})
	}
	return ok
}

func (m *Machine) roomLock(room id.RoomID) *sync.Mutex {
	m.roomLocksMu.Lock()
	defer m.roomLocksMu.Unlock()
	l, ok := m.roomLocks[room]
	if !ok {
		l = &sync.Mutex{}
		m.roomLocks[room] = l
	}
	return l
}

// Encrypt encrypts an event for a room with the bot device's outbound Megolm session,
// sharing a new one with the room's members first when there is none or it has expired.
func (m *Machine) Encrypt(ctx context.Context, room id.RoomID, typ event.Type, content any) (*event.EncryptedEventContent, error) {
	l := m.roomLock(room)
	l.Lock()
	defer l.Unlock()
	enc, err := m.mach.EncryptMegolmEvent(ctx, room, typ, content)
	if errors.Is(err, crypto.ErrSessionExpired) || errors.Is(err, crypto.ErrNoGroupSession) || errors.Is(err, crypto.ErrSessionNotShared) {
		members, merr := m.state.GetRoomJoinedOrInvitedMembers(ctx, room)
		if merr != nil {
			return nil, fmt.Errorf("failed to list the members of %s to share a session with: %w", room, merr)
		}
		if serr := m.mach.ShareGroupSession(ctx, room, members); serr != nil {
			return nil, fmt.Errorf("failed to share a Megolm session in %s: %w", room, serr)
		}
		if m.owner != nil {
			m.history.keep(ctx, room, m.owner(ctx, room))
		}
		enc, err = m.mach.EncryptMegolmEvent(ctx, room, typ, content)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to encrypt a %s event for %s: %w", typ.Type, room, err)
	}
	return enc, nil
}

// Close stops the machine's background work.
func (m *Machine) Close() {
	m.history.close()
	m.mach.Destroy()
}
