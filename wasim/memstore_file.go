package wasim

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// memFile is a MemoryStore and its device on disk. Byte-string map keys are hex-encoded because JSON
// object keys must be valid UTF-8.
type memFile struct {
	NoisePriv    []byte                             `json:"noise_priv"`
	IdentityPriv []byte                             `json:"identity_priv"`
	SignedPreKey []byte                             `json:"signed_pre_key_priv"`
	SignedKeyID  uint32                             `json:"signed_pre_key_id"`
	SignedKeySig []byte                             `json:"signed_pre_key_sig"`
	RegID        uint32                             `json:"registration_id"`
	AdvSecret    []byte                             `json:"adv_secret"`
	ID           string                             `json:"id"`
	LID          string                             `json:"lid"`
	Account      []byte                             `json:"account"`
	Platform     string                             `json:"platform"`
	PushName     string                             `json:"push_name"`
	LIDMigration int64                              `json:"lid_migration_ts"`
	Identities   map[string][]byte                  `json:"identities"`
	Sessions     map[string][]byte                  `json:"sessions"`
	PreKeys      []memFilePreKey                    `json:"pre_keys"`
	NextPreKey   uint32                             `json:"next_pre_key"`
	SenderKeys   map[string][]byte                  `json:"sender_keys"`
	AppKeys      map[string]store.AppStateSyncKey   `json:"app_keys"`
	LatestAppKey []byte                             `json:"latest_app_key"`
	AppVersions  map[string]memFileVersion          `json:"app_versions"`
	AppMACs      map[string][]byte                  `json:"app_macs"`
	Contacts     map[string]types.ContactInfo       `json:"contacts"`
	Chats        map[string]types.LocalChatSettings `json:"chats"`
	Secrets      map[string]memFileSecret           `json:"secrets"`
	LIDToPN      map[string]string                  `json:"lid_to_pn"`
}

type memFilePreKey struct {
	ID       uint32 `json:"id"`
	Priv     []byte `json:"priv"`
	Uploaded bool   `json:"uploaded"`
}

type memFileVersion struct {
	Version uint64 `json:"version"`
	Hash    []byte `json:"hash"`
}

type memFileSecret struct {
	Secret []byte `json:"secret"`
	Sender string `json:"sender"`
}

// SaveMemoryDevice writes a MemoryStore-backed device to a file, so a demo's phones keep their Signal
// sessions and app-state keys across processes. Call it while the client is disconnected.
func SaveMemoryDevice(dev *store.Device, path string) error {
	ms, ok := dev.Container.(*MemoryStore)
	if !ok {
		return errors.New("wasim: device is not backed by a MemoryStore")
	}
	if dev.ID == nil {
		return errors.New("wasim: device has no JID (not paired or logged out)")
	}
	account, err := proto.Marshal(dev.Account)
	if err != nil {
		return fmt.Errorf("marshal device account: %w", err)
	}
	f := memFile{
		NoisePriv: dev.NoiseKey.Priv[:], IdentityPriv: dev.IdentityKey.Priv[:], SignedPreKey: dev.SignedPreKey.Priv[:],
		SignedKeyID: dev.SignedPreKey.KeyID, SignedKeySig: dev.SignedPreKey.Signature[:], RegID: dev.RegistrationID,
		AdvSecret: dev.AdvSecretKey, ID: dev.ID.String(), LID: dev.LID.String(), Account: account,
		Platform: dev.Platform, PushName: dev.PushName, LIDMigration: dev.LIDMigrationTimestamp,
		Identities: map[string][]byte{}, Sessions: map[string][]byte{}, SenderKeys: map[string][]byte{},
		AppKeys: map[string]store.AppStateSyncKey{}, AppVersions: map[string]memFileVersion{}, AppMACs: map[string][]byte{},
		Contacts: map[string]types.ContactInfo{}, Chats: map[string]types.LocalChatSettings{},
		Secrets: map[string]memFileSecret{}, LIDToPN: map[string]string{},
	}
	ms.mu.Lock()
	for k, v := range ms.identities {
		f.Identities[k] = append([]byte(nil), v[:]...)
	}
	f.Sessions, f.SenderKeys = ms.sessions, ms.senderKeys
	for id, pk := range ms.preKeys {
		f.PreKeys = append(f.PreKeys, memFilePreKey{ID: id, Priv: pk.key.Priv[:], Uploaded: pk.uploaded})
	}
	f.NextPreKey, f.LatestAppKey = ms.nextPreKey, ms.latestAppKey
	for k, v := range ms.appKeys {
		f.AppKeys[hex.EncodeToString([]byte(k))] = v
	}
	for k, v := range ms.appVersions {
		f.AppVersions[k] = memFileVersion{Version: v.version, Hash: v.hash[:]}
	}
	for k, v := range ms.appMACs {
		f.AppMACs[hex.EncodeToString([]byte(k))] = v
	}
	for k, v := range ms.contacts {
		f.Contacts[k.String()] = v
	}
	for k, v := range ms.chats {
		f.Chats[k.String()] = v
	}
	for k, v := range ms.secrets {
		f.Secrets[k] = memFileSecret{Secret: v.secret, Sender: v.sender.String()}
	}
	for k, v := range ms.lidToPN {
		f.LIDToPN[k] = v
	}
	data, err := json.Marshal(&f)
	ms.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode device store: %w", err)
	}
	if err = os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create device store directory: %w", err)
	}
	if err = os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("write device store: %w", err)
	}
	if err = os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("replace device store: %w", err)
	}
	return nil
}

