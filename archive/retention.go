package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// HoldScope says what a legal hold covers.
type HoldScope string

const (
	// HoldChat covers every entry in one chat.
	HoldChat HoldScope = "chat"
	// HoldUser covers every entry a person sent, every entry in their 1:1 chat, and everything their
	// bridged account saw.
	HoldUser HoldScope = "user"
)

// ErrHoldNotFound is returned by RemoveHold for an unknown or already removed hold.
var ErrHoldNotFound = errors.New("no active hold with that ID")

// Retention says how long content is kept. A chat or user override replaces the default; when several
// overrides apply to one entry the longest wins, because keeping too long is recoverable and disposing
// too early is not.
type Retention struct {
	Default time.Duration            // DefaultRetention when zero
	Chats   map[string]time.Duration // by chat JID
	Users   map[string]time.Duration // by user JID: sender, 1:1 chat or bridged account
}

func (r Retention) rule(account, chat, sender string) (time.Duration, string) {
	var best time.Duration
	var name string
	if d, ok := r.Chats[chat]; ok {
		best, name = d, "chat "+chat+" "+formatDuration(d)
	}
	for _, u := range []string{sender, chat, account} {
		if d, ok := r.Users[u]; ok && u != "" && d > best {
			best, name = d, "user "+u+" "+formatDuration(d)
		}
	}
	if name == "" {
		return r.Default, "default " + formatDuration(r.Default)
	}
	return best, name
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// Hold is a legal hold: while active, Dispose leaves every entry it covers alone.
type Hold struct {
	ID        uint64 // the log index of its hold_added entry
	Scope     HoldScope
	JID       string
	Reason    string
	Actor     string
	Created   time.Time
	Removed   time.Time // zero while active
	RemovedBy string
}

func (h *Hold) covers(account, chat, sender string) bool {
	switch h.Scope {
	case HoldChat:
		return chat == h.JID
	case HoldUser:
		return sender == h.JID || chat == h.JID || account == h.JID
	}
	return false
}

// AddHold places a legal hold and records it as a hold_added entry; the hold and its entry commit
// together.
func (a *Archive) AddHold(ctx context.Context, scope HoldScope, jid, reason, actor string) (*Hold, error) {
	if scope != HoldChat && scope != HoldUser {
		return nil, fmt.Errorf("archive: hold scope must be %q or %q, not %q", HoldChat, HoldUser, scope)
	}
	if jid == "" || strings.TrimSpace(reason) == "" || actor == "" {
		return nil, errors.New("archive: a hold needs a JID, a reason and who placed it")
	}
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	now := a.now().UTC()
	e := &Entry{Kind: KindHoldAdded, Actor: actor, Time: now, Hold: &HoldRecord{Scope: scope, JID: jid, Reason: reason}}
	app, err := a.appendEntry(ctx, e, func(ctx context.Context, idx uint64) error {
		_, err := a.db.Exec(ctx, `INSERT INTO archive_hold (id, scope, jid, reason, actor, created_ts) VALUES ($1, $2, $3, $4, $5, $6)`,
			int64(idx), string(scope), jid, reason, actor, now.UnixMilli())
		return err
	})
	if err != nil {
		return nil, err
	}
	a.log.Info().Uint64("hold_id", app.Index).Str("scope", string(scope)).Str("jid", jid).Str("actor", actor).Msg("Legal hold added")
	return &Hold{ID: app.Index, Scope: scope, JID: jid, Reason: reason, Actor: actor, Created: now}, nil
}

// RemoveHold lifts a hold and records it as a hold_removed entry. The hold's row is kept, marked removed.
func (a *Archive) RemoveHold(ctx context.Context, id uint64, reason, actor string) error {
	if actor == "" {
		return errors.New("archive: removing a hold needs who removed it")
	}
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	now := a.now().UTC()
	e := &Entry{Kind: KindHoldRemoved, Actor: actor, Time: now, Hold: &HoldRecord{ID: id, Reason: reason}}
	_, err := a.appendEntry(ctx, e, func(ctx context.Context, idx uint64) error {
		res, err := a.db.Exec(ctx, `UPDATE archive_hold SET removed_idx=$1, removed_by=$2, removed_ts=$3 WHERE id=$4 AND removed_idx IS NULL`,
			int64(idx), actor, now.UnixMilli(), int64(id))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("hold %d: %w", id, ErrHoldNotFound)
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.log.Info().Uint64("hold_id", id).Str("actor", actor).Msg("Legal hold removed")
	return nil
}

// ListHolds returns the active holds, and the removed ones too if includeRemoved, oldest first.
func (a *Archive) ListHolds(ctx context.Context, includeRemoved bool) ([]Hold, error) {
	q := `SELECT id, scope, jid, reason, actor, created_ts, removed_by, removed_ts FROM archive_hold`
	if !includeRemoved {
		q += ` WHERE removed_idx IS NULL`
	}
	rows, err := a.db.Query(ctx, q+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("archive: list holds: %w", err)
	}
	defer rows.Close()
	var holds []Hold
	for rows.Next() {
		var h Hold
		var id, created int64
		var removedBy *string
		var removedTs *int64
		if err = rows.Scan(&id, &h.Scope, &h.JID, &h.Reason, &h.Actor, &created, &removedBy, &removedTs); err != nil {
			return nil, fmt.Errorf("archive: list holds: %w", err)
		}
		h.ID, h.Created = uint64(id), time.UnixMilli(created).UTC()
		if removedTs != nil {
			h.Removed = time.UnixMilli(*removedTs).UTC()
		}
		if removedBy != nil {
			h.RemovedBy = *removedBy
		}
		holds = append(holds, h)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: list holds: %w", err)
	}
	return holds, nil
}

// DisposalReport says what Dispose removed and what it kept.
type DisposalReport struct {
	Index    uint64 // the disposal entry
	Entries  uint64 // bodies removed
	Ranges   []IndexRange
	Media    []string
	Rules    []RuleCount
	Held     int // past retention but kept by a hold
	Retained int // before the cutoff but still inside their retention period
}

// mediaGrace keeps disposal away from blobs stored recently: PutMedia comes just before the Append that
// references the blob, and that entry may not be committed yet.
const mediaGrace = time.Hour

var errMediaRevived = errors.New("media became referenced again during disposal")

// Dispose removes the bodies (and media no longer referenced by any kept body) of content entries that
// happened before the cutoff, are past their retention period and are covered by no active hold. It
// appends a disposal entry saying what went, under which rule and by whom, in the same transaction as
// the removal. Leaves stay, so the log still verifies. Ledger and audit entries are never disposed.
func (a *Archive) Dispose(ctx context.Context, before time.Time, actor string) (*DisposalReport, error) {
	if actor == "" {
		return nil, errors.New("archive: disposal needs who ordered it")
	}
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	for attempt := 0; ; attempt++ {
		rep, err := a.disposeOnce(ctx, before, actor)
		if errors.Is(err, errMediaRevived) && attempt < 3 {
			continue
		}
		return rep, err
	}
}

func (a *Archive) disposeOnce(ctx context.Context, before time.Time, actor string) (*DisposalReport, error) {
	now := a.now().UTC()
	holds, err := a.ListHolds(ctx, false)
	if err != nil {
		return nil, err
	}
	rep := &DisposalReport{}
	idxs, rules, err := a.disposalCandidates(ctx, before, now, holds, rep)
	if err != nil {
		return nil, err
	}
	media, err := a.disposableMedia(ctx, idxs, now)
	if err != nil {
		return nil, err
	}
	rep.Ranges, rep.Entries, rep.Media = toRanges(idxs), uint64(len(idxs)), media
	for rule, n := range rules {
		rep.Rules = append(rep.Rules, RuleCount{Rule: rule, Entries: n})
	}
	sort.Slice(rep.Rules, func(i, j int) bool { return rep.Rules[i].Rule < rep.Rules[j].Rule })
	e := &Entry{Kind: KindDisposal, Actor: actor, Time: now, Disposal: &Disposal{
		Before: before, Entries: rep.Ranges, Held: rep.Held, Media: media, Rules: rep.Rules,
	}}
	if e.Disposal.Entries == nil {
		e.Disposal.Entries = []IndexRange{}
	}
	if e.Disposal.Rules == nil {
		e.Disposal.Rules = []RuleCount{}
	}
	app, err := a.appendEntry(ctx, e, func(ctx context.Context, _ uint64) error {
		return a.applyDisposal(ctx, idxs, media, now)
	})
	if err != nil {
		return nil, err
	}
	rep.Index = app.Index
	a.removeDisposedMedia(ctx, media)
	a.log.Info().Uint64("disposal_index", app.Index).Uint64("entries", rep.Entries).Int("media", len(media)).
		Int("held", rep.Held).Time("before", before).Str("actor", actor).Msg("Archive disposal done")
	return rep, nil
}

func (a *Archive) disposalCandidates(ctx context.Context, before, now time.Time, holds []Hold, rep *DisposalReport) ([]uint64, map[string]int, error) {
	rows, err := a.db.Query(ctx, `SELECT idx, kind, account, chat, sender, event_ts FROM archive_entry
		WHERE event_ts < $1 AND body IS NOT NULL ORDER BY idx`, before.UnixMilli())
	if err != nil {
		return nil, nil, fmt.Errorf("archive: find disposable entries: %w", err)
	}
	defer rows.Close()
	var idxs []uint64
	rules := map[string]int{}
	for rows.Next() {
		var idx, eventMs int64
		var kind, account, chat, sender string
		if err = rows.Scan(&idx, &kind, &account, &chat, &sender, &eventMs); err != nil {
			return nil, nil, fmt.Errorf("archive: find disposable entries: %w", err)
		}
		if !Kind(kind).disposable() || chat == "" {
			continue
		}
		period, rule := a.opts.Retention.rule(account, chat, sender)
		if time.UnixMilli(eventMs).Add(period).After(now) {
			rep.Retained++
			continue
		}
		held := false
		for i := range holds {
			held = held || holds[i].covers(account, chat, sender)
		}
		if held {
			rep.Held++
			continue
		}
		idxs = append(idxs, uint64(idx))
		rules[rule]++
	}
	if err = rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("archive: find disposable entries: %w", err)
	}
	return idxs, rules, nil
}

// disposableMedia lists blobs referenced by the entries being disposed and by no entry that keeps its body.
func (a *Archive) disposableMedia(ctx context.Context, idxs []uint64, now time.Time) ([]string, error) {
	going := make(map[uint64]bool, len(idxs))
	for _, i := range idxs {
		going[i] = true
	}
	shas := map[string]bool{}
	for _, chunk := range chunks(idxs, 500) {
		rows, err := a.db.Query(ctx, `SELECT DISTINCT sha256 FROM archive_entry_media WHERE idx IN (`+placeholders(len(chunk), 1)+`)`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("archive: find disposable media: %w", err)
		}
		for rows.Next() {
			var sha string
			if err = rows.Scan(&sha); err != nil {
				rows.Close()
				return nil, fmt.Errorf("archive: find disposable media: %w", err)
			}
			shas[sha] = true
		}
		rows.Close()
	}
	var out []string
	for sha := range shas {
		var keepers int
		err := a.db.QueryRow(ctx, `SELECT COUNT(*) FROM archive_media m WHERE m.sha256=$1 AND m.disposed_ts IS NULL AND m.last_put_ts < $2`,
			sha, now.Add(-mediaGrace).UnixMilli()).Scan(&keepers)
		if err != nil {
			return nil, fmt.Errorf("archive: check media %s: %w", sha, err)
		}
		if keepers == 0 {
			continue // never stored, already disposed, or stored too recently
		}
		refs, err := a.liveReferences(ctx, sha)
		if err != nil {
			return nil, err
		}
		kept := false
		for _, r := range refs {
			kept = kept || !going[r]
		}
		if !kept {
			out = append(out, sha)
		}
	}
	sort.Strings(out)
	return out, nil
}

// liveReferences lists entries that reference a blob and still have their body.
func (a *Archive) liveReferences(ctx context.Context, sha string) ([]uint64, error) {
	rows, err := a.db.Query(ctx, `SELECT em.idx FROM archive_entry_media em JOIN archive_entry e ON e.idx = em.idx
		WHERE em.sha256=$1 AND e.body IS NOT NULL`, sha)
	if err != nil {
		return nil, fmt.Errorf("archive: media references: %w", err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var idx int64
		if err = rows.Scan(&idx); err != nil {
			return nil, fmt.Errorf("archive: media references: %w", err)
		}
		out = append(out, uint64(idx))
	}
	return out, rows.Err()
}

// applyDisposal runs inside the disposal entry's transaction.
func (a *Archive) applyDisposal(ctx context.Context, idxs []uint64, media []string, now time.Time) error {
	for _, chunk := range chunks(idxs, 500) {
		if _, err := a.db.Exec(ctx, `UPDATE archive_entry SET salt=NULL, body=NULL WHERE idx IN (`+placeholders(len(chunk), 1)+`)`, anys(chunk)...); err != nil {
			return fmt.Errorf("remove bodies: %w", err)
		}
	}
	for _, sha := range media {
		refs, err := a.liveReferences(ctx, sha)
		if err != nil {
			return err
		}
		if len(refs) > 0 {
			return errMediaRevived
		}
		res, err := a.db.Exec(ctx, `UPDATE archive_media SET disposed_ts=$1 WHERE sha256=$2 AND disposed_ts IS NULL AND last_put_ts < $3`,
			now.UnixMilli(), sha, now.Add(-mediaGrace).UnixMilli())
		if err != nil {
			return fmt.Errorf("mark media disposed: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("mark media disposed: %w", err)
		} else if n == 0 {
			return errMediaRevived
		}
	}
	return nil
}

// removeDisposedMedia deletes the files after the disposal committed. A blob stored again meanwhile has
// its disposed mark cleared by PutMedia, and is left alone.
func (a *Archive) removeDisposedMedia(ctx context.Context, media []string) {
	a.mediaMu.Lock()
	defer a.mediaMu.Unlock()
	for _, sha := range media {
		var disposedTs *int64
		if err := a.db.QueryRow(ctx, `SELECT disposed_ts FROM archive_media WHERE sha256=$1`, sha).Scan(&disposedTs); err != nil || disposedTs == nil {
			continue
		}
		if err := os.Remove(a.mediaPath(sha)); err != nil && !os.IsNotExist(err) {
			a.log.Error().Err(err).Str("sha256", sha).Msg("Failed to remove disposed media file")
		}
	}
}

// toRanges compresses sorted indexes into half-open ranges.
func toRanges(idxs []uint64) []IndexRange {
	var out []IndexRange
	for _, i := range idxs {
		if n := len(out); n > 0 && out[n-1].End == i {
			out[n-1].End++
		} else {
			out = append(out, IndexRange{Start: i, End: i + 1})
		}
	}
	return out
}

func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

func placeholders(n, first int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "$%d", first+i)
	}
	return b.String()
}

func anys(idxs []uint64) []any {
	out := make([]any, len(idxs))
	for i, v := range idxs {
		out[i] = int64(v)
	}
	return out
}
