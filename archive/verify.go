package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// Problem codes reported by Verify and VerifyBundle.
const (
	ProblemBodyAltered           = "body_altered"        // body and salt no longer hash to the leaf
	ProblemBodyMissing           = "body_missing"        // body gone without a disposal entry covering it
	ProblemBodyUnreadable        = "body_unreadable"     // body matches its leaf but cannot be parsed
	ProblemEntryMisplaced        = "entry_misplaced"     // the body was committed at another index
	ProblemChainBroken           = "chain_broken"        // this entry's leaf is not the one its successor was appended after
	ProblemIndexAltered          = "index_altered"       // query columns disagree with the body
	ProblemEntryMissing          = "entry_missing"       // a log row is gone
	ProblemLogTruncated          = "log_truncated"       // a stored checkpoint is larger than the log
	ProblemCheckpointMissing     = "checkpoint_missing"  // entries that a signed checkpoint should cover are not covered by one
	ProblemCheckpointInvalid     = "checkpoint_invalid"  // signature or format
	ProblemCheckpointMismatch    = "checkpoint_mismatch" // recomputed root differs from a signed one
	ProblemExternalInvalid       = "external_checkpoint_invalid"
	ProblemExternalMismatch      = "external_checkpoint_mismatch" // history differs from an outside checkpoint
	ProblemRolledBack            = "log_rolled_back"              // an outside checkpoint is larger than the log
	ProblemDisposalInvalid       = "disposal_invalid"
	ProblemMediaMissing          = "media_missing"
	ProblemMediaAltered          = "media_altered"
	ProblemMediaDisposedUnlogged = "media_disposed_unrecorded"
	ProblemInclusionFailed       = "inclusion_failed" // bundle: the proof does not lead to the checkpoint root
	ProblemBundleMalformed       = "bundle_malformed" // bundle: a file or line is not what the format says
	ProblemTranscriptMismatch    = "transcript_mismatch"
	ProblemExportSetMismatch     = "export_set_mismatch" // bundle: its entries or media are not the set the export entry records
	ProblemExportUnpinned        = "export_unpinned"     // bundle: the export entry records no exported set
)

// Problem is one thing verification found wrong.
type Problem struct {
	Index  int64 // the entry concerned (or the first of a range of them); -1 when no entry is
	Code   string
	Detail string
}

func (p Problem) String() string {
	if p.Index < 0 {
		return p.Code + ": " + p.Detail
	}
	return fmt.Sprintf("entry %d: %s: %s", p.Index, p.Code, p.Detail)
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Checkpoint is a signed checkpoint kept outside the database (by a witness or a records officer).
	// The log must still contain exactly the history it vouches for; this catches a database rolled
	// back to an earlier copy, which is otherwise self-consistent.
	Checkpoint []byte
	// TrustedKey, if set, is the verifier key checkpoints must verify with, instead of the key file next
	// to the archive (which whoever altered the database may have replaced too).
	TrustedKey string
}

// DisposalSummary describes one disposal entry.
type DisposalSummary struct {
	Index   uint64
	Time    time.Time
	Actor   string
	Before  time.Time
	Entries uint64
	Media   int
	Rules   []RuleCount
}

// VerifyReport is the outcome of Verify. The archive is intact when Problems is empty.
type VerifyReport struct {
	Size        uint64
	Root        []byte
	Checkpoints int // stored checkpoints whose signature and root were checked
	// KeyPinned says the checkpoints were checked with VerifyOptions.TrustedKey. Without it they were
	// checked with the key stored next to the archive, and trust rests on that file and the database
	// not having been replaced together.
	KeyPinned bool
	// Signed is the size of the latest checkpoint that verified. Unsigned entries after it are the tail
	// of the run that began at entry RunStart, which is still going or ended without Close (the next
	// start signs them); any other unsigned entry is a problem (see coverage.go).
	Signed             uint64
	Unsigned           uint64
	RunStart           uint64
	BodiesChecked      uint64
	Disposed           uint64 // entries whose body a recorded disposal removed
	Disposals          []DisposalSummary
	MediaChecked       int
	ExternalCheckpoint *Checkpoint
	Problems           []Problem
}

