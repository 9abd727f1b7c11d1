package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// Bundle layout. A bundle is a zip anyone can check with VerifyBundle, or by hand: every line of
// entries.jsonl is an entry whose leaf SHA-256(salt || body) has an inclusion proof to the root in
// checkpoint.txt, which key.txt signed.
const (
	bundleFormat      = "causeway-archive-bundle/2" // 2: the export entry records the exported set
	bundleManifest    = "manifest.json"
	bundleCheckpoint  = "checkpoint.txt"
	bundleKey         = "key.txt"
	bundleEntries     = "entries.jsonl"
	bundleTranscript  = "transcript.html"
	bundleReadme      = "README.txt"
	bundleMediaPrefix = "media/"
	bundleReadmeText  = `Causeway records export

entries.jsonl    one archived entry per line: index, salt, body (canonical JSON), commitment,
                 and an RFC 6962 inclusion proof against the checkpoint. commitment = SHA-256(salt || body);
                 the leaf hash is SHA-256(0x00 || commitment). Disposed entries carry only the commitment.
checkpoint.txt   a C2SP tlog-checkpoint signed note: origin, tree size, root hash.
key.txt          the note verifier key (Ed25519) the checkpoint is signed with. Compare it with the key
                 your records office holds, or with checkpoints kept by a witness.
media/<sha256>   media files, named by the SHA-256 of their content.
transcript.html  a readable rendering of the entries; regenerated and compared by verify-bundle.
manifest.json    what was exported, with which filter; the same record as the export entry's.

The export entry (manifest.json's export_index, the last line of entries.jsonl) records what this bundle
must hold, and the checkpoint signs it: "entries" and "entries_sha256", the count and SHA-256 of the
exported entries' indices other than its own, one decimal line each, ascending; "media" and
"media_sha256", the same for the hex hashes of the files under media/; "through", the log size the
selection was made at. An export without a filter holds every entry below "through".

Verify with: causeway archive verify-bundle THIS.zip
`
)

// ExportFilter selects what to export. Empty fields do not filter; the zero filter exports everything.
// With a chat or user filter, completeness entries in the time window are included too: they say what
// could not be captured, which a reader of the chat needs to know.
type ExportFilter struct {
	Chat string
	User string // sender, 1:1 chat or bridged account, as for holds
	From time.Time
	To   time.Time // exclusive
}

// ExportReport says what Export wrote.
type ExportReport struct {
	Index        uint64 // the export entry recording this export
	Checkpoint   *Checkpoint
	Entries      int
	Disposed     int
	Media        int
	MissingMedia int // referenced but not in the archive (never captured, or disposed)
}

// bundleManifestJSON is manifest.json. Fields in key order.
type bundleManifestJSON struct {
	CheckpointSize uint64       `json:"checkpoint_size"`
	Entries        int          `json:"entries"`
	ExportIndex    uint64       `json:"export_index"`
	Filter         ExportRecord `json:"filter"`
	Format         string       `json:"format"`
	Origin         string       `json:"origin"`
}

// bundleLine is one line of entries.jsonl.
type bundleLine struct {
	Body       json.RawMessage `json:"body,omitempty"`
	Commitment string          `json:"commitment"`
	Disposed   bool            `json:"disposed,omitempty"`
	Index      uint64          `json:"index"`
	Proof      []string        `json:"proof"`
	Salt       string          `json:"salt,omitempty"`
}

