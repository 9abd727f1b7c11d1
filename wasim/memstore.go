package wasim

import (
	"bytes"
	"context"
	"errors"
	mathrand "math/rand/v2"
	"strings"
	"sync"

	"go.mau.fi/util/random"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// MemoryStore keeps one whatsmeow device's whole store in memory.
//
// It exists because whatsmeow's own sqlstore does not build in this module: at the pinned whatsmeow
// version it calls dbutil.UpgradeTable.RegisterFS, which go.mau.fi/util v0.11.0 (required by mautrix
// v0.32.0) no longer has. The bridge brings its own persistent store; the simulator's phones and test
// companions only need one that lives as long as the test.
type MemoryStore struct {
	mu           sync.Mutex
	identities   map[string][32]byte
	sessions     map[string][]byte
	preKeys      map[uint32]*memPreKey
	nextPreKey   uint32
	senderKeys   map[string][]byte
	appKeys      map[string]store.AppStateSyncKey
	latestAppKey []byte
	appVersions  map[string]memAppVersion
	appMACs      map[string][]byte
	contacts     map[types.JID]types.ContactInfo
	chats        map[types.JID]types.LocalChatSettings
	secrets      map[string]memSecret
	tokens       map[types.JID]store.PrivacyToken
	buffered     map[[32]byte]*store.BufferedEvent
	lidToPN      map[string]string
	pnToLID      map[string]string
	saved        bool
}

type memPreKey struct {
	key      *keys.PreKey
	uploaded bool
}

type memAppVersion struct {
	version uint64
	hash    [128]byte
}

type memSecret struct {
	secret []byte
	sender types.JID
}

var _ store.AllStores = (*MemoryStore)(nil)
var _ store.DeviceContainer = (*MemoryStore)(nil)

// NewMemoryDevice creates an unpaired device (fresh keys) backed by a MemoryStore.
func NewMemoryDevice() *store.Device {
	ms := &MemoryStore{
		identities: map[string][32]byte{}, sessions: map[string][]byte{}, preKeys: map[uint32]*memPreKey{},
		senderKeys: map[string][]byte{}, appKeys: map[string]store.AppStateSyncKey{},
		appVersions: map[string]memAppVersion{}, appMACs: map[string][]byte{},
		contacts: map[types.JID]types.ContactInfo{}, chats: map[types.JID]types.LocalChatSettings{},
		secrets: map[string]memSecret{}, tokens: map[types.JID]store.PrivacyToken{},
		buffered: map[[32]byte]*store.BufferedEvent{}, lidToPN: map[string]string{}, pnToLID: map[string]string{},
	}
	dev := &store.Device{
		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    keys.NewKeyPair(),
		RegistrationID: mathrand.Uint32(),
		AdvSecretKey:   random.Bytes(32),
		Container:      ms,
	}
	dev.SignedPreKey = dev.IdentityKey.CreateSignedPreKey(1)
	dev.Identities, dev.Sessions, dev.PreKeys, dev.SenderKeys = ms, ms, ms, ms
	dev.AppStateKeys, dev.AppState, dev.Contacts, dev.ChatSettings = ms, ms, ms, ms
	dev.MsgSecrets, dev.PrivacyTokens, dev.EventBuffer, dev.LIDs = ms, ms, ms, ms
	dev.Initialized = true
	return dev
}

// PutDevice is called by Device.Save; the device struct itself is the stored state.
func (ms *MemoryStore) PutDevice(_ context.Context, dev *store.Device) error {
	if dev.ID == nil {
		return errors.New("device JID must be known before saving")
	}
	ms.mu.Lock()
	ms.saved = true
	ms.mu.Unlock()
	return nil
}

// DeleteDevice forgets everything, as whatsmeow does on logout.
func (ms *MemoryStore) DeleteDevice(_ context.Context, _ *store.Device) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.saved = false
	ms.sessions = map[string][]byte{}
	ms.identities = map[string][32]byte{}
	ms.senderKeys = map[string][]byte{}
	return nil
}

// Deleted reports whether whatsmeow deleted the device (for example after being logged out).
func (ms *MemoryStore) Deleted() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return !ms.saved
}

func (ms *MemoryStore) PutIdentity(_ context.Context, address string, key [32]byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.identities[address] = key
	return nil
}

func deleteByUser[V any](m map[string]V, user string) {
	for k := range m {
		if strings.HasPrefix(k, user+":") {
			delete(m, k)
		}
	}
}

func (ms *MemoryStore) DeleteAllIdentities(_ context.Context, phone string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	deleteByUser(ms.identities, phone)
	return nil
}

func (ms *MemoryStore) DeleteIdentity(_ context.Context, address string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.identities, address)
	return nil
}

func (ms *MemoryStore) IsTrustedIdentity(_ context.Context, address string, key [32]byte) (bool, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	existing, ok := ms.identities[address]
	return !ok || existing == key, nil
}

func (ms *MemoryStore) GetSession(_ context.Context, address string) ([]byte, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.sessions[address], nil
}

func (ms *MemoryStore) HasSession(_ context.Context, address string) (bool, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	_, ok := ms.sessions[address]
	return ok, nil
}

func (ms *MemoryStore) GetManySessions(_ context.Context, addresses []string) (map[string][]byte, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make(map[string][]byte, len(addresses))
	for _, a := range addresses {
		out[a] = ms.sessions[a]
	}
	return out, nil
}

