package archive

import "fmt"

// Checkpoint coverage. A checkpoint is the one thing in the archive that someone who can write the
// database but does not hold the signing key cannot make. Were checkpoints optional, deleting them all
// and rewriting the log would leave a self-consistent archive that verifies. So the writer signs at
// fixed points of every run, and Verify holds the log to them:
//
//   - Open signs a checkpoint right after its archive_started entry, so the latest checkpoint always
//     covers the start of the run still going;
//   - Close signs one after archive_stopped, so a run that ended cleanly is covered to its end;
//   - a run that ended without Close is signed by the next Open before its archive_started entry,
//     which records that checkpoint's size (Completeness.Checkpoint).
//
// The only entries a signed checkpoint may leave uncovered are therefore those after the start of the
// last run, when that run is still going or crashed and has not been restarted. Everything else is
// only as trustworthy as the key the checkpoints are checked with: the stored one unless the verifier
// passes the key the records office holds.

// coverage collects, during the scan, what the run-boundary checks need.
type coverage struct {
	signed    map[uint64]bool // sizes of stored checkpoints that verified
	latest    uint64          // the largest of them
	lastStart int64           // index of the last archive_started entry, -1 if none
	lastKind  Kind
}

func newCoverage(cps []*Checkpoint) *coverage {
	c := &coverage{signed: map[uint64]bool{}, lastStart: -1}
	for _, cp := range cps {
		c.signed[cp.Size] = true
		c.latest = max(c.latest, cp.Size)
	}
	return c
}

// entry notes one scanned entry; body is its decoded entry when the body verified, else nil.
func (c *coverage) entry(rep *VerifyReport, e *storedEntry, prevKind Kind, body *Entry) {
	kind := Kind(e.kind)
	if kind == KindArchiveStarted {
		c.lastStart = int64(e.idx)
		// Every run ends in a checkpoint: at Close, or signed by this start and recorded in it.
		recorded := body != nil && body.Completeness != nil && body.Completeness.Checkpoint != 0
		switch {
		case recorded && body.Completeness.Checkpoint != e.idx:
			rep.add(int64(e.idx), ProblemCheckpointMissing, "the start records a checkpoint at size %d, but it is entry %d: it cannot have signed that",
				body.Completeness.Checkpoint, e.idx)
		case (recorded || prevKind == KindArchiveStopped) && !c.signed[e.idx]:
			rep.add(int64(e.idx), ProblemCheckpointMissing, "no signed checkpoint at size %d, where the run before this start ended: every run ends in one", e.idx)
		}
	}
	c.lastKind = kind
}

// finish checks that the latest checkpoint covers the log but for the tail of the last run, and records
// the coverage in the report.
func (c *coverage) finish(rep *VerifyReport) {
	size := rep.Size
	rep.Signed = min(c.latest, size)
	if size == 0 || c.latest >= size {
		return // fully covered, or truncation, which is reported already
	}
	start := uint64(max(c.lastStart, 0))
	rep.RunStart = start
	switch {
	case c.latest <= start:
		rep.add(int64(c.latest), ProblemCheckpointMissing,
			"no signed checkpoint covers %s, though the run going on began at entry %d and every start is signed at once: checkpoints were deleted, or the log was rewritten after them",
			spanName(c.latest, size), start)
	case c.lastKind == KindArchiveStopped:
		rep.add(int64(c.latest), ProblemCheckpointMissing,
			"the last run ended cleanly at entry %d, but no signed checkpoint covers %s: every run ends in one", size-1, spanName(c.latest, size))
	default:
		rep.Unsigned = size - c.latest
	}
}

// spanName names the entries [from, to) as the object of a sentence.
func spanName(from, to uint64) string {
	if to == from+1 {
		return fmt.Sprintf("entry %d", from)
	}
	return fmt.Sprintf("entries %d..%d", from, to-1)
}
