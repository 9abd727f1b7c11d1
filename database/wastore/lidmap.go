package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// lidMap implements store.LIDStore for all devices of a container, with a cache in both
// directions: whatsmeow looks mappings up for every recipient device of every send and
// re-stores the ones it learns from nearly every incoming message.
//
// The mutex is never held across a database call, so a goroutine inside a decryption
// transaction can always read the map. Instead gen counts writes: an answer read from the
// database is only cached if no write happened meanwhile, and a write only patches the cache
// if no other write overtook it (otherwise it just drops the entries it touched).
//
// A write made inside a caller's transaction that later rolls back leaves the cache ahead
// of the database; such a mapping came from the server and is stored again when next seen.
type lidMap struct {
	db *dbutil.Database

	mu      sync.RWMutex
	gen     uint64
	pnToLID map[string]string // "" caches "no mapping"
	lidToPN map[string]string
}

var _ store.LIDStore = (*lidMap)(nil)

func newLIDMap(db *dbutil.Database) *lidMap {
	return &lidMap{db: db, pnToLID: make(map[string]string), lidToPN: make(map[string]string)}
}

// lookup maps one user in either direction through the cache.
func (m *lidMap) lookup(ctx context.Context, user string, fromPN bool) (string, error) {
	m.mu.RLock()
	from, to := m.direction(fromPN)
	target, ok := from[user]
	gen := m.gen
	m.mu.RUnlock()
	if ok {
		return target, nil
	}
	query := "SELECT pn_user FROM wastore_lid_map WHERE lid_user=$1"
	if fromPN {
		query = "SELECT lid_user FROM wastore_lid_map WHERE pn_user=$1"
	}
	err := m.db.QueryRow(ctx, query, user).Scan(&target)
	if errors.Is(err, sql.ErrNoRows) {
		target = ""
	} else if err != nil {
		return "", fmt.Errorf("failed to look up LID mapping of %s: %w", user, err)
	}
	m.mu.Lock()
	if m.gen == gen {
		from[user] = target
		if target != "" {
			to[target] = user
		}
	}
	m.mu.Unlock()
	return target, nil
}

// direction returns the (source, target) maps for a lookup from a phone number or a LID.
func (m *lidMap) direction(fromPN bool) (map[string]string, map[string]string) {
	if fromPN {
		return m.pnToLID, m.lidToPN
	}
	return m.lidToPN, m.pnToLID
}

// GetLIDForPN returns the LID of a phone-number JID, keeping its device; empty if unknown.
func (m *lidMap) GetLIDForPN(ctx context.Context, pn types.JID) (types.JID, error) {
	if pn.Server != types.DefaultUserServer {
		return types.EmptyJID, fmt.Errorf("wastore: GetLIDForPN called with non-phone-number JID %s", pn)
	}
	lid, err := m.lookup(ctx, pn.User, true)
	if err != nil || lid == "" {
		return types.EmptyJID, err
	}
	return types.JID{User: lid, Device: pn.Device, Server: types.HiddenUserServer}, nil
}

// GetPNForLID returns the phone number of a LID, keeping its device; empty if unknown.
func (m *lidMap) GetPNForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	if lid.Server != types.HiddenUserServer {
		return types.EmptyJID, fmt.Errorf("wastore: GetPNForLID called with non-LID JID %s", lid)
	}
	pn, err := m.lookup(ctx, lid.User, false)
	if err != nil || pn == "" {
		return types.EmptyJID, err
	}
	return types.JID{User: pn, Device: lid.Device, Server: types.DefaultUserServer}, nil
}

// alt returns the other identity of a phone-number or LID JID (without device), or empty.
func (m *lidMap) alt(ctx context.Context, jid types.JID) (types.JID, error) {
	switch jid.Server {
	case types.DefaultUserServer:
		return m.GetLIDForPN(ctx, jid.ToNonAD())
	case types.HiddenUserServer:
		return m.GetPNForLID(ctx, jid.ToNonAD())
	default:
		return types.EmptyJID, nil
	}
}

