package portal

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"

	"codeberg.org/causeway/causeway/database"
)

// inflight is the relay hot path's bookkeeping: what a portal knows about its queue items
// between "stored in the queue" and "recorded as relayed", so that the queue need not do
// per message what it can know without the database. It has three parts:
//
//   - the hand-off: Enqueue passes each WhatsApp message it stored to the queue goroutine as
//     decoded, keyed by dedup key, so the queue skips decoding the JSON it just wrote
//     (decoding the MessageInfo cost about as much as the message's archive entry);
//   - relays under way: the messages whose relay began and whose mapping is not committed;
//   - the settle batch: relayed items whose removal from the queue, and the writes left for
//     that moment (the message mapping), commit together in one transaction per batch
//     rather than one per item.
//
// Invariants:
//
//  1. WhatsApp is acked only after Enqueue's insert has committed: what was acked is in
//     relay_queue. Nothing here is needed after a crash: a restart decodes every item from
//     its payload and looks every mapping up.
//  2. An item leaves the queue in the same transaction that records what relaying it did
//     (settle). A crash before that commit relays it again, which is safe: every handler
//     skips what its mapping says was relayed, and a WhatsApp message not handed off by this
//     process is looked for in the room before it is sent (recovery.go); the homeserver's
//     transaction IDs do not survive every failure.
//  3. A redelivered WhatsApp message (WhatsApp resends unacked stanzas; a restart replays the
//     queue) is dropped: at the insert when its mapping is committed (AddOptions.NotIfBridged),
//     else by the relay's mapping lookup. The lookup is skipped only for a message handed
//     off "not bridged yet": when Enqueue's insert checked the committed mappings and no
//     relay of the same ID was under way or waiting for its commit. A relay of that ID which
//     begins later, or a mapping recorded outside the batch (recordedDirectly), withdraws it.
//  4. While a relayed item waits in the batch, a lookup of its message first commits the
//     batch (settling, settle), and the batch never waits longer than maxSettleDelay, which
//     bounds how long lookups from outside the queue (read receipts) can miss a mapping.
//
// The hand-off and the relays under way are shared between Enqueue (whatsmeow's event loop)
// and the queue goroutine, under mu. The item in hand and the batch are the queue
// goroutine's alone.
type inflight struct {
	db *database.Database

	mu        sync.Mutex
	handedOff map[string]handedOff
	// unbridged counts the hand-offs marked "not bridged yet" per message ID, so that the
	// check made for every relayed message looks through the hand-offs only when one of
	// them is affected.
	unbridged map[types.MessageID]int
	// relaying counts, per WhatsApp message, the relays begun and not yet committed.
	relaying map[types.MessageID]int

	// The item in hand: the message it relays and its writes that commit with its removal.
	current struct {
		waID   types.MessageID
		writes []func(context.Context) error
	}
	batch      []settledItem
	batchSince time.Time
}

// maxHandoff bounds the decoded items a portal keeps for its queue: a queue far behind
// decodes the rest from their payloads.
const maxHandoff = 256

// maxSettleDelay bounds how long a relayed item waits for its batch's commit.
const maxSettleDelay = time.Second

type handedOff struct {
	payload   []byte
	v         any
	waID      types.MessageID
	unbridged bool
}

// settledItem is a relayed item whose removal from the queue is not committed yet.
type settledItem struct {
	seq    int64
	waID   types.MessageID // the WhatsApp message it relayed, if any
	writes []func(context.Context) error
}

func newInflight(db *database.Database) *inflight {
	return &inflight{
		db:        db,
		handedOff: make(map[string]handedOff),
		unbridged: make(map[types.MessageID]int),
		relaying:  make(map[types.MessageID]int),
	}
}

// handOff offers v, what payload encodes, to the queue goroutine under the item's dedup
// key. Call it before the insert: the queue may read the row the moment it commits. A
// message ID marks the item "not bridged yet" unless a relay of that message is under way;
// the insert's own check (AddOptions.NotIfBridged) covers the committed mappings.
func (f *inflight) handOff(key string, payload []byte, v any, waID types.MessageID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.handedOff[key]; ok {
		f.removeLocked(key)
	}
	if len(f.handedOff) >= maxHandoff {
		return
	}
	unbridged := waID != "" && f.relaying[waID] == 0
	f.handedOff[key] = handedOff{payload, v, waID, unbridged}
	if unbridged {
		f.unbridged[waID]++
	}
}

// withdraw forgets the hand-off under key if it still holds v: its insert did not happen
// (a duplicate of a queued item, or a failure), so the row under key is another delivery's.
func (f *inflight) withdraw(key string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.handedOff[key]; ok && cur.v == v {
		f.removeLocked(key)
	}
}

// take returns and forgets what was handed off under key if it was encoded to payload
// (else nil: the row is another delivery's), and whether the message is known not to be
// bridged yet.
func (f *inflight) take(key string, payload []byte) (v any, unbridged bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.handedOff[key]
	if !ok {
		return nil, false
	}
	f.removeLocked(key)
	if !bytes.Equal(cur.payload, payload) {
		return nil, false
	}
	return cur.v, cur.unbridged
}

