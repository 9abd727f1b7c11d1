package archive

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// BundleOptions tune VerifyBundle.
type BundleOptions struct {
	// TrustedKey, if set, is the verifier key the records office holds. The bundle's own key.txt must
	// match it, and the checkpoint is checked against it, not against key.txt. Without it, the bundle
	// proves it is internally consistent under the key it carries; compare that key out of band.
	TrustedKey string
}

// BundleReport is the outcome of VerifyBundle. The bundle is intact when Problems is empty.
type BundleReport struct {
	Origin         string
	VerifierKey    string // the key the checkpoint verified with
	KeyPinned      bool   // TrustedKey was given and matched
	CheckpointSize uint64
	Root           []byte
	ExportIndex    uint64
	Filter         ExportRecord
	Entries        int
	Disposed       int
	Media          int
	MissingMedia   []string // referenced by an entry but not in the bundle
	Chats          []string
	Problems       []Problem
}

// OK reports whether the bundle verified.
func (r *BundleReport) OK() bool { return len(r.Problems) == 0 }

func (r *BundleReport) add(idx int64, code, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Index: idx, Code: code, Detail: fmt.Sprintf(format, args...)})
}

// VerifyBundle checks an export bundle using nothing but its contents (and optionally a pinned key): the
// checkpoint signature, every entry's commitment and inclusion proof, every media file's hash, the
// manifest against the export entry, and that transcript.html is exactly what the entries render to.
// The error is for a bundle that cannot be read at all.
func VerifyBundle(r io.ReaderAt, size int64, opts BundleOptions) (*BundleReport, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("archive: bundle is not a zip file: %w", err)
	}
	rep := &BundleReport{}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		known := f.Name == bundleManifest || f.Name == bundleCheckpoint || f.Name == bundleKey ||
			f.Name == bundleEntries || f.Name == bundleTranscript || f.Name == bundleReadme ||
			(strings.HasPrefix(f.Name, bundleMediaPrefix) && validSHA256Hex(strings.TrimPrefix(f.Name, bundleMediaPrefix)))
		if !known {
			rep.add(-1, ProblemBundleMalformed, "unexpected file %q", f.Name)
			continue
		}
		if files[f.Name] != nil {
			rep.add(-1, ProblemBundleMalformed, "file %q appears twice", f.Name)
		}
		files[f.Name] = f
	}
	read := func(name string) []byte {
		f := files[name]
		if f == nil {
			rep.add(-1, ProblemBundleMalformed, "%s is missing", name)
			return nil
		}
		data, err := readZipFile(f)
		if err != nil {
			rep.add(-1, ProblemBundleMalformed, "%s: %v", name, err)
			return nil
		}
		return data
	}

	verifier, ok := bundleVerifier(rep, read(bundleKey), opts.TrustedKey)
	if !ok {
		return rep, nil
	}
	cpData := read(bundleCheckpoint)
	if cpData == nil {
		return rep, nil
	}
	cp, err := openCheckpoint(cpData, verifier)
	if err != nil {
		rep.add(-1, ProblemCheckpointInvalid, "%v", err)
		return rep, nil
	}
	rep.Origin, rep.CheckpointSize, rep.Root = cp.Origin, cp.Size, cp.Root

	views, refs := verifyBundleEntries(rep, read(bundleEntries), cp)
	present := verifyBundleMedia(rep, files, refs)
	verifyManifest(rep, read(bundleManifest), cp, views)
	if rep.OK() {
		verifyExportSet(rep, views, present, refs)
	}

	transcript := read(bundleTranscript)
	if transcript != nil && rep.OK() {
		want, err := renderTranscript(transcriptHeader{Origin: cp.Origin, Checkpoint: cp, Filter: rep.Filter}, views, present)
		if err != nil {
			return nil, fmt.Errorf("archive: render transcript: %w", err)
		}
		if !bytes.Equal(want, transcript) {
			rep.add(-1, ProblemTranscriptMismatch, "transcript.html is not what the verified entries render to")
		}
	}
	chats := map[string]bool{}
	for _, v := range views {
		if v.Entry != nil && v.Entry.Chat != "" {
			chats[v.Entry.Chat] = true
		}
	}
	for c := range chats {
		rep.Chats = append(rep.Chats, c)
	}
	sort.Strings(rep.Chats)
	return rep, nil
}

