package bridge

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/portal"
	"codeberg.org/causeway/causeway/puppet"
)

// handleWAEvent is the one boundary where whatsmeow's untyped events become bridge work.
// With SynchronousAck, returning true from here is what lets whatsmeow acknowledge a
// message, so a message must be in the durable queue first. Returning false leaves the
// stanza unacknowledged: WhatsApp delivers it again.
func (u *User) handleWAEvent(rawEvt any) bool {
	ctx := u.log.WithContext(context.Background())
	if !u.recordWAEvent(ctx, rawEvt) {
		return false
	}
	if u.fromPhone(rawEvt) {
		u.phoneSeen(ctx)
	}
	if handled, ack := u.handleHealthEvent(ctx, rawEvt); handled {
		return ack
	}
	switch evt := rawEvt.(type) {
	case *events.Message:
		u.touch()
		return u.queueMessage(ctx, evt)
	case *events.Receipt:
		u.touch()
		u.handleReceipt(ctx, evt)
	case *events.ChatPresence:
		u.handleChatPresence(ctx, evt)
	case *events.GroupInfo:
		return u.queueGroupChange(ctx, evt)
	case *events.JoinedGroup:
		u.ensurePortal(ctx, evt.JID, true)
	case *events.PushName:
		u.updatePuppetName(ctx, evt.JID)
	case *events.PushNameSetting:
		u.setPushName(evt.Action.GetName())
	case *events.Contact:
		u.updatePuppetName(ctx, evt.JID)
		u.refreshAvatar(ctx, evt.JID)
	case *events.AppStateSyncComplete:
		if evt.Name == appstate.WAPatchCriticalUnblockLow {
			// A first full sync applies the address book without per-contact events.
			u.b.jobs.Go(context.WithoutCancel(ctx), "contact sync", u.syncContactPuppets)
		}
	case *events.Picture:
		if evt.JID.Server == types.DefaultUserServer {
			u.updatePuppetAvatar(ctx, evt.JID)
		}
	case *events.PairSuccess:
		u.handlePairSuccess(ctx, evt)
	case *events.CallOffer, *events.CallOfferNotice, *events.CallTerminate:
		return u.handleCallEvent(ctx, evt)
	case *events.UndecryptableMessage:
		u.log.Warn().Str("message_id", evt.Info.ID).Str("chat_jid", u.b.logJID(evt.Info.Chat.String())).
			Bool("unavailable", evt.IsUnavailable).Msg("Received a message that could not be decrypted")
	}
	return true
}

func (u *User) touch() {
	u.mu.Lock()
	u.lastSeen = time.Now()
	u.mu.Unlock()
}

// portalKey names the portal a WhatsApp chat belongs to for this user. Chats addressed by
// LID are filed under the phone number when it is known, so a contact has one room.
func (u *User) portalKey(ctx context.Context, chat types.JID) database.PortalKey {
	chat = chat.ToNonAD()
	if chat.Server == types.HiddenUserServer {
		u.mu.Lock()
		cli := u.client
		u.mu.Unlock()
		if cli != nil && cli.Store.LIDs != nil {
			if pn, err := cli.Store.LIDs.GetPNForLID(ctx, chat); err == nil {
				chat = puppet.PreferPhone(chat, pn)
			}
		}
	}
	return database.PortalKey{ChatJID: chat.String(), Receiver: u.row.MXID}
}

func (u *User) queueMessage(ctx context.Context, evt *events.Message) bool {
	if evt.Message.GetSecretEncryptedMessage() != nil {
		return u.queueSecretEncrypted(ctx, evt)
	}
	chat := evt.Info.Chat
	if chat.Server == types.BroadcastServer {
		return u.queueBroadcast(ctx, evt)
	}
	if !evt.Info.IsGroup {
		// A DM addressed by LID: the other side's number came along as the alt of its sender,
		// or of its recipient for the user's own messages.
		alt := evt.Info.SenderAlt
		if evt.Info.IsFromMe {
			alt = evt.Info.RecipientAlt
		}
		chat = puppet.PreferPhone(chat, alt)
	}
	return u.queueInto(ctx, evt, chat, evt.Info.IsGroup)
}

