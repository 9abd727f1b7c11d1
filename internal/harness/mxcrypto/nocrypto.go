//go:build !goolm

package mxcrypto

import (
	"context"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Available says whether this build has Matrix encryption.
const Available = false

// Device is a Matrix user's encryption device; in this build there is none.
type Device struct{}

// New fails: this build has no crypto.
func New(context.Context, *mautrix.Client, zerolog.Logger) (*Device, error) { return nil, ErrNotBuilt }

// The methods below are never reached (New never returns a device); they keep the callers'
// code one for both builds.

func (d *Device) ProcessSync(context.Context, *mautrix.RespSync, string) {}
func (d *Device) Decrypt(context.Context, *event.Event) (*event.Event, error) {
	return nil, ErrNotBuilt
}
func (d *Device) IsEncrypted(context.Context, id.RoomID) bool        { return false }
func (d *Device) LearnRoom(context.Context, id.RoomID) (bool, error) { return false, ErrNotBuilt }
func (d *Device) Send(context.Context, id.RoomID, event.Type, any) (id.EventID, error) {
	return "", ErrNotBuilt
}
func (d *Device) Close() {}
