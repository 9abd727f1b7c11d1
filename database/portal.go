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

// PortalKey names one WhatsApp chat as one login sees it. Each login gets its own rooms:
// two officials in the same WhatsApp group each keep their own record and room.
type PortalKey struct {
	ChatJID  string
	Receiver id.UserID
}

func (k PortalKey) String() string { return k.ChatJID + "|" + string(k.Receiver) }

// Portal is a chat and its Matrix room.
type Portal struct {
	PortalKey
	MXID      id.RoomID
	Name      string
	Topic     string
	AvatarID  string
	AvatarMXC id.ContentURIString
	IsGroup   bool
	CreatedAt time.Time
}

// PortalQuery reads and writes portals.
type PortalQuery struct {
	db *dbutil.Database
}

const portalColumns = "chat_jid, receiver, mxid, name, topic, avatar_id, avatar_mxc, is_group, created_at"

func scanPortal(row dbutil.Scannable) (*Portal, error) {
	var p Portal
	var mxid sql.NullString
	var created int64
	err := row.Scan(&p.ChatJID, &p.Receiver, &mxid, &p.Name, &p.Topic, &p.AvatarID, &p.AvatarMXC, &p.IsGroup, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	p.MXID = id.RoomID(mxid.String)
	p.CreatedAt = time.UnixMilli(created)
	return &p, nil
}

// Get returns the portal for key, or nil.
func (q *PortalQuery) Get(ctx context.Context, key PortalKey) (*Portal, error) {
	p, err := scanPortal(q.db.QueryRow(ctx, "SELECT "+portalColumns+" FROM portal WHERE chat_jid=$1 AND receiver=$2",
		key.ChatJID, key.Receiver))
	if err != nil {
		return nil, fmt.Errorf("failed to get portal %s: %w", key, err)
	}
	return p, nil
}

// GetByMXID returns the portal whose room is roomID, or nil.
func (q *PortalQuery) GetByMXID(ctx context.Context, roomID id.RoomID) (*Portal, error) {
	p, err := scanPortal(q.db.QueryRow(ctx, "SELECT "+portalColumns+" FROM portal WHERE mxid=$1", roomID))
	if err != nil {
		return nil, fmt.Errorf("failed to get portal for room %s: %w", roomID, err)
	}
	return p, nil
}

// ListByReceiver returns every portal of one login.
func (q *PortalQuery) ListByReceiver(ctx context.Context, receiver id.UserID) ([]*Portal, error) {
	rows, err := q.db.Query(ctx, "SELECT "+portalColumns+" FROM portal WHERE receiver=$1 ORDER BY created_at", receiver)
	if err != nil {
		return nil, fmt.Errorf("failed to list portals of %s: %w", receiver, err)
	}
	defer rows.Close()
	var out []*Portal
	for rows.Next() {
		p, err := scanPortal(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to scan portal: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Put inserts or updates the portal.
func (q *PortalQuery) Put(ctx context.Context, p *Portal) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	_, err := q.db.Exec(ctx, `INSERT INTO portal (`+portalColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (chat_jid, receiver) DO UPDATE SET mxid=excluded.mxid, name=excluded.name, topic=excluded.topic,
			avatar_id=excluded.avatar_id, avatar_mxc=excluded.avatar_mxc, is_group=excluded.is_group`,
		p.ChatJID, p.Receiver, dbutil.StrPtr(p.MXID), p.Name, p.Topic, p.AvatarID, p.AvatarMXC, p.IsGroup, p.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to save portal %s: %w", p.PortalKey, err)
	}
	return nil
}
