package wasim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/util/random"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/keys"
)

// Phone is an account's primary device (device 0): a real whatsmeow client, scripted by the test to do
// what the WhatsApp phone app does and whatsmeow does not (link companions, share app-state keys,
// upload history).
type Phone struct {
	sim     *Server
	Account *Account
	Client  *whatsmeow.Client
	Store   *MemoryStore
	Events  *Events
	log     zerolog.Logger

	path      string // where the store is saved, empty without Options.Dir
	closeOnce sync.Once
	seedOnce  sync.Once
	seedErr   error

	historyMu sync.Mutex
	history   map[string][]*waHistorySync.HistorySyncMsg // by chat JID, oldest first
}

// NewPhone registers device 0 for the account, provisioned with the account's identity key, and connects
// it. It returns once the phone is logged in (events.Connected). With Options.Dir the phone's store is kept
// in Dir/phones and reloaded by the next NewPhone for the same account, even in a new process.
func (s *Server) NewPhone(ctx context.Context, acct *Account) (*Phone, error) {
	var path string
	if s.opts.Dir != "" {
		path = filepath.Join(s.dir, "phones", acct.Phone+".json")
	}
	dev, err := s.phoneDevice(ctx, acct, path)
	if err != nil {
		return nil, err
	}
	log := s.opts.Log.With().Str("phone", acct.Phone).Logger()
	p := &Phone{sim: s, Account: acct, Store: dev.Container.(*MemoryStore), log: log, path: path}
	p.Client = s.NewClient(dev, log)
	p.Client.EnableAutoReconnect = true
	p.Events = RecordEvents(p.Client)
	p.Client.AddEventHandler(p.answerPeerRequests)
	if err = p.Client.Connect(); err != nil {
		return nil, fmt.Errorf("connect phone: %w", err)
	}
	if _, err = WaitFor[*events.Connected](ctx, p.Events, nil); err != nil {
		p.Client.Disconnect()
		return nil, fmt.Errorf("phone %s did not connect: %w", acct.Phone, err)
	}
	s.mu.Lock()
	s.phones = append(s.phones, p)
	s.mu.Unlock()
	return p, nil
}

// phoneDevice loads the phone's saved store or provisions a new one, and makes sure the server knows
// device 0 by the same keys (keeping its queue when they match).
func (s *Server) phoneDevice(ctx context.Context, acct *Account, path string) (*store.Device, error) {
	var dev *store.Device
	if path != "" {
		if _, statErr := os.Stat(path); statErr == nil {
			loaded, err := LoadMemoryDevice(path)
			if err != nil {
				return nil, err
			}
			if loaded.ID.User != acct.Phone {
				return nil, fmt.Errorf("wasim: %s holds the phone of %s", path, loaded.ID.User)
			}
			dev = loaded
		}
	}
	s.mu.Lock()
	a := s.st.Accounts[acct.Phone]
	if a == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("wasim: no account %s", acct.Phone)
	}
	fresh := dev == nil
	if fresh {
		dev = NewMemoryDevice()
		ident := keys.NewKeyPairFromPrivateKey([32]byte(a.IdentityPriv))
		dev.IdentityKey = ident
		dev.SignedPreKey = ident.CreateSignedPreKey(1)
		jid := a.pnJID()
		dev.ID = &jid
		dev.LID = a.lidJID()
		dev.PushName = a.PushName
		dev.Platform = "android"
	}
	if old := a.device(0); old == nil || !bytes.Equal(old.NoiseKey, dev.NoiseKey.Pub[:]) {
		var regID, skeyID [4]byte
		binary.BigEndian.PutUint32(regID[:], dev.RegistrationID)
		binary.BigEndian.PutUint32(skeyID[:], dev.SignedPreKey.KeyID)
		a.Devices["0"] = &device{
			ID: 0, NoiseKey: dev.NoiseKey.Pub[:], RegID: regID[:], Identity: dev.IdentityKey.Pub[:], Platform: "android",
			SignedPreKey: &signedKey{ID: skeyID[1:], Pub: dev.SignedPreKey.Pub[:], Signature: dev.SignedPreKey.Signature[:]},
		}
	}
	s.mu.Unlock()
	if !fresh {
		return dev, nil
	}
	account, err := selfSignedAccount(dev.IdentityKey)
	if err != nil {
		return nil, err
	}
	dev.Account = account
	if err = dev.Save(ctx); err != nil {
		return nil, fmt.Errorf("save phone device: %w", err)
	}
	if err = createAppStateKey(ctx, dev); err != nil {
		return nil, err
	}
	return dev, nil
}