// OK reports whether verification found nothing wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

func (r *VerifyReport) add(idx int64, code, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Index: idx, Code: code, Detail: fmt.Sprintf(format, args...)})
}

// Verify recomputes the Merkle tree from every leaf, checks every stored checkpoint's signature and its
// root at its size, every body against its leaf and position, every media blob against its hash, and
// that every missing body is covered by a disposal entry. Problems are reported, not returned as error;
// the error is for when verification itself could not run.
func (a *Archive) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{}
	verifier := a.key.verifier
	if opts.TrustedKey != "" {
		v, err := note.NewVerifier(strings.TrimSpace(opts.TrustedKey))
		if err != nil {
			return nil, fmt.Errorf("archive: trusted key: %w", err)
		}
		verifier = v
		rep.KeyPinned = true
	}
	// Checkpoints before size: a checkpoint is stored in the same transaction as the entries it covers,
	// so reading them first means a concurrent append cannot look like truncation.
	cps, err := a.loadCheckpoints(ctx, verifier, rep)
	if err != nil {
		return nil, err
	}
	size, err := a.logSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	rep.Size = size
	if n := len(cps); n > 0 && cps[n-1].Size > size {
		rep.add(int64(size), ProblemLogTruncated, "a signed checkpoint vouches for %d entries but the log has %d: %s missing",
			cps[n-1].Size, size, spanText(size, cps[n-1].Size))
	}
	var ext *Checkpoint
	if opts.Checkpoint != nil {
		if ext, err = openCheckpoint(opts.Checkpoint, verifier); err != nil {
			rep.add(-1, ProblemExternalInvalid, "%v", err)
		} else if ext.Origin != a.origin {
			rep.add(-1, ProblemExternalInvalid, "checkpoint is for log %q, not %q", ext.Origin, a.origin)
			ext = nil
		} else {
			rep.ExternalCheckpoint = ext
			if ext.Size > size {
				rep.add(int64(size), ProblemRolledBack,
					"the outside checkpoint vouches for %d entries but the log has %d: %s missing (database rolled back or truncated)",
					ext.Size, size, spanText(size, ext.Size))
			}
		}
	}
	disposed, err := a.loadDisposals(ctx, rep)
	if err != nil {
		return nil, err
	}
	sc := &logScan{rep: rep, cps: cps, ext: ext, disposed: disposed, rng: rangeFactory.NewEmptyRange(0),
		cov: newCoverage(cps), refs: map[string]mediaRefs{}}
	sc.checkRoots() // checkpoints at size 0
	if err = a.scanEntries(ctx, size, sc.entry); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	sc.cov.finish(rep)
	if rep.Root, err = rootOf(sc.rng); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err = a.verifyMedia(ctx, rep, disposed, sc.refs); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return rep, nil
}

func (a *Archive) loadCheckpoints(ctx context.Context, v note.Verifier, rep *VerifyReport) ([]*Checkpoint, error) {
	rows, err := a.db.Query(ctx, `SELECT size, note FROM archive_checkpoint ORDER BY size`)
	if err != nil {
		return nil, fmt.Errorf("archive: read checkpoints: %w", err)
	}
	defer rows.Close()
	var cps []*Checkpoint
	for rows.Next() {
		var size int64
		var signed string
		if err = rows.Scan(&size, &signed); err != nil {
			return nil, fmt.Errorf("archive: read checkpoint: %w", err)
		}
		cp, err := openCheckpoint([]byte(signed), v)
		switch {
		case err != nil:
			rep.add(-1, ProblemCheckpointInvalid, "checkpoint stored at size %d: %v", size, err)
		case cp.Origin != a.origin || cp.Size != uint64(size):
			rep.add(-1, ProblemCheckpointInvalid, "checkpoint stored at size %d is for log %q at size %d", size, cp.Origin, cp.Size)
		default:
			cps = append(cps, cp)
		}
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: read checkpoints: %w", err)
	}
	rep.Checkpoints = len(cps)
	return cps, nil
}

// disposalIndex maps disposed entry ranges to the disposal entry that recorded them.
type disposalIndex struct {
	ranges []disposedRange
	media  map[string]uint64
}