func (ms *MemoryStore) PutSession(_ context.Context, address string, session []byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.sessions[address] = session
	return nil
}

func (ms *MemoryStore) PutManySessions(_ context.Context, sessions map[string][]byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for a, s := range sessions {
		ms.sessions[a] = s
	}
	return nil
}

func (ms *MemoryStore) DeleteAllSessions(_ context.Context, phone string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	deleteByUser(ms.sessions, phone)
	return nil
}

func (ms *MemoryStore) DeleteSession(_ context.Context, address string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.sessions, address)
	return nil
}

func migrateUser[V any](m map[string]V, from, to string) {
	for k, v := range m {
		if strings.HasPrefix(k, from+":") {
			m[to+k[len(from):]] = v
			delete(m, k)
		}
	}
}

// MigratePNToLID moves a contact's Signal state from its phone-number address to its LID address.
func (ms *MemoryStore) MigratePNToLID(_ context.Context, pn, lid types.JID) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	from, to := pn.SignalAddressUser(), lid.SignalAddressUser()
	migrateUser(ms.sessions, from, to)
	migrateUser(ms.identities, from, to)
	for k, v := range ms.senderKeys {
		group, user, ok := strings.Cut(k, "|")
		if ok && strings.HasPrefix(user, from+":") {
			ms.senderKeys[group+"|"+to+user[len(from):]] = v
			delete(ms.senderKeys, k)
		}
	}
	return nil
}

func (ms *MemoryStore) genPreKeyLocked(uploaded bool) *keys.PreKey {
	ms.nextPreKey++
	key := keys.NewPreKey(ms.nextPreKey)
	ms.preKeys[key.KeyID] = &memPreKey{key: key, uploaded: uploaded}
	return key
}

func (ms *MemoryStore) GetOrGenPreKeys(_ context.Context, count uint32) ([]*keys.PreKey, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []*keys.PreKey
	for id := uint32(1); id <= ms.nextPreKey && uint32(len(out)) < count; id++ {
		if pk := ms.preKeys[id]; pk != nil && !pk.uploaded {
			out = append(out, pk.key)
		}
	}
	for uint32(len(out)) < count {
		out = append(out, ms.genPreKeyLocked(false))
	}
	return out, nil
}

func (ms *MemoryStore) GenOnePreKey(_ context.Context) (*keys.PreKey, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.genPreKeyLocked(true), nil
}

func (ms *MemoryStore) GetPreKey(_ context.Context, id uint32) (*keys.PreKey, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if pk := ms.preKeys[id]; pk != nil {
		return pk.key, nil
	}
	return nil, nil
}

func (ms *MemoryStore) RemovePreKey(_ context.Context, id uint32) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.preKeys, id)
	return nil
}

func (ms *MemoryStore) MarkPreKeysAsUploaded(_ context.Context, upToID uint32) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for id, pk := range ms.preKeys {
		if id <= upToID {
			pk.uploaded = true
		}
	}
	return nil
}

func (ms *MemoryStore) UploadedPreKeyCount(_ context.Context) (int, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	n := 0
	for _, pk := range ms.preKeys {
		if pk.uploaded {
			n++
		}
	}
	return n, nil
}

func (ms *MemoryStore) PutSenderKey(_ context.Context, group, user string, session []byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.senderKeys[group+"|"+user] = session
	return nil
}

func (ms *MemoryStore) GetSenderKey(_ context.Context, group, user string) ([]byte, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.senderKeys[group+"|"+user], nil
}

func (ms *MemoryStore) PutAppStateSyncKey(_ context.Context, id []byte, key store.AppStateSyncKey) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.appKeys[string(id)] = key
	if latest, ok := ms.appKeys[string(ms.latestAppKey)]; !ok || key.Timestamp >= latest.Timestamp {
		ms.latestAppKey = bytes.Clone(id)
	}
	return nil
}

func (ms *MemoryStore) GetAppStateSyncKey(_ context.Context, id []byte) (*store.AppStateSyncKey, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if key, ok := ms.appKeys[string(id)]; ok {
		return &key, nil
	}
	return nil, nil
}

func (ms *MemoryStore) GetLatestAppStateSyncKeyID(_ context.Context) ([]byte, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.latestAppKey, nil
}

func (ms *MemoryStore) PutAppStateVersion(_ context.Context, name string, version uint64, hash [128]byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.appVersions[name] = memAppVersion{version: version, hash: hash}
	return nil
}

func (ms *MemoryStore) GetAppStateVersion(_ context.Context, name string) (uint64, [128]byte, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	v := ms.appVersions[name]
	return v.version, v.hash, nil
}

func (ms *MemoryStore) DeleteAppStateVersion(_ context.Context, name string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.appVersions, name)
	deleteByUser(ms.appMACs, name)
	return nil
}

func (ms *MemoryStore) PutAppStateMutationMACs(_ context.Context, name string, _ uint64, mutations []store.AppStateMutationMAC) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range mutations {
		ms.appMACs[name+":"+string(m.IndexMAC)] = m.ValueMAC
	}
	return nil
}

func (ms *MemoryStore) DeleteAppStateMutationMACs(_ context.Context, name string, indexMACs [][]byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, im := range indexMACs {
		delete(ms.appMACs, name+":"+string(im))
	}
	return nil
}

func (ms *MemoryStore) GetAppStateMutationMAC(_ context.Context, name string, indexMAC []byte) ([]byte, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.appMACs[name+":"+string(indexMAC)], nil
}
