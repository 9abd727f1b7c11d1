//go:build goolm

package e2ee

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/crypto/olm"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// historyStore keeps the first key of the Megolm sessions the bridge made in portals
// (e2ee/upgrades) and which devices hold them.
type historyStore struct {
	db *dbutil.Database
	// perRoom and maxAge bound what is kept (encryption.history).
	perRoom int
	maxAge  time.Duration
	now     func() time.Time
}

// historySession is a kept session, still pickled.
type historySession struct {
	id     id.SessionID
	room   id.RoomID
	pickle string
}

// roomKey is the m.room_key a device is sent for the session: its key at index 0, signed
// by the session, the form a client accepts from the session's own device.
func (s historySession) roomKey() (*event.RoomKeyEventContent, error) {
	ogs, err := olm.OutboundGroupSessionFromPickled([]byte(s.pickle), pickleKey)
	if err != nil {
		return nil, fmt.Errorf("failed to unpickle the kept session %s: %w", s.id, err)
	}
	if ogs.ID() != s.id || ogs.MessageIndex() != 0 {
		return nil, fmt.Errorf("the kept session %s unpickled as %s at index %d", s.id, ogs.ID(), ogs.MessageIndex())
	}
	return &event.RoomKeyEventContent{Algorithm: id.AlgorithmMegolmV1, RoomID: s.room, SessionID: s.id, SessionKey: ogs.Key()}, nil
}

// add keeps a session of a portal, then forgets the room's sessions beyond perRoom and every
// session older than maxAge.
func (s *historyStore) add(ctx context.Context, room id.RoomID, owner id.UserID, session id.SessionID, pickle []byte) error {
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		now := s.now().UnixMilli()
		if _, err := s.db.Exec(ctx, `INSERT INTO e2ee_history_session (session_id, room_id, owner, created_at, pickle)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id) DO NOTHING`, session, room, owner, now, string(pickle)); err != nil {
			return fmt.Errorf("failed to keep session %s of %s: %w", session, room, err)
		}
		if _, err := s.db.Exec(ctx, `DELETE FROM e2ee_history_session WHERE room_id = $1 AND session_id NOT IN (
			SELECT session_id FROM e2ee_history_session WHERE room_id = $1 ORDER BY created_at DESC, session_id DESC LIMIT $2)`,
			room, s.perRoom); err != nil {
			return fmt.Errorf("failed to forget the oldest kept sessions of %s: %w", room, err)
		}
		return s.prune(ctx)
	})
}

// prune forgets the sessions older than maxAge.
func (s *historyStore) prune(ctx context.Context) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM e2ee_history_session WHERE created_at < $1`, s.cutoff()); err != nil {
		return fmt.Errorf("failed to forget kept sessions older than %s: %w", s.maxAge, err)
	}
	return nil
}

func (s *historyStore) cutoff() int64 { return s.now().Add(-s.maxAge).UnixMilli() }

// isOwner says whether the bridge keeps sessions of a portal of user.
func (s *historyStore) isOwner(ctx context.Context, user id.UserID) (bool, error) {
	var owner bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM e2ee_history_session WHERE owner = $1 AND created_at >= $2)`,
		user, s.cutoff()).Scan(&owner)
	return owner, err
}

// owners lists the users the bridge keeps sessions for.
func (s *historyStore) owners(ctx context.Context) ([]id.UserID, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT owner FROM e2ee_history_session WHERE created_at >= $1`, s.cutoff())
	return dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[id.UserID], err).AsList()
}

// missing lists, newest first, up to limit of owner's kept sessions that the device with
// identity key key is not known to hold.
func (s *historyStore) missing(ctx context.Context, owner id.UserID, key id.IdentityKey, limit int) ([]historySession, error) {
	rows, err := s.db.Query(ctx, `SELECT session_id, room_id, pickle FROM e2ee_history_session s
		WHERE owner = $1 AND created_at >= $2
		AND NOT EXISTS (SELECT 1 FROM e2ee_history_holder h WHERE h.session_id = s.session_id AND h.identity_key = $3)
		ORDER BY created_at DESC, session_id DESC LIMIT $4`, owner, s.cutoff(), key, limit)
	return dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (historySession, error) {
		var hs historySession
		return hs, row.Scan(&hs.id, &hs.room, &hs.pickle)
	}, err).AsList()
}

// hold records that a device holds a session's key: given (sent as history) or not (it got
// the session when it was shared).
func (s *historyStore) hold(ctx context.Context, session id.SessionID, device *id.Device, given bool) error {
	_, err := s.db.Exec(ctx, `INSERT INTO e2ee_history_holder (session_id, identity_key, user_id, device_id, given, since)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id, identity_key) DO NOTHING`,
		session, device.IdentityKey, device.UserID, device.DeviceID, given, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to record that %s/%s holds session %s: %w", device.UserID, device.DeviceID, session, err)
	}
	return nil
}
