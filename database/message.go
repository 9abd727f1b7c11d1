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

// Message is one part of a bridged message: a WhatsApp message ID and part, and the
// Matrix event it is.
type Message struct {
	PortalKey
	WAID      string
	PartID    string
	MXID      id.EventID
	SenderJID string
	FromMe    bool
	Timestamp time.Time
}

// MessageQuery reads and writes the message mapping.
type MessageQuery struct {
	db *dbutil.Database
}

const messageColumns = "chat_jid, receiver, wa_id, part_id, mxid, sender_jid, from_me, timestamp"

func scanMessage(row dbutil.Scannable) (*Message, error) {
	var m Message
	var ts int64
	err := row.Scan(&m.ChatJID, &m.Receiver, &m.WAID, &m.PartID, &m.MXID, &m.SenderJID, &m.FromMe, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	m.Timestamp = time.UnixMilli(ts)
	return &m, nil
}

// Put records a bridged part. Putting the same part twice keeps the first event: a
// replayed WhatsApp delivery must not re-point replies at a duplicate.
func (q *MessageQuery) Put(ctx context.Context, m *Message) error {
	_, err := q.db.Exec(ctx, `INSERT INTO message (`+messageColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT DO NOTHING`,
		m.ChatJID, m.Receiver, m.WAID, m.PartID, m.MXID, m.SenderJID, m.FromMe, m.Timestamp.UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to save message %s/%s: %w", m.WAID, m.PartID, err)
	}
	return nil
}

// Repoint moves a part's mapping from event old to evt, which replaced it in the room.
func (q *MessageQuery) Repoint(ctx context.Context, old, evt id.EventID) error {
	if _, err := q.db.Exec(ctx, `UPDATE message SET mxid=$2 WHERE mxid=$1`, old, evt); err != nil {
		return fmt.Errorf("failed to repoint message %s: %w", old, err)
	}
	return nil
}

// GetPart returns one part, or nil.
func (q *MessageQuery) GetPart(ctx context.Context, key PortalKey, waID, partID string) (*Message, error) {
	m, err := scanMessage(q.db.QueryRow(ctx, "SELECT "+messageColumns+
		" FROM message WHERE chat_jid=$1 AND receiver=$2 AND wa_id=$3 AND part_id=$4", key.ChatJID, key.Receiver, waID, partID))
	if err != nil {
		return nil, fmt.Errorf("failed to get message %s: %w", waID, err)
	}
	return m, nil
}

// GetParts returns every part of a WhatsApp message, main part first.
func (q *MessageQuery) GetParts(ctx context.Context, key PortalKey, waID string) ([]*Message, error) {
	rows, err := q.db.Query(ctx, "SELECT "+messageColumns+
		" FROM message WHERE chat_jid=$1 AND receiver=$2 AND wa_id=$3 ORDER BY part_id", key.ChatJID, key.Receiver, waID)
	if err != nil {
		return nil, fmt.Errorf("failed to get message %s: %w", waID, err)
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to scan message: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// GetByMXID returns the part bridged as a Matrix event, or nil.
func (q *MessageQuery) GetByMXID(ctx context.Context, evt id.EventID) (*Message, error) {
	m, err := scanMessage(q.db.QueryRow(ctx, "SELECT "+messageColumns+" FROM message WHERE mxid=$1", evt))
	if err != nil {
		return nil, fmt.Errorf("failed to get message for %s: %w", evt, err)
	}
	return m, nil
}

// Count returns how many parts a portal has, for tests and status output.
func (q *MessageQuery) Count(ctx context.Context, key PortalKey) (int, error) {
	var n int
	err := q.db.QueryRow(ctx, "SELECT COUNT(*) FROM message WHERE chat_jid=$1 AND receiver=$2", key.ChatJID, key.Receiver).Scan(&n)
	return n, err
}

// Reaction is a sender's current reaction to a message.
type Reaction struct {
	PortalKey
	TargetID  string
	SenderJID string
	MXID      id.EventID
	WAID      string
	Emoji     string
}

// ReactionQuery reads and writes reactions.
type ReactionQuery struct {
	db *dbutil.Database
}

const reactionColumns = "chat_jid, receiver, target_id, sender_jid, mxid, wa_id, emoji"

func scanReaction(row dbutil.Scannable) (*Reaction, error) {
	var r Reaction
	err := row.Scan(&r.ChatJID, &r.Receiver, &r.TargetID, &r.SenderJID, &r.MXID, &r.WAID, &r.Emoji)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &r, err
}

// Get returns sender's reaction to a message, or nil.
func (q *ReactionQuery) Get(ctx context.Context, key PortalKey, targetID, sender string) (*Reaction, error) {
	r, err := scanReaction(q.db.QueryRow(ctx, "SELECT "+reactionColumns+
		" FROM reaction WHERE chat_jid=$1 AND receiver=$2 AND target_id=$3 AND sender_jid=$4", key.ChatJID, key.Receiver, targetID, sender))
	if err != nil {
		return nil, fmt.Errorf("failed to get reaction: %w", err)
	}
	return r, nil
}

// GetByMXID returns the reaction bridged as a Matrix event, or nil.
func (q *ReactionQuery) GetByMXID(ctx context.Context, evt id.EventID) (*Reaction, error) {
	r, err := scanReaction(q.db.QueryRow(ctx, "SELECT "+reactionColumns+" FROM reaction WHERE mxid=$1", evt))
	if err != nil {
		return nil, fmt.Errorf("failed to get reaction for %s: %w", evt, err)
	}
	return r, nil
}

// Put sets sender's reaction, replacing an earlier one.
func (q *ReactionQuery) Put(ctx context.Context, r *Reaction) error {
	_, err := q.db.Exec(ctx, `INSERT INTO reaction (`+reactionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (chat_jid, receiver, target_id, sender_jid) DO UPDATE SET mxid=excluded.mxid, wa_id=excluded.wa_id, emoji=excluded.emoji`,
		r.ChatJID, r.Receiver, r.TargetID, r.SenderJID, r.MXID, r.WAID, r.Emoji)
	if err != nil {
		return fmt.Errorf("failed to save reaction: %w", err)
	}
	return nil
}

// Delete removes sender's reaction to a message.
// Repoint moves a reaction's mapping from event old to evt, which replaced it in the room.
func (q *ReactionQuery) Repoint(ctx context.Context, old, evt id.EventID) error {
	if _, err := q.db.Exec(ctx, `UPDATE reaction SET mxid=$2 WHERE mxid=$1`, old, evt); err != nil {
		return fmt.Errorf("failed to repoint reaction %s: %w", old, err)
	}
	return nil
}

func (q *ReactionQuery) Delete(ctx context.Context, key PortalKey, targetID, sender string) error {
	_, err := q.db.Exec(ctx, "DELETE FROM reaction WHERE chat_jid=$1 AND receiver=$2 AND target_id=$3 AND sender_jid=$4",
		key.ChatJID, key.Receiver, targetID, sender)
	if err != nil {
		return fmt.Errorf("failed to delete reaction: %w", err)
	}
	return nil
}

// Earliest returns the timestamp of the portal's oldest message bridged from WhatsApp itself
// (not imported from an export, whose IDs start with "export."), or the zero time.
func (q *MessageQuery) Earliest(ctx context.Context, key PortalKey) (time.Time, error) {
	var ts sql.NullInt64
	err := q.db.QueryRow(ctx, "SELECT MIN(timestamp) FROM message WHERE chat_jid=$1 AND receiver=$2 AND wa_id NOT LIKE 'export.%'",
		key.ChatJID, key.Receiver).Scan(&ts)
	if err != nil {
		return time.Time{}, fmt.Errorf("failed to find the oldest message: %w", err)
	}
	if !ts.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(ts.Int64), nil
}

// Oldest returns the portal's oldest message bridged from WhatsApp itself (not imported from an
// export, and a message's own part rather than an edit or notice row), or nil: the anchor an
// on-demand history request asks the phone to go back from.
func (q *MessageQuery) Oldest(ctx context.Context, key PortalKey) (*Message, error) {
	m, err := scanMessage(q.db.QueryRow(ctx, "SELECT "+messageColumns+` FROM message
		WHERE chat_jid=$1 AND receiver=$2 AND wa_id NOT LIKE 'export.%' AND part_id NOT LIKE '%:%'
		ORDER BY timestamp, part_id LIMIT 1`, key.ChatJID, key.Receiver))
	if err != nil {
		return nil, fmt.Errorf("failed to find the oldest message: %w", err)
	}
	return m, nil
}