// selfSignedAccount gives device 0 the ADV identity whatsmeow attaches to its prekey messages.
func selfSignedAccount(ident *keys.KeyPair) (*waAdv.ADVSignedDeviceIdentity, error) {
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID: proto.Uint32(1), Timestamp: proto.Uint64(uint64(time.Now().Unix())), KeyIndex: proto.Uint32(0),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal phone identity: %w", err)
	}
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*ident.Priv), append(append([]byte{6, 0}, details...), ident.Pub[:]...))
	return &waAdv.ADVSignedDeviceIdentity{Details: details, AccountSignatureKey: ident.Pub[:], AccountSignature: sig[:]}, nil
}

// createAppStateKey gives the phone the app-state sync key it encrypts patches with and shares with
// companions; on WhatsApp the phone generates it the same way.
func createAppStateKey(ctx context.Context, dev *store.Device) error {
	fp, err := proto.Marshal(&waE2E.AppStateSyncKeyFingerprint{RawID: proto.Uint32(1), CurrentIndex: proto.Uint32(0), DeviceIndexes: []uint32{0}})
	if err != nil {
		return fmt.Errorf("marshal app state key fingerprint: %w", err)
	}
	err = dev.AppStateKeys.PutAppStateSyncKey(ctx, random.Bytes(6), store.AppStateSyncKey{
		Data: random.Bytes(32), Fingerprint: fp, Timestamp: time.Now().UnixMilli(),
	})
	if err != nil {
		return fmt.Errorf("store app state key: %w", err)
	}
	return nil
}

// Close disconnects the phone (its device stays registered) and, with Options.Dir, saves its store.
func (p *Phone) Close() {
	p.closeOnce.Do(func() {
		p.Client.Disconnect()
		if p.path == "" {
			return
		}
		if err := SaveMemoryDevice(p.Client.Store, p.path); err != nil {
			p.log.Warn().Err(err).Msg("Failed to save phone store")
		}
	})
}

// JID is the phone's device JID (device 0).
func (p *Phone) JID() types.JID { return p.Account.JID }

func (p *Phone) serverAccount() (*account, error) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	a := p.sim.st.Accounts[p.Account.Phone]
	if a == nil {
		return nil, errors.New("wasim: account no longer exists")
	}
	return a, nil
}

func (p *Phone) deviceCount() int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if a := p.sim.st.Accounts[p.Account.Phone]; a != nil {
		return len(a.Devices)
	}
	return 0
}

// ScanQR links the companion showing this QR code (an events.QR code or QR channel item) to the account.
// Like the real phone it then shares the app-state keys once the companion is online.
func (p *Phone) ScanQR(ctx context.Context, code string) error {
	a, err := p.serverAccount()
	if err != nil {
		return err
	}
	before := p.deviceCount()
	if err = p.sim.scanQR(a, code); err != nil {
		return fmt.Errorf("scan QR: %w", err)
	}
	go p.shareKeysWithNewDevice(before)
	return nil
}

// LinkWithCode enters the 8-character code a companion got from PairPhone.
func (p *Phone) LinkWithCode(ctx context.Context, code string) error {
	a, err := p.serverAccount()
	if err != nil {
		return err
	}
	before := p.deviceCount()
	if err = p.sim.enterLinkCode(a, code); err != nil {
		return fmt.Errorf("enter pairing code: %w", err)
	}
	go p.shareKeysWithNewDevice(before)
	return nil
}

