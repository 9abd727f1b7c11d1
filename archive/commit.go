package archive

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
)

// Appended says where an appended entry went.
type Appended struct {
	Index    uint64
	LeafHash []byte
	Captured time.Time
}

// appendReq is one entry (or a checkpoint request) waiting for the commit loop.
type appendReq struct {
	entry   []byte // canonical entry JSON, encoded by the caller's goroutine
	salt    []byte
	kind    Kind
	account string
	chat    string
	sender  string
	eventMs int64 // -1: use the capture time
	media   []string
	// apply runs inside the entry's transaction, so an audit entry and the change it records commit
	// together or not at all. Requests with apply are committed alone, so their failure fails nobody else.
	apply func(ctx context.Context, idx uint64) error
	// with runs inside the transaction too but, unlike apply, shares it with the batch (see
	// AppendWith).
	with           func(ctx context.Context) error
	checkpointOnly bool
	done           chan appendResult
}

type appendResult struct {
	receipt Appended
	cp      *Checkpoint
	err     error
}

// Append archives e and returns once it is committed to the database (fsynced, with SQLite's default
// synchronous=FULL or PostgreSQL's synchronous_commit=on). Concurrent calls are group-committed in one
// transaction. If ctx ends first Append returns its error, but the entry may still be committed: an
// archive never withdraws what it was given. Audit kinds are refused; the archive writes those itself.
func (a *Archive) Append(ctx context.Context, e *Entry) (Appended, error) {
	return a.AppendWith(ctx, e, nil)
}

// AppendWith is Append that also runs with inside the transaction that commits e, so that a
// caller's record of having archived e commits with e or not at all, and costs no commit of
// its own. The transaction is shared with the other entries of the group commit: with must be
// a small write that fails only when the database does, since its failure fails them all.
func (a *Archive) AppendWith(ctx context.Context, e *Entry, with func(context.Context) error) (Appended, error) {
	if e == nil {
		return Appended{}, errors.New("archive: nil entry")
	}
	if e.Kind.isAudit() {
		return Appended{}, fmt.Errorf("archive: %s entries are written by the archive itself", e.Kind)
	}
	return a.appendEntryWith(ctx, e, nil, with)
}

func (a *Archive) appendEntry(ctx context.Context, e *Entry, apply func(context.Context, uint64) error) (Appended, error) {
	return a.appendEntryWith(ctx, e, apply, nil)
}

func (a *Archive) appendEntryWith(ctx context.Context, e *Entry, apply func(context.Context, uint64) error, with func(context.Context) error) (Appended, error) {
	payload, err := encodeEntry(e)
	if err != nil {
		return Appended{}, fmt.Errorf("archive: %w", err)
	}
	req := &appendReq{
		entry: payload, salt: make([]byte, 32), kind: e.Kind,
		account: e.Account, chat: e.Chat, sender: e.Sender, eventMs: -1,
		media: e.mediaHashes(), apply: apply, with: with,
	}
	if !e.Time.IsZero() {
		req.eventMs = e.Time.UnixMilli()
	}
	if _, err = rand.Read(req.salt); err != nil {
		return Appended{}, fmt.Errorf("archive: salt: %w", err)
	}
	res := a.submit(ctx, req)
	if res.err != nil {
		return Appended{}, fmt.Errorf("archive: append %s: %w", e.Kind, res.err)
	}
	return res.receipt, nil
}

// Checkpoint issues a checkpoint covering every entry committed so far (or returns the latest one if
// nothing was added since) and returns it.
func (a *Archive) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	res := a.submit(ctx, &appendReq{checkpointOnly: true})
	if res.err != nil {
		return nil, fmt.Errorf("archive: checkpoint: %w", res.err)
	}
	return res.cp, nil
}

func (a *Archive) submit(ctx context.Context, req *appendReq) appendResult {
	req.done = make(chan appendResult, 1)
	a.closeMu.RLock()
	if a.closed {
		a.closeMu.RUnlock()
		if a.opts.ReadOnly {
			return appendResult{err: ErrReadOnly}
		}
		return appendResult{err: ErrClosed}
	}
	select {
	case a.reqs <- req:
		a.closeMu.RUnlock()
	case <-ctx.Done():
		a.closeMu.RUnlock()
		return appendResult{err: ctx.Err()}
	}
	select {
	case res := <-req.done:
		return res
	case <-ctx.Done():
		return appendResult{err: fmt.Errorf("%w (the entry may still be committed)", ctx.Err())}
	}
}