// encodeLine writes a line byte-exactly: the body must appear as committed, and VerifyBundle re-encodes
// each parsed line and compares, so no byte of a line can change without being noticed.
func encodeLine(l *bundleLine) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if l.Body != nil {
		b.WriteString(`"body":`)
		b.Write(l.Body)
		b.WriteByte(',')
	}
	b.WriteString(`"commitment":"` + l.Commitment + `",`)
	if l.Disposed {
		b.WriteString(`"disposed":true,`)
	}
	b.WriteString(`"index":` + strconv.FormatUint(l.Index, 10) + `,"proof":[`)
	for i, p := range l.Proof {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + p + `"`)
	}
	b.WriteByte(']')
	if l.Salt != "" {
		b.WriteString(`,"salt":"` + l.Salt + `"`)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// Export writes a self-verifying bundle (zip) of the entries the filter selects to w. It first selects
// them, then appends an export entry (who, which filter, and the exported set: see exportset.go) and
// issues a checkpoint covering it; every exported entry gets an inclusion proof against that checkpoint,
// and the export entry itself is always in the bundle.
func (a *Archive) Export(ctx context.Context, f ExportFilter, actor string, w io.Writer) (*ExportReport, error) {
	if actor == "" {
		return nil, errors.New("archive: an export needs who made it")
	}
	// Disposal waits: the set recorded in the export entry must be what the bundle gets, bodies and
	// media files included.
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	rec := ExportRecord{Chat: f.Chat, User: f.User, From: utc(f.From), To: utc(f.To), Through: a.size.Load()}
	entries, err := a.selectForExport(ctx, f, rec.Through)
	if err != nil {
		return nil, err
	}
	idxs := make([]uint64, len(entries))
	for i, e := range entries {
		idxs[i] = e.idx
	}
	mediaOrder, err := a.exportableMedia(entries)
	if err != nil {
		return nil, err
	}
	rec.Entries, rec.EntriesSHA256 = len(entries), entriesDigest(idxs)
	rec.Media, rec.MediaSHA256 = len(mediaOrder), mediaDigest(mediaOrder)
	app, err := a.appendEntry(ctx, &Entry{Kind: KindExport, Actor: actor, Time: a.now(), Export: &rec}, nil)
	if err != nil {
		return nil, err
	}
	cp, err := a.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	rep := &ExportReport{Index: app.Index, Checkpoint: cp}
	exportEntry, err := a.storedEntry(ctx, app.Index)
	if err != nil {
		return nil, err
	}
	entries, idxs = append(entries, exportEntry), append(idxs, app.Index)
	proofs, err := a.inclusionProofs(ctx, idxs, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("archive: export proofs: %w", err)
	}

	zw := zip.NewWriter(w)
	manifest, _ := json.MarshalIndent(bundleManifestJSON{
		CheckpointSize: cp.Size, Entries: len(entries), ExportIndex: app.Index, Filter: rec,
		Format: bundleFormat, Origin: a.origin,
	}, "", "  ")
	for _, file := range []struct {
		name string
		data []byte
	}{
		{bundleReadme, []byte(bundleReadmeText)},
		{bundleManifest, append(manifest, '\n')},
		{bundleCheckpoint, cp.Note},
		{bundleKey, []byte(a.key.vkey + "\n")},
	} {
		if err = writeZipFile(zw, file.name, file.data); err != nil {
			return nil, err
		}
	}
	ew, err := zw.Create(bundleEntries)
	if err != nil {
		return nil, fmt.Errorf("archive: export: %w", err)
	}
	var views []transcriptEntry
	for i, e := range entries {
		line := &bundleLine{Commitment: hex.EncodeToString(e.commitment), Index: e.idx, Proof: hexList(proofs[i])}
		if e.body == nil {
			line.Disposed = true
			rep.Disposed++
			views = append(views, transcriptEntry{Index: e.idx})
		} else {
			line.Body, line.Salt = e.body, hex.EncodeToString(e.salt)
			dec, err := decodeBody(e.body)
			if err != nil {
				return nil, fmt.Errorf("archive: export entry %d: %w", e.idx, err)
			}
			views = append(views, transcriptEntry{Index: e.idx, Entry: &dec.Entry, Captured: dec.Captured})
		}
		if _, err = ew.Write(encodeLine(line)); err != nil {
			return nil, fmt.Errorf("archive: export: %w", err)
		}
	}
	rep.Entries = len(entries)
	present := map[string]bool{}
	for _, sha := range mediaOrder {
		if err = a.exportMedia(zw, sha); err != nil {
			return nil, err
		}
		present[sha] = true
	}
	rep.Media, rep.MissingMedia = len(mediaOrder), countMissing(entries, present)
	html, err := renderTranscript(transcriptHeader{Origin: a.origin, Checkpoint: cp, Filter: rec}, views, present)
	if err != nil {
		return nil, fmt.Errorf("archive: export transcript: %w", err)
	}
	if err = writeZipFile(zw, bundleTranscript, html); err != nil {
		return nil, err
	}
	if err = zw.Close(); err != nil {
		return nil, fmt.Errorf("archive: export: %w", err)
	}
	a.log.Info().Uint64("export_index", app.Index).Int("entries", rep.Entries).Int("media", rep.Media).
		Str("chat", f.Chat).Str("user", f.User).Str("actor", actor).Msg("Archive export written")
	return rep, nil
}

func writeZipFile(zw *zip.Writer, name string, data []byte) error {
	fw, err := zw.Create(name)
	if err == nil {
		_, err = fw.Write(data)
	}
	if err != nil {
		return fmt.Errorf("archive: export %s: %w", name, err)
	}
	return nil
}

// exportableMedia lists, in order of first mention, the media the entries name that the archive has.
// The export entry records this list, so a file that vanishes before it is copied fails the export.
func (a *Archive) exportableMedia(entries []*storedEntry) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, e := range entries {
		if e.body == nil {
			continue
		}
		dec, err := decodeBody(e.body)
		if err != nil {
			return nil, fmt.Errorf("archive: export entry %d: %w", e.idx, err)
		}
		for _, sha := range dec.Entry.mediaHashes() {
			if seen[sha] || !validSHA256Hex(sha) {
				continue
			}
			seen[sha] = true
			if _, err = os.Stat(a.mediaPath(sha)); errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("archive: export media %s: %w", sha, err)
			}
			out = append(out, sha)
		}
	}
	return out, nil
}