func readZipFile(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func bundleVerifier(rep *BundleReport, keyData []byte, trusted string) (note.Verifier, bool) {
	if keyData == nil {
		return nil, false
	}
	carried := strings.TrimSpace(string(keyData))
	v, err := note.NewVerifier(carried)
	if err != nil {
		rep.add(-1, ProblemBundleMalformed, "key.txt: %v", err)
		return nil, false
	}
	rep.VerifierKey = carried
	if trusted == "" {
		return v, true
	}
	trusted = strings.TrimSpace(trusted)
	tv, err := note.NewVerifier(trusted)
	if err != nil {
		rep.add(-1, ProblemBundleMalformed, "trusted key: %v", err)
		return nil, false
	}
	rep.VerifierKey = trusted
	if carried != trusted {
		rep.add(-1, ProblemCheckpointInvalid, "the bundle carries key %q, not the trusted key", carried)
	} else {
		rep.KeyPinned = true
	}
	return tv, true
}

// verifyBundleEntries checks each line of entries.jsonl and returns the verified entries and the media
// they reference, each with the first entry referencing it.
func verifyBundleEntries(rep *BundleReport, data []byte, cp *Checkpoint) ([]transcriptEntry, map[string]uint64) {
	refs := map[string]uint64{}
	if data == nil {
		return nil, refs
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		rep.add(-1, ProblemBundleMalformed, "entries.jsonl does not end with a newline")
	}
	var views []transcriptEntry
	next := int64(-1)
	for n, raw := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		line, err := parseLine(raw)
		if err != nil {
			rep.add(-1, ProblemBundleMalformed, "entries.jsonl line %d: %v", n+1, err)
			continue
		}
		idx := int64(line.Index)
		if idx <= next {
			rep.add(idx, ProblemBundleMalformed, "entries.jsonl line %d is out of order", n+1)
		}
		next = idx
		commitment, ok := strictHex(line.Commitment, sha256.Size)
		if !ok {
			rep.add(idx, ProblemBundleMalformed, "commitment is not a hex SHA-256")
			continue
		}
		var dec *decodedBody
		if line.Disposed {
			rep.Disposed++
		} else {
			salt, ok := strictHex(line.Salt, 32)
			if !ok {
				rep.add(idx, ProblemBundleMalformed, "salt is not 32 hex bytes")
				continue
			}
			h := sha256.New()
			h.Write(salt)
			h.Write(line.Body)
			if !bytes.Equal(h.Sum(nil), commitment) {
				rep.add(idx, ProblemBodyAltered, "salt and body do not hash to the commitment")
				continue
			}
			if dec, err = decodeBody(line.Body); err != nil {
				rep.add(idx, ProblemBodyUnreadable, "%v", err)
				continue
			}
			if dec.Index != line.Index {
				rep.add(idx, ProblemEntryMisplaced, "the body was archived as entry %d", dec.Index)
				continue
			}
		}
		hashes := make([][]byte, len(line.Proof))
		for i, p := range line.Proof {
			if hashes[i], ok = strictHex(p, sha256.Size); !ok {
				break
			}
		}
		if !ok {
			rep.add(idx, ProblemBundleMalformed, "proof hashes are not hex SHA-256")
			continue
		}
		if line.Index >= cp.Size {
			rep.add(idx, ProblemInclusionFailed, "entry is beyond the checkpoint's size %d", cp.Size)
			continue
		}
		if err = proof.VerifyInclusion(hasher, line.Index, cp.Size, hasher.HashLeaf(commitment), hashes, cp.Root); err != nil {
			rep.add(idx, ProblemInclusionFailed, "%v", err)
			continue
		}
		rep.Entries++
		v := transcriptEntry{Index: line.Index}
		if dec != nil {
			v.Entry, v.Captured = &dec.Entry, dec.Captured
			for _, sha := range dec.Entry.mediaHashes() {
				if _, seen := refs[sha]; !seen {
					refs[sha] = line.Index
				}
			}
		}
		views = append(views, v)
	}
	return views, refs
}

