package portal

import (
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
)

// Status updates have a portal of their own per user (the chat status@broadcast), so they
// pass through the queue and the archive like any message. Whether they reach Matrix is
// bridge.status_room: off by default, because a contact's story is not a message to the
// user, and a room that fills with every contact's stories is noise to most.

// statusRoomName is the name of the room status updates are bridged into.
const statusRoomName = "WhatsApp Status"

// isStatus says whether this is the portal of the user's status updates.
func (p *Portal) isStatus() bool { return p.row.ChatJID == types.StatusBroadcastJID.String() }

// recordOnly says whether what arrives in this chat is archived without being shown on Matrix.
func (p *Portal) recordOnly() bool {
	return p.isStatus() && (p.m.deps.Config == nil || !p.m.deps.Config.Bridge.StatusRoom)
}

// statusRoom makes a new room's creation request that of the status room: created by the
// bot, which the contacts' ghosts join as their updates arrive.
func (p *Portal) statusRoom(req *mautrix.ReqCreateRoom) {
	p.row.Name = statusRoomName
	req.Name = statusRoomName
	req.Topic = "Status updates your WhatsApp contacts share. They are archived either way."
}
