package database

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/id"
)

// Direction says which way a queued item is being relayed.
type Direction string

// Relay directions.
const (
	ToMatrix   Direction = "to_matrix"
	ToWhatsApp Direction = "to_whatsapp"
)

// QueueItem is one event that has been received durably and not yet relayed.
type QueueItem struct {
	Seq       int64
	Direction Direction
	PortalKey
	// DedupKey makes a second delivery of the same event a no-op while the first is queued.
	DedupKey  string
	Kind      string
	Payload   []byte
	QueuedAt  time.Time
	Attempts  int
	LastError string
	Archived  bool
}

// AddOptions are conditions on one Add.
type AddOptions struct {
	// NotIfBridged, a WhatsApp message ID, makes Add skip the item if the portal already has
	// that message bridged (a redelivery).
	NotIfBridged string
	// AcceptEvent, a Matrix event ID, makes Add record the event as taken in
	// (accepted_matrix_event) in the same transaction as the insert, and skip the item when
	// it was taken in before: the bridge gets Matrix events by two routes, and the second
	// delivery must do nothing, whether or not the first one's item is still queued.
	AcceptEvent id.EventID
}

// QueueQuery is the durable relay queue.
type QueueQuery struct {
	db *dbutil.Database
}

// Add stores an item. It returns false when an item with the same dedup key is already
// queued, or when opts.NotIfBridged names a message the portal has bridged.
func (q *QueueQuery) Add(ctx context.Context, item *QueueItem, opts AddOptions) (bool, error) {
	if item.QueuedAt.IsZero() {
		item.QueuedAt = time.Now()
	}
	args := []any{item.Direction, item.ChatJID, item.Receiver, item.DedupKey, item.Kind, item.Payload, item.QueuedAt.UnixMilli()}
	query := `INSERT INTO relay_queue (direction, chat_jid, receiver, dedup_key, kind, payload, queued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (direction, receiver, dedup_key) DO NOTHING`
	if opts.NotIfBridged != "" {
		// One statement rather than a lookup and an insert: the check costs an index probe.
		query = `INSERT INTO relay_queue (direction, chat_jid, receiver, dedup_key, kind, payload, queued_at)
			SELECT $1, $2, $3, $4, $5, $6, $7
			WHERE NOT EXISTS (SELECT 1 FROM message WHERE chat_jid=$2 AND receiver=$3 AND wa_id=$8)
			ON CONFLICT (direction, receiver, dedup_key) DO NOTHING`
		args = append(args, opts.NotIfBridged)
	}
	if opts.AcceptEvent == "" {
		return q.insert(ctx, item, query, args)
	}
	var added bool
	err := q.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		res, err := q.db.Exec(ctx, `INSERT INTO accepted_matrix_event (event_id, accepted_at) VALUES ($1, $2)
			ON CONFLICT (event_id) DO NOTHING`, opts.AcceptEvent, item.QueuedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("failed to record Matrix event %s as taken in: %w", opts.AcceptEvent, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // taken in before, by the other route or an earlier delivery
		}
		added, err = q.insert(ctx, item, query, args)
		return err
	})
	return added, err
}

