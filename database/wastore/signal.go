package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Signal addresses are "user:device" (libsignal's SignalAddress.String). "Everything of a
// phone number" is therefore an address prefix "user:"; it is matched with substr rather
// than LIKE so that '_' in LID users ("123_1") is not a wildcard. $2 is the prefix and $3 its
// length in characters.
const addressHasPrefix = "substr(%s, 1, CAST($3 AS INTEGER)) = $2"

func prefixArgs(user string) (string, int) {
	prefix := user + ":"
	return prefix, utf8.RuneCountInString(prefix)
}

// --- store.IdentityStore ---

// PutIdentity leaves an unchanged key alone: libsignal saves the sender's identity with every
// prekey message it decrypts, and rewriting the same bytes dirties a page for nothing.
func (s *deviceStore) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	return s.exec(ctx, "store identity of "+address, `
		INSERT INTO wastore_identity (device_jid, address, identity_key) VALUES ($1, $2, $3)
		ON CONFLICT (device_jid, address) DO UPDATE SET identity_key=excluded.identity_key
		WHERE wastore_identity.identity_key <> excluded.identity_key`,
		address, key[:])
}

func (s *deviceStore) DeleteAllIdentities(ctx context.Context, phone string) error {
	prefix, n := prefixArgs(phone)
	return s.exec(ctx, "delete identities of "+phone,
		"DELETE FROM wastore_identity WHERE device_jid=$1 AND "+fmt.Sprintf(addressHasPrefix, "address"), prefix, n)
}

func (s *deviceStore) DeleteIdentity(ctx context.Context, address string) error {
	return s.exec(ctx, "delete identity of "+address,
		"DELETE FROM wastore_identity WHERE device_jid=$1 AND address=$2", address)
}

// IsTrustedIdentity trusts an unknown address (trust on first use; libsignal saves the key
// right after) and otherwise only the exact key stored for it.
func (s *deviceStore) IsTrustedIdentity(ctx context.Context, address string, key [32]byte) (bool, error) {
	jid, err := s.ownJID()
	if err != nil {
		return false, err
	}
	var stored []byte
	err = s.c.db.QueryRow(ctx, "SELECT identity_key FROM wastore_identity WHERE device_jid=$1 AND address=$2", jid, address).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("failed to get identity of %s: %w", address, err)
	} else if len(stored) != 32 {
		return false, fmt.Errorf("%w: identity of %s is %d bytes", ErrCorruptRow, address, len(stored))
	}
	return [32]byte(stored) == key, nil
}

// --- store.SessionStore ---

func (s *deviceStore) GetSession(ctx context.Context, address string) ([]byte, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	var record []byte
	err = s.c.db.QueryRow(ctx, "SELECT record FROM wastore_session WHERE device_jid=$1 AND address=$2", jid, address).Scan(&record)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get session with %s: %w", address, err)
	}
	return record, nil
}

func (s *deviceStore) HasSession(ctx context.Context, address string) (bool, error) {
	jid, err := s.ownJID()
	if err != nil {
		return false, err
	}
	var has bool
	err = s.c.db.QueryRow(ctx, "SELECT EXISTS(SELECT 1 FROM wastore_session WHERE device_jid=$1 AND address=$2)", jid, address).Scan(&has)
	if err != nil {
		return false, fmt.Errorf("failed to check for session with %s: %w", address, err)
	}
	return has, nil
}

// GetManySessions answers for every requested address: addresses without a session map to
// nil, which is how Device.WithCachedSessions learns that they are new.
func (s *deviceStore) GetManySessions(ctx context.Context, addresses []string) (map[string][]byte, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	result := make(map[string][]byte, len(addresses))
	for _, addr := range addresses {
		result[addr] = nil
	}
	for _, chunk := range chunks(addresses, maxInListItems) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, jid)
		for _, addr := range chunk {
			args = append(args, addr)
		}
		rows, err := s.c.db.Query(ctx, "SELECT address, record FROM wastore_session WHERE device_jid=$1 AND address IN ("+
			placeholderList(2, len(chunk))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("failed to get %d sessions: %w", len(chunk), err)
		}
		for rows.Next() {
			var addr string
			var record []byte
			if err := rows.Scan(&addr, &record); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("failed to read session: %w", err)
			}
			result[addr] = record
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("failed to read sessions: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("failed to read sessions: %w", err)
		}
	}
	return result, nil
}

