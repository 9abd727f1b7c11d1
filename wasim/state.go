package wasim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"go.mau.fi/whatsmeow/types"
)

// state is everything the simulated WhatsApp server remembers. It is plain data so that Restart can keep it
// in memory and Options.Dir can persist it as JSON; all access happens under Server.mu.
type state struct {
	Accounts  map[string]*account   `json:"accounts"` // by phone number
	Groups    map[string]*group     `json:"groups"`   // by group user part
	Media     map[string]*mediaBlob `json:"media"`    // by media object id
	Invites   map[string]string     `json:"invites"`  // invite code -> group user part
	NextLID   uint64                `json:"next_lid"`
	NextGroup uint64                `json:"next_group"`
	Counters  map[string]uint64     `json:"counters"`
}

type account struct {
	Phone        string              `json:"phone"`
	LID          string              `json:"lid"`
	PushName     string              `json:"push_name"`
	About        string              `json:"about"`
	IdentityPub  []byte              `json:"identity_pub"`
	IdentityPriv []byte              `json:"identity_priv"`
	Devices      map[string]*device  `json:"devices"` // by decimal device id
	NextDevice   int                 `json:"next_device"`
	KeyIndex     uint32              `json:"key_index"`
	AppState     map[string][][]byte `json:"app_state"` // collection -> patches, version = index+1
	Picture      *picture            `json:"picture,omitempty"`
	Privacy      map[string]string   `json:"privacy"`
	Blocklist    []string            `json:"blocklist"`
	Subscribers  map[string]bool     `json:"-"`
	LastSeen     int64               `json:"last_seen"`
}

type device struct {
	ID           int        `json:"id"`
	NoiseKey     []byte     `json:"noise_key"`
	RegID        []byte     `json:"reg_id"`
	Identity     []byte     `json:"identity"`
	SignedPreKey *signedKey `json:"signed_pre_key"`
	PreKeys      []preKey   `json:"pre_keys"`
	Platform     string     `json:"platform"`
	KeyIndex     uint32     `json:"key_index"`
	Queue        []*queued  `json:"queue"`
}

type signedKey struct {
	ID        []byte `json:"id"`
	Pub       []byte `json:"pub"`
	Signature []byte `json:"signature"`
}

type preKey struct {
	ID  []byte `json:"id"`
	Pub []byte `json:"pub"`
}

// queued is one server-to-device stanza that the device has not acknowledged yet.
type queued struct {
	Key  string `json:"key"`
	Tag  string `json:"tag"`
	Node []byte `json:"node"`
}

type picture struct {
	ID   string `json:"id"`
	Data []byte `json:"data"`
}

type mediaBlob struct {
	Type string `json:"type"`
	Data []byte `json:"data"`
}

func newState() *state {
	return &state{
		Accounts:  map[string]*account{},
		Groups:    map[string]*group{},
		Media:     map[string]*mediaBlob{},
		Invites:   map[string]string{},
		NextLID:   100000000000001,
		NextGroup: 120363000000000001,
		Counters:  map[string]uint64{},
	}
}

const stateFile = "wasim-state.json"

func loadState(dir string) (*state, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return newState(), nil
	} else if err != nil {
		return nil, fmt.Errorf("read simulator state: %w", err)
	}
	st := newState()
	if err = json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("decode simulator state: %w", err)
	}
	for _, acct := range st.Accounts {
		acct.ensureMaps()
	}
	return st, nil
}

func (st *state) save(dir string) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode simulator state: %w", err)
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err = os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write simulator state: %w", err)
	}
	if err = os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("replace simulator state: %w", err)
	}
	return nil
}

func (st *state) nextID(name string) uint64 {
	st.Counters[name]++
	return st.Counters[name]
}

func (a *account) ensureMaps() {
	if a.Devices == nil {
		a.Devices = map[string]*device{}
	}
	if a.AppState == nil {
		a.AppState = map[string][][]byte{}
	}
	if a.Privacy == nil {
		a.Privacy = map[string]string{}
	}
	if a.Subscribers == nil {
		a.Subscribers = map[string]bool{}
	}
}

func (a *account) pnJID() types.JID  { return types.NewJID(a.Phone, types.DefaultUserServer) }
func (a *account) lidJID() types.JID { return types.NewJID(a.LID, types.HiddenUserServer) }

// deviceJID gives a device's address in the PN or LID namespace.
func (a *account) deviceJID(id int, lid bool) types.JID {
	if lid {
		return types.JID{User: a.LID, Device: uint16(id), Server: types.HiddenUserServer}
	}
	return types.JID{User: a.Phone, Device: uint16(id), Server: types.DefaultUserServer}
}

func (a *account) device(id int) *device { return a.Devices[strconv.Itoa(id)] }

// sortedDevices returns device ids in ascending order so device lists are stable.
func (a *account) sortedDevices() []int {
	ids := make([]int, 0, len(a.Devices))
	for _, d := range a.Devices {
		ids = append(ids, d.ID)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// accountFor resolves a PN or LID JID (with or without a device part) to its account.
func (st *state) accountFor(jid types.JID) *account {
	switch jid.Server {
	case types.DefaultUserServer, types.LegacyUserServer:
		return st.Accounts[jid.User]
	case types.HiddenUserServer:
		for _, a := range st.Accounts {
			if a.LID == jid.User {
				return a
			}
		}
	}
	return nil
}

// devRef names one device of one account; it is the key of live connections and fault settings.
type devRef struct {
	Phone  string
	Device int
}

func (r devRef) String() string { return r.Phone + ":" + strconv.Itoa(r.Device) }

func devKey(id int) string { return strconv.Itoa(id) }
