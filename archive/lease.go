package archive

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Only one process may have the archive open for writing. The commit loop keeps the tree head in memory
// and numbers each commit from it, so a second writer on the same database commits the indexes the first
// one is about to use: the first one's next commit fails on the primary key, and so does every later one,
// because its head never moves again. The log stays intact, but that bridge stops capturing.
//
// A writer holds a lease: the one row of archive_writer, naming it, taken by compare-and-swap on its
// random token so two processes cannot both win it, renewed while the archive is open and deleted by
// Close. A lease, not an OS file lock alone, because with PostgreSQL the bridge and `causeway archive`
// may run on different hosts. A holder that dies without Close leaves its row behind; how soon another
// process may take it depends on what that process can see of the holder. On the same machine (host
// name and boot) it can see at once whether the holder has died, so a bridge restarted after kill -9
// resumes capturing without waiting:
//   - through the writer lock, an flock on a file in the key directory that every writer holds while
//     open and the kernel drops when it dies: if the lease names the same file and the lock is free, the
//     holder is gone. This works across PID namespaces (a container restarted by its runtime);
//   - otherwise, in the same PID namespace, through the holder's PID: gone, or running a process with
//     another start time (a reused PID), means the holder is dead.
//
// Anywhere else only the lease's expiry, LeaseTTL after its last renewal, ends it.

const (
	// LeaseTTL is how long a lease outlives its holder's last renewal. Renewal runs at a third of it, so
	// two missed renewals (a slow database) do not lose it.
	LeaseTTL     = 30 * time.Second
	leaseRenewal = LeaseTTL / 3
	// leaseRetry is how often a waiting Open looks at the lease again.
	leaseRetry = time.Second
)

// ErrWriterBusy means another live process has the archive open for writing.
var ErrWriterBusy = errors.New("another process has the archive open for writing")

// process identifies a process for the lease. machine (host name and boot) is empty where this
// platform cannot say; then a dead holder is only recognised by its lease lapsing. pidNS scopes pid and
// start; lock names the writer lock file the process holds.
type process struct {
	host    string
	machine string
	pidNS   string
	pid     int64
	start   string
	lock    string
}

// thisProcess describes the calling process, holding the writer lock file lockID.
func thisProcess(lockID string) process {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	pid := int64(os.Getpid())
	start, _ := processStart(pid)
	p := process{host: host, pid: pid, start: start, pidNS: pidNamespace(), lock: lockID}
	if id := machineID(); id != "" {
		p.machine = host + " " + id
	}
	return p
}

// lease is the stored row.
type lease struct {
	token   string
	purpose string
	holder  process
	taken   time.Time
	expires time.Time
}

func (l *lease) String() string {
	return fmt.Sprintf("%s (pid %d on %s, since %s)", l.purpose, l.holder.pid, l.holder.host, l.taken.UTC().Format(time.RFC3339))
}

// staleReason says why l may be taken over by me at now, or "" while its holder may still be writing.
// lockFree says me holds its writer lock; startOf tells whether a PID runs in me's PID namespace and,
// when it can read it, the process's start time.
func (l *lease) staleReason(now time.Time, me process, lockFree bool, startOf func(pid int64) (start string, alive bool)) string {
	if !now.Before(l.expires) {
		return "it lapsed at " + l.expires.UTC().Format(time.RFC3339)
	}
	if me.machine == "" || l.holder.machine != me.machine {
		return ""
	}
	if me.lock != "" && l.holder.lock == me.lock {
		if lockFree {
			return fmt.Sprintf("its process (pid %d) has exited: its writer lock is free", l.holder.pid)
		}
		return ""
	}
	if me.pidNS == "" || l.holder.pidNS != me.pidNS || me.start == "" {
		return ""
	}
	if l.holder.pid == me.pid && l.holder.start == me.start {
		return "" // another archive in this very process: still open
	}
	start, alive := startOf(l.holder.pid)
	switch {
	case !alive:
		return fmt.Sprintf("its process (pid %d) has exited", l.holder.pid)
	case start != "" && start != l.holder.start:
		return fmt.Sprintf("pid %d is now another process", l.holder.pid)
	}
	return ""
}

// heldLease is this archive's lease while it is open for writing. Renewal is a goroutine the archive
// owns: releaseLease stops it and waits for it.
type heldLease struct {
	token string
	lock  *writerLock
	stop  chan struct{}
	done  chan struct{}
}

