package bridge

import (
	"context"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/portal"
	"codeberg.org/causeway/causeway/puppet"
)

// queueCall files a WhatsApp call signal in the chat it belongs to: the caller's DM, or the
// group of a group call. The offer becomes a notice in the room and both the offer and its
// end are archived (portal.KindWACall); the other signals (accept, transport, relay
// latency) belong to a call in progress, which the bridge never has.
func (u *User) queueCall(ctx context.Context, meta types.BasicCallMeta, video bool, ended string) bool {
	caller := puppet.PreferPhone(meta.CallCreator, meta.CallCreatorAlt)
	if caller.IsEmpty() {
		caller = meta.From.ToNonAD()
	}
	chat, isGroup := caller, false
	if !meta.GroupJID.IsEmpty() {
		chat, isGroup = meta.GroupJID, true
	}
	log := u.log.With().Str("call_id", meta.CallID).Str("chat_jid", u.b.logJID(chat.String())).Logger()
	p, err := u.b.portals.Get(ctx, u.portalKey(ctx, chat), isGroup)
	if err != nil {
		log.Err(err).Msg("Failed to load the portal of a call")
		return false
	}
	item, err := portal.NewCallItem(&portal.Call{ID: meta.CallID, Caller: caller, Video: video, Timestamp: meta.Timestamp, Ended: ended})
	if err == nil {
		err = p.Enqueue(ctx, item)
	}
	if err != nil {
		log.Err(err).Msg("Failed to queue a call")
		return false
	}
	return true
}

// handleCallEvent takes the call signals worth a record.
func (u *User) handleCallEvent(ctx context.Context, rawEvt any) bool {
	switch evt := rawEvt.(type) {
	case *events.CallOffer:
		video := false
		if evt.Data != nil {
			_, video = evt.Data.GetOptionalChildByTag("video")
		}
		return u.queueCall(ctx, evt.BasicCallMeta, video, "")
	case *events.CallOfferNotice:
		return u.queueCall(ctx, evt.BasicCallMeta, evt.Media == "video", "")
	case *events.CallTerminate:
		reason := evt.Reason
		if reason == "" {
			reason = "ended"
		}
		return u.queueCall(ctx, evt.BasicCallMeta, false, reason)
	}
	return true
}
