package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/transparency-dev/merkle/compact"
	"go.mau.fi/util/dbutil"

	"codeberg.org/causeway/causeway/archive/upgrades"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("archive is closed")

// ErrReadOnly is returned by writes on an archive opened with Options.ReadOnly.
var ErrReadOnly = errors.New("archive is open read-only")

const (
	// DefaultRetention is ten years, counted as 3653 days so leap days never make it fall short.
	DefaultRetention = 3653 * 24 * time.Hour
	// DefaultOrigin is the checkpoint origin (and key name) when Options.Origin is empty.
	DefaultOrigin = "causeway/archive"

	defaultCheckpointEvery    = 1000
	defaultCheckpointInterval = 10 * time.Second
	defaultMaxBatch           = 512
)

// Options configure Open. KeyDir and MediaDir are required.
type Options struct {
	// KeyDir holds the checkpoint signing key (archive-signing.key, mode 0600) and its public half
	// (archive-signing.pub). A key pair is created on first start.
	KeyDir string
	// MediaDir holds media blobs named by their SHA-256.
	MediaDir string
	// Origin names the log in checkpoints and is the signing key's name; it must not change once set.
	Origin string
	// A checkpoint is issued once CheckpointEvery entries have been added since the last one, and every
	// CheckpointInterval while entries keep arriving, and at Close.
	CheckpointEvery    uint64
	CheckpointInterval time.Duration
	// Retention decides when Dispose may remove a body.
	Retention Retention
	// ReadOnly opens without writing anything, and tolerates a damaged log, so Verify can report on it.
	// Writes return ErrReadOnly. Only the verifier key file is needed.
	ReadOnly bool
	// Writer says what this process is ("the bridge", "causeway archive export") in the writer lease
	// (lease.go), for the error another writer gets. Unused when ReadOnly.
	Writer string
	// WaitForWriter makes Open wait, until ctx ends, while another live process has the archive open for
	// writing, instead of failing at once with ErrWriterBusy.
	WaitForWriter bool
	// MaxBatch caps how many appends share one transaction.
	MaxBatch int
	Log      *zerolog.Logger
	// Now replaces the clock, for tests.
	Now func() time.Time
}

// Archive is the append-only records log. It is safe for concurrent use.
type Archive struct {
	db       *dbutil.Database
	log      zerolog.Logger
	key      *signingKey
	origin   string
	mediaDir string
	opts     Options
	now      func() time.Time

	// adminMu serialises holds and disposals, so a hold added while a disposal is being decided cannot be
	// missed by it.
	adminMu sync.Mutex
	// mediaMu serialises media file creation with disposal's file removal.
	mediaMu sync.Mutex

	closeMu   sync.RWMutex
	closed    bool
	closeOnce sync.Once
	size      atomic.Uint64 // log size as last committed, for readers outside the commit loop
	commits   atomic.Uint64 // transactions the commit loop made; entries/commits is the batching factor
	reqs      chan *appendReq
	closing   chan struct{}
	stopped   chan struct{}

	// lease is held from Open to Close unless ReadOnly.
	lease *heldLease

	// Owned by the commit loop after Open.
	state       treeState
	insertStmts map[int]*sql.Stmt // by row count
}

// treeState is the log head: its size, the compact Merkle range over all leaves, the last leaf hash and
// the last checkpoint.
type treeState struct {
	size     uint64
	rng      *compact.Range
	prevLeaf []byte
	cpSize   uint64
	cpTime   time.Time
}