func priv32(b []byte) (*keys.KeyPair, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("private key has %d bytes", len(b))
	}
	return keys.NewKeyPairFromPrivateKey([32]byte(b)), nil
}

// LoadMemoryDevice reads a device written by SaveMemoryDevice.
func LoadMemoryDevice(path string) (*store.Device, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read device store: %w", err)
	}
	var f memFile
	if err = json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode device store: %w", err)
	}
	dev := NewMemoryDevice()
	ms := dev.Container.(*MemoryStore)
	if dev.NoiseKey, err = priv32(f.NoisePriv); err != nil {
		return nil, fmt.Errorf("noise key: %w", err)
	}
	if dev.IdentityKey, err = priv32(f.IdentityPriv); err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	spk, err := priv32(f.SignedPreKey)
	if err != nil || len(f.SignedKeySig) != 64 {
		return nil, fmt.Errorf("signed prekey is invalid: %w", err)
	}
	dev.SignedPreKey = &keys.PreKey{KeyPair: *spk, KeyID: f.SignedKeyID, Signature: (*[64]byte)(f.SignedKeySig)}
	dev.RegistrationID, dev.AdvSecretKey = f.RegID, f.AdvSecret
	id, err := types.ParseJID(f.ID)
	if err != nil {
		return nil, fmt.Errorf("device JID: %w", err)
	}
	dev.ID = &id
	if dev.LID, err = types.ParseJID(f.LID); err != nil {
		return nil, fmt.Errorf("device LID: %w", err)
	}
	dev.Account = &waAdv.ADVSignedDeviceIdentity{}
	if err = proto.Unmarshal(f.Account, dev.Account); err != nil {
		return nil, fmt.Errorf("device account: %w", err)
	}
	dev.Platform, dev.PushName, dev.LIDMigrationTimestamp = f.Platform, f.PushName, f.LIDMigration
	for k, v := range f.Identities {
		if len(v) == 32 {
			ms.identities[k] = [32]byte(v)
		}
	}
	if f.Sessions != nil {
		ms.sessions = f.Sessions
	}
	if f.SenderKeys != nil {
		ms.senderKeys = f.SenderKeys
	}
	for _, pk := range f.PreKeys {
		kp, err := priv32(pk.Priv)
		if err != nil {
			return nil, fmt.Errorf("prekey %d: %w", pk.ID, err)
		}
		ms.preKeys[pk.ID] = &memPreKey{key: &keys.PreKey{KeyPair: *kp, KeyID: pk.ID}, uploaded: pk.Uploaded}
	}
	ms.nextPreKey, ms.latestAppKey = f.NextPreKey, f.LatestAppKey
	for k, v := range f.AppKeys {
		raw, err := hex.DecodeString(k)
		if err == nil {
			ms.appKeys[string(raw)] = v
		}
	}
	for k, v := range f.AppVersions {
		if len(v.Hash) == 128 {
			ms.appVersions[k] = memAppVersion{version: v.Version, hash: [128]byte(v.Hash)}
		}
	}
	for k, v := range f.AppMACs {
		raw, err := hex.DecodeString(k)
		if err == nil {
			ms.appMACs[string(raw)] = v
		}
	}
	for k, v := range f.Contacts {
		if jid, err := types.ParseJID(k); err == nil {
			ms.contacts[jid] = v
		}
	}
	for k, v := range f.Chats {
		if jid, err := types.ParseJID(k); err == nil {
			ms.chats[jid] = v
		}
	}
	for k, v := range f.Secrets {
		sender, _ := types.ParseJID(v.Sender)
		ms.secrets[k] = memSecret{secret: v.Secret, sender: sender}
	}
	for lid, pn := range f.LIDToPN {
		ms.putLIDLocked(lid, pn)
	}
	ms.saved = true
	return dev, nil
}
