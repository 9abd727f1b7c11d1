package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/id"
)

// Puppet is the ghost user of one WhatsApp contact.
type Puppet struct {
	JID         string
	MXID        id.UserID
	Displayname string
	// NameQuality ranks where Displayname came from, so a better source is never
	// overwritten by a worse one (an address-book name by a push name, say).
	NameQuality int
	AvatarID    string
	AvatarMXC   id.ContentURIString
	Registered  bool
}

// PuppetQuery reads and writes puppets.
type PuppetQuery struct {
	db *dbutil.Database
}

const puppetColumns = "jid, mxid, displayname, name_quality, avatar_id, avatar_mxc, registered"

func scanPuppet(row dbutil.Scannable) (*Puppet, error) {
	var p Puppet
	err := row.Scan(&p.JID, &p.MXID, &p.Displayname, &p.NameQuality, &p.AvatarID, &p.AvatarMXC, &p.Registered)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &p, err
}

// Get returns the puppet for a contact JID, or nil.
func (q *PuppetQuery) Get(ctx context.Context, jid string) (*Puppet, error) {
	p, err := scanPuppet(q.db.QueryRow(ctx, "SELECT "+puppetColumns+" FROM puppet WHERE jid=$1", jid))
	if err != nil {
		return nil, fmt.Errorf("failed to get puppet %s: %w", jid, err)
	}
	return p, nil
}

// GetByMXID returns the puppet with the given ghost user ID, or nil.
func (q *PuppetQuery) GetByMXID(ctx context.Context, mxid id.UserID) (*Puppet, error) {
	p, err := scanPuppet(q.db.QueryRow(ctx, "SELECT "+puppetColumns+" FROM puppet WHERE mxid=$1", mxid))
	if err != nil {
		return nil, fmt.Errorf("failed to get puppet %s: %w", mxid, err)
	}
	return p, nil
}

// Put inserts or replaces the puppet.
func (q *PuppetQuery) Put(ctx context.Context, p *Puppet) error {
	_, err := q.db.Exec(ctx, `INSERT INTO puppet (`+puppetColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (jid) DO UPDATE SET mxid=excluded.mxid, displayname=excluded.displayname,
			name_quality=excluded.name_quality, avatar_id=excluded.avatar_id, avatar_mxc=excluded.avatar_mxc,
			registered=excluded.registered`,
		p.JID, p.MXID, p.Displayname, p.NameQuality, p.AvatarID, p.AvatarMXC, p.Registered)
	if err != nil {
		return fmt.Errorf("failed to save puppet %s: %w", p.JID, err)
	}
	return nil
}
