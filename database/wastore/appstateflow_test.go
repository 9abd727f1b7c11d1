package wastore

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"
)

// serverPatch is an encoded patch as the server keeps it; every device decodes its own copy
// (decoding decrypts in place).
type serverPatch []byte

func (sp serverPatch) copy(t *testing.T) *waServerSync.SyncdPatch {
	t.Helper()
	var patch waServerSync.SyncdPatch
	must(t, proto.Unmarshal(sp, &patch))
	return &patch
}

// TestAppStatePatchesThroughStores has a phone encode app state patches and two devices
// decode them with MAC validation on. Replacing a value (muting an already muted chat)
// makes the LT-hash subtract the previous value MAC, which comes from the store. One
// receiver keeps its app state in a trivially correct in-memory reference, so a wrong,
// missing or stale MAC from our store (on the sender) breaks the snapshot MAC check there
// instead of cancelling out between two devices with the same bug.
func TestAppStatePatchesThroughStores(t *testing.T) { eachBackend(t, testAppStatePatchesThroughStores) }

func testAppStatePatchesThroughStores(t *testing.T, b backend) {
	ctx := context.Background()
	sender := newPhone(t, b, "4915100000021:0@s.whatsapp.net")
	receiver := newPhone(t, b, "4915100000021:5@s.whatsapp.net")
	reference := newPhone(t, b, "4915100000021:6@s.whatsapp.net")
	reference.dev.AppState = newMemAppState()
	keyID := []byte("sync-key-1")
	for _, p := range []*phone{sender, receiver, reference} {
		must(t, p.dev.AppStateKeys.PutAppStateSyncKey(ctx, keyID, store.AppStateSyncKey{
			Data: []byte("0123456789abcdef0123456789abcdef"), Fingerprint: []byte("fp"), Timestamp: 1,
		}))
	}
	chat := types.NewJID("4915100000099", types.DefaultUserServer)
	in := func(d time.Duration) *int64 { ms := time.Now().Add(d).UnixMilli(); return &ms }

	// apply decodes patches on p from its stored state, as fetchAppState does.
	apply := func(t *testing.T, p *phone, name appstate.WAPatchName, patches ...serverPatch) []appstate.Mutation {
		t.Helper()
		version, hash, err := p.dev.AppState.GetAppStateVersion(ctx, string(name))
		must(t, err)
		list := &appstate.PatchList{Name: name}
		for _, sp := range patches {
			list.Patches = append(list.Patches, sp.copy(t))
		}
		mutations, state, err := appstate.NewProcessor(p.dev, waLog.Noop).DecodePatches(ctx, list,
			appstate.HashState{Version: version, Hash: hash}, true)
		if err != nil {
			t.Fatalf("%s decoding %s: %v", p.jid, name, err)
		}
		storedVersion, storedHash, err := p.dev.AppState.GetAppStateVersion(ctx, string(name))
		must(t, err)
		if storedVersion != state.Version || storedHash != state.Hash {
			t.Fatalf("%s stored version %d, want %d (hash equal: %v)", p.jid, storedVersion, state.Version, storedHash == state.Hash)
		}
		return mutations
	}
	// send encodes a patch on the sender and applies it there, as the server's echo would.
	send := func(t *testing.T, info appstate.PatchInfo) serverPatch {
		t.Helper()
		version, hash, err := sender.dev.AppState.GetAppStateVersion(ctx, string(info.Type))
		must(t, err)
		raw, err := appstate.NewProcessor(sender.dev, waLog.Noop).EncodePatch(ctx, keyID, appstate.HashState{Version: version, Hash: hash}, info)
		must(t, err)
		patch := serverPatch(raw).copy(t)
		patch.Version = &waServerSync.SyncdVersion{Version: proto.Uint64(version + 1)}
		raw, err = proto.Marshal(patch)
		must(t, err)
		apply(t, sender, info.Type, raw)
		return raw
	}

	regularHigh := appstate.WAPatchRegularHigh
	// Every replacement makes the sender look the previous value MAC up in its database
	// (across a restart, too).
	mute1 := send(t, appstate.BuildMuteAbs(chat, true, in(time.Hour)))
	mute2 := send(t, appstate.BuildMuteAbs(chat, true, in(2*time.Hour)))
	sender.restart(t)
	unmute := send(t, appstate.BuildMuteAbs(chat, false, nil))
	pin := send(t, appstate.BuildPin(chat, true))

	got := apply(t, receiver, regularHigh, mute1, mute2, unmute)
	if len(got) != 3 || got[2].Action.GetMuteAction().GetMuted() {
		t.Fatalf("receiver decoded %d mutations; want three ending in an unmute", len(got))
	}
	apply(t, receiver, appstate.WAPatchRegularLow, pin)
	apply(t, reference, regularHigh, mute1, mute2)
	apply(t, reference, regularHigh, unmute)
	apply(t, reference, appstate.WAPatchRegularLow, pin)

	// Now the receiver needs its own stored MACs after a restart.
	receiver.restart(t)
	mute3 := send(t, appstate.BuildMuteAbs(chat, true, in(3*time.Hour)))
	got = apply(t, receiver, regularHigh, mute3)
	if len(got) != 1 || !got[0].Action.GetMuteAction().GetMuted() {
		t.Fatalf("receiver decoded %+v, want one mute", got)
	}
	apply(t, reference, regularHigh, mute3)
	for _, name := range []appstate.WAPatchName{regularHigh, appstate.WAPatchRegularLow} {
		sv, sh, _ := sender.dev.AppState.GetAppStateVersion(ctx, string(name))
		for _, p := range []*phone{receiver, reference} {
			v, h, _ := p.dev.AppState.GetAppStateVersion(ctx, string(name))
			if sv != v || sh != h {
				t.Errorf("%s: sender at v%d, %s at v%d (hashes equal: %v)", name, sv, p.jid, v, sh == h)
			}
		}
	}

	// A full-sync reset forgets the collection's MACs, so the old value is no longer found.
	must(t, receiver.dev.AppState.DeleteAppStateVersion(ctx, string(regularHigh)))
	if v, _, _ := receiver.dev.AppState.GetAppStateVersion(ctx, string(regularHigh)); v != 0 {
		t.Errorf("version after reset %d", v)
	}
	if mac, _ := receiver.dev.AppState.GetAppStateMutationMAC(ctx, string(regularHigh), got[0].IndexMAC); mac != nil {
		t.Error("mutation MAC survived the collection reset")
	}
}