// countMissing counts the media the entries name that are not in the bundle.
func countMissing(entries []*storedEntry, present map[string]bool) int {
	missing := map[string]bool{}
	for _, e := range entries {
		if dec, err := decodeBody(e.body); e.body != nil && err == nil {
			for _, sha := range dec.Entry.mediaHashes() {
				if validSHA256Hex(sha) && !present[sha] {
					missing[sha] = true
				}
			}
		}
	}
	return len(missing)
}

// exportMedia copies a blob into the bundle.
func (a *Archive) exportMedia(zw *zip.Writer, sha string) error {
	f, err := os.Open(a.mediaPath(sha))
	if err != nil {
		return fmt.Errorf("archive: export media %s: %w", sha, err)
	}
	defer f.Close()
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: bundleMediaPrefix + sha, Method: zip.Store})
	if err != nil {
		return fmt.Errorf("archive: export media %s: %w", sha, err)
	}
	if _, err = io.Copy(fw, f); err != nil {
		return fmt.Errorf("archive: export media %s: %w", sha, err)
	}
	return nil
}

// selectForExport loads the entries the filter selects, below size.
func (a *Archive) selectForExport(ctx context.Context, f ExportFilter, size uint64) ([]*storedEntry, error) {
	args := []any{int64(size)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var conds []string
	if !f.From.IsZero() {
		conds = append(conds, "event_ts >= "+arg(f.From.UnixMilli()))
	}
	if !f.To.IsZero() {
		conds = append(conds, "event_ts < "+arg(f.To.UnixMilli()))
	}
	if f.Chat != "" || f.User != "" {
		var who []string
		if f.Chat != "" {
			who = append(who, "chat = "+arg(f.Chat))
		}
		if f.User != "" {
			u := arg(f.User)
			who = append(who, "(sender = "+u+" OR chat = "+u+" OR account = "+u+")")
		}
		var ledger []string
		for _, k := range completenessKinds {
			ledger = append(ledger, arg(string(k)))
		}
		conds = append(conds, "(("+strings.Join(who, " AND ")+") OR kind IN ("+strings.Join(ledger, ",")+"))")
	}
	where := "TRUE"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	q := `SELECT ` + entryColumns + ` FROM archive_entry WHERE idx < $1 AND (` + where + `) ORDER BY idx`
	rows, err := a.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("archive: select entries for export: %w", err)
	}
	defer rows.Close()
	var out []*storedEntry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("archive: select entries for export: %w", err)
		}
		out = append(out, e)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: select entries for export: %w", err)
	}
	return out, nil
}

// inclusionProofs computes RFC 6962 inclusion proofs for the (sorted) indexes in the tree of the given
// size, in one pass over the leaves: the archive keeps no interior nodes, so appends stay one row each,
// and exports, which are rare, pay for the proofs. Only the nodes the proofs need are kept in memory.
func (a *Archive) inclusionProofs(ctx context.Context, idxs []uint64, size uint64) ([][][]byte, error) {
	need := map[compact.NodeID][]byte{}
	plans := make([]proof.Nodes, len(idxs))
	for i, idx := range idxs {
		n, err := proof.Inclusion(idx, size)
		if err != nil {
			return nil, err
		}
		plans[i] = n
		for _, id := range n.IDs {
			need[id] = nil
		}
	}
	rng := rangeFactory.NewEmptyRange(0)
	visit := func(id compact.NodeID, hash []byte) {
		if _, ok := need[id]; ok {
			need[id] = hash
		}
	}
	err := a.scanLeaves(ctx, 0, size, func(idx uint64, leaf []byte) error {
		if idx != rng.End() {
			return fmt.Errorf("entry %d is missing from the log", rng.End())
		}
		return rng.Append(leaf, visit)
	})
	if err != nil {
		return nil, err
	}
	out := make([][][]byte, len(idxs))
	for i, n := range plans {
		hashes := make([][]byte, len(n.IDs))
		for j, id := range n.IDs {
			if hashes[j] = need[id]; hashes[j] == nil {
				return nil, fmt.Errorf("tree node %+v for entry %d not found", id, idxs[i])
			}
		}
		if out[i], err = n.Rehash(hashes, hasher.HashChildren); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// storedEntry loads one entry's row.
func (a *Archive) storedEntry(ctx context.Context, idx uint64) (*storedEntry, error) {
	e, err := scanEntry(a.db.QueryRow(ctx, `SELECT `+entryColumns+` FROM archive_entry WHERE idx=$1`, int64(idx)))
	if err != nil {
		return nil, fmt.Errorf("archive: read entry %d: %w", idx, err)
	}
	return e, nil
}

func hexList(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}