// Open upgrades the archive's tables in db, loads or creates the signing key, resumes the tree and starts
// the commit loop. Unless read-only it first takes the writer lease (lease.go), failing with
// ErrWriterBusy while another process holds it, then appends an archive_started entry, which tells the
// completeness ledger when the archive was not running, and signs a checkpoint covering it (first
// signing what a crashed previous run left unsigned).
func Open(ctx context.Context, db *dbutil.Database, opts Options) (_ *Archive, err error) {
	if opts.KeyDir == "" {
		return nil, errors.New("archive: KeyDir is required")
	}
	if opts.MediaDir == "" && !opts.ReadOnly {
		return nil, errors.New("archive: MediaDir is required")
	}
	if opts.Origin == "" {
		opts.Origin = DefaultOrigin
	}
	if strings.ContainsAny(opts.Origin, " \t\n+") {
		return nil, fmt.Errorf("archive: origin %q must not contain whitespace or '+'", opts.Origin)
	}
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = defaultCheckpointEvery
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = defaultCheckpointInterval
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if opts.Retention.Default <= 0 {
		opts.Retention.Default = DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Writer == "" {
		opts.Writer = "a writer"
	}
	log := zerolog.Nop()
	if opts.Log != nil {
		log = opts.Log.With().Str("component", "archive").Logger()
	}
	a := &Archive{
		db:          db.Child("archive_version", upgrades.Table, dbutil.ZeroLogger(log)),
		log:         log,
		origin:      opts.Origin,
		mediaDir:    opts.MediaDir,
		opts:        opts,
		now:         opts.Now,
		reqs:        make(chan *appendReq, opts.MaxBatch),
		insertStmts: map[int]*sql.Stmt{},
		closing:     make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	if err = a.db.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("archive: upgrade schema: %w", err)
	}
	if !opts.ReadOnly {
		// Before anything is written, the key files included: two first starts would each create one.
		if err = a.takeLease(ctx); err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		defer func() {
			if err != nil && a.lease != nil {
				err = errors.Join(err, a.releaseLease())
			}
		}()
	}
	if a.key, err = loadOrCreateKey(opts.KeyDir, opts.Origin, !opts.ReadOnly); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err = a.checkKeyIdentity(ctx); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if opts.ReadOnly {
		a.closed = true
		close(a.stopped)
		return a, nil
	}
	a.warnIfNotDurable(ctx)
	if err = a.loadState(ctx); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	// A run that ended without Close left entries no checkpoint covers. Sign them before anything else
	// is appended, so that only the tail of the run still going is ever unsigned (Verify requires it).
	var recovered uint64
	if a.state.size > a.state.cpSize {
		if _, err = a.issueCheckpoint(); err != nil {
			return nil, fmt.Errorf("archive: sign what the previous run left unsigned: %w", err)
		}
		recovered = a.state.size
	}
	started, err := a.startedEntry(ctx, recovered)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	go a.commitLoop()
	if _, err = a.Append(ctx, started); err != nil {
		return nil, errors.Join(fmt.Errorf("archive: record start: %w", err), a.Close())
	}
	// The start is signed at once: a log whose every checkpoint was deleted then lacks one that covers
	// its last archive_started entry, which Verify reports, even if the log has only ever had one run.
	if _, err = a.Checkpoint(ctx); err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("archive: sign the start: %w", err)
	}
	a.log.Info().Uint64("size", a.size.Load()).Str("origin", a.origin).Msg("Archive opened")
	return a, nil
}

// warnIfNotDurable says so when the database would acknowledge a commit before it is on disk: Append's
// promise rests on it, but the connection settings belong to the caller.
func (a *Archive) warnIfNotDurable(ctx context.Context) {
	var setting string
	var err error
	durable := true
	switch a.db.Dialect {
	case dbutil.SQLite:
		var level int
		err = a.db.QueryRow(ctx, `PRAGMA synchronous`).Scan(&level)
		setting, durable = fmt.Sprintf("synchronous=%d", level), level >= 2
	case dbutil.Postgres:
		err = a.db.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting)
		durable = setting != "off"
		setting = "synchronous_commit=" + setting
	}
	if err == nil && !durable {
		a.log.Warn().Str("setting", setting).Msg("Database may acknowledge archive commits before they reach disk; archived entries can be lost in a power failure")
	}
}

// checkKeyIdentity pins the verifier key in the database on first start and refuses a different one later.
func (a *Archive) checkKeyIdentity(ctx context.Context) error {
	var stored string
	err := a.db.QueryRow(ctx, `SELECT verifier FROM archive_key WHERE name=$1`, a.origin).Scan(&stored)
	if err == nil {
		if stored != a.key.vkey {
			return fmt.Errorf("the key in %s is not the key this archive was started with (%s)", a.opts.KeyDir, stored)
		}
		return nil
	}
	if a.opts.ReadOnly {
		return nil
	}
	_, err = a.db.Exec(ctx, `INSERT INTO archive_key (name, verifier, created) VALUES ($1, $2, $3)`,
		a.origin, a.key.vkey, a.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("record signing key: %w", err)
	}
	return nil
}