func (f *inflight) removeLocked(key string) {
	if it := f.handedOff[key]; it.unbridged {
		if f.unbridged[it.waID]--; f.unbridged[it.waID] <= 0 {
			delete(f.unbridged, it.waID)
		}
	}
	delete(f.handedOff, key)
}

// notBridgedWithdrawnLocked takes "not bridged yet" from the hand-offs of message waID.
func (f *inflight) notBridgedWithdrawnLocked(waID types.MessageID) {
	if f.unbridged[waID] == 0 {
		return
	}
	delete(f.unbridged, waID)
	for k, it := range f.handedOff {
		if it.waID == waID && it.unbridged {
			it.unbridged = false
			f.handedOff[k] = it
		}
	}
}

// begin notes that the item in hand relays WhatsApp message waID. Until its batch commits,
// Enqueue cannot rely on its insert's check for that ID, and items of the same ID handed
// off earlier are no longer "not bridged yet".
func (f *inflight) begin(waID types.MessageID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.relaying[waID]++
	f.notBridgedWithdrawnLocked(waID)
	f.current.waID = waID
}

// recordedDirectly is for mappings written outside the batches (imports, messages sent to
// WhatsApp), after their commit: the insert checks of later Enqueues see them, and items
// handed off before lose their "not bridged yet".
func (f *inflight) recordedDirectly(waID types.MessageID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notBridgedWithdrawnLocked(waID)
}

func (f *inflight) endRelaysLocked(items []settledItem) {
	for _, s := range items {
		if s.waID == "" {
			continue
		}
		if f.relaying[s.waID]--; f.relaying[s.waID] <= 0 {
			delete(f.relaying, s.waID)
		}
	}
}

func (f *inflight) endRelays(items []settledItem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endRelaysLocked(items)
}

// atCommit leaves a database write of the item in hand to commit with its removal from the
// queue.
func (f *inflight) atCommit(write func(context.Context) error) {
	f.current.writes = append(f.current.writes, write)
}

// finish moves the item in hand, relayed or given up on, into the batch.
func (f *inflight) finish(seq int64) {
	if len(f.batch) == 0 {
		f.batchSince = time.Now()
	}
	f.batch = append(f.batch, settledItem{seq: seq, waID: f.current.waID, writes: f.current.writes})
	f.current.waID, f.current.writes = "", nil
}

// abandon is finish for an item that stays in the queue: what its handler did before it
// failed is done and is recorded now, or the retry would do it again.
func (f *inflight) abandon(ctx context.Context, log zerolog.Logger) {
	writes, waID := f.current.writes, f.current.waID
	f.current.waID, f.current.writes = "", nil
	for _, w := range writes {
		if err := w(ctx); err != nil {
			log.Err(err).Msg("Failed to record what was relayed before the item failed")
		}
	}
	if waID != "" {
		f.endRelays([]settledItem{{waID: waID}})
	}
}

// settling says whether a relayed item of WhatsApp message waID awaits its commit.
func (f *inflight) settling(waID types.MessageID) bool {
	for _, s := range f.batch {
		if s.waID == waID {
			return true
		}
	}
	return false
}

// settleDue says whether the batch has waited maxSettleDelay.
func (f *inflight) settleDue() bool {
	return len(f.batch) > 0 && time.Since(f.batchSince) >= maxSettleDelay
}

// settle commits the batch: the removal of its items from the queue and their writes, in
// one transaction. Items a failure leaves in the queue are retried, which is safe (see
// invariant 2).
func (f *inflight) settle(ctx context.Context, log zerolog.Logger) error {
	items := f.batch
	if len(items) == 0 {
		return nil
	}
	f.batch = nil
	// A shutdown must not cut the commit off: what was relayed would be relayed again after
	// the restart. The commit is short, and the database's own timeouts bound it.
	ctx = context.WithoutCancel(ctx)
	err := f.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, s := range items {
			if err := f.settleOne(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		f.endRelays(items)
		return nil
	}
	// One bad item must not keep the others' records from being written.
	log.Err(err).Int("items", len(items)).Msg("Failed to record relayed items together; recording them one by one")
	var errs []error
	for _, s := range items {
		if err := f.db.DoTxn(ctx, nil, func(ctx context.Context) error { return f.settleOne(ctx, s) }); err != nil {
			log.Err(err).Int64("queue_seq", s.seq).Msg("Failed to remove a relayed item")
			// At least its mapping, so that the retry recognises the message as relayed.
			for _, w := range s.writes {
				if werr := w(ctx); werr != nil {
					log.Err(werr).Int64("queue_seq", s.seq).Msg("Failed to record what was relayed")
				}
			}
			errs = append(errs, err)
		}
		f.endRelays([]settledItem{s})
	}
	return errors.Join(errs...)
}

func (f *inflight) settleOne(ctx context.Context, s settledItem) error {
	for _, w := range s.writes {
		if err := w(ctx); err != nil {
			return err
		}
	}
	return f.db.Queue.Done(ctx, s.seq)
}