// memAppState is the reference store.AppStateStore: the obvious semantics, in memory.
type memAppState struct {
	mu       sync.Mutex
	versions map[string]memVersion
	macs     map[string][]memMAC
}

type memVersion struct {
	version uint64
	hash    [128]byte
}

type memMAC struct {
	version          uint64
	index, valueMACs []byte
}

func newMemAppState() *memAppState {
	return &memAppState{versions: map[string]memVersion{}, macs: map[string][]memMAC{}}
}

func (m *memAppState) PutAppStateVersion(_ context.Context, name string, version uint64, hash [128]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.versions[name] = memVersion{version, hash}
	return nil
}

func (m *memAppState) GetAppStateVersion(_ context.Context, name string) (uint64, [128]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.versions[name]
	return v.version, v.hash, nil
}

func (m *memAppState) DeleteAppStateVersion(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.versions, name)
	delete(m.macs, name)
	return nil
}

func (m *memAppState) PutAppStateMutationMACs(_ context.Context, name string, version uint64, mutations []store.AppStateMutationMAC) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mut := range mutations {
		m.macs[name] = append(m.macs[name], memMAC{version, mut.IndexMAC, mut.ValueMAC})
	}
	return nil
}

func (m *memAppState) DeleteAppStateMutationMACs(_ context.Context, name string, indexMACs [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.macs[name] = slices.DeleteFunc(m.macs[name], func(e memMAC) bool {
		return slices.ContainsFunc(indexMACs, func(i []byte) bool { return bytes.Equal(i, e.index) })
	})
	return nil
}

func (m *memAppState) GetAppStateMutationMAC(_ context.Context, name string, indexMAC []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *memMAC
	for i, e := range m.macs[name] {
		if bytes.Equal(e.index, indexMAC) && (best == nil || e.version >= best.version) {
			best = &m.macs[name][i]
		}
	}
	if best == nil {
		return nil, nil
	}
	return best.valueMACs, nil
}