// takeLease takes the writer lease for a.opts.Writer. While another live process holds it, it fails at
// once with ErrWriterBusy, or with Options.WaitForWriter looks again every second until ctx ends.
func (a *Archive) takeLease(ctx context.Context) (err error) {
	lock, err := openWriterLock(a.opts.KeyDir)
	if err != nil {
		return err
	}
	defer func() {
		if a.lease == nil {
			_ = lock.close()
		}
	}()
	me := thisProcess(lock.id)
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return fmt.Errorf("lease token: %w", err)
	}
	mine := &lease{token: hex.EncodeToString(token), purpose: a.opts.Writer, holder: me}
	waiting := false
	for {
		cur, err := a.readLease(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		// Another writer on this machine with the same key directory holds the lock even before its
		// lease is stored, so the lock alone already refuses it.
		locked := lock.tryLock()
		var busy error
		switch {
		case cur != nil:
			if reason := cur.staleReason(now, me, locked, processStart); reason != "" && locked {
				a.log.Warn().Str("holder", cur.String()).Str("reason", reason).Msg("Taking over the archive writer lease")
			} else {
				busy = fmt.Errorf("%w: %s holds it; it ends when that process closes the archive, or when it dies "+
					"(at once seen from its machine, otherwise when its lease lapses: it was renewed until %s)",
					ErrWriterBusy, cur, cur.expires.UTC().Format(time.RFC3339))
			}
		case !locked:
			busy = fmt.Errorf("%w: another process on this machine holds %s", ErrWriterBusy, lock.path)
		}
		if busy != nil {
			if !a.opts.WaitForWriter {
				return busy
			}
			if !waiting {
				a.log.Warn().Err(busy).Msg("Waiting for the archive writer lease")
				waiting = true
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (gave up waiting: %w)", busy, ctx.Err())
			case <-time.After(leaseRetry):
			}
			continue
		}
		mine.taken, mine.expires = now, now.Add(LeaseTTL)
		won, err := a.swapLease(ctx, cur, mine)
		if err != nil {
			return err
		}
		if won {
			a.lease = &heldLease{token: mine.token, lock: lock, stop: make(chan struct{}), done: make(chan struct{})}
			go a.renewLease(a.lease)
			return nil
		}
		// Another process moved between our read and our write: look again.
	}
}

func (a *Archive) readLease(ctx context.Context) (*lease, error) {
	l := &lease{}
	var taken, expires int64
	err := a.db.QueryRow(ctx, `SELECT token, purpose, host, machine, pid_ns, pid, pid_start, lock_file, taken_ts, expires_ts
		FROM archive_writer WHERE id=1`).Scan(&l.token, &l.purpose, &l.holder.host, &l.holder.machine, &l.holder.pidNS,
		&l.holder.pid, &l.holder.start, &l.holder.lock, &taken, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the writer lease: %w", err)
	}
	l.taken, l.expires = time.UnixMilli(taken), time.UnixMilli(expires)
	return l, nil
}

// swapLease writes next in place of old (nil: no row), only if the row is still old.
func (a *Archive) swapLease(ctx context.Context, old, next *lease) (bool, error) {
	h := next.holder
	args := []any{next.token, next.purpose, h.host, h.machine, h.pidNS, h.pid, h.start, h.lock, next.taken.UnixMilli(), next.expires.UnixMilli()}
	var res sql.Result
	var err error
	if old == nil {
		res, err = a.db.Exec(ctx, `INSERT INTO archive_writer (id, token, purpose, host, machine, pid_ns, pid, pid_start, lock_file, taken_ts, expires_ts)
			VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`, args...)
	} else {
		res, err = a.db.Exec(ctx, `UPDATE archive_writer SET token=$1, purpose=$2, host=$3, machine=$4, pid_ns=$5, pid=$6,
			pid_start=$7, lock_file=$8, taken_ts=$9, expires_ts=$10 WHERE id=1 AND token=$11`, append(args, old.token)...)
	}
	if err != nil {
		return false, fmt.Errorf("take the writer lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("take the writer lease: %w", err)
	}
	return n == 1, nil
}

func (a *Archive) renewLease(h *heldLease) {
	defer close(h.done)
	ticker := time.NewTicker(leaseRenewal)
	defer ticker.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaseRenewal)
		res, err := a.db.Exec(ctx, `UPDATE archive_writer SET expires_ts=$1 WHERE id=1 AND token=$2`,
			time.Now().Add(LeaseTTL).UnixMilli(), h.token)
		cancel()
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		switch {
		case err != nil:
			a.log.Warn().Err(err).Msg("Failed to renew the archive writer lease")
		case n == 0:
			// Only possible after our lease lapsed (the database was out of reach for LeaseTTL): the
			// other writer and this one may now both append.
			a.log.Error().Msg("Another process took the archive writer lease while this archive is open; " +
				"close one of them, then run verify")
			return
		}
	}
}

// releaseLease stops renewal and deletes the lease, unless another process has taken it since, then
// lets go of the writer lock.
func (a *Archive) releaseLease() error {
	h := a.lease
	if h == nil {
		return nil
	}
	a.lease = nil
	close(h.stop)
	<-h.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if _, err = a.db.Exec(ctx, `DELETE FROM archive_writer WHERE id=1 AND token=$1`, h.token); err != nil {
		err = fmt.Errorf("archive: release the writer lease: %w", err)
	}
	return errors.Join(err, h.lock.close())
}

// parseStatStart returns field 22 (starttime, in clock ticks since boot) of a /proc/PID/stat line. The
// second field is the command name in parentheses, which may itself hold spaces and parentheses, so
// fields are counted from the last ')'.
func parseStatStart(stat string) (string, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return "", false
	}
	fields := strings.Fields(stat[i+1:]) // from field 3
	if len(fields) < 20 {
		return "", false
	}
	if _, err := strconv.ParseUint(fields[19], 10, 64); err != nil {
		return "", false
	}
	return fields[19], true
}
