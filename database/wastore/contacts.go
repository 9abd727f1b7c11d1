package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// Contacts are people, not devices: every method keys them by user.ToNonAD().

const contactColumns = "first_name, full_name, push_name, business_name, redacted_phone"

func scanContact(row interface{ Scan(...any) error }, prefix ...any) (types.ContactInfo, error) {
	info := types.ContactInfo{Found: true}
	err := row.Scan(append(prefix, &info.FirstName, &info.FullName, &info.PushName, &info.BusinessName, &info.RedactedPhone)...)
	return info, err
}

// contact returns the cached or stored contact. Callers hold contactLock.
func (s *deviceStore) contact(ctx context.Context, jid string, user types.JID) (types.ContactInfo, error) {
	if info, ok := s.contactCache[user]; ok {
		return info, nil
	}
	info, err := scanContact(s.c.db.QueryRow(ctx, "SELECT "+contactColumns+" FROM wastore_contact WHERE device_jid=$1 AND contact_jid=$2",
		jid, user.String()))
	if errors.Is(err, sql.ErrNoRows) {
		info = types.ContactInfo{}
	} else if err != nil {
		return types.ContactInfo{}, fmt.Errorf("failed to get contact %s: %w", user, err)
	}
	s.contactCache[user] = info
	return info, nil
}

// putContactName changes one name column when it differs, reporting the previous value.
func (s *deviceStore) putContactName(ctx context.Context, user types.JID, column string,
	field func(*types.ContactInfo) *string, name string) (bool, string, error) {
	jid, err := s.ownJID()
	if err != nil {
		return false, "", err
	}
	user = user.ToNonAD()
	s.contactLock.Lock()
	defer s.contactLock.Unlock()
	info, err := s.contact(ctx, jid, user)
	if err != nil {
		return false, "", err
	}
	previous := *field(&info)
	if previous == name {
		return false, "", nil
	}
	_, err = s.c.db.Exec(ctx, fmt.Sprintf(`
		INSERT INTO wastore_contact (device_jid, contact_jid, %[1]s) VALUES ($1, $2, $3)
		ON CONFLICT (device_jid, contact_jid) DO UPDATE SET %[1]s=excluded.%[1]s`, column),
		jid, user.String(), name)
	if err != nil {
		return false, "", fmt.Errorf("failed to store %s of %s: %w", column, user, err)
	}
	*field(&info) = name
	info.Found = true
	s.contactCache[user] = info
	return true, previous, nil
}

// PutPushName reports whether the push name changed and, if so, what it was before.
func (s *deviceStore) PutPushName(ctx context.Context, user types.JID, pushName string) (bool, string, error) {
	return s.putContactName(ctx, user, "push_name", func(i *types.ContactInfo) *string { return &i.PushName }, pushName)
}

// PutBusinessName reports whether the business name changed and, if so, what it was before.
func (s *deviceStore) PutBusinessName(ctx context.Context, user types.JID, businessName string) (bool, string, error) {
	return s.putContactName(ctx, user, "business_name", func(i *types.ContactInfo) *string { return &i.BusinessName }, businessName)
}

// PutContactName takes the first name before the full name. store.ContactStore names the
// parameters the other way round, but whatsmeow's only caller (appstate.go) and sqlstore
// both pass (firstName, fullName); the call site is what matters.
func (s *deviceStore) PutContactName(ctx context.Context, user types.JID, firstName, fullName string) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	user = user.ToNonAD()
	s.contactLock.Lock()
	defer s.contactLock.Unlock()
	info, err := s.contact(ctx, jid, user)
	if err != nil {
		return err
	}
	if info.Found && info.FirstName == firstName && info.FullName == fullName {
		return nil
	}
	_, err = s.c.db.Exec(ctx, `
		INSERT INTO wastore_contact (device_jid, contact_jid, first_name, full_name) VALUES ($1, $2, $3, $4)
		ON CONFLICT (device_jid, contact_jid) DO UPDATE SET first_name=excluded.first_name, full_name=excluded.full_name`,
		jid, user.String(), firstName, fullName)
	if err != nil {
		return fmt.Errorf("failed to store contact name of %s: %w", user, err)
	}
	info.FirstName, info.FullName, info.Found = firstName, fullName, true
	s.contactCache[user] = info
	return nil
}

// putManyContactColumns upserts the given columns for many contacts in one transaction.
// Later entries for the same user win.
func (s *deviceStore) putManyContactColumns(ctx context.Context, what string, columns []string, users []types.JID, values [][]any) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	type row struct {
		user   types.JID
		values []any
	}
	rows := make([]row, len(users))
	for i, user := range users {
		rows[i] = row{user.ToNonAD(), values[i]}
	}
	rows = lastWins(rows, func(r row) types.JID { return r.user })
	insertCols, updates := "device_jid, contact_jid", ""
	for i, col := range columns {
		insertCols += ", " + col
		if i > 0 {
			updates += ", "
		}
		updates += col + "=excluded." + col
	}
	s.contactLock.Lock()
	defer s.contactLock.Unlock()
	err = s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, chunk := range chunks(rows, maxRowsPerInsert) {
			args := make([]any, 0, 1+(1+len(columns))*len(chunk))
			args = append(args, jid)
			for _, r := range chunk {
				args = append(args, r.user.String())
				args = append(args, r.values...)
			}
			_, err := s.c.db.Exec(ctx, "INSERT INTO wastore_contact ("+insertCols+") VALUES "+valueTuples(len(chunk), 1+len(columns))+
				" ON CONFLICT (device_jid, contact_jid) DO UPDATE SET "+updates, args...)
			if err != nil {
				return fmt.Errorf("failed to store %s of %d contacts: %w", what, len(chunk), err)
			}
		}
		return nil
	})
	// Dropped rather than patched: after a failed (rolled back) write the cache must not
	// claim what the database does not have.
	for _, r := range rows {
		delete(s.contactCache, r.user)
	}
	return err
}

