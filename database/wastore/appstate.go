package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"go.mau.fi/whatsmeow/store"
)

// --- store.AppStateSyncKeyStore ---

// PutAppStateSyncKey stores a key, but never lets an older copy (a re-shared key with an
// earlier timestamp) replace a newer one.
func (s *deviceStore) PutAppStateSyncKey(ctx context.Context, id []byte, key store.AppStateSyncKey) error {
	return s.exec(ctx, fmt.Sprintf("store app state sync key %x", id), `
		INSERT INTO wastore_app_state_sync_key (device_jid, key_id, key_data, fingerprint, created_ts)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (device_jid, key_id) DO UPDATE
			SET key_data=excluded.key_data, fingerprint=excluded.fingerprint, created_ts=excluded.created_ts
			WHERE excluded.created_ts > wastore_app_state_sync_key.created_ts`,
		id, key.Data, key.Fingerprint, key.Timestamp)
}

func (s *deviceStore) GetAppStateSyncKey(ctx context.Context, id []byte) (*store.AppStateSyncKey, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	var key store.AppStateSyncKey
	err = s.c.db.QueryRow(ctx, "SELECT key_data, fingerprint, created_ts FROM wastore_app_state_sync_key WHERE device_jid=$1 AND key_id=$2",
		jid, id).Scan(&key.Data, &key.Fingerprint, &key.Timestamp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get app state sync key %x: %w", id, err)
	}
	return &key, nil
}

// GetLatestAppStateSyncKeyID is the ID of the key with the newest timestamp (ties broken by
// ID so the answer is stable), or nil when there are no keys.
func (s *deviceStore) GetLatestAppStateSyncKeyID(ctx context.Context) ([]byte, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	var id []byte
	err = s.c.db.QueryRow(ctx, "SELECT key_id FROM wastore_app_state_sync_key WHERE device_jid=$1 ORDER BY created_ts DESC, key_id DESC LIMIT 1",
		jid).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get latest app state sync key: %w", err)
	}
	return id, nil
}

// --- store.AppStateStore ---

func (s *deviceStore) PutAppStateVersion(ctx context.Context, name string, version uint64, hash [128]byte) error {
	if version > math.MaxInt64 {
		return fmt.Errorf("wastore: app state %s version %d does not fit in BIGINT", name, version)
	}
	return s.exec(ctx, "store app state version of "+name, `
		INSERT INTO wastore_app_state_version (device_jid, name, version, hash) VALUES ($1, $2, $3, $4)
		ON CONFLICT (device_jid, name) DO UPDATE SET version=excluded.version, hash=excluded.hash`,
		name, int64(version), hash[:])
}

// GetAppStateVersion returns 0 and an all-zero hash for a collection never synced, which
// is the state a full sync starts from.
func (s *deviceStore) GetAppStateVersion(ctx context.Context, name string) (uint64, [128]byte, error) {
	var hash [128]byte
	jid, err := s.ownJID()
	if err != nil {
		return 0, hash, err
	}
	var version int64
	var stored []byte
	err = s.c.db.QueryRow(ctx, "SELECT version, hash FROM wastore_app_state_version WHERE device_jid=$1 AND name=$2",
		jid, name).Scan(&version, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, hash, nil
	} else if err != nil {
		return 0, hash, fmt.Errorf("failed to get app state version of %s: %w", name, err)
	} else if len(stored) != len(hash) {
		return 0, hash, fmt.Errorf("%w: app state hash of %s is %d bytes", ErrCorruptRow, name, len(stored))
	}
	return uint64(version), [128]byte(stored), nil
}

// DeleteAppStateVersion forgets a collection, its mutation MACs included (foreign key).
func (s *deviceStore) DeleteAppStateVersion(ctx context.Context, name string) error {
	return s.exec(ctx, "delete app state version of "+name,
		"DELETE FROM wastore_app_state_version WHERE device_jid=$1 AND name=$2", name)
}

// PutAppStateMutationMACs records the value MAC of each index at version. The collection's
// version row must exist already (whatsmeow stores the version first).
func (s *deviceStore) PutAppStateMutationMACs(ctx context.Context, name string, version uint64, mutations []store.AppStateMutationMAC) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	if len(mutations) == 0 {
		return nil
	}
	if version > math.MaxInt64 {
		return fmt.Errorf("wastore: app state %s version %d does not fit in BIGINT", name, version)
	}
	mutations = lastWins(mutations, func(m store.AppStateMutationMAC) string { return string(m.IndexMAC) })
	return s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, chunk := range chunks(mutations, maxRowsPerInsert) {
			args := make([]any, 0, 1+4*len(chunk))
			args = append(args, jid)
			for _, m := range chunk {
				args = append(args, name, int64(version), m.IndexMAC, m.ValueMAC)
			}
			_, err := s.c.db.Exec(ctx, "INSERT INTO wastore_app_state_mutation_mac (device_jid, name, version, index_mac, value_mac) VALUES "+
				valueTuples(len(chunk), 4)+
				" ON CONFLICT (device_jid, name, index_mac, version) DO UPDATE SET value_mac=excluded.value_mac", args...)
			if err != nil {
				return fmt.Errorf("failed to store %d app state mutation MACs of %s: %w", len(chunk), name, err)
			}
		}
		return nil
	})
}

// DeleteAppStateMutationMACs forgets the given indexes at every version.
func (s *deviceStore) DeleteAppStateMutationMACs(ctx context.Context, name string, indexMACs [][]byte) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	if len(indexMACs) == 0 {
		return nil
	}
	return s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, chunk := range chunks(indexMACs, maxInListItems) {
			args := make([]any, 0, 2+len(chunk))
			args = append(args, jid, name)
			for _, mac := range chunk {
				args = append(args, mac)
			}
			_, err := s.c.db.Exec(ctx, "DELETE FROM wastore_app_state_mutation_mac WHERE device_jid=$1 AND name=$2 AND index_mac IN ("+
				placeholderList(3, len(chunk))+")", args...)
			if err != nil {
				return fmt.Errorf("failed to delete %d app state mutation MACs of %s: %w", len(chunk), name, err)
			}
		}
		return nil
	})
}

// GetAppStateMutationMAC returns the value MAC of the index at its newest version, or nil.
func (s *deviceStore) GetAppStateMutationMAC(ctx context.Context, name string, indexMAC []byte) ([]byte, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	var valueMAC []byte
	err = s.c.db.QueryRow(ctx, `
		SELECT value_mac FROM wastore_app_state_mutation_mac
		WHERE device_jid=$1 AND name=$2 AND index_mac=$3 ORDER BY version DESC LIMIT 1`,
		jid, name, indexMAC).Scan(&valueMAC)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get app state mutation MAC in %s: %w", name, err)
	}
	return valueMAC, nil
}
