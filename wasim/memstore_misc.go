package wasim

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

func (ms *MemoryStore) updateContact(user types.JID, fn func(*types.ContactInfo)) {
	c := ms.contacts[user]
	c.Found = true
	fn(&c)
	ms.contacts[user] = c
}

func (ms *MemoryStore) PutPushName(_ context.Context, user types.JID, pushName string) (bool, string, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	prev := ms.contacts[user].PushName
	if prev == pushName {
		return false, "", nil
	}
	ms.updateContact(user, func(c *types.ContactInfo) { c.PushName = pushName })
	return true, prev, nil
}

func (ms *MemoryStore) PutBusinessName(_ context.Context, user types.JID, businessName string) (bool, string, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	prev := ms.contacts[user].BusinessName
	if prev == businessName {
		return false, "", nil
	}
	ms.updateContact(user, func(c *types.ContactInfo) { c.BusinessName = businessName })
	return true, prev, nil
}

func (ms *MemoryStore) PutContactName(_ context.Context, user types.JID, fullName, firstName string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.updateContact(user, func(c *types.ContactInfo) { c.FullName, c.FirstName = fullName, firstName })
	return nil
}

func (ms *MemoryStore) PutAllContactNames(_ context.Context, contacts []store.ContactEntry) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, e := range contacts {
		ms.updateContact(e.JID, func(c *types.ContactInfo) { c.FullName, c.FirstName = e.FullName, e.FirstName })
	}
	return nil
}

func (ms *MemoryStore) PutManyRedactedPhones(_ context.Context, entries []store.RedactedPhoneEntry) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, e := range entries {
		ms.updateContact(e.JID, func(c *types.ContactInfo) { c.RedactedPhone = e.RedactedPhone })
	}
	return nil
}

func (ms *MemoryStore) GetContact(_ context.Context, user types.JID) (types.ContactInfo, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.contacts[user], nil
}

func (ms *MemoryStore) GetAllContacts(_ context.Context) (map[types.JID]types.ContactInfo, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make(map[types.JID]types.ContactInfo, len(ms.contacts))
	for k, v := range ms.contacts {
		out[k] = v
	}
	return out, nil
}

func (ms *MemoryStore) updateChat(chat types.JID, fn func(*types.LocalChatSettings)) {
	c := ms.chats[chat]
	c.Found = true
	fn(&c)
	ms.chats[chat] = c
}

func (ms *MemoryStore) PutMutedUntil(_ context.Context, chat types.JID, mutedUntil time.Time) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.updateChat(chat, func(c *types.LocalChatSettings) { c.MutedUntil = mutedUntil })
	return nil
}

func (ms *MemoryStore) PutPinned(_ context.Context, chat types.JID, pinned bool) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.updateChat(chat, func(c *types.LocalChatSettings) { c.Pinned = pinned })
	return nil
}

func (ms *MemoryStore) PutArchived(_ context.Context, chat types.JID, archived bool) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.updateChat(chat, func(c *types.LocalChatSettings) { c.Archived = archived })
	return nil
}

func (ms *MemoryStore) GetChatSettings(_ context.Context, chat types.JID) (types.LocalChatSettings, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.chats[chat], nil
}

func secretKey(chat, sender types.JID, id types.MessageID) string {
	return chat.ToNonAD().String() + "|" + sender.ToNonAD().String() + "|" + id
}

func (ms *MemoryStore) PutMessageSecrets(_ context.Context, inserts []store.MessageSecretInsert) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, in := range inserts {
		ms.secrets[secretKey(in.Chat, in.Sender, in.ID)] = memSecret{secret: in.Secret, sender: in.Sender.ToNonAD()}
	}
	return nil
}

func (ms *MemoryStore) PutMessageSecret(_ context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.secrets[secretKey(chat, sender, id)] = memSecret{secret: secret, sender: sender.ToNonAD()}
	return nil
}

func (ms *MemoryStore) GetMessageSecret(_ context.Context, chat, sender types.JID, id types.MessageID) ([]byte, types.JID, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	s, ok := ms.secrets[secretKey(chat, sender, id)]
	if !ok {
		// The sender may be known under its other identity (PN vs LID).
		if alt := ms.altUserLocked(sender.ToNonAD()); !alt.IsEmpty() {
			s = ms.secrets[secretKey(chat, alt, id)]
		}
	}
	return s.secret, s.sender, nil
}