const upsertSessionsPrefix = "INSERT INTO wastore_session (device_jid, address, record) VALUES "
const upsertSessionsSuffix = " ON CONFLICT (device_jid, address) DO UPDATE SET record=excluded.record"

func (s *deviceStore) PutSession(ctx context.Context, address string, session []byte) error {
	return s.exec(ctx, "store session with "+address, upsertSessionsPrefix+"($1, $2, $3)"+upsertSessionsSuffix, address, session)
}

// PutManySessions writes all sessions atomically: whatsmeow flushes the session cache of a
// whole fan-out send with it.
func (s *deviceStore) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	type entry struct {
		addr   string
		record []byte
	}
	entries := make([]entry, 0, len(sessions))
	for addr, record := range sessions {
		entries = append(entries, entry{addr, record})
	}
	return s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, chunk := range chunks(entries, maxRowsPerInsert) {
			args := make([]any, 0, 1+2*len(chunk))
			args = append(args, jid)
			for _, e := range chunk {
				args = append(args, e.addr, e.record)
			}
			_, err := s.c.db.Exec(ctx, upsertSessionsPrefix+valueTuples(len(chunk), 2)+upsertSessionsSuffix, args...)
			if err != nil {
				return fmt.Errorf("failed to store %d sessions: %w", len(chunk), err)
			}
		}
		return nil
	})
}

func (s *deviceStore) DeleteAllSessions(ctx context.Context, phone string) error {
	prefix, n := prefixArgs(phone)
	return s.exec(ctx, "delete sessions of "+phone,
		"DELETE FROM wastore_session WHERE device_jid=$1 AND "+fmt.Sprintf(addressHasPrefix, "address"), prefix, n)
}

func (s *deviceStore) DeleteSession(ctx context.Context, address string) error {
	return s.exec(ctx, "delete session with "+address,
		"DELETE FROM wastore_session WHERE device_jid=$1 AND address=$2", address)
}

// migrations move every row of a phone number's Signal addresses to the LID addresses: $2/$3
// select the PN prefix, $4 is the LID prefix that replaces it. Like whatsmeow, a migrated row
// overwrites one already stored under the LID address.
var migrations = []struct{ table, column, columns, copy, conflict string }{
	{"wastore_session", "address", "device_jid, address, record",
		"device_jid, CAST($4 AS TEXT) || substr(address, CAST($3 AS INTEGER) + 1), record",
		"(device_jid, address) DO UPDATE SET record=excluded.record"},
	{"wastore_identity", "address", "device_jid, address, identity_key",
		"device_jid, CAST($4 AS TEXT) || substr(address, CAST($3 AS INTEGER) + 1), identity_key",
		"(device_jid, address) DO UPDATE SET identity_key=excluded.identity_key"},
	{"wastore_sender_key", "sender_address", "device_jid, group_id, sender_address, record",
		"device_jid, group_id, CAST($4 AS TEXT) || substr(sender_address, CAST($3 AS INTEGER) + 1), record",
		"(device_jid, group_id, sender_address) DO UPDATE SET record=excluded.record"},
}