type disposedRange struct {
	IndexRange
	by uint64
}

func (d *disposalIndex) coveredBy(idx uint64) (uint64, bool) {
	i := sort.Search(len(d.ranges), func(i int) bool { return d.ranges[i].Start > idx }) - 1
	if i >= 0 && idx < d.ranges[i].End {
		return d.ranges[i].by, true
	}
	return 0, false
}

// loadDisposals reads the disposal entries up front, so the scan knows which missing bodies are accounted
// for. Their own bodies are checked against their leaves like any other in the scan.
func (a *Archive) loadDisposals(ctx context.Context, rep *VerifyReport) (*disposalIndex, error) {
	rows, err := a.db.Query(ctx, `SELECT idx, body FROM archive_entry WHERE kind=$1 AND body IS NOT NULL ORDER BY idx`, string(KindDisposal))
	if err != nil {
		return nil, fmt.Errorf("archive: read disposals: %w", err)
	}
	defer rows.Close()
	d := &disposalIndex{media: map[string]uint64{}}
	for rows.Next() {
		var idx int64
		var body []byte
		if err = rows.Scan(&idx, &body); err != nil {
			return nil, fmt.Errorf("archive: read disposal: %w", err)
		}
		dec, err := decodeBody(body)
		if err != nil || dec.Entry.Disposal == nil {
			rep.add(idx, ProblemDisposalInvalid, "disposal entry cannot be read: %v", err)
			continue
		}
		sum := DisposalSummary{Index: uint64(idx), Time: dec.Entry.Time, Actor: dec.Entry.Actor,
			Before: dec.Entry.Disposal.Before, Media: len(dec.Entry.Disposal.Media), Rules: dec.Entry.Disposal.Rules}
		for _, r := range dec.Entry.Disposal.Entries {
			if r.End > uint64(idx) || r.Start >= r.End {
				rep.add(idx, ProblemDisposalInvalid, "disposal claims entries %d..%d, which do not all precede it", r.Start, r.End-1)
				continue
			}
			sum.Entries += r.End - r.Start
			d.ranges = append(d.ranges, disposedRange{IndexRange: r, by: uint64(idx)})
		}
		for _, m := range dec.Entry.Disposal.Media {
			d.media[m] = uint64(idx)
		}
		rep.Disposals = append(rep.Disposals, sum)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: read disposals: %w", err)
	}
	sort.Slice(d.ranges, func(i, j int) bool { return d.ranges[i].Start < d.ranges[j].Start })
	return d, nil
}

// storedEntry is one archive_entry row.
type storedEntry struct {
	idx        uint64
	commitment []byte
	kind       string
	account    string
	chat       string
	sender     string
	eventMs    int64
	capturedMs int64
	salt       []byte
	body       []byte
}

const entryColumns = `idx, commitment, kind, account, chat, sender, event_ts, captured_ts, salt, body`

func scanEntry(rows interface{ Scan(...any) error }) (*storedEntry, error) {
	var e storedEntry
	var idx int64
	err := rows.Scan(&idx, &e.commitment, &e.kind, &e.account, &e.chat, &e.sender, &e.eventMs, &e.capturedMs, &e.salt, &e.body)
	e.idx = uint64(idx)
	return &e, err
}

func (a *Archive) scanEntries(ctx context.Context, size uint64, fn func(*storedEntry)) error {
	rows, err := a.db.Query(ctx, `SELECT `+entryColumns+` FROM archive_entry WHERE idx < $1 ORDER BY idx`, int64(size))
	if err != nil {
		return fmt.Errorf("read entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return fmt.Errorf("read entry: %w", err)
		}
		fn(e)
	}
	if err = rows.Err(); err != nil {
		return fmt.Errorf("read entries: %w", err)
	}
	return nil
}

// logScan is the state of one pass over the log.
type logScan struct {
	rep        *VerifyReport
	cps        []*Checkpoint
	ext        *Checkpoint
	disposed   *disposalIndex
	rng        *compact.Range
	next       uint64 // index expected next
	prevLeaf   []byte
	lastGood   uint64 // size of the last checkpoint that matched
	mismatched bool
	cov        *coverage
	prevKind   Kind
	refs       map[string]mediaRefs // media named by the bodies that verified
}