func (ms *MemoryStore) PutPrivacyTokens(_ context.Context, tokens ...store.PrivacyToken) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, t := range tokens {
		ms.tokens[t.User.ToNonAD()] = t
	}
	return nil
}

func (ms *MemoryStore) GetPrivacyToken(_ context.Context, user types.JID) (*store.PrivacyToken, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if t, ok := ms.tokens[user.ToNonAD()]; ok {
		return &t, nil
	}
	if t, ok := ms.tokens[ms.altUserLocked(user.ToNonAD())]; ok {
		return &t, nil
	}
	return nil, nil
}

func (ms *MemoryStore) GetBufferedEvent(_ context.Context, hash [32]byte) (*store.BufferedEvent, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ev := ms.buffered[hash]; ev != nil {
		cp := *ev
		return &cp, nil
	}
	return nil, nil
}

func (ms *MemoryStore) PutBufferedEvent(_ context.Context, hash [32]byte, plaintext []byte, serverTime time.Time) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.buffered[hash] = &store.BufferedEvent{Plaintext: plaintext, InsertTime: time.Now(), ServerTime: serverTime}
	return nil
}

// DoDecryptionTxn has nothing to make atomic: every store call is already applied under the lock.
func (ms *MemoryStore) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	return fn(ctx)
}

func (ms *MemoryStore) ClearBufferedEventPlaintext(_ context.Context, hash [32]byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ev := ms.buffered[hash]; ev != nil {
		ev.Plaintext = nil
	}
	return nil
}

func (ms *MemoryStore) DeleteOldBufferedHashes(_ context.Context) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for h, ev := range ms.buffered {
		if time.Since(ev.InsertTime) > 14*24*time.Hour {
			delete(ms.buffered, h)
		}
	}
	return nil
}

func (ms *MemoryStore) altUserLocked(jid types.JID) types.JID {
	switch jid.Server {
	case types.DefaultUserServer:
		if lid := ms.pnToLID[jid.User]; lid != "" {
			return types.NewJID(lid, types.HiddenUserServer)
		}
	case types.HiddenUserServer:
		if pn := ms.lidToPN[jid.User]; pn != "" {
			return types.NewJID(pn, types.DefaultUserServer)
		}
	}
	return types.EmptyJID
}

func (ms *MemoryStore) PutManyLIDMappings(_ context.Context, mappings []store.LIDMapping) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range mappings {
		if m.LID.Server == types.HiddenUserServer && m.PN.Server == types.DefaultUserServer {
			ms.putLIDLocked(m.LID.User, m.PN.User)
		}
	}
	return nil
}

func (ms *MemoryStore) putLIDLocked(lid, pn string) {
	if old := ms.pnToLID[pn]; old != "" && old != lid {
		delete(ms.lidToPN, old)
	}
	if old := ms.lidToPN[lid]; old != "" && old != pn {
		delete(ms.pnToLID, old)
	}
	ms.lidToPN[lid] = pn
	ms.pnToLID[pn] = lid
}

func (ms *MemoryStore) PutLIDMapping(_ context.Context, lid, pn types.JID) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if lid.Server == types.HiddenUserServer && pn.Server == types.DefaultUserServer {
		ms.putLIDLocked(lid.User, pn.User)
	}
	return nil
}

func (ms *MemoryStore) GetPNForLID(_ context.Context, lid types.JID) (types.JID, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if pn := ms.lidToPN[lid.User]; pn != "" {
		return types.JID{User: pn, Device: lid.Device, Server: types.DefaultUserServer}, nil
	}
	return types.EmptyJID, nil
}

func (ms *MemoryStore) GetLIDForPN(_ context.Context, pn types.JID) (types.JID, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if lid := ms.pnToLID[pn.User]; lid != "" {
		return types.JID{User: lid, Device: pn.Device, Server: types.HiddenUserServer}, nil
	}
	return types.EmptyJID, nil
}

func (ms *MemoryStore) GetManyLIDsForPNs(_ context.Context, pns []types.JID) (map[types.JID]types.JID, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make(map[types.JID]types.JID, len(pns))
	for _, pn := range pns {
		if lid := ms.pnToLID[pn.User]; lid != "" && pn.Server == types.DefaultUserServer {
			out[pn] = types.JID{User: lid, Device: pn.Device, Server: types.HiddenUserServer}
		}
	}
	return out, nil
}