// GetManyLIDsForPNs maps every phone-number JID with a known LID to that LID, device kept
// (a per-device JID must stay per-device: it names a Signal session). Others are left out.
func (m *lidMap) GetManyLIDsForPNs(ctx context.Context, pns []types.JID) (map[types.JID]types.JID, error) {
	result := make(map[types.JID]types.JID, len(pns))
	known := make(map[string]string)
	var missing []string
	m.mu.RLock()
	gen := m.gen
	for _, pn := range pns {
		if pn.Server != types.DefaultUserServer {
			continue
		}
		if _, seen := known[pn.User]; seen {
			continue
		}
		if lid, ok := m.pnToLID[pn.User]; ok {
			known[pn.User] = lid
		} else {
			known[pn.User] = ""
			missing = append(missing, pn.User)
		}
	}
	m.mu.RUnlock()

	found := make(map[string]string, len(missing))
	for _, chunk := range chunks(missing, maxInListItems) {
		args := make([]any, len(chunk))
		for i, user := range chunk {
			args[i] = user
		}
		rows, err := m.db.Query(ctx, "SELECT pn_user, lid_user FROM wastore_lid_map WHERE pn_user IN ("+placeholderList(1, len(chunk))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("failed to look up %d LID mappings: %w", len(chunk), err)
		}
		for rows.Next() {
			var pn, lid string
			if err := rows.Scan(&pn, &lid); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("failed to read LID mapping: %w", err)
			}
			found[pn] = lid
			known[pn] = lid
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("failed to read LID mappings: %w", err)
		}
	}
	if len(missing) > 0 {
		m.mu.Lock()
		if m.gen == gen {
			for _, pn := range missing {
				lid := found[pn]
				m.pnToLID[pn] = lid
				if lid != "" {
					m.lidToPN[lid] = pn
				}
			}
		}
		m.mu.Unlock()
	}
	for _, pn := range pns {
		if lid := known[pn.User]; lid != "" && pn.Server == types.DefaultUserServer {
			result[pn] = types.JID{User: lid, Device: pn.Device, Server: types.HiddenUserServer}
		}
	}
	return result, nil
}

// PutLIDMapping records that lid and pn are the same user (devices are ignored).
func (m *lidMap) PutLIDMapping(ctx context.Context, lid, pn types.JID) error {
	if lid.Server != types.HiddenUserServer || pn.Server != types.DefaultUserServer {
		return fmt.Errorf("wastore: invalid LID mapping %s -> %s", lid, pn)
	}
	return m.put(ctx, []store.LIDMapping{{LID: lid, PN: pn}})
}

// PutManyLIDMappings records many mappings atomically; invalid ones are skipped (logged),
// and for a user named twice the later entry wins.
func (m *lidMap) PutManyLIDMappings(ctx context.Context, mappings []store.LIDMapping) error {
	valid := make([]store.LIDMapping, 0, len(mappings))
	for _, mapping := range mappings {
		if mapping.LID.Server != types.HiddenUserServer || mapping.PN.Server != types.DefaultUserServer {
			zerolog.Ctx(ctx).Debug().Stringer("lid", mapping.LID).Stringer("pn", mapping.PN).
				Msg("Ignoring invalid LID mapping")
			continue
		}
		valid = append(valid, mapping)
	}
	return m.put(ctx, valid)
}

func (m *lidMap) put(ctx context.Context, mappings []store.LIDMapping) error {
	m.mu.RLock()
	gen := m.gen
	changed := make([]store.LIDMapping, 0, len(mappings))
	for _, mapping := range mappings {
		if m.pnToLID[mapping.PN.User] != mapping.LID.User || m.lidToPN[mapping.LID.User] != mapping.PN.User {
			changed = append(changed, mapping)
		}
	}
	m.mu.RUnlock()
	if len(changed) == 0 {
		return nil
	}
	err := m.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, mapping := range changed {
			lid, pn := mapping.LID.User, mapping.PN.User
			// A phone number has one LID: a different LID that claimed it loses the claim.
			if _, err := m.db.Exec(ctx, "DELETE FROM wastore_lid_map WHERE pn_user=$2 AND lid_user<>$1", lid, pn); err != nil {
				return fmt.Errorf("failed to drop old LID of %s: %w", pn, err)
			}
			_, err := m.db.Exec(ctx, `INSERT INTO wastore_lid_map (lid_user, pn_user) VALUES ($1, $2)
				ON CONFLICT (lid_user) DO UPDATE SET pn_user=excluded.pn_user`, lid, pn)
			if err != nil {
				return fmt.Errorf("failed to store LID mapping %s -> %s: %w", lid, pn, err)
			}
		}
		return nil
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	overtaken := m.gen != gen
	m.gen++
	for _, mapping := range changed {
		lid, pn := mapping.LID.User, mapping.PN.User
		oldPN, oldLID := m.lidToPN[lid], m.pnToLID[pn]
		if err != nil || overtaken {
			// Unknown outcome: forget everything this write may have changed.
			delete(m.lidToPN, lid)
			delete(m.pnToLID, pn)
			delete(m.pnToLID, oldPN)
			delete(m.lidToPN, oldLID)
			continue
		}
		if oldPN != "" && oldPN != pn {
			m.pnToLID[oldPN] = ""
		}
		if oldLID != "" && oldLID != lid {
			m.lidToPN[oldLID] = ""
		}
		m.pnToLID[pn] = lid
		m.lidToPN[lid] = pn
	}
	return err
}
