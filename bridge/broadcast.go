package bridge

import (
	"context"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/puppet"
)

// queueBroadcast files a message sent through a broadcast address. Status updates go to the
// user's status portal, which archives them and shows them only with bridge.status_room. A
// broadcast-list message goes where WhatsApp shows it: the DM with its sender, or, for one
// the user sent from the phone, the DM with each recipient; msgconv marks it "(broadcast)"
// and the archive entry names the list.
func (u *User) queueBroadcast(ctx context.Context, evt *events.Message) bool {
	info := &evt.Info
	if info.Chat == types.StatusBroadcastJID {
		return u.queueInto(ctx, evt, types.StatusBroadcastJID, false)
	}
	var dms []types.JID
	switch {
	case info.IsIncomingBroadcast() && !info.IsFromMe:
		dms = append(dms, puppet.PreferPhone(info.Sender.ToNonAD(), info.SenderAlt.ToNonAD()))
	case info.IsIncomingBroadcast():
		// Sent by the user's account to a list whose owner WhatsApp names.
		dms = append(dms, info.BroadcastListOwner.ToNonAD())
	default:
		for _, r := range info.BroadcastRecipients {
			if r.LID.IsEmpty() {
				dms = append(dms, r.PN.ToNonAD())
			} else {
				dms = append(dms, puppet.PreferPhone(r.LID, r.PN))
			}
		}
	}
	if len(dms) == 0 {
		// Nowhere to show it, but it is the user's own message: the note-to-self chat keeps it
		// in the record rather than nowhere.
		dms = append(dms, u.ownJID())
	}
	for _, dm := range dms {
		if dm.IsEmpty() {
			u.log.Warn().Str("message_id", info.ID).Msg("A broadcast-list message names no chat to file it in")
			continue
		}
		if !u.queueInto(ctx, evt, dm, false) {
			return false
		}
	}
	return true
}
