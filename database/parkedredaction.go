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

// ParkedState is where a parked redaction stands.
type ParkedState string

// Parked redaction states.
const (
	// ParkedWaiting: the target has not reached the bridge yet.
	ParkedWaiting ParkedState = "waiting"
	// ParkedExpired: it did not come within bridge.redaction_wait and the user was told.
	ParkedExpired ParkedState = "expired"
	// ParkedWithheld: it came and was not sent to WhatsApp.
	ParkedWithheld ParkedState = "withheld"
)

// ParkedRedaction is a Matrix user's redaction that reached the bridge before its target.
type ParkedRedaction struct {
	PortalKey
	Target    id.EventID
	Redaction id.EventID
	// TargetType and TargetSentAt are what the homeserver said of the target ("" and zero
	// when it said nothing).
	TargetType   string
	TargetSentAt time.Time
	RedactedAt   time.Time
	ParkedAt     time.Time
	State        ParkedState
}

// ParkedRedactionQuery keeps redactions that wait for their target.
type ParkedRedactionQuery struct {
	db *dbutil.Database
}

const parkedColumns = "chat_jid, receiver, target_mxid, redaction_mxid, target_type, target_sent_at, redacted_at, parked_at, state"

func scanParked(row dbutil.Scannable) (*ParkedRedaction, error) {
	var r ParkedRedaction
	var sent, redacted, parked int64
	err := row.Scan(&r.ChatJID, &r.Receiver, &r.Target, &r.Redaction, &r.TargetType, &sent, &redacted, &parked, &r.State)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if sent != 0 {
		r.TargetSentAt = time.UnixMilli(sent)
	}
	r.RedactedAt, r.ParkedAt = time.UnixMilli(redacted), time.UnixMilli(parked)
	return &r, nil
}

func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Park stores a waiting redaction. A second redaction of the same target changes nothing:
// the first one already keeps the target off WhatsApp.
func (q *ParkedRedactionQuery) Park(ctx context.Context, r *ParkedRedaction) error {
	_, err := q.db.Exec(ctx, `INSERT INTO parked_redaction (`+parkedColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (receiver, target_mxid) DO NOTHING`,
		r.ChatJID, r.Receiver, r.Target, r.Redaction, r.TargetType, unixMilliOrZero(r.TargetSentAt),
		r.RedactedAt.UnixMilli(), r.ParkedAt.UnixMilli(), ParkedWaiting)
	if err != nil {
		return fmt.Errorf("failed to park the redaction of %s: %w", r.Target, err)
	}
	return nil
}

// ByTarget returns the redaction parked for a target of receiver's, or nil.
func (q *ParkedRedactionQuery) ByTarget(ctx context.Context, receiver id.UserID, target id.EventID) (*ParkedRedaction, error) {
	r, err := scanParked(q.db.QueryRow(ctx, "SELECT "+parkedColumns+
		" FROM parked_redaction WHERE receiver=$1 AND target_mxid=$2", receiver, target))
	if err != nil {
		return nil, fmt.Errorf("failed to look up a redaction of %s: %w", target, err)
	}
	return r, nil
}

// SetState moves a parked redaction on (to ParkedExpired or ParkedWithheld).
func (q *ParkedRedactionQuery) SetState(ctx context.Context, receiver id.UserID, target id.EventID, state ParkedState) error {
	if _, err := q.db.Exec(ctx, "UPDATE parked_redaction SET state=$3 WHERE receiver=$1 AND target_mxid=$2",
		receiver, target, state); err != nil {
		return fmt.Errorf("failed to mark the redaction of %s %s: %w", target, state, err)
	}
	return nil
}

// Overdue lists the redactions still waiting that were parked before the cutoff.
func (q *ParkedRedactionQuery) Overdue(ctx context.Context, parkedBefore time.Time) ([]*ParkedRedaction, error) {
	rows, err := q.db.Query(ctx, "SELECT "+parkedColumns+
		" FROM parked_redaction WHERE state=$1 AND parked_at<$2 ORDER BY parked_at", ParkedWaiting, parkedBefore.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("failed to list overdue redactions: %w", err)
	}
	defer rows.Close()
	var out []*ParkedRedaction
	for rows.Next() {
		r, err := scanParked(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to scan a parked redaction: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
