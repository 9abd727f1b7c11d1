package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// Only one process may have the archive open for writing. The archive keeps its tree head in memory and
// numbers each commit from it, so a second writer on the same database commits the indexes the first one
// is about to use: the first one's next commit fails on the primary key, and so does every later one,
// because its head never moves again. The log stays intact, but that bridge stops relaying.
//
// The writer holds a lease: a row in kv_store naming it, renewed while it runs, taken and renewed by
// compare-and-swap so two processes cannot both win it. A lease rather than an OS file lock because with
// PostgreSQL the bridge and `causeway archive` may run on different hosts, and because it ends without a
// release call: the bridge's archive is closed by Stop, which knows nothing of it, and a crashed process
// releases nothing. A lease ends when its holder's archive has closed, which the log itself shows (an
// archive_stopped entry after the log size recorded in the lease), or when it lapses, which covers a
// crash.
const (
	archiveLeaseKey = "archive_writer_lease"
	// ArchiveLeaseTTL is how long a lease outlives its holder's last renewal. Renewal runs at a third
	// of it, so two missed renewals (a slow database) do not lose it.
	ArchiveLeaseTTL     = 30 * time.Second
	archiveLeaseRenewal = ArchiveLeaseTTL / 3
)

// ErrArchiveBusy means another process holds the archive's writer lease.
var ErrArchiveBusy = errors.New("another process has the archive open for writing")

// processHolder names this process in leases. The random part tells apart two processes that share a
// host name and PID (PID 1 in two containers). A process may retake its own lease: a bridge restarted
// within one process (tests) must not wait for its previous self.
var processHolder = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	token := make([]byte, 4)
	_, _ = rand.Read(token)
	return fmt.Sprintf("%s pid %d (%s)", host, os.Getpid(), hex.EncodeToString(token))
})

type leaseValue struct {
	Holder  string `json:"holder"`
	Purpose string `json:"purpose"`
	Expires int64  `json:"expires"` // Unix milliseconds
	// Size is the log size when the lease was taken: an archive_stopped entry at or after it was
	// written by the holder's archive closing, while one before it is from an earlier run.
	Size uint64 `json:"size"`
}

// logEnd reports the archive's size and whether its last entry says it was closed. It reads through a
// read-only archive, which sees every commit.
type logEnd func(ctx context.Context) (size uint64, stoppedAt int64, err error)