// queueInto queues a message into the portal of chat.
func (u *User) queueInto(ctx context.Context, evt *events.Message, chat types.JID, isGroup bool) bool {
	log := u.log.With().Str("message_id", evt.Info.ID).Str("chat_jid", u.b.logJID(chat.String())).Logger()
	p, err := u.b.portals.Get(ctx, u.portalKey(ctx, chat), isGroup)
	if err != nil {
		log.Err(err).Msg("Failed to load the portal; WhatsApp will redeliver the message")
		return false
	}
	if notif := evt.Message.GetProtocolMessage().GetHistorySyncNotification(); notif != nil && evt.Info.IsFromMe {
		// The chunk itself is fetched from the queue (loadHistory), so the ack only waits
		// for the notification to be stored, and a restart resumes the sync.
		item, err := portal.NewHistoryChunkItem(&evt.Info, notif)
		if err == nil {
			err = p.Enqueue(ctx, item)
		}
		if err != nil {
			log.Err(err).Msg("Failed to queue a history chunk; WhatsApp will redeliver it")
			return false
		}
		return true
	}
	msg := evt.RawMessage
	if msg == nil {
		msg = evt.Message
	}
	item, err := portal.NewWAMessageItem(&evt.Info, msg)
	if err != nil {
		log.Err(err).Msg("Failed to pack a message")
		// It cannot be packed on redelivery either; the ledger says it was lost.
		return u.record(ctx, &archive.Entry{
			Kind: archive.KindUndecryptable, Chat: chat.ToNonAD().String(), Sender: evt.Info.Sender.ToNonAD().String(),
			MessageID: evt.Info.ID, Time: evt.Info.Timestamp,
			Completeness: &archive.Completeness{Reason: "message could not be stored for relaying: " + err.Error()},
		})
	}
	if evt.Info.Chat.IsBroadcastList() {
		// One message to a list the user sent goes into several DMs, each its own queue item.
		item.Item.DedupKey += "|" + chat.String()
	}
	if err := p.EnqueueMessage(ctx, item); err != nil {
		log.Err(err).Msg("Failed to queue a message; WhatsApp will redeliver it")
		return false
	}
	return true
}

func (u *User) ensurePortal(ctx context.Context, chat types.JID, isGroup bool) {
	p, err := u.b.portals.Get(ctx, u.portalKey(ctx, chat), isGroup)
	if err != nil {
		u.log.Err(err).Msg("Failed to load a portal")
		return
	}
	item, err := portal.NewGroupChangeItem(&portal.GroupChange{ID: "joined:" + chat.String(), Timestamp: time.Now()})
	if err == nil {
		err = p.Enqueue(ctx, item)
	}
	if err != nil {
		u.log.Err(err).Msg("Failed to queue the room creation")
	}
}

func (u *User) queueGroupChange(ctx context.Context, evt *events.GroupInfo) bool {
	change := &portal.GroupChange{Sender: ptrJID(evt.Sender), Timestamp: evt.Timestamp,
		Join: evt.Join, Leave: evt.Leave, Promote: evt.Promote, Demote: evt.Demote}
	if evt.Name != nil {
		change.Name = &evt.Name.Name
	}
	if evt.Topic != nil {
		change.Topic = &evt.Topic.Topic
	}
	change.ID = evt.JID.String() + "@" + evt.Timestamp.Format(time.RFC3339Nano)
	if evt.Notify != "" {
		change.ID += ":" + evt.Notify
	}
	p, err := u.b.portals.Get(ctx, u.portalKey(ctx, evt.JID), true)
	if err != nil {
		u.log.Err(err).Msg("Failed to load a group portal")
		return false
	}
	item, err := portal.NewGroupChangeItem(change)
	if err == nil {
		err = p.Enqueue(ctx, item)
	}
	if err != nil {
		u.log.Err(err).Msg("Failed to queue a group change")
		return false
	}
	return true
}

func ptrJID(jid *types.JID) types.JID {
	if jid == nil {
		return types.EmptyJID
	}
	return jid.ToNonAD()
}

func (u *User) handleReceipt(ctx context.Context, evt *events.Receipt) {
	if evt.Type != types.ReceiptTypeRead || evt.IsFromMe {
		// Delivery receipts change nothing on Matrix, and the user's own reads on the phone
		// cannot be shown as the Matrix user's.
		return
	}
	p, err := u.b.portals.Get(ctx, u.portalKey(ctx, evt.Chat), evt.IsGroup)
	if err != nil {
		u.log.Err(err).Msg("Failed to load the portal of a receipt")
		return
	}
	item, err := portal.NewReadReceiptItem(&portal.ReadReceipt{Reader: evt.Sender.ToNonAD(), MessageIDs: evt.MessageIDs, Timestamp: evt.Timestamp})
	if err == nil {
		err = p.Enqueue(ctx, item)
	}
	if err != nil {
		u.log.Err(err).Msg("Failed to queue a read receipt")
	}
}