func (q *QueueQuery) insert(ctx context.Context, item *QueueItem, query string, args []any) (bool, error) {
	res, err := q.db.Exec(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("failed to queue %s %s: %w", item.Direction, item.Kind, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// PruneAccepted forgets the Matrix events taken in before the cutoff (see AddOptions.AcceptEvent).
func (q *QueueQuery) PruneAccepted(ctx context.Context, before time.Time) (int64, error) {
	res, err := q.db.Exec(ctx, "DELETE FROM accepted_matrix_event WHERE accepted_at < $1", before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("failed to prune the Matrix events taken in: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Accepted says whether a Matrix event has been taken in (and not pruned since).
func (q *QueueQuery) Accepted(ctx context.Context, evt id.EventID) (bool, error) {
	var n int
	if err := q.db.QueryRow(ctx, "SELECT COUNT(*) FROM accepted_matrix_event WHERE event_id=$1", evt).Scan(&n); err != nil {
		return false, fmt.Errorf("failed to look for Matrix event %s among those taken in: %w", evt, err)
	}
	return n > 0, nil
}

// Pending returns up to limit queued items of one portal, oldest first.
func (q *QueueQuery) Pending(ctx context.Context, key PortalKey, limit int) ([]*QueueItem, error) {
	rows, err := q.db.Query(ctx, `SELECT seq, direction, chat_jid, receiver, dedup_key, kind, payload, queued_at, attempts, last_error, archived
		FROM relay_queue WHERE receiver=$1 AND chat_jid=$2 ORDER BY seq LIMIT $3`, key.Receiver, key.ChatJID, limit)
	if err != nil {
		return nil, fmt.Errorf("failed to read the relay queue of %s: %w", key, err)
	}
	defer rows.Close()
	var out []*QueueItem
	for rows.Next() {
		var it QueueItem
		var queued int64
		if err := rows.Scan(&it.Seq, &it.Direction, &it.ChatJID, &it.Receiver, &it.DedupKey, &it.Kind, &it.Payload,
			&queued, &it.Attempts, &it.LastError, &it.Archived); err != nil {
			return nil, fmt.Errorf("failed to scan a queue item: %w", err)
		}
		it.QueuedAt = time.UnixMilli(queued)
		out = append(out, &it)
	}
	return out, rows.Err()
}

// PortalsWithPending lists the portals that have queued items, for resuming after a restart.
func (q *QueueQuery) PortalsWithPending(ctx context.Context, receiver id.UserID) ([]PortalKey, error) {
	rows, err := q.db.Query(ctx, `SELECT DISTINCT chat_jid, receiver FROM relay_queue WHERE receiver=$1`, receiver)
	if err != nil {
		return nil, fmt.Errorf("failed to list queued portals: %w", err)
	}
	defer rows.Close()
	var out []PortalKey
	for rows.Next() {
		var k PortalKey
		if err := rows.Scan(&k.ChatJID, &k.Receiver); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Done removes a relayed item.
func (q *QueueQuery) Done(ctx context.Context, seq int64) error {
	if _, err := q.db.Exec(ctx, "DELETE FROM relay_queue WHERE seq=$1", seq); err != nil {
		return fmt.Errorf("failed to remove queue item %d: %w", seq, err)
	}
	return nil
}

// MarkArchived records that the item is in the records archive.
func (q *QueueQuery) MarkArchived(ctx context.Context, seq int64) error {
	if _, err := q.db.Exec(ctx, "UPDATE relay_queue SET archived=true WHERE seq=$1", seq); err != nil {
		return fmt.Errorf("failed to mark queue item %d archived: %w", seq, err)
	}
	return nil
}

// Failed records a failed attempt.
func (q *QueueQuery) Failed(ctx context.Context, seq int64, cause error) error {
	if _, err := q.db.Exec(ctx, "UPDATE relay_queue SET attempts=attempts+1, last_error=$2 WHERE seq=$1", seq, cause.Error()); err != nil {
		return fmt.Errorf("failed to record a failed attempt for item %d: %w", seq, err)
	}
	return nil
}

// Depth counts queued items per direction, for metrics.
func (q *QueueQuery) Depth(ctx context.Context) (map[Direction]int, error) {
	rows, err := q.db.Query(ctx, "SELECT direction, COUNT(*) FROM relay_queue GROUP BY direction")
	if err != nil {
		return nil, fmt.Errorf("failed to count the relay queue: %w", err)
	}
	defer rows.Close()
	out := map[Direction]int{}
	for rows.Next() {
		var d Direction
		var n int
		if err := rows.Scan(&d, &n); err != nil {
			return nil, err
		}
		out[d] = n
	}
	return out, rows.Err()
}

// Has says whether an item with the dedup key is queued for receiver.
func (q *QueueQuery) Has(ctx context.Context, direction Direction, receiver id.UserID, dedupKey string) (bool, error) {
	var n int
	err := q.db.QueryRow(ctx, "SELECT COUNT(*) FROM relay_queue WHERE direction=$1 AND receiver=$2 AND dedup_key=$3",
		direction, receiver, dedupKey).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("failed to look for %s in the relay queue: %w", dedupKey, err)
	}
	return n > 0, nil
}
