package bridge

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"
)

// matrixAccount is where a WhatsApp contact is reachable on Matrix.
type matrixAccount struct {
	UserID id.UserID
	// ByName is set when the match came from the homeserver's user directory by display
	// name, not from the organisation's directory file: plausible, not proven.
	ByName bool
}

// describe says how the account was found, for the bot's messages.
func (m matrixAccount) describe() string {
	if m.ByName {
		return string(m.UserID) + " (found by name in the homeserver's user directory; check it is them)"
	}
	return string(m.UserID)
}

// directorySearchTTL bounds how stale a user-directory answer may be; colleagues join the
// homeserver during a migration, so a miss must not be remembered for long.
const directorySearchTTL = 10 * time.Minute

type directorySearchResult struct {
	account matrixAccount
	found   bool
	at      time.Time
}

// colleagueFinder matches WhatsApp contacts to Matrix accounts: the directory file first,
// then, when enabled, the homeserver's user directory by the contact's address-book name.
type colleagueFinder struct {
	b *Bridge

	mu    sync.Mutex
	cache map[string]directorySearchResult // by lower-cased name
}

// find returns the Matrix account of the contact jid, as seen by user u (whose address
// book supplies the name searched for).
func (f *colleagueFinder) find(ctx context.Context, u *User, jid types.JID) (matrixAccount, bool) {
	if mxid, ok := f.b.directory[jid.User]; ok {
		return matrixAccount{UserID: mxid}, true
	}
	if !f.b.cfg.Migration.UserDirectorySearch || u == nil {
		return matrixAccount{}, false
	}
	// Only the user's own address-book name is searched: push names are chosen by the
	// contact themself, so matching on them would let anyone claim a colleague's account.
	fullName := strings.Join(strings.Fields(u.addressBookName(ctx, jid)), " ")
	name := normaliseName(fullName)
	if name == "" {
		return matrixAccount{}, false
	}
	f.mu.Lock()
	cached, ok := f.cache[name]
	f.mu.Unlock()
	if ok && time.Since(cached.at) < directorySearchTTL {
		return cached.account, cached.found
	}
	acct, found, err := f.search(ctx, u, fullName)
	if err != nil {
		f.b.log.Warn().Err(err).Str("contact_jid", f.b.logJID(jid.String())).Msg("User directory search failed")
		return matrixAccount{}, false
	}
	f.mu.Lock()
	if f.cache == nil {
		f.cache = map[string]directorySearchResult{}
	}
	f.cache[name] = directorySearchResult{account: acct, found: found, at: time.Now()}
	f.mu.Unlock()
	return acct, found
}

// search asks the homeserver's user directory for fullName and accepts exactly one real
// account whose display name is that name: two namesakes are no match at all. Homeservers
// decide whom the bot can find (Synapse: everyone with user_directory.search_all_users;
// Dendrite 0.13.8: only users who share a room with the bot), and some match case-
// sensitively, so the name goes out as written in the address book.
func (f *colleagueFinder) search(ctx context.Context, u *User, fullName string) (matrixAccount, bool, error) {
	name := normaliseName(fullName)
	resp, err := f.b.bot.SearchUserDirectory(ctx, fullName, 100)
	if err != nil {
		return matrixAccount{}, false, err
	}
	f.b.log.Debug().Int("results", len(resp.Results)).Msg("Searched the user directory")
	var hits []id.UserID
	for _, r := range resp.Results {
		if r.UserID == u.MXID() || r.UserID == f.b.cfg.BotUserID() {
			continue
		}
		if _, ghost := f.b.cfg.IsPuppet(r.UserID); ghost {
			continue
		}
		// The spec names the field display_name; mautrix reads profiles' displayname.
		displayName := r.DisplayName
		if s, ok := r.Extra["display_name"].(string); ok && displayName == "" {
			displayName = s
		}
		if normaliseName(displayName) == name {
			hits = append(hits, r.UserID)
		}
	}
	if len(hits) != 1 {
		return matrixAccount{}, false, nil
	}
	return matrixAccount{UserID: hits[0], ByName: true}, true, nil
}

// normaliseName folds case and collapses white space, so "Dora  Vogel" finds "dora vogel".
func normaliseName(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), unicode.IsSpace), " ")
}

// addressBookName is the full name the user saved for jid, or "".
func (u *User) addressBookName(ctx context.Context, jid types.JID) string {
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil || cli.Store.Contacts == nil {
		return ""
	}
	info, err := cli.Store.Contacts.GetContact(ctx, jid.ToNonAD())
	if err != nil {
		return ""
	}
	return info.FullName
}
