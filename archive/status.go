package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrDisposed is returned by Entry for an entry whose body a disposal removed.
var ErrDisposed = errors.New("entry body was disposed")

// ErrNoEntry is returned by Entry for an index beyond the log.
var ErrNoEntry = errors.New("no such entry")

// Status is a summary for `causeway archive status`.
type Status struct {
	Origin      string
	VerifierKey string
	Size        uint64
	Bodies      uint64 // entries that still have their body
	Disposed    uint64
	Media       uint64 // blobs kept
	MediaBytes  int64
	ActiveHolds int
	First, Last time.Time // capture times of the first and last entry
	Latest      *Checkpoint
}

// Status summarises the archive. It reads what is committed; it does not verify.
func (a *Archive) Status(ctx context.Context) (*Status, error) {
	st := &Status{Origin: a.origin, VerifierKey: a.key.vkey}
	var err error
	if st.Latest, err = a.LatestCheckpoint(ctx); err != nil && !errors.Is(err, ErrNoCheckpoint) {
		return nil, fmt.Errorf("archive: status: %w", err)
	}
	var size, bodies int64
	var first, last sql.NullInt64
	err = a.db.QueryRow(ctx, `SELECT COALESCE(MAX(idx)+1, 0), COUNT(body), MIN(captured_ts), MAX(captured_ts) FROM archive_entry`).
		Scan(&size, &bodies, &first, &last)
	if err != nil {
		return nil, fmt.Errorf("archive: status: %w", err)
	}
	st.Size, st.Bodies = uint64(size), uint64(bodies)
	if st.Size >= st.Bodies {
		st.Disposed = st.Size - st.Bodies
	}
	if first.Valid {
		st.First, st.Last = time.UnixMilli(first.Int64).UTC(), time.UnixMilli(last.Int64).UTC()
	}
	var media, mediaBytes int64
	err = a.db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM archive_media WHERE disposed_ts IS NULL`).Scan(&media, &mediaBytes)
	if err != nil {
		return nil, fmt.Errorf("archive: status: %w", err)
	}
	st.Media, st.MediaBytes = uint64(media), mediaBytes
	if err = a.db.QueryRow(ctx, `SELECT COUNT(*) FROM archive_hold WHERE removed_idx IS NULL`).Scan(&st.ActiveHolds); err != nil {
		return nil, fmt.Errorf("archive: status: %w", err)
	}
	return st, nil
}

// Entry returns the archived entry at idx as committed. It does not verify the body against its leaf;
// Verify does.
func (a *Archive) Entry(ctx context.Context, idx uint64) (*Entry, error) {
	var body []byte
	err := a.db.QueryRow(ctx, `SELECT body FROM archive_entry WHERE idx=$1`, int64(idx)).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("archive: entry %d: %w", idx, ErrNoEntry)
	} else if err != nil {
		return nil, fmt.Errorf("archive: entry %d: %w", idx, err)
	}
	if body == nil {
		return nil, fmt.Errorf("archive: entry %d: %w", idx, ErrDisposed)
	}
	dec, err := decodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("archive: entry %d: %w", idx, err)
	}
	return &dec.Entry, nil
}
