package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/id"
)

// User is a Matrix user the bridge knows: someone permitted who talked to the bot.
type User struct {
	MXID           id.UserID
	ManagementRoom id.RoomID
	// WADevice is the WhatsApp device (AD JID) this user's login runs as; empty when logged out.
	WADevice   string
	WAPhone    string
	WAPushName string
	// Presence is what WhatsApp contacts are shown; empty until the user sets it.
	Presence string
	// SpaceRoom is the user's personal space of portal rooms, once created.
	SpaceRoom id.RoomID
	CreatedAt time.Time
}

// UserQuery reads and writes bridge users.
type UserQuery struct {
	db *dbutil.Database
}

// Get returns the user, or nil when the bridge has never seen them.
func (q *UserQuery) Get(ctx context.Context, mxid id.UserID) (*User, error) {
	u, err := scanUser(q.db.QueryRow(ctx, "SELECT "+userColumns+" FROM bridge_user WHERE mxid=$1", mxid))
	if err != nil {
		return nil, fmt.Errorf("failed to get user %s: %w", mxid, err)
	}
	return u, nil
}

const userColumns = "mxid, management_room, wa_device, wa_phone, wa_push_name, presence, space_room, created_at"

func scanUser(row dbutil.Scannable) (*User, error) {
	var u User
	var room, device, phone, push, space sql.NullString
	var created int64
	err := row.Scan(&u.MXID, &room, &device, &phone, &push, &u.Presence, &space, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	u.ManagementRoom = id.RoomID(room.String)
	u.WADevice, u.WAPhone, u.WAPushName = device.String, phone.String, push.String
	u.SpaceRoom = id.RoomID(space.String)
	u.CreatedAt = time.UnixMilli(created)
	return &u, nil
}

// ListLoggedIn returns every user with a linked WhatsApp device, to reconnect at start.
func (q *UserQuery) ListLoggedIn(ctx context.Context) ([]*User, error) {
	rows, err := q.db.Query(ctx, "SELECT "+userColumns+" FROM bridge_user WHERE wa_device IS NOT NULL ORDER BY created_at")
	if err != nil {
		return nil, fmt.Errorf("failed to list logged-in users: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to scan user: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// ListMXIDs returns the Matrix ID of every user the bridge has a row for, sorted.
func (q *UserQuery) ListMXIDs(ctx context.Context) ([]id.UserID, error) {
	rows, err := q.db.Query(ctx, "SELECT mxid FROM bridge_user ORDER BY mxid")
	if err != nil {
		return nil, fmt.Errorf("failed to list the bridge's users: %w", err)
	}
	defer rows.Close()
	var out []id.UserID
	for rows.Next() {
		var mxid id.UserID
		if err := rows.Scan(&mxid); err != nil {
			return nil, fmt.Errorf("failed to scan a user ID: %w", err)
		}
		out = append(out, mxid)
	}
	return out, rows.Err()
}

// GetByManagementRoom returns the user whose management room is roomID, or nil.
func (q *UserQuery) GetByManagementRoom(ctx context.Context, roomID id.RoomID) (*User, error) {
	var mxid id.UserID
	err := q.db.QueryRow(ctx, "SELECT mxid FROM bridge_user WHERE management_room=$1", roomID).Scan(&mxid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to look up management room %s: %w", roomID, err)
	}
	return q.Get(ctx, mxid)
}

// Put inserts or updates the user.
func (q *UserQuery) Put(ctx context.Context, u *User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	_, err := q.db.Exec(ctx, `
		INSERT INTO bridge_user (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (mxid) DO UPDATE SET management_room=excluded.management_room, wa_device=excluded.wa_device,
			wa_phone=excluded.wa_phone, wa_push_name=excluded.wa_push_name, presence=excluded.presence,
			space_room=excluded.space_room`,
		u.MXID, dbutil.StrPtr(u.ManagementRoom), dbutil.StrPtr(u.WADevice), dbutil.StrPtr(u.WAPhone),
		dbutil.StrPtr(u.WAPushName), u.Presence, dbutil.StrPtr(u.SpaceRoom), u.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to save user %s: %w", u.MXID, err)
	}
	return nil
}

// KVQuery is a small key-value store for bridge-wide settings.
type KVQuery struct {
	db *dbutil.Database
}

// Get returns the value for key, or "" when unset.
func (q *KVQuery) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := q.db.QueryRow(ctx, "SELECT value FROM kv_store WHERE key=$1", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("failed to get %s: %w", key, err)
	}
	return v, nil
}

// Set stores value under key.
func (q *KVQuery) Set(ctx context.Context, key, value string) error {
	_, err := q.db.Exec(ctx, `INSERT INTO kv_store (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value=excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("failed to set %s: %w", key, err)
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (q *KVQuery) Delete(ctx context.Context, key string) error {
	if _, err := q.db.Exec(ctx, "DELETE FROM kv_store WHERE key=$1", key); err != nil {
		return fmt.Errorf("failed to delete %s: %w", key, err)
	}
	return nil
}