// MigratePNToLID moves sessions, identities and sender keys of pn's Signal addresses to
// lid's, in one transaction, once per phone number per process.
func (s *deviceStore) MigratePNToLID(ctx context.Context, pn, lid types.JID) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	pnUser := pn.SignalAddressUser()
	s.migratedLock.Lock()
	_, done := s.migrated[pnUser]
	s.migratedLock.Unlock()
	if done {
		return nil
	}
	pnPrefix, n := prefixArgs(pnUser)
	lidPrefix, _ := prefixArgs(lid.SignalAddressUser())
	moved := make(map[string]int64, len(migrations))
	err = s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, m := range migrations {
			where := " WHERE device_jid=$1 AND " + fmt.Sprintf(addressHasPrefix, m.column)
			res, err := s.c.db.Exec(ctx, "INSERT INTO "+m.table+" ("+m.columns+") SELECT "+m.copy+
				" FROM "+m.table+where+" ON CONFLICT "+m.conflict, jid, pnPrefix, n, lidPrefix)
			if err != nil {
				return fmt.Errorf("failed to copy %s rows to the LID: %w", m.table, err)
			}
			if moved[m.table], err = res.RowsAffected(); err != nil {
				return fmt.Errorf("failed to count copied %s rows: %w", m.table, err)
			}
			if _, err := s.c.db.Exec(ctx, "DELETE FROM "+m.table+where, jid, pnPrefix, n); err != nil {
				return fmt.Errorf("failed to delete %s rows of the phone number: %w", m.table, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to migrate Signal state from %s to %s: %w", pn, lid, err)
	}
	s.migratedLock.Lock()
	s.migrated[pnUser] = struct{}{}
	s.migratedLock.Unlock()
	if moved["wastore_session"]+moved["wastore_identity"]+moved["wastore_sender_key"] > 0 {
		zerolog.Ctx(ctx).Info().Stringer("pn", pn).Stringer("lid", lid).
			Int64("sessions", moved["wastore_session"]).
			Int64("identities", moved["wastore_identity"]).
			Int64("sender_keys", moved["wastore_sender_key"]).
			Msg("Migrated Signal state from phone number to LID")
	}
	return nil
}

// --- store.PreKeyStore ---

// maxPreKeyID is the largest one-time prekey ID: WhatsApp sends IDs as three bytes.
const maxPreKeyID = 1<<24 - 1

// allocPreKeyIDs reserves n IDs from the device's monotonic counter. The counter keeps
// counting past maxPreKeyID; IDs wrap around to 1 (after 16 million keys).
func (s *deviceStore) allocPreKeyIDs(ctx context.Context, jid string, n int) ([]uint32, error) {
	var end int64
	err := s.c.db.QueryRow(ctx, "UPDATE wastore_device SET next_pre_key_id=next_pre_key_id+$2 WHERE jid=$1 RETURNING next_pre_key_id",
		jid, n).Scan(&end)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("device %s is not stored: %w", jid, ErrDeviceIDMustBeSet)
	} else if err != nil {
		return nil, fmt.Errorf("failed to reserve %d prekey IDs: %w", n, err)
	}
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32((end-int64(n)+int64(i)-1)%maxPreKeyID) + 1
	}
	return ids, nil
}

// genPreKeys creates and stores keys under fresh IDs. A wrapped-around ID replaces the old
// key of that number, which is long consumed or abandoned.
func (s *deviceStore) genPreKeys(ctx context.Context, jid string, n int, uploaded bool) ([]*keys.PreKey, error) {
	ids, err := s.allocPreKeyIDs(ctx, jid, n)
	if err != nil {
		return nil, err
	}
	generated := make([]*keys.PreKey, 0, n)
	for _, chunk := range chunks(ids, maxRowsPerInsert) {
		args := make([]any, 0, 1+3*len(chunk))
		args = append(args, jid)
		for _, id := range chunk {
			key := keys.NewPreKey(id)
			generated = append(generated, key)
			args = append(args, int64(id), key.Priv[:], uploaded)
		}
		_, err := s.c.db.Exec(ctx, "INSERT INTO wastore_pre_key (device_jid, key_id, priv, uploaded) VALUES "+
			valueTuples(len(chunk), 3)+
			" ON CONFLICT (device_jid, key_id) DO UPDATE SET priv=excluded.priv, uploaded=excluded.uploaded", args...)
		if err != nil {
			return nil, fmt.Errorf("failed to store %d new prekeys: %w", len(chunk), err)
		}
	}
	return generated, nil
}