// loadState resumes the tree from the latest checkpoint's compact range plus the leaves after it. It
// refuses a log that is shorter than a checkpoint already issued: appending to it would fork the history
// that checkpoint vouches for. Verify (read-only) says what went missing.
func (a *Archive) loadState(ctx context.Context) error {
	size, err := a.logSize(ctx)
	if err != nil {
		return err
	}
	st := treeState{rng: rangeFactory.NewEmptyRange(0)}
	cp, rngBytes, err := a.queryCheckpoint(ctx,
		`SELECT size, note, created_ts, range_hashes FROM archive_checkpoint ORDER BY size DESC LIMIT 1`)
	switch {
	case errors.Is(err, ErrNoCheckpoint):
	case err != nil:
		return err
	default:
		if cp.Size > size {
			return fmt.Errorf("log has %d entries but a checkpoint was issued at size %d: entries are missing, run verify", size, cp.Size)
		}
		hs := make([][]byte, 0, len(rngBytes)/32)
		for i := 0; i+32 <= len(rngBytes); i += 32 {
			hs = append(hs, rngBytes[i:i+32])
		}
		if st.rng, err = rangeFactory.NewRange(0, cp.Size, hs); err != nil {
			return fmt.Errorf("stored compact range at size %d: %w", cp.Size, err)
		}
		root, err := rootOf(st.rng)
		if err != nil {
			return err
		}
		if string(root) != string(cp.Root) {
			return fmt.Errorf("stored compact range at size %d does not match its checkpoint: run verify", cp.Size)
		}
		st.cpSize, st.cpTime = cp.Size, cp.Created
	}
	err = a.scanLeaves(ctx, st.rng.End(), size, func(idx uint64, leaf []byte) error {
		if idx != st.rng.End() {
			return fmt.Errorf("entry %d is missing: run verify", st.rng.End())
		}
		st.prevLeaf = leaf
		return st.rng.Append(leaf, nil)
	})
	if err != nil {
		return err
	}
	if st.rng.End() != size {
		return fmt.Errorf("log has gaps before entry %d: run verify", size)
	}
	if size > 0 && st.prevLeaf == nil {
		if st.prevLeaf, err = a.leafAt(ctx, size-1); err != nil {
			return err
		}
	}
	st.size = size
	a.state = st
	a.size.Store(size)
	return nil
}

func (a *Archive) logSize(ctx context.Context) (uint64, error) {
	var next int64
	if err := a.db.QueryRow(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM archive_entry`).Scan(&next); err != nil {
		return 0, fmt.Errorf("read log size: %w", err)
	}
	return uint64(next), nil
}

func (a *Archive) leafAt(ctx context.Context, idx uint64) ([]byte, error) {
	var commitment []byte
	if err := a.db.QueryRow(ctx, `SELECT commitment FROM archive_entry WHERE idx=$1`, int64(idx)).Scan(&commitment); err != nil {
		return nil, fmt.Errorf("read entry %d: %w", idx, err)
	}
	return hasher.HashLeaf(commitment), nil
}

// scanLeaves calls fn with the leaf hash of every entry in [from, to), in index order.
func (a *Archive) scanLeaves(ctx context.Context, from, to uint64, fn func(idx uint64, leaf []byte) error) error {
	if from >= to {
		return nil
	}
	rows, err := a.db.Query(ctx, `SELECT idx, commitment FROM archive_entry WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
		int64(from), int64(to))
	if err != nil {
		return fmt.Errorf("read leaves %d..%d: %w", from, to, err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var commitment []byte
		if err = rows.Scan(&idx, &commitment); err != nil {
			return fmt.Errorf("read leaf: %w", err)
		}
		if err = fn(uint64(idx), hasher.HashLeaf(commitment)); err != nil {
			return err
		}
	}
	if err = rows.Err(); err != nil {
		return fmt.Errorf("read leaves: %w", err)
	}
	return nil
}

// startedEntry records the start, noting when the previous run ended without archive_stopped (the
// window from its last entry to now was not captured) and the size of the checkpoint this start signed
// for what that run left unsigned, if any.
func (a *Archive) startedEntry(ctx context.Context, recovered uint64) (*Entry, error) {
	e := &Entry{Kind: KindArchiveStarted, Time: a.now(), Completeness: &Completeness{Checkpoint: recovered}}
	if a.state.size == 0 {
		e.Completeness.Reason = "first start"
		return e, nil
	}
	var kind string
	var capturedMs int64
	err := a.db.QueryRow(ctx, `SELECT kind, captured_ts FROM archive_entry WHERE idx=$1`, int64(a.state.size-1)).
		Scan(&kind, &capturedMs)
	if err != nil {
		return nil, fmt.Errorf("read last entry: %w", err)
	}
	if Kind(kind) == KindArchiveStopped {
		e.Completeness.Reason = "restart"
	} else {
		e.Completeness.Reason = "previous run ended without a clean shutdown"
	}
	e.Completeness.From = time.UnixMilli(capturedMs)
	return e, nil
}

// Close records an archive_stopped entry, drains pending appends, issues a final checkpoint, stops the
// commit loop and releases the writer lease. It does not close the database, which belongs to the caller.
func (a *Archive) Close() error {
	if a.opts.ReadOnly {
		return nil
	}
	var err error
	a.closeOnce.Do(func() {
		_, err = a.Append(context.Background(), &Entry{Kind: KindArchiveStopped, Time: a.now()})
		a.closeMu.Lock()
		a.closed = true
		a.closeMu.Unlock()
		close(a.closing)
		<-a.stopped
		if err != nil {
			err = fmt.Errorf("archive: record stop: %w", err)
		}
		if err = errors.Join(err, a.releaseLease()); err != nil {
			return
		}
		a.log.Info().Uint64("size", a.size.Load()).Msg("Archive closed")
	})
	return err
}
