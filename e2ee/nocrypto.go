//go:build !goolm

package e2ee

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Without the goolm build tag this package links no crypto at all: mautrix's crypto package
// would register cgo libolm, and the bridge stays CGO_ENABLED=0 and never links libolm. Such a
// build runs everything but encryption, and refuses to start with encryption on.

// ErrNotBuilt is Open's answer in a build without the goolm tag.
var ErrNotBuilt = errors.New("this causeway was built without `-tags goolm`, so it has no Matrix encryption: " +
	"build it with `go build -tags goolm`, or set encryption.allow: false")

// State is the part of the bridge's Matrix state store the machine reads.
type State interface {
	GetRoomJoinedOrInvitedMembers(ctx context.Context, room id.RoomID) ([]id.UserID, error)
}

// Machine is the bot's encryption device; in this build there is none.
type Machine struct{}

// Open fails: this build has no crypto.
func Open(context.Context, Deps) (*Machine, error) { return nil, ErrNotBuilt }

// Driver names the Olm implementation linked in.
func Driver() string { return "none" }

// The methods below are never reached (Open never returns a machine); they keep the bridge's
// code one for both builds.

func (m *Machine) Client() *mautrix.Client                                { return nil }
func (m *Machine) DeviceID() id.DeviceID                                  { return "" }
func (m *Machine) ProcessSync(context.Context, *mautrix.RespSync, string) {}
func (m *Machine) HandleMember(context.Context, *event.Event)             {}
func (m *Machine) IsEncrypted(context.Context, id.RoomID) bool            { return false }
func (m *Machine) Encrypt(context.Context, id.RoomID, event.Type, any) (*event.EncryptedEventContent, error) {
	return nil, ErrNotBuilt
}
func (m *Machine) Decrypt(context.Context, json.RawMessage) (json.RawMessage, error) {
	return nil, ErrNotBuilt
}
func (m *Machine) RequestKey(context.Context, json.RawMessage) error { return ErrNotBuilt }
func (m *Machine) Close()                                            {}
