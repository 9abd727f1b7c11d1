package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
)

// The exported set. Without it nothing signed says what an export contained: a bundle with lines or
// media files taken out, its manifest count lowered and its transcript rendered again, verified. So
// the export entry records the set (ExportRecord: counts, digests, and the log size the selection was
// made at), the checkpoint in the bundle signs that entry, and VerifyBundle recomputes the set from
// the bundle's contents and compares.
//
// The digests are SHA-256 over one decimal line per thing, in ascending order: the indices of the
// exported entries (the export entry itself excluded), and the hex hashes of the media files included.
// An unfiltered export must also hold every entry below Through.

func entriesDigest(idxs []uint64) string {
	h := sha256.New()
	for _, idx := range idxs {
		h.Write(strconv.AppendUint(nil, idx, 10))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func mediaDigest(shas []string) string {
	sorted := slices.Sorted(slices.Values(shas))
	h := sha256.New()
	for _, sha := range sorted {
		h.Write([]byte(sha + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// unfiltered reports whether the record's filter selects everything.
func (r *ExportRecord) unfiltered() bool {
	return r.Chat == "" && r.User == "" && r.From.IsZero() && r.To.IsZero()
}

// verifyExportSet checks the bundle's verified entries and media against the set its export entry
// records. refs maps each media hash the entries name to the first entry naming it.
func verifyExportSet(rep *BundleReport, views []transcriptEntry, present map[string]bool, refs map[string]uint64) {
	var rec *ExportRecord
	for _, v := range views {
		if v.Index == rep.ExportIndex && v.Entry != nil && v.Entry.Kind == KindExport {
			rec = v.Entry.Export
		}
	}
	if rec == nil {
		return // verifyManifest has said the export entry is missing
	}
	if rec.EntriesSHA256 == "" || rec.MediaSHA256 == "" {
		rep.add(int64(rep.ExportIndex), ProblemExportUnpinned,
			"the export entry does not record what was exported (it predates that), so nothing shows whether entries or media were taken out of this bundle")
		return
	}
	idxs := make([]uint64, 0, len(views))
	for _, v := range views {
		if v.Index != rep.ExportIndex {
			idxs = append(idxs, v.Index)
		}
	}
	if rec.unfiltered() {
		// Contiguous from 0 to Through, whatever the digest says: it is what "everything" means.
		next := uint64(0)
		for _, idx := range idxs {
			if idx != next {
				break
			}
			next++
		}
		if next < rec.Through {
			end := rec.Through
			if next < uint64(len(idxs)) {
				end = min(idxs[next], rec.Through)
			}
			rep.add(int64(next), ProblemExportSetMismatch, "an unfiltered export holds every entry below %d, but %s not in the bundle",
				rec.Through, spanText(next, end))
		}
	}
	if len(idxs) != rec.Entries || entriesDigest(idxs) != rec.EntriesSHA256 {
		rep.add(int64(rep.ExportIndex), ProblemExportSetMismatch,
			"the bundle holds %d entries besides the export entry, not the %d that entry records (entries digest %s): entries were taken out or put in after export",
			len(idxs), rec.Entries, rec.EntriesSHA256)
	}
	shas := make([]string, 0, len(present))
	for sha := range present {
		shas = append(shas, sha)
	}
	if len(shas) == rec.Media && mediaDigest(shas) == rec.MediaSHA256 {
		return // what is referenced but absent was not in the archive when the export was made
	}
	named := false
	for _, sha := range rep.MissingMedia {
		if !validSHA256Hex(sha) {
			continue // names no stored file (an import without it); never exported
		}
		named = true
		rep.add(int64(refs[sha]), ProblemMediaMissing, "media %s is not in the bundle, and the export entry records a different set of media files: it was taken out", sha)
	}
	if !named {
		rep.add(int64(rep.ExportIndex), ProblemExportSetMismatch, "the bundle holds %d media files, not the %d the export entry records (media digest %s)",
			len(shas), rec.Media, rec.MediaSHA256)
	}
}
