package bridge

import (
	"context"
	"encoding/json"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/portal"
)

// queuePortalEvent queues a Matrix user's event in a portal room: for WhatsApp when it is
// the receiver's and of a kind that is relayed, otherwise to be recorded as not relayed and
// its sender told why (portal.KindMatrixUnrelayed). Before, an event from anyone but the
// receiver, an encrypted event and any type WhatsApp has no counterpart for vanished here
// without a word or a record. State events that are not relayed (power levels, a member
// joining) change the room, not the conversation, and stay the bot's business.
func (b *Bridge) queuePortalEvent(ctx context.Context, env *portal.MatrixEnvelope, raw json.RawMessage) error {
	relayed := portal.IsRelayed(env.Type, env.StateKey != nil)
	if !relayed && env.StateKey != nil {
		return nil
	}
	p, err := b.portals.ByRoom(ctx, env.RoomID)
	if err != nil {
		return err
	}
	if p == nil {
		if env.Type == event.EventEncrypted.Type {
			b.handleEncryptedOutsidePortal(ctx, env, raw)
		}
		return nil
	}
	reason := ""
	switch {
	case env.Type == event.EventEncrypted.Type && !b.cfg.Encryption.Allow:
		reason = portal.UnrelayedEncrypted
	case p.Key().Receiver != env.Sender:
		if env.StateKey != nil {
			return nil // another member's own membership or a name change: nothing to tell
		}
		reason = portal.UnrelayedNotReceiver
	case env.Type == event.EventEncrypted.Type:
		// Decrypted in the portal's queue, in order: its key may arrive after it.
	case !relayed:
		reason = portal.UnrelayedNoCounterpart
	case b.cfg.Encryption.Require && env.StateKey == nil && !neverEncrypted(env.Type):
		reason = portal.UnrelayedPlaintext
	}
	zerolog.Ctx(ctx).Debug().Str("type", env.Type).Str("unrelayed", reason).Msg("Matrix event in a bridged room")
	if reason == "" {
		return p.Enqueue(ctx, portal.NewMatrixEventItem(env, raw))
	}
	item, err := portal.NewUnrelayedItem(env, raw, reason, b.hasLogin(ctx, env))
	if err != nil {
		return err
	}
	return p.Enqueue(ctx, item)
}

// neverEncrypted: the events Matrix clients send in plaintext even into encrypted rooms, which
// encryption.require must still relay. Redactions cannot be encrypted (the server must read
// what they redact), and matrix-js-sdk, so Element, never encrypts reactions (their relation
// is in the clear anyway; see TestEncryptedInteropElementCrypto): refusing them would refuse
// every reaction and deletion an Element user makes.
func neverEncrypted(eventType string) bool {
	return eventType == event.EventReaction.Type || eventType == event.EventRedaction.Type
}

// hasLogin says whether the sender of an event is logged in to WhatsApp through the bridge.
func (b *Bridge) hasLogin(ctx context.Context, env *portal.MatrixEnvelope) bool {
	row, err := b.db.Users.Get(ctx, env.Sender)
	return err == nil && row != nil && row.WADevice != ""
}

// tellEncryptedOutsidePortal answers an encrypted event in a user's management room when
// the bridge has no encryption (encryption.allow off): the bot cannot read commands there. Anywhere else the bot only listens for commands, which
// it cannot read either, and a notice per event would be noise in a room it does not own.
func (b *Bridge) tellEncryptedOutsidePortal(ctx context.Context, env *portal.MatrixEnvelope) {
	user, err := b.db.Users.GetByManagementRoom(ctx, env.RoomID)
	if err != nil || user == nil || user.MXID != env.Sender {
		return
	}
	b.reply(ctx, env.RoomID, "⚠️ This bridge cannot read encrypted messages, so it cannot read your commands here. "+
		"Open a new, unencrypted direct chat with me.")
}