// commitLoop owns a.state. Batching is natural: while one transaction commits, new requests queue up and
// the next transaction takes all of them.
func (a *Archive) commitLoop() {
	defer close(a.stopped)
	ticker := time.NewTicker(a.opts.CheckpointInterval)
	defer ticker.Stop()
	var pending *appendReq
	for {
		first := pending
		pending = nil
		if first == nil {
			select {
			case first = <-a.reqs:
			case <-ticker.C:
				a.timedCheckpoint()
				continue
			case <-a.closing:
				a.drain()
				return
			}
		}
		var batch []*appendReq
		batch, pending = a.collect(first)
		a.process(batch)
	}
}

// drain commits what was queued before Close and issues the final checkpoint. No sender is left: Close
// set closed under the write lock first.
func (a *Archive) drain() {
	for {
		select {
		case first := <-a.reqs:
			batch, pending := a.collect(first)
			a.process(batch)
			if pending != nil {
				a.process([]*appendReq{pending})
			}
		default:
			if a.state.size > a.state.cpSize {
				if _, err := a.issueCheckpoint(); err != nil {
					a.log.Error().Err(err).Msg("Failed to issue final archive checkpoint")
				}
			}
			for _, stmt := range a.insertStmts {
				_ = stmt.Close()
			}
			return
		}
	}
}