func (u *User) handleChatPresence(ctx context.Context, evt *events.ChatPresence) {
	p, err := u.b.portals.Get(ctx, u.portalKey(ctx, evt.Chat), evt.IsGroup)
	if err != nil || p.RoomID() == "" {
		return
	}
	pup, err := u.b.puppets.Get(ctx, evt.Sender)
	if err != nil {
		return
	}
	typing := evt.State == types.ChatPresenceComposing
	timeout := time.Duration(0)
	if typing {
		timeout = 15 * time.Second
	}
	if _, err := u.b.as.Intent(pup.MXID()).UserTyping(ctx, p.RoomID(), typing, timeout); err != nil {
		u.log.Debug().Err(err).Msg("Failed to relay typing")
	}
}

func (u *User) updatePuppetName(ctx context.Context, jid types.JID) {
	if jid.Server != types.DefaultUserServer {
		return
	}
	u.mu.Lock()
	wa := u.wa
	u.mu.Unlock()
	if wa == nil {
		return
	}
	pup, err := u.b.puppets.Get(ctx, jid)
	if err == nil {
		err = u.b.puppets.UpdateName(ctx, pup, func(ctx context.Context) config.ContactNames { return wa.ContactNames(ctx, jid) })
	}
	if err != nil {
		u.log.Warn().Err(err).Str("jid", u.b.logJID(jid.String())).Msg("Failed to update a contact's name")
	}
}

// syncContactPuppets gives every WhatsApp contact a ghost named from the address book, so
// contacts show up on Matrix even before a chat with them exists.
func (u *User) syncContactPuppets(ctx context.Context) {
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil || cli.Store.Contacts == nil {
		return
	}
	all, err := cli.Store.Contacts.GetAllContacts(ctx)
	if err != nil {
		u.log.Err(err).Msg("Failed to read the contacts")
		return
	}
	own := u.ownJID()
	for jid := range all {
		if ctx.Err() != nil {
			return // the bridge is stopping
		}
		if jid.Server == types.DefaultUserServer && jid.User != own.User {
			u.updatePuppetName(ctx, jid)
			// Contacts without a chat get their picture too, so the user recognises them
			// when starting a chat.
			u.refreshAvatar(ctx, jid)
		}
	}
	u.log.Info().Int("contacts", len(all)).Msg("Synced contact ghosts")
}

func (u *User) updatePuppetAvatar(ctx context.Context, jid types.JID) {
	u.mu.Lock()
	wa := u.wa
	u.mu.Unlock()
	if wa == nil {
		return
	}
	pup, err := u.b.puppets.Get(ctx, jid)
	if err != nil {
		return
	}
	picID, fetch, err := wa.ProfilePicture(ctx, jid)
	if err == nil {
		err = u.b.puppets.UpdateAvatar(ctx, pup, picID, puppet.AvatarFetcher(fetch))
	}
	if err != nil {
		u.log.Warn().Err(err).Str("jid", u.b.logJID(jid.String())).Msg("Failed to update a contact's avatar")
	}
}

// afterConnect brings the user's own ghost and presence up to date.
func (u *User) afterConnect(ctx context.Context) {
	u.mu.Lock()
	cli := u.client
	changed := false
	if cli != nil && cli.Store.ID != nil {
		// Not cli.Store.PushName: whatsmeow writes it from its own goroutine without a lock. The
		// name comes from events.PushNameSetting (setPushName); until then the stored one stands.
		phone, push := cli.Store.ID.User, u.pushName.name
		if push == "" {
			push = u.row.WAPushName
		}
		if u.row.WAPhone != phone || u.row.WAPushName != push {
			u.row.WAPhone, u.row.WAPushName = phone, push
			changed = true
		}
	}
	row := *u.row
	u.mu.Unlock()
	if changed {
		if err := u.b.db.Users.Put(ctx, &row); err != nil {
			u.log.Err(err).Msg("Failed to save the login's phone number")
		}
	}
	if row.Presence != "" {
		if err := u.sendPresence(ctx, row.Presence); err != nil {
			u.log.Warn().Err(err).Msg("Failed to restore presence")
		}
	}
}