func (s *logScan) entry(e *storedEntry) {
	rep := s.rep
	if e.idx != s.next {
		rep.add(int64(s.next), ProblemEntryMissing, "%s not in the log", spanText(s.next, e.idx))
	}
	leaf := hasher.HashLeaf(e.commitment)
	var body *Entry
	switch {
	case e.body == nil && e.salt == nil:
		if by, ok := s.disposed.coveredBy(e.idx); ok && !Kind(e.kind).disposable() {
			rep.add(int64(e.idx), ProblemDisposalInvalid, "disposal %d removed a %s entry, which is never disposed", by, e.kind)
		} else if ok {
			rep.Disposed++
		} else {
			rep.add(int64(e.idx), ProblemBodyMissing, "the body is gone and no disposal entry covers it")
		}
	case e.body == nil || e.salt == nil:
		rep.add(int64(e.idx), ProblemBodyMissing, "half of the body is gone (salt or body)")
	default:
		body = s.checkBody(e, leaf)
	}
	if body != nil {
		for _, sha := range body.mediaHashes() {
			r, seen := s.refs[sha]
			if !seen {
				r.first = e.idx
			}
			r.last = e.idx
			s.refs[sha] = r
		}
	}
	s.cov.entry(rep, e, s.prevKind, body)
	s.prevKind = Kind(e.kind)
	_ = s.rng.Append(leaf, nil)
	s.prevLeaf = leaf
	s.next = e.idx + 1
	s.checkRoots()
}

// checkBody checks a body against its leaf, position and query columns, and returns the entry when it is
// the one committed at this index.
func (s *logScan) checkBody(e *storedEntry, leaf []byte) *Entry {
	rep := s.rep
	rep.BodiesChecked++
	h := sha256.New()
	h.Write(e.salt)
	h.Write(e.body)
	if !bytes.Equal(h.Sum(nil), e.commitment) {
		rep.add(int64(e.idx), ProblemBodyAltered, "the stored body does not hash to its leaf: it was changed after it was archived")
		return nil
	}
	dec, err := decodeBody(e.body)
	if err != nil {
		rep.add(int64(e.idx), ProblemBodyUnreadable, "%v", err)
		return nil
	}
	if dec.Index != e.idx {
		rep.add(int64(e.idx), ProblemEntryMisplaced, "the body stored here was archived as entry %d: entries were moved or swapped", dec.Index)
		return nil
	}
	if e.idx > 0 && !bytes.Equal(dec.Prev, s.prevLeaf) && s.next == e.idx {
		rep.add(int64(e.idx-1), ProblemChainBroken, "entry %d was appended after a different entry %d: entry %d was replaced", e.idx, e.idx-1, e.idx-1)
	}
	en := &dec.Entry
	wantEvent := eventTime(en, dec.Captured).UnixMilli()
	if Kind(e.kind) != en.Kind || e.account != en.Account || e.chat != en.Chat || e.sender != en.Sender ||
		e.eventMs != wantEvent || e.capturedMs != dec.Captured.UnixMilli() {
		rep.add(int64(e.idx), ProblemIndexAltered, "the query columns (kind, account, chat, sender, times) disagree with the body")
	}
	return en
}

// checkRoots compares the recomputed root with every checkpoint at the current size.
func (s *logScan) checkRoots() {
	size := s.next
	var root []byte
	getRoot := func() []byte {
		if root == nil {
			root, _ = rootOf(s.rng)
		}
		return root
	}
	for len(s.cps) > 0 && s.cps[0].Size <= size {
		cp := s.cps[0]
		s.cps = s.cps[1:]
		if cp.Size < size {
			continue // size skipped because rows are missing; already reported
		}
		switch {
		case bytes.Equal(getRoot(), cp.Root):
			s.lastGood = cp.Size
		case !s.mismatched:
			// Every later root differs too; one problem says where it starts.
			s.mismatched = true
			s.rep.add(int64(s.lastGood), ProblemCheckpointMismatch,
				"the recomputed root at size %d differs from the signed checkpoint (and so will every later one): something in entries %d..%d was altered, removed or reordered",
				cp.Size, s.lastGood, cp.Size-1)
		}
	}
	if s.ext != nil && s.ext.Size == size {
		if !bytes.Equal(getRoot(), s.ext.Root) {
			s.rep.add(-1, ProblemExternalMismatch,
				"the log's root at size %d differs from the outside checkpoint: its history was rewritten", size)
		}
		s.ext = nil
	}
}

