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
// PostgreSQL the bridge and `causeway archive` may run on different hosts, and because a lease that
// lapses on its own needs no release hook: the bridge's archive is closed by Stop, which knows nothing
// of it, and a crashed process never releases anything.
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
}

// archiveLease is a held writer lease. A goroutine renews it until Release, until another process has
// taken it (only possible after it lapsed), or until the database is closed.
type archiveLease struct {
	db      *database.Database
	log     zerolog.Logger
	mu      sync.Mutex
	current string // the stored value, for compare-and-swap
	stop    chan struct{}
	done    chan struct{}
}

// acquireArchiveLease takes the writer lease for purpose. If another live process holds it, it fails
// with ErrArchiveBusy, or with wait keeps trying until ctx ends.
func acquireArchiveLease(ctx context.Context, db *database.Database, purpose string, wait bool, log zerolog.Logger) (*archiveLease, error) {
	logged := false
	for {
		cur, err := db.KV.Get(ctx, archiveLeaseKey)
		if err != nil {
			return nil, fmt.Errorf("read the archive writer lease: %w", err)
		}
		if held, ok := foreignLease(cur, time.Now()); ok {
			busy := fmt.Errorf("%w: %s (%s) holds it, renewed until %s; it lapses %s after its holder stops",
				ErrArchiveBusy, held.Purpose, held.Holder, time.UnixMilli(held.Expires).UTC().Format(time.RFC3339), ArchiveLeaseTTL)
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
		next := newLeaseValue(purpose)
		won, err := swapLease(ctx, db, cur, next)
		if err != nil {
			return nil, err
		}
		if !won {
			continue // someone else moved first; look again
		}
		l := &archiveLease{db: db, log: log, current: next, stop: make(chan struct{}), done: make(chan struct{})}
		go l.renew(purpose)
		return l, nil
	}
}

// foreignLease reports the lease stored as cur if it belongs to another process and has not lapsed. An
// unreadable value is treated as lapsed: refusing forever over a damaged row would help nobody.
func foreignLease(cur string, now time.Time) (leaseValue, bool) {
	var v leaseValue
	if cur == "" || json.Unmarshal([]byte(cur), &v) != nil {
		return v, false
	}
	return v, v.Holder != processHolder() && v.Expires > now.UnixMilli()
}

func newLeaseValue(purpose string) string {
	data, _ := json.Marshal(leaseValue{Holder: processHolder(), Purpose: purpose, Expires: time.Now().Add(ArchiveLeaseTTL).UnixMilli()})
	return string(data)
}

// swapLease replaces the stored value old (empty: no row) with next, only if it is still old.
func swapLease(ctx context.Context, db *database.Database, old, next string) (bool, error) {
	var err error
	var n int64
	if old == "" {
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
		l.mu.Lock()
		next := newLeaseValue(purpose)
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
			l.log.Error().Msg("The archive writer lease was taken by another process after it lapsed; " +
				"that process may now append to the archive too")
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
	if _, err := l.db.Exec(ctx, `DELETE FROM kv_store WHERE key=$1 AND value=$2`, archiveLeaseKey, l.current); err != nil {
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
	lease, err := acquireArchiveLease(ctx, db, purpose, false, log)
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
