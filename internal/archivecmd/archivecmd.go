// Package archivecmd is what `causeway archive` and the bot's `archive` command share: reading dates
// and keys as a records officer types them, and writing the archive's reports as text. Both surfaces
// print the same words, so an officer can follow the README with either.
package archivecmd

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"codeberg.org/causeway/causeway/archive"
)

const dateOnly = "2006-01-02"

// ParseTime reads an RFC 3339 time or a plain YYYY-MM-DD date, which means midnight UTC. With endOfDay a
// plain date means the midnight after it instead, so an exclusive upper bound "--to 2026-03-31" still
// includes that day, as a person means it.
func ParseTime(s string, endOfDay bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(dateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (YYYY-MM-DD) nor an RFC 3339 time (2026-03-31T12:00:00Z)", s)
	}
	if endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// ReadKey accepts a verifier key (name+hash+base64) or the path of a file holding one, such as
// archive-signing.pub or a bundle's key.txt.
func ReadKey(s string) (string, error) {
	data, err := os.ReadFile(s)
	switch {
	case err == nil:
		key := strings.TrimSpace(string(data))
		if strings.Count(key, "+") < 2 || strings.ContainsAny(key, " \n") {
			return "", fmt.Errorf("%s does not hold a verifier key (name+hash+base64)", s)
		}
		return key, nil
	case errors.Is(err, fs.ErrNotExist) && strings.Count(s, "+") >= 2:
		return strings.TrimSpace(s), nil
	default:
		return "", fmt.Errorf("--key %q is neither a verifier key (name+hash+base64) nor a readable file: %w", s, err)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// root prints a hash in hex, as entries.jsonl and media file names have them, so an officer can compare
// what the reports print with what the files hold.
func root(h []byte) string { return hex.EncodeToString(h) }

func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// WriteStatus writes the summary `archive status` prints.
func WriteStatus(w io.Writer, st *archive.Status) {
	fmt.Fprintf(w, "Archive:      %s\n", st.Origin)
	fmt.Fprintf(w, "Verifier key: %s\n", st.VerifierKey)
	fmt.Fprintf(w, "Size:         %s (%d with their body, %d disposed)\n", plural(st.Size, "entry", "entries"), st.Bodies, st.Disposed)
	if st.Size > 0 {
		fmt.Fprintf(w, "Captured:     %s .. %s\n", stamp(st.First), stamp(st.Last))
	}
	if st.Latest == nil {
		fmt.Fprintf(w, "Checkpoint:   none yet\n")
	} else {
		fmt.Fprintf(w, "Checkpoint:   size %d, root %s, issued %s\n", st.Latest.Size, root(st.Latest.Root), stamp(st.Latest.Created))
		if st.Latest.Size < st.Size {
			fmt.Fprintf(w, "              (%s since; the next checkpoint will cover them)\n", plural(st.Size-st.Latest.Size, "entry", "entries"))
		}
	}
	fmt.Fprintf(w, "Media:        %s, %d bytes\n", plural(st.Media, "blob", "blobs"), st.MediaBytes)
	fmt.Fprintf(w, "Legal holds:  %d active\n", st.ActiveHolds)
}

// WriteVerify writes a verification report and ends with OK or FAILED.
func WriteVerify(w io.Writer, origin string, rep *archive.VerifyReport) {
	fmt.Fprintf(w, "Archive %s: %s, root %s\n", origin, plural(rep.Size, "entry", "entries"), root(rep.Root))
	fmt.Fprintf(w, "Checked: %s against their leaves, %s, %s\n",
		plural(rep.BodiesChecked, "body", "bodies"), plural(uint64(rep.Checkpoints), "stored checkpoint", "stored checkpoints"),
		plural(uint64(rep.MediaChecked), "media blob", "media blobs"))
	if cp := rep.ExternalCheckpoint; cp != nil {
		fmt.Fprintf(w, "Outside checkpoint: size %d, root %s\n", cp.Size, root(cp.Root))
	}
	if rep.KeyPinned {
		fmt.Fprintln(w, "Trust: checkpoints checked with the key given by --key.")
	} else {
		fmt.Fprintln(w, "Trust: checkpoints checked with the key stored next to the archive. Whoever can replace that file and")
		fmt.Fprintln(w, "       the database together can forge all of this; pass --key with the key your records office holds.")
	}
	if rep.Unsigned > 0 {
		fmt.Fprintf(w, "Signed: entries 0..%d; the last %s, of the run that began at entry %d, not yet\n", rep.Signed-1,
			plural(rep.Unsigned, "entry", "entries"), rep.RunStart)
		fmt.Fprintln(w, "        (the bridge is running, or stopped without a clean shutdown and its next start signs them)")
	}
	fmt.Fprintf(w, "Disposed bodies: %d, by %s\n", rep.Disposed, plural(uint64(len(rep.Disposals)), "disposal", "disposals"))
	for _, d := range rep.Disposals {
		fmt.Fprintf(w, "  entry %d, %s, by %s: %s and %s from before %s%s\n", d.Index, stamp(d.Time), d.Actor,
			plural(d.Entries, "body", "bodies"), plural(uint64(d.Media), "media blob", "media blobs"), stamp(d.Before), rules(d.Rules))
	}
	writeProblems(w, rep.Problems)
}

func rules(rs []archive.RuleCount) string {
	if len(rs) == 0 {
		return ""
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s: %d", r.Rule, r.Entries)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func writeProblems(w io.Writer, problems []archive.Problem) {
	if len(problems) == 0 {
		fmt.Fprintln(w, "OK")
		return
	}
	fmt.Fprintf(w, "FAILED: %s\n", plural(uint64(len(problems)), "problem", "problems"))
	for _, p := range problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

// WriteGaps writes the completeness ledger for [from, to).
func WriteGaps(w io.Writer, from, to time.Time, gaps []archive.Gap) {
	if len(gaps) == 0 {
		fmt.Fprintf(w, "No gaps from %s to %s: the bridge captured everything it could know about.\n", stamp(from), stamp(to))
		return
	}
	fmt.Fprintf(w, "%s from %s to %s:\n", plural(uint64(len(gaps)), "gap", "gaps"), stamp(from), stamp(to))
	for _, g := range gaps {
		when := stamp(g.Start) + " .. " + stamp(g.End)
		switch {
		case g.EndIndex < 0:
			// Still open: capture has not resumed, so the window's end is only where the query stops.
			when = "since " + stamp(g.Start) + ", still open"
		case g.Start.Equal(g.End):
			when = stamp(g.Start)
		}
		fmt.Fprintf(w, "  %s  %s", when, g.Reason)
		for _, kv := range [][2]string{{"account", g.Account}, {"chat", g.Chat}, {"sender", g.Sender}, {"message", g.MessageID}} {
			if kv[1] != "" {
				fmt.Fprintf(w, " %s=%s", kv[0], kv[1])
			}
		}
		if g.Detail != "" {
			fmt.Fprintf(w, ": %s", g.Detail)
		}
		if g.StartIndex >= 0 {
			fmt.Fprintf(w, " [entry %d]", g.StartIndex)
		}
		fmt.Fprintln(w)
	}
}

// WriteExport writes what an export put in its bundle.
func WriteExport(w io.Writer, rep *archive.ExportReport) {
	fmt.Fprintf(w, "Exported %s (%d disposed), %s", plural(uint64(rep.Entries), "entry", "entries"), rep.Disposed,
		plural(uint64(rep.Media), "media file", "media files"))
	if rep.MissingMedia > 0 {
		fmt.Fprintf(w, " (%d referenced but not in the archive)", rep.MissingMedia)
	}
	fmt.Fprintf(w, ".\nRecorded as entry %d; proofs against the checkpoint at size %d, root %s.\n",
		rep.Index, rep.Checkpoint.Size, root(rep.Checkpoint.Root))
}

// WriteBundle writes a bundle verification report and ends with OK or FAILED.
func WriteBundle(w io.Writer, rep *archive.BundleReport) {
	if rep.Origin != "" {
		fmt.Fprintf(w, "Bundle of %s: checkpoint at size %d, root %s\n", rep.Origin, rep.CheckpointSize, root(rep.Root))
	}
	if rep.VerifierKey != "" {
		pin := "compare it with the key your records office holds, or pass --key"
		if rep.KeyPinned {
			pin = "matches the pinned key"
		}
		fmt.Fprintf(w, "Signed by:    %s (%s)\n", rep.VerifierKey, pin)
	}
	if rep.OK() {
		fmt.Fprintf(w, "Contents:     %s (%d disposed), %s, export entry %d\n", plural(uint64(rep.Entries), "entry", "entries"),
			rep.Disposed, plural(uint64(rep.Media), "media file", "media files"), rep.ExportIndex)
		if len(rep.Chats) > 0 {
			fmt.Fprintf(w, "Chats:        %s\n", strings.Join(rep.Chats, ", "))
		}
		if len(rep.MissingMedia) > 0 {
			fmt.Fprintf(w, "Not included: %s referenced but not in the archive\n", plural(uint64(len(rep.MissingMedia)), "media file", "media files"))
		}
	}
	writeProblems(w, rep.Problems)
}

// WriteHolds lists legal holds.
func WriteHolds(w io.Writer, holds []archive.Hold, all bool) {
	if len(holds) == 0 {
		if all {
			fmt.Fprintln(w, "No legal holds have ever been placed.")
		} else {
			fmt.Fprintln(w, "No active legal holds.")
		}
		return
	}
	for _, h := range holds {
		fmt.Fprintf(w, "hold %d  %s %s  placed %s by %s: %s\n", h.ID, h.Scope, h.JID, stamp(h.Created), h.Actor, h.Reason)
		if !h.Removed.IsZero() {
			fmt.Fprintf(w, "        removed %s by %s\n", stamp(h.Removed), h.RemovedBy)
		}
	}
}

// WriteDisposal writes what a disposal removed and kept.
func WriteDisposal(w io.Writer, before time.Time, rep *archive.DisposalReport) {
	fmt.Fprintf(w, "Disposal recorded as entry %d (content from before %s).\n", rep.Index, stamp(before))
	fmt.Fprintf(w, "Removed: %s and %s%s\n", plural(rep.Entries, "body", "bodies"), plural(uint64(len(rep.Media)), "media blob", "media blobs"), rules(rep.Rules))
	ranges := make([]string, len(rep.Ranges))
	for i, r := range rep.Ranges {
		ranges[i] = fmt.Sprintf("%d", r.Start)
		if r.End > r.Start+1 {
			ranges[i] += fmt.Sprintf("..%d", r.End-1)
		}
	}
	if len(ranges) > 0 {
		fmt.Fprintf(w, "Entries: %s\n", strings.Join(ranges, ", "))
	}
	fmt.Fprintf(w, "Kept: %d under a legal hold, %d still inside their retention period\n", rep.Held, rep.Retained)
}
