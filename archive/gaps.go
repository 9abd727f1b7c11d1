package archive

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// GapReason says why something was not captured.
type GapReason string

const (
	GapArchiveDown     GapReason = "archive_not_running" // between archive_stopped (or a crash) and archive_started
	GapDisconnected    GapReason = "disconnected"        // an account was disconnected from WhatsApp
	GapLoggedOut       GapReason = "logged_out"          // an account was logged out
	GapUndecryptable   GapReason = "undecryptable"       // one message arrived but could not be decrypted
	GapHistoryBoundary GapReason = "history_boundary"    // history sync reached no further back than this
	// GapRedactionTargetMissing: a Matrix user deleted an event that never reached the bridge.
	GapRedactionTargetMissing GapReason = "redaction_target_missing"
)

// Gap is a window in which the archive did not, or could not, capture everything. Point events
// (undecryptable messages, history boundaries) have Start == End.
type Gap struct {
	Start, End time.Time
	Reason     GapReason
	Account    string // empty when all accounts were affected
	Chat       string
	Sender     string
	MessageID  string
	Detail     string
	StartIndex int64 // the entry that opened the window; -1 when none did (a crash)
	EndIndex   int64 // the entry that closed it; -1 when still open at the end of the query
}

// Gaps reads the completeness ledger and returns the windows overlapping [from, to) in which capture was
// incomplete, clipped to it. A zero to means now. An empty result certifies the window complete as far
// as the bridge could know.
func (a *Archive) Gaps(ctx context.Context, from, to time.Time) ([]Gap, error) {
	if to.IsZero() {
		to = a.now()
	}
	args := make([]any, len(completenessKinds))
	for i, k := range completenessKinds {
		args[i] = string(k)
	}
	rows, err := a.db.Query(ctx, `SELECT idx, body FROM archive_entry WHERE kind IN (`+placeholders(len(completenessKinds), 1)+`) AND body IS NOT NULL ORDER BY idx`, args...)
	if err != nil {
		return nil, fmt.Errorf("archive: read completeness ledger: %w", err)
	}
	defer rows.Close()
	var gaps []Gap
	open := map[string]*Gap{} // by account; "" is the archive itself
	closeWindow := func(key string, at time.Time, idx int64) {
		if g := open[key]; g != nil {
			g.End, g.EndIndex = at, idx
			gaps = append(gaps, *g)
			delete(open, key)
		}
	}
	for rows.Next() {
		var idx int64
		var body []byte
		if err = rows.Scan(&idx, &body); err != nil {
			return nil, fmt.Errorf("archive: read completeness ledger: %w", err)
		}
		dec, err := decodeBody(body)
		if err != nil {
			return nil, fmt.Errorf("archive: completeness entry %d: %w", idx, err)
		}
		e := &dec.Entry
		at := eventTime(e, dec.Captured)
		reason := ""
		if e.Completeness != nil {
			reason = e.Completeness.Reason
		}
		switch e.Kind {
		case KindArchiveStopped:
			open[""] = &Gap{Start: at, Reason: GapArchiveDown, Detail: "archive stopped", StartIndex: idx}
		case KindArchiveStarted:
			if open[""] == nil && e.Completeness != nil && !e.Completeness.From.IsZero() {
				// No archive_stopped: the previous run ended abruptly after its last entry.
				open[""] = &Gap{Start: e.Completeness.From, Reason: GapArchiveDown, Detail: reason, StartIndex: -1}
			}
			closeWindow("", at, idx)
		case KindDisconnected, KindLoggedOut:
			r := GapDisconnected
			if e.Kind == KindLoggedOut {
				r = GapLoggedOut
			}
			if g := open[e.Account]; g != nil {
				// The window stays the one the first stop opened; what happened during it is kept, so
				// an officer reads "disconnected; then: client outdated" rather than the first cause alone.
				if r == GapLoggedOut {
					g.Reason = r
				}
				if reason != "" && !strings.Contains(g.Detail, reason) {
					g.Detail = strings.TrimPrefix(g.Detail+"; then: "+reason, "; then: ")
				}
				continue
			}
			open[e.Account] = &Gap{Start: at, Reason: r, Account: e.Account, Detail: reason, StartIndex: idx}
		case KindConnected:
			closeWindow(e.Account, at, idx)
		case KindUndecryptable:
			gaps = append(gaps, Gap{Start: at, End: at, Reason: GapUndecryptable, Account: e.Account, Chat: e.Chat,
				Sender: e.Sender, MessageID: e.MessageID, Detail: reason, StartIndex: idx, EndIndex: idx})
		case KindRedactionTargetMissing:
			g := Gap{Start: at, End: at, Reason: GapRedactionTargetMissing, Account: e.Account, Chat: e.Chat,
				Sender: e.Sender, MessageID: e.MessageID, Detail: reason, StartIndex: idx, EndIndex: idx}
			if e.Outbound != nil && e.Outbound.MatrixEventID != "" {
				g.Detail = strings.TrimSpace("Matrix event " + e.Outbound.MatrixEventID + " " + reason)
			}
			gaps = append(gaps, g)
		case KindHistorySync:
			if e.Completeness == nil || e.Completeness.From.IsZero() {
				continue
			}
			b := e.Completeness.From
			gaps = append(gaps, Gap{Start: b, End: b, Reason: GapHistoryBoundary, Account: e.Account, Chat: e.Chat,
				Detail: strings.TrimSpace("history sync reached back to here " + reason), StartIndex: idx, EndIndex: idx})
		}
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: read completeness ledger: %w", err)
	}
	for _, g := range open {
		g.End, g.EndIndex = to, -1
		gaps = append(gaps, *g)
	}
	var out []Gap
	for _, g := range gaps {
		if !g.Start.Before(to) || g.End.Before(from) {
			continue
		}
		if g.Start.Before(from) {
			g.Start = from
		}
		if g.End.After(to) {
			g.End = to
		}
		g.Start, g.End = g.Start.UTC(), g.End.UTC()
		out = append(out, g)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].StartIndex < out[j].StartIndex
	})
	return out, nil
}