// readLogEnd returns a logEnd for the archive in db. Before the archive's first start it cannot be opened
// read-only (there is no key yet) and reports an empty log, so only expiry ends a lease: the safe side.
// It tries again on every call, so a bridge's first run still releases its lease on close.
func readLogEnd(cfg *config.Config, db *database.Database) logEnd {
	var ro *archive.Archive
	return func(ctx context.Context) (uint64, int64, error) {
		if ro == nil {
			var err error
			if ro, err = openArchive(ctx, cfg, db, zerolog.Nop(), true); err != nil {
				ro = nil
				return 0, -1, nil
			}
		}
		// Not Status: it counts bodies, a scan of the whole log, and this runs at every renewal.
		var size int64
		if err := db.QueryRow(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM archive_entry`).Scan(&size); err != nil {
			return 0, -1, fmt.Errorf("read the archive's size: %w", err)
		}
		if size == 0 {
			return 0, -1, nil
		}
		// The kind comes from the body, not the query column. An unreadable last entry is not taken as
		// proof of anything; verify reports it.
		if last, err := ro.Entry(ctx, uint64(size-1)); err == nil && last.Kind == archive.KindArchiveStopped {
			return uint64(size), size - 1, nil
		}
		return uint64(size), -1, nil
	}
}

// archiveLease is a held writer lease. A goroutine renews it until Release, until another process has
// taken it (only possible after it lapsed), or until the database is closed.
type archiveLease struct {
	db      *database.Database
	log     zerolog.Logger
	end     logEnd
	mu      sync.Mutex
	current string // the stored value, for compare-and-swap
	size    uint64 // the log size when taken
	stop    chan struct{}
	done    chan struct{}
}

// acquireArchiveLease takes the writer lease for purpose. If another live process holds it, it fails
// with ErrArchiveBusy, or with wait keeps trying until ctx ends.
func acquireArchiveLease(ctx context.Context, db *database.Database, end logEnd, purpose string, wait bool, log zerolog.Logger) (*archiveLease, error) {
	logged := false
	for {
		cur, err := db.KV.Get(ctx, archiveLeaseKey)
		if err != nil {
			return nil, fmt.Errorf("read the archive writer lease: %w", err)
		}
		size, stoppedAt, err := end(ctx)
		if err != nil {
			return nil, err
		}
		if held, ok := foreignLease(cur, time.Now(), stoppedAt); ok {
			busy := fmt.Errorf("%w: %s (%s) holds it; it ends when that archive closes, or %s after that process dies (renewed until %s)",
				ErrArchiveBusy, held.Purpose, held.Holder, ArchiveLeaseTTL, time.UnixMilli(held.Expires).UTC().Format(time.RFC3339))
			if !wait {
				return nil, busy
			}
			if !logged {
				log.Warn().Str("holder", held.Holder).Str("purpose", held.Purpose).Msg("Waiting for the archive writer lease")
				logged = true
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w (gave up waiting: %w)", busy, ctx.Err())
			case <-time.After(time.Second):
			}
			continue
		}
		next := newLeaseValue(purpose, size)
		won, err := swapLease(ctx, db, cur, next)
		if err != nil {
			return nil, err
		}
		if !won {
			continue // someone else moved first; look again
		}
		l := &archiveLease{db: db, log: log, end: end, current: next, size: size, stop: make(chan struct{}), done: make(chan struct{})}
		go l.renew(purpose)
		return l, nil
	}
}

// foreignLease reports the lease stored as cur if it belongs to another process whose archive is still
// open: it has not lapsed, and the log does not end with an archive_stopped written since it was taken.
// An unreadable value is treated as lapsed: refusing forever over a damaged row would help nobody.
func foreignLease(cur string, now time.Time, stoppedAt int64) (leaseValue, bool) {
	var v leaseValue
	if cur == "" || json.Unmarshal([]byte(cur), &v) != nil {
		return v, false
	}
	closed := stoppedAt >= 0 && uint64(stoppedAt) >= v.Size
	return v, v.Holder != processHolder() && v.Expires > now.UnixMilli() && !closed
}

func newLeaseValue(purpose string, size uint64) string {
	data, _ := json.Marshal(leaseValue{Holder: processHolder(), Purpose: purpose, Expires: time.Now().Add(ArchiveLeaseTTL).UnixMilli(), Size: size})
	return string(data)
}

// swapLease replaces the stored value old (empty: no row) with next (empty: remove the row), only if it
// is still old.
func swapLease(ctx context.Context, db *database.Database, old, next string) (bool, error) {
	var err error
	var n int64
	if next == "" {
		res, e := db.Exec(ctx, `DELETE FROM kv_store WHERE key=$1 AND value=$2`, archiveLeaseKey, old)
		if err = e; err == nil {
			n, err = res.RowsAffected()
		}
	} else if old == "" {
		res, e := db.Exec(ctx, `INSERT INTO kv_store (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, archiveLeaseKey, next)
		if err = e; err == nil {
			n, err = res.RowsAffected()
		}
	} else {
		res, e := db.Exec(ctx, `UPDATE kv_store SET value=$1 WHERE key=$2 AND value=$3`, next, archiveLeaseKey, old)
		if err = e; err == nil {
			n, err = res.RowsAffected()
		}
	}
	if err != nil {
		return false, fmt.Errorf("write the archive writer lease: %w", err)
	}
	return n == 1, nil
}

func (l *archiveLease) renew(purpose string) {
	defer close(l.done)
	ticker := time.NewTicker(archiveLeaseRenewal)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ticker.C:
		}
		if _, stoppedAt, err := l.end(context.Background()); err == nil && stoppedAt >= 0 && uint64(stoppedAt) >= l.size {
			// Our archive has closed (the bridge stopped): give the lease up now rather than in a
			// TTL, so `causeway archive` may write at once.
			l.mu.Lock()
			_, _ = swapLease(context.Background(), l.db, l.current, "")
			l.mu.Unlock()
			return
		}
		l.mu.Lock()
		next := newLeaseValue(purpose, l.size)
		won, err := swapLease(context.Background(), l.db, l.current, next)
		if won {
			l.current = next
		}
		l.mu.Unlock()
		switch {
		case isDatabaseClosed(err):
			// The bridge closes its database after its archive: the lease is no longer needed and
			// lapses by itself.
			return
		case err != nil:
			l.log.Warn().Err(err).Msg("Failed to renew the archive writer lease")
		case !won:
			l.log.Error().Msg("Another process took the archive writer lease; if this process's archive is still open, " +
				"both may now append to it")
			return
		}
	}
}

// Release stops renewing and removes the lease, unless another process has taken it since.
func (l *archiveLease) Release(ctx context.Context) error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := swapLease(ctx, l.db, l.current, ""); err != nil {
		return fmt.Errorf("release the archive writer lease: %w", err)
	}
	return nil
}

// isDatabaseClosed recognises database/sql's error for a closed *sql.DB, which it does not export.
func isDatabaseClosed(err error) bool {
	return err != nil && strings.Contains(err.Error(), "sql: database is closed")
}

// OpenArchiveWriter opens the archive for writing from a tool (`causeway archive hold|dispose|export`),
// failing at once with ErrArchiveBusy if a bridge or another tool has it open for writing. release closes
// the archive and gives up the lease.
func OpenArchiveWriter(ctx context.Context, cfg *config.Config, db *database.Database, log zerolog.Logger, purpose string) (a *archive.Archive, release func() error, err error) {
	lease, err := acquireArchiveLease(ctx, db, readLogEnd(cfg, db), purpose, false, log)
	if err != nil {
		return nil, nil, err
	}
	if a, err = openArchive(ctx, cfg, db, log, false); err != nil {
		_ = lease.Release(context.Background())
		return nil, nil, err
	}
	return a, func() error {
		return errors.Join(a.Close(), lease.Release(context.Background()))
	}, nil
}