func (s *deviceStore) PutAllContactNames(ctx context.Context, contacts []store.ContactEntry) error {
	if len(contacts) == 0 {
		return nil
	}
	users := make([]types.JID, len(contacts))
	values := make([][]any, len(contacts))
	for i, c := range contacts {
		users[i], values[i] = c.JID, []any{c.FirstName, c.FullName}
	}
	return s.putManyContactColumns(ctx, "names", []string{"first_name", "full_name"}, users, values)
}

func (s *deviceStore) PutManyRedactedPhones(ctx context.Context, entries []store.RedactedPhoneEntry) error {
	if len(entries) == 0 {
		return nil
	}
	users := make([]types.JID, len(entries))
	values := make([][]any, len(entries))
	for i, e := range entries {
		users[i], values[i] = e.JID, []any{e.RedactedPhone}
	}
	return s.putManyContactColumns(ctx, "redacted phones", []string{"redacted_phone"}, users, values)
}

func (s *deviceStore) GetContact(ctx context.Context, user types.JID) (types.ContactInfo, error) {
	jid, err := s.ownJID()
	if err != nil {
		return types.ContactInfo{}, err
	}
	s.contactLock.Lock()
	defer s.contactLock.Unlock()
	return s.contact(ctx, jid, user.ToNonAD())
}

func (s *deviceStore) GetAllContacts(ctx context.Context) (map[types.JID]types.ContactInfo, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	s.contactLock.Lock()
	defer s.contactLock.Unlock()
	rows, err := s.c.db.Query(ctx, "SELECT contact_jid, "+contactColumns+" FROM wastore_contact WHERE device_jid=$1", jid)
	if err != nil {
		return nil, fmt.Errorf("failed to get contacts: %w", err)
	}
	defer rows.Close()
	contacts := make(map[types.JID]types.ContactInfo)
	for rows.Next() {
		var user types.JID
		info, err := scanContact(rows, &user)
		if err != nil {
			return nil, fmt.Errorf("failed to read contact: %w", err)
		}
		contacts[user] = info
		s.contactCache[user] = info
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read contacts: %w", err)
	}
	return contacts, nil
}

// --- store.ChatSettingsStore ---

// mutedUntilValue encodes a mute deadline: 0 = not muted, -1 = store.MutedForever.
func mutedUntilValue(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Equal(store.MutedForever):
		return -1
	default:
		return t.Unix()
	}
}

func (s *deviceStore) putChatSetting(ctx context.Context, chat types.JID, column string, value any) error {
	return s.exec(ctx, fmt.Sprintf("store %s of chat %s", column, chat), fmt.Sprintf(`
		INSERT INTO wastore_chat_settings (device_jid, chat_jid, %[1]s) VALUES ($1, $2, $3)
		ON CONFLICT (device_jid, chat_jid) DO UPDATE SET %[1]s=excluded.%[1]s`, column),
		chat.String(), value)
}

func (s *deviceStore) PutMutedUntil(ctx context.Context, chat types.JID, mutedUntil time.Time) error {
	return s.putChatSetting(ctx, chat, "muted_until", mutedUntilValue(mutedUntil))
}

func (s *deviceStore) PutPinned(ctx context.Context, chat types.JID, pinned bool) error {
	return s.putChatSetting(ctx, chat, "pinned", pinned)
}

func (s *deviceStore) PutArchived(ctx context.Context, chat types.JID, archived bool) error {
	return s.putChatSetting(ctx, chat, "archived", archived)
}

func (s *deviceStore) GetChatSettings(ctx context.Context, chat types.JID) (types.LocalChatSettings, error) {
	var settings types.LocalChatSettings
	jid, err := s.ownJID()
	if err != nil {
		return settings, err
	}
	var mutedUntil int64
	err = s.c.db.QueryRow(ctx, "SELECT muted_until, pinned, archived FROM wastore_chat_settings WHERE device_jid=$1 AND chat_jid=$2",
		jid, chat.String()).Scan(&mutedUntil, &settings.Pinned, &settings.Archived)
	if errors.Is(err, sql.ErrNoRows) {
		return settings, nil
	} else if err != nil {
		return settings, fmt.Errorf("failed to get settings of chat %s: %w", chat, err)
	}
	settings.Found = true
	switch {
	case mutedUntil < 0:
		settings.MutedUntil = store.MutedForever
	case mutedUntil > 0:
		settings.MutedUntil = time.Unix(mutedUntil, 0)
	}
	return settings, nil
}