// parseLine parses one entries.jsonl line and insists it is in exactly the form Export writes.
func parseLine(raw []byte) (*bundleLine, error) {
	var l bundleLine
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	if l.Disposed != (l.Body == nil) || (l.Body == nil) != (l.Salt == "") {
		return nil, fmt.Errorf("an entry has either a body and salt, or is disposed")
	}
	if !bytes.Equal(bytes.TrimSuffix(encodeLine(&l), []byte("\n")), raw) {
		return nil, fmt.Errorf("not in canonical form")
	}
	return &l, nil
}

// strictHex decodes lowercase hex of exactly n bytes; upper case is refused so that no two spellings of
// a hash both verify.
func strictHex(s string, n int) ([]byte, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n || hex.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

func verifyBundleMedia(rep *BundleReport, files map[string]*zip.File, refs map[string]uint64) map[string]bool {
	present := map[string]bool{}
	for name, f := range files {
		sha, ok := strings.CutPrefix(name, bundleMediaPrefix)
		if !ok {
			continue
		}
		data, err := readZipFile(f)
		if err != nil {
			rep.add(-1, ProblemBundleMalformed, "%s: %v", name, err)
			continue
		}
		sum := sha256.Sum256(data)
		switch {
		case hex.EncodeToString(sum[:]) != sha:
			rep.add(-1, ProblemMediaAltered, "%s does not have that hash", name)
		case !isRef(refs, sha):
			rep.add(-1, ProblemBundleMalformed, "%s is referenced by no entry", name)
		default:
			present[sha] = true
			rep.Media++
		}
	}
	for sha := range refs {
		if !present[sha] {
			rep.MissingMedia = append(rep.MissingMedia, sha)
		}
	}
	sort.Strings(rep.MissingMedia)
	return present
}

// verifyManifest checks manifest.json against the checkpoint and the export entry, which is the signed
// record of what was exported.
func verifyManifest(rep *BundleReport, data []byte, cp *Checkpoint, views []transcriptEntry) {
	if data == nil {
		return
	}
	var m bundleManifestJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		rep.add(-1, ProblemBundleMalformed, "manifest.json: %v", err)
		return
	}
	rep.ExportIndex, rep.Filter = m.ExportIndex, m.Filter
	switch {
	case m.Format != bundleFormat:
		rep.add(-1, ProblemBundleMalformed, "manifest format %q, want %q", m.Format, bundleFormat)
	case m.Origin != cp.Origin || m.CheckpointSize != cp.Size:
		rep.add(-1, ProblemBundleMalformed, "manifest names log %q at size %d, the checkpoint %q at %d", m.Origin, m.CheckpointSize, cp.Origin, cp.Size)
	case m.Entries != len(views):
		rep.add(-1, ProblemBundleMalformed, "manifest lists %d entries, %d verified", m.Entries, len(views))
	}
	for _, v := range views {
		if v.Index != m.ExportIndex {
			continue
		}
		if v.Entry == nil || v.Entry.Kind != KindExport || v.Entry.Export == nil {
			break
		}
		got, _ := json.Marshal(v.Entry.Export)
		want, _ := json.Marshal(m.Filter)
		if !bytes.Equal(got, want) {
			rep.add(int64(v.Index), ProblemBundleMalformed, "manifest filter %s differs from the export entry's %s", want, got)
		}
		return
	}
	rep.add(int64(m.ExportIndex), ProblemBundleMalformed, "the export entry the manifest names is not in the bundle")
}

func isRef(refs map[string]uint64, sha string) bool {
	_, ok := refs[sha]
	return ok
}