// mediaRefs are the first and last entries whose verified body names a media blob.
type mediaRefs struct{ first, last uint64 }

// verifyMedia checks every blob that a verified body names or the inventory lists. The bodies are what
// matter: they are signed, the inventory is not, so a blob whose row was deleted with its file is still
// missed. A blob is excused only when the inventory marks it disposed and a disposal entry lists it;
// entries whose body a disposal removed name nothing here.
func (a *Archive) verifyMedia(ctx context.Context, rep *VerifyReport, disposed *disposalIndex, refs map[string]mediaRefs) error {
	inventory, err := a.mediaInventory(ctx)
	if err != nil {
		return err
	}
	shas := make([]string, 0, len(inventory)+len(refs))
	for sha := range inventory {
		shas = append(shas, sha)
	}
	for sha := range refs {
		// An import without the file names media with no hash; nothing was stored for it.
		if _, listed := inventory[sha]; !listed && validSHA256Hex(sha) {
			shas = append(shas, sha)
		}
	}
	sort.Strings(shas)
	for _, sha := range shas {
		m, listed := inventory[sha]
		at := func() int64 {
			if r, ok := refs[sha]; ok {
				return int64(r.first)
			}
			return a.firstReference(ctx, sha)
		}
		if listed && m.disposed {
			if _, ok := disposed.media[sha]; !ok {
				rep.add(at(), ProblemMediaDisposedUnlogged, "media %s is marked disposed but no disposal entry lists it", sha)
			}
			continue
		}
		rep.MediaChecked++
		if !validSHA256Hex(sha) {
			rep.add(at(), ProblemMediaAltered, "the inventory lists media %q, which is not a hex SHA-256", sha)
			continue
		}
		sum, n, err := hashFile(a.mediaPath(sha))
		switch {
		case err != nil && !listed:
			rep.add(at(), ProblemMediaMissing, "media %s, which the entry names, is gone, and so is its inventory row: %v", sha, err)
		case err != nil:
			rep.add(at(), ProblemMediaMissing, "media %s: %v", sha, err)
		case hex.EncodeToString(sum) != sha || (listed && n != m.size):
			rep.add(at(), ProblemMediaAltered, "media %s no longer has that hash", sha)
		}
	}
	return nil
}

type mediaRow struct {
	size     int64
	disposed bool
}

func (a *Archive) mediaInventory(ctx context.Context) (map[string]mediaRow, error) {
	rows, err := a.db.Query(ctx, `SELECT sha256, size, disposed_ts FROM archive_media`)
	if err != nil {
		return nil, fmt.Errorf("read media inventory: %w", err)
	}
	defer rows.Close()
	out := map[string]mediaRow{}
	for rows.Next() {
		var sha string
		var m mediaRow
		var disposedTs *int64
		if err = rows.Scan(&sha, &m.size, &disposedTs); err != nil {
			return nil, fmt.Errorf("read media inventory: %w", err)
		}
		m.disposed = disposedTs != nil
		out[sha] = m
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("read media inventory: %w", err)
	}
	return out, nil
}

// firstReference names the first entry referencing a media blob, so a media problem points at an entry.
func (a *Archive) firstReference(ctx context.Context, sha string) int64 {
	var idx int64
	if err := a.db.QueryRow(ctx, `SELECT MIN(idx) FROM archive_entry_media WHERE sha256=$1`, sha).Scan(&idx); err != nil {
		return -1
	}
	return idx
}

// spanText names the entries [from, to) for a problem report.
func spanText(from, to uint64) string {
	if to == from+1 {
		return fmt.Sprintf("entry %d is", from)
	}
	return fmt.Sprintf("entries %d..%d are", from, to-1)
}