// GetOrGenPreKeys returns count keys that have not been uploaded yet, lowest IDs first,
// generating as many as are missing.
func (s *deviceStore) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	s.preKeyLock.Lock()
	defer s.preKeyLock.Unlock()
	var result []*keys.PreKey
	err = s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		result = make([]*keys.PreKey, 0, count)
		rows, err := s.c.db.Query(ctx, "SELECT key_id, priv FROM wastore_pre_key WHERE device_jid=$1 AND uploaded=false ORDER BY key_id LIMIT $2",
			jid, int64(count))
		if err != nil {
			return fmt.Errorf("failed to get unuploaded prekeys: %w", err)
		}
		for rows.Next() {
			key, err := scanPreKey(rows)
			if err != nil {
				_ = rows.Close()
				return err
			}
			result = append(result, key)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("failed to read unuploaded prekeys: %w", err)
		}
		if missing := int(count) - len(result); missing > 0 {
			generated, err := s.genPreKeys(ctx, jid, missing, false)
			if err != nil {
				return err
			}
			result = append(result, generated...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// GenOnePreKey makes a key that is handed out directly (in a retry receipt), so it counts
// as uploaded.
func (s *deviceStore) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	s.preKeyLock.Lock()
	defer s.preKeyLock.Unlock()
	var generated []*keys.PreKey
	err = s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		generated, err = s.genPreKeys(ctx, jid, 1, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return generated[0], nil
}

func scanPreKey(row interface{ Scan(...any) error }) (*keys.PreKey, error) {
	var id int64
	var priv []byte
	if err := row.Scan(&id, &priv); err != nil {
		return nil, err
	}
	if len(priv) != 32 {
		return nil, fmt.Errorf("%w: prekey %d is %d bytes", ErrCorruptRow, id, len(priv))
	}
	return &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey([32]byte(priv)), KeyID: uint32(id)}, nil
}

func (s *deviceStore) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	key, err := scanPreKey(s.c.db.QueryRow(ctx, "SELECT key_id, priv FROM wastore_pre_key WHERE device_jid=$1 AND key_id=$2", jid, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get prekey %d: %w", id, err)
	}
	return key, nil
}

func (s *deviceStore) RemovePreKey(ctx context.Context, id uint32) error {
	return s.exec(ctx, fmt.Sprintf("remove prekey %d", id), "DELETE FROM wastore_pre_key WHERE device_jid=$1 AND key_id=$2", int64(id))
}

func (s *deviceStore) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	return s.exec(ctx, fmt.Sprintf("mark prekeys up to %d uploaded", upToID),
		"UPDATE wastore_pre_key SET uploaded=true WHERE device_jid=$1 AND key_id<=$2 AND uploaded=false", int64(upToID))
}

func (s *deviceStore) UploadedPreKeyCount(ctx context.Context) (int, error) {
	jid, err := s.ownJID()
	if err != nil {
		return 0, err
	}
	var count int
	if err := s.c.db.QueryRow(ctx, "SELECT COUNT(*) FROM wastore_pre_key WHERE device_jid=$1 AND uploaded=true", jid).Scan(&count); err != nil {
		return 0, fmt.Errorf("failed to count uploaded prekeys: %w", err)
	}
	return count, nil
}

// --- store.SenderKeyStore ---

func (s *deviceStore) PutSenderKey(ctx context.Context, group, user string, session []byte) error {
	return s.exec(ctx, "store sender key of "+user+" in "+group, `
		INSERT INTO wastore_sender_key (device_jid, group_id, sender_address, record) VALUES ($1, $2, $3, $4)
		ON CONFLICT (device_jid, group_id, sender_address) DO UPDATE SET record=excluded.record`,
		group, user, session)
}

func (s *deviceStore) GetSenderKey(ctx context.Context, group, user string) ([]byte, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	var record []byte
	err = s.c.db.QueryRow(ctx, "SELECT record FROM wastore_sender_key WHERE device_jid=$1 AND group_id=$2 AND sender_address=$3",
		jid, group, user).Scan(&record)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get sender key of %s in %s: %w", user, group, err)
	}
	return record, nil
}
