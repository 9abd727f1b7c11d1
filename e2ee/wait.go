//go:build goolm

package e2ee

import (
	"context"
	"encoding/json"
	"time"

	"maunium.net/go/mautrix/event"
)

// WaitForKey waits up to timeout for the room key of an encrypted event to reach the bot's
// device (on its /sync) and reports whether it came. The bot's commands use it: unlike a
// portal's queue, a command has no queue to hold while its key is on the way.
func (m *Machine) WaitForKey(ctx context.Context, raw json.RawMessage, timeout time.Duration) bool {
	var evt event.Event
	if json.Unmarshal(raw, &evt) != nil || evt.Content.ParseRaw(event.EventEncrypted) != nil {
		return false
	}
	content := evt.Content.AsEncrypted()
	return m.mach.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, timeout)
}