// collect gathers queued plain appends behind first, without waiting for more.
func (a *Archive) collect(first *appendReq) (batch []*appendReq, pending *appendReq) {
	batch = []*appendReq{first}
	if first.apply != nil || first.checkpointOnly {
		return batch, nil
	}
	for len(batch) < a.opts.MaxBatch {
		select {
		case req := <-a.reqs:
			if req.apply != nil || req.checkpointOnly {
				return batch, req
			}
			batch = append(batch, req)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

func (a *Archive) process(batch []*appendReq) {
	if batch[0].checkpointOnly {
		var res appendResult
		if a.state.size > a.state.cpSize {
			res.cp, res.err = a.issueCheckpoint()
		} else {
			res.cp, res.err = a.LatestCheckpoint(context.Background())
		}
		batch[0].done <- res
		return
	}
	results, err := a.commitBatch(batch)
	for i, req := range batch {
		if err != nil {
			req.done <- appendResult{err: err}
		} else {
			req.done <- appendResult{receipt: results[i]}
		}
	}
}

type leafRow struct {
	commitment []byte
	body       []byte
}

func (a *Archive) commitBatch(batch []*appendReq) ([]Appended, error) {
	st := a.state
	rng, err := rangeFactory.NewRange(0, st.rng.End(), append([][]byte(nil), st.rng.Hashes()...))
	if err != nil {
		return nil, fmt.Errorf("copy tree state: %w", err)
	}
	prev := st.prevLeaf
	captured := a.now().UTC()
	rows := make([]leafRow, len(batch))
	receipts := make([]Appended, len(batch))
	for i, req := range batch {
		idx := st.size + uint64(i)
		body := buildBody(req.entry, captured, idx, prev)
		h := sha256.New()
		h.Write(req.salt)
		h.Write(body)
		commitment := h.Sum(nil)
		leaf := hasher.HashLeaf(commitment)
		if err = rng.Append(leaf, nil); err != nil {
			return nil, fmt.Errorf("extend tree: %w", err)
		}
		rows[i] = leafRow{commitment: commitment, body: body}
		receipts[i] = Appended{Index: idx, LeafHash: leaf, Captured: captured}
		prev = leaf
	}
	newSize := rng.End()
	var cp *Checkpoint
	var cpRange []byte
	if newSize-st.cpSize >= a.opts.CheckpointEvery {
		if cp, cpRange, err = a.signCheckpoint(rng, captured); err != nil {
			return nil, err
		}
	}
	ctx := a.log.WithContext(context.Background())
	err = a.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := a.insertRows(ctx, st.size, batch, rows, captured); err != nil {
			return err
		}
		for i, req := range batch {
			if req.with != nil {
				if err := req.with(ctx); err != nil {
					return err
				}
			}
			if req.apply == nil {
				continue
			}
			if err := req.apply(ctx, st.size+uint64(i)); err != nil {
				return err
			}
		}
		if cp != nil {
			return a.insertCheckpoint(ctx, cp, cpRange)
		}
		return nil
	})
	if err != nil {
		a.log.Error().Err(err).Int("batch_size", len(batch)).Uint64("first_index", st.size).Msg("Archive commit failed")
		return nil, err
	}
	a.state.size, a.state.rng, a.state.prevLeaf = newSize, rng, prev
	if cp != nil {
		a.state.cpSize, a.state.cpTime = cp.Size, cp.Created
	}
	a.size.Store(newSize)
	a.commits.Add(1)
	return receipts, nil
}

// rowsPerInsert keeps multi-row INSERTs well inside SQLite's and PostgreSQL's bound-parameter limits.
const rowsPerInsert = 64

func (a *Archive) insertRows(ctx context.Context, first uint64, batch []*appendReq, rows []leafRow, captured time.Time) error {
	capMs := captured.UnixMilli()
	for start := 0; start < len(batch); start += rowsPerInsert {
		end := min(start+rowsPerInsert, len(batch))
		args := make([]any, 0, (end-start)*10)
		var mediaArgs []any
		for i := start; i < end; i++ {
			req, idx := batch[i], int64(first)+int64(i)
			eventMs := req.eventMs
			if eventMs < 0 {
				eventMs = capMs
			}
			args = append(args, idx, rows[i].commitment, string(req.kind), req.account, req.chat, req.sender,
				eventMs, capMs, req.salt, rows[i].body)
			for _, m := range req.media {
				mediaArgs = append(mediaArgs, m, idx)
			}
		}
		if err := a.execInsert(ctx, end-start, args); err != nil {
			return fmt.Errorf("insert entries %d..%d: %w", int64(first)+int64(start), int64(first)+int64(end)-1, err)
		}
		if len(mediaArgs) > 0 {
			if _, err := a.db.Exec(ctx, valuesQuery(`INSERT INTO archive_entry_media (sha256, idx) VALUES `, 2, len(mediaArgs)/2), mediaArgs...); err != nil {
				return fmt.Errorf("insert media references: %w", err)
			}
		}
	}
	return nil
}

// execInsert runs the entry INSERT for n rows through a statement prepared once per row count: parsing
// a 640-parameter INSERT on every commit was a sixth of the commit loop's CPU.
func (a *Archive) execInsert(ctx context.Context, n int, args []any) error {
	txn, ok := a.db.Execable(ctx).(*dbutil.LoggingTxn)
	if !ok {
		return errors.New("entry insert outside a transaction")
	}
	stmt := a.insertStmts[n]
	if stmt == nil {
		q := valuesQuery(`INSERT INTO archive_entry (idx, commitment, kind, account, chat, sender, event_ts, captured_ts, salt, body) VALUES `, 10, n)
		if a.db.Dialect == dbutil.SQLite {
			q = strings.ReplaceAll(q, "$", "?")
		}
		var err error
		if stmt, err = a.db.RawDB.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("prepare entry insert: %w", err)
		}
		a.insertStmts[n] = stmt
	}
	_, err := txn.UnderlyingTx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	return err
}

// valuesQuery appends n placeholder tuples of width cols: ($1, $2), ($3, $4), ...
func valuesQuery(prefix string, cols, n int) string {
	var b strings.Builder
	b.Grow(len(prefix) + n*cols*5)
	b.WriteString(prefix)
	p := 1
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(p))
			p++
		}
		b.WriteByte(')')
	}
	return b.String()
}

func (a *Archive) timedCheckpoint() {
	if a.state.size > a.state.cpSize && a.now().Sub(a.state.cpTime) >= a.opts.CheckpointInterval {
		if _, err := a.issueCheckpoint(); err != nil {
			a.log.Error().Err(err).Msg("Failed to issue timed archive checkpoint")
		}
	}
}

// issueCheckpoint signs and stores a checkpoint at the current size. Commit loop only.
func (a *Archive) issueCheckpoint() (*Checkpoint, error) {
	cp, rng, err := a.signCheckpoint(a.state.rng, a.now().UTC())
	if err != nil {
		return nil, err
	}
	if err = a.insertCheckpoint(context.Background(), cp, rng); err != nil {
		return nil, err
	}
	a.state.cpSize, a.state.cpTime = cp.Size, cp.Created
	a.log.Debug().Uint64("size", cp.Size).Msg("Issued archive checkpoint")
	return cp, nil
}