// shareKeysWithNewDevice waits until the newly paired companion has logged in (by then the phone has
// processed the device-list notification) and sends it the app-state keys.
func (p *Phone) shareKeysWithNewDevice(devicesBefore int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if p.deviceCount() > devicesBefore && p.newestCompanionOnline() {
			break
		}
		select {
		case <-ctx.Done():
			p.log.Warn().Msg("Linked companion never came online; app state keys not shared")
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := p.seedAppState(ctx); err != nil {
		p.log.Warn().Err(err).Msg("Failed to seed app state")
	}
	if err := p.ShareAppStateKeys(ctx); err != nil {
		p.log.Warn().Err(err).Msg("Failed to share app state keys")
	}
}

// seedAppState gives every app-state collection a first patch, once. A real account never has empty
// collections, and whatsmeow treats a collection still at version 0 as unsynced: every later fetch is a
// full sync, which applies changes silently instead of emitting events.
func (p *Phone) seedAppState(ctx context.Context) error {
	p.seedOnce.Do(func() {
		for _, name := range appstate.AllPatchNames {
			patch := appstate.BuildSettingPushName(p.Account.PushName)
			patch.Type = name
			if err := p.Client.SendAppState(ctx, patch); err != nil {
				p.seedErr = fmt.Errorf("seed app state %s: %w", name, err)
				return
			}
		}
	})
	return p.seedErr
}

func (p *Phone) newestCompanionOnline() bool {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	a := p.sim.st.Accounts[p.Account.Phone]
	if a == nil {
		return false
	}
	ids := a.sortedDevices()
	newest := ids[len(ids)-1]
	return newest != 0 && p.sim.conns[devRef{Phone: a.Phone, Device: newest}] != nil
}

// ShareAppStateKeys sends the phone's app-state sync keys to all of the account's devices, end to end.
func (p *Phone) ShareAppStateKeys(ctx context.Context) error {
	id, err := p.Client.Store.AppStateKeys.GetLatestAppStateSyncKeyID(ctx)
	if err != nil || id == nil {
		return fmt.Errorf("phone has no app state key: %w", err)
	}
	key, err := p.Client.Store.AppStateKeys.GetAppStateSyncKey(ctx, id)
	if err != nil || key == nil {
		return fmt.Errorf("load app state key: %w", err)
	}
	var fp waE2E.AppStateSyncKeyFingerprint
	if err = proto.Unmarshal(key.Fingerprint, &fp); err != nil {
		return fmt.Errorf("decode app state key fingerprint: %w", err)
	}
	_, err = p.Client.SendMessage(ctx, p.Account.JID, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum(),
		AppStateSyncKeyShare: &waE2E.AppStateSyncKeyShare{Keys: []*waE2E.AppStateSyncKey{{
			KeyID:   &waE2E.AppStateSyncKeyId{KeyID: id},
			KeyData: &waE2E.AppStateSyncKeyData{KeyData: key.Data, Fingerprint: &fp, Timestamp: proto.Int64(key.Timestamp)},
		}}},
	}}, whatsmeow.SendRequestExtra{Peer: false})
	if err != nil {
		return fmt.Errorf("send app state key share: %w", err)
	}
	return nil
}

// Link pairs an unpaired companion client with this account through the QR flow and waits until the
// companion has logged in with its new identity. events must be recording cli's events.
func (p *Phone) Link(ctx context.Context, cli *whatsmeow.Client, evts *Events) error {
	if cli.Store.ID != nil {
		return errors.New("wasim: client is already paired")
	}
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		return fmt.Errorf("get QR channel: %w", err)
	}
	if err = cli.Connect(); err != nil {
		return fmt.Errorf("connect companion: %w", err)
	}
	var code string
	select {
	case item := <-qr:
		if item.Event != whatsmeow.QRChannelEventCode {
			return fmt.Errorf("wasim: expected a QR code, got %q", item.Event)
		}
		code = item.Code
	case <-ctx.Done():
		return fmt.Errorf("waiting for QR code: %w", ctx.Err())
	}
	if err = p.ScanQR(ctx, code); err != nil {
		return err
	}
	if _, err = WaitFor[*events.PairSuccess](ctx, evts, nil); err != nil {
		return fmt.Errorf("companion did not pair: %w", err)
	}
	if _, err = WaitFor[*events.Connected](ctx, evts, nil); err != nil {
		return fmt.Errorf("companion did not log in after pairing: %w", err)
	}
	return nil
}

// DeviceJID is the JID of one of this phone's account's devices.
func (p *Phone) DeviceJID(device int) types.JID {
	return types.JID{User: p.Account.Phone, Device: uint16(device), Server: types.DefaultUserServer}
}
