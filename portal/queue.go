package portal

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"

	"codeberg.org/causeway/causeway/database"
)

// Queue item kinds.
const (
	KindWAMessage    = "wa_message"
	KindMatrixEvent  = "matrix_event"
	KindWAGroupEvent = "wa_group"
)

// maxWhatsAppAttempts bounds retries of a Matrix event toward WhatsApp: after that the
// sender is told in the room that it failed, and why. Matrix-bound items retry forever:
// a homeserver outage must delay messages, never drop them.
const maxWhatsAppAttempts = 6

// errPermanent marks a failure that retrying cannot fix.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

func permanent(err error) error { return errPermanent{err} }

func (p *Portal) run(ctx context.Context) {
	defer p.m.wg.Done()
	// Stopping still records what was relayed, or the next start would relay it again.
	defer func() { _ = p.settle(context.WithoutCancel(ctx)) }()
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			case <-p.wake: // a reconnect or new item is worth an early retry
			}
		}
		items, err := p.m.deps.DB.Queue.Pending(ctx, p.row.PortalKey, 64)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Err(err).Msg("Failed to read the relay queue")
			backoff = nextBackoff(backoff)
			continue
		}
		if len(items) == 0 {
			backoff = 0
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		backoff = 0
		for _, item := range items {
			if ctx.Err() != nil {
				return
			}
			if len(p.settled) > 0 && time.Since(p.settledSince) >= maxSettleDelay {
				if err := p.settle(ctx); err != nil {
					backoff = time.Second
					break
				}
			}
			if ok, wait := p.process(ctx, item); !ok {
				backoff = wait
				break // keep the chat in order: nothing overtakes a failed item
			}
		}
		// Before the queue is read again, which would return the items still unsettled.
		if err := p.settle(ctx); err != nil {
			backoff = max(backoff, time.Second)
		}
	}
}

// maxSettleDelay bounds how long a relayed item waits for its batch's commit, and so how
// long the mapping of a just relayed message can be missing for lookups from outside the
// queue (read receipts from Matrix).
const maxSettleDelay = time.Second

func nextBackoff(prev time.Duration) time.Duration {
	switch {
	case prev <= 0:
		return 500 * time.Millisecond
	case prev >= maxBackoff:
		return maxBackoff
	default:
		return prev * 2
	}
}

const maxBackoff = 30 * time.Second

// itemTimeout bounds one attempt at one item.
const itemTimeout = 2 * time.Minute

// backoffFor is the wait before attempt n+1 of an item that failed n times.
func backoffFor(attempts int) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// process handles one item and reports whether the queue may move past it, and if not,
// how long to wait before trying again.
func (p *Portal) process(ctx context.Context, item *database.QueueItem) (done bool, retryIn time.Duration) {
	log := p.log.With().Int64("queue_seq", item.Seq).Str("kind", item.Kind).Int("attempt", item.Attempts+1).Logger()
	// A shutdown lets the item in hand finish rather than cut it off between the archive
	// and the relay; the bound keeps a hung homeserver from holding shutdown forever.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), itemTimeout)
	defer cancel()
	ctx = log.WithContext(ctx)
	start := time.Now()
	var err error
	if item.Kind != KindWAMessage {
		// Other kinds read the message mappings in ways not worth tracking; the relayed
		// items' mappings must be there for them.
		if err := p.settle(ctx); err != nil {
			return false, time.Second
		}
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = permanent(fmt.Errorf("panic: %v", r))
				log.Error().Str("stack", string(debug.Stack())).Any("panic", r).Msg("Panic while relaying")
			}
		}()
		switch item.Kind {
		case KindWAMessage:
			err = p.handleWAMessage(ctx, item)
		case KindWAGroupEvent:
			err = p.handleWAGroupEvent(ctx, item)
		case KindWAReceipt:
			err = p.handleWAReceipt(ctx, item)
		case KindMatrixEvent:
			err = p.handleMatrixEvent(ctx, item)
		case KindMediaFill:
			err = p.handleMediaFill(ctx, item)
		case KindBotNotice:
			err = p.handleBotNotice(ctx, item)
		case KindHistoryChunk:
			err = p.handleHistoryChunk(ctx, item)
		default:
			err = permanent(fmt.Errorf("unknown queue item kind %q", item.Kind))
		}
	}()
	if err != nil {
		// What the handler did before failing is done and must be recorded, or a retry
		// would do it again.
		p.runFinishWrites(ctx, log)
		if p.finishWAID != "" {
			p.endRelays([]settledItem{{waID: p.finishWAID}})
		}
		p.finishWAID = ""
	}
	obs := p.m.deps.Observer
	if err == nil {
		if obs != nil {
			obs.Relayed(item.Direction, item.Kind, time.Since(item.QueuedAt))
		}
		return p.finish(ctx, item)
	}
	if errors.Is(err, ErrNotConnected) {
		// Not the item's fault: wait for the login to come back (it pokes the queue).
		log.Debug().Msg("Waiting for the WhatsApp login to reconnect")
		return false, maxBackoff
	}
	if obs != nil {
		obs.RelayFailed(item.Direction, item.Kind, err)
	}
	var perm errPermanent
	giveUp := errors.As(err, &perm) ||
		(item.Direction == database.ToWhatsApp && item.Attempts+1 >= maxWhatsAppAttempts)
	if !giveUp {
		log.Warn().Err(err).Dur("took", time.Since(start)).Msg("Relaying failed, will retry")
		item.Attempts++
		if ferr := p.m.deps.DB.Queue.Failed(ctx, item.Seq, err); ferr != nil {
			log.Err(ferr).Msg("Failed to record the failed attempt")
		}
		return false, backoffFor(item.Attempts)
	}
	log.Error().Err(err).Msg("Relaying failed for good")
	p.reportFailure(ctx, item, err)
	return p.finish(ctx, item)
}

// finish settles a relayed item: its removal from the queue, and the writes left for it
// (atFinish), wait to commit together with those of the items relayed after it, in one
// transaction per batch (see settle) rather than one per item. Until then the item's
// message is known to have been relayed through settling, which the lookups of relayed
// messages in this queue consult.
func (p *Portal) finish(_ context.Context, item *database.QueueItem) (bool, time.Duration) {
	if len(p.settled) == 0 {
		p.settledSince = time.Now()
	}
	p.settled = append(p.settled, settledItem{seq: item.Seq, waID: p.finishWAID, writes: p.finishWrites})
	p.finishWrites, p.finishWAID = nil, ""
	return true, 0
}

// settledItem is a relayed item whose removal from the queue is not committed yet.
type settledItem struct {
	seq    int64
	waID   types.MessageID // the WhatsApp message it relayed, if any
	writes []func(context.Context) error
}

// settling says whether a relayed item of WhatsApp message waID awaits its commit.
func (p *Portal) settling(waID types.MessageID) bool {
	for _, s := range p.settled {
		if s.waID == waID {
			return true
		}
	}
	return false
}

// settle commits the removal of the relayed items from the queue and their writes, in one
// transaction. Retrying an item that a failure leaves in the queue is safe: every handler
// skips what was already relayed (by its mapping, or the homeserver by transaction ID).
func (p *Portal) settle(ctx context.Context) error {
	items := p.settled
	if len(items) == 0 {
		return nil
	}
	p.settled = nil
	err := p.m.deps.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, s := range items {
			if err := settleOne(ctx, p.m.deps.DB, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		p.endRelays(items)
		return nil
	}
	// One bad item must not keep the others' records from being written.
	p.log.Err(err).Int("items", len(items)).Msg("Failed to record relayed items together; recording them one by one")
	var errs []error
	for _, s := range items {
		if err := p.m.deps.DB.DoTxn(ctx, nil, func(ctx context.Context) error { return settleOne(ctx, p.m.deps.DB, s) }); err != nil {
			p.log.Err(err).Int64("queue_seq", s.seq).Msg("Failed to remove a relayed item")
			// At least its mapping, so that the retry recognises the message as relayed.
			for _, w := range s.writes {
				if werr := w(ctx); werr != nil {
					p.log.Err(werr).Int64("queue_seq", s.seq).Msg("Failed to record what was relayed")
				}
			}
			errs = append(errs, err)
			continue
		}
		p.endRelays([]settledItem{s})
	}
	return errors.Join(errs...)
}

func settleOne(ctx context.Context, db *database.Database, s settledItem) error {
	for _, w := range s.writes {
		if err := w(ctx); err != nil {
			return err
		}
	}
	return db.Queue.Done(ctx, s.seq)
}

// atFinish leaves a database write of the item in hand to be committed together with the
// item's removal from the queue. Only the queue goroutine calls it.
func (p *Portal) atFinish(write func(context.Context) error) {
	p.finishWrites = append(p.finishWrites, write)
}

// runFinishWrites carries out the writes left for finish on their own, for an item that
// is not being removed.
func (p *Portal) runFinishWrites(ctx context.Context, log zerolog.Logger) {
	writes := p.finishWrites
	p.finishWrites = nil
	for _, w := range writes {
		if err := w(ctx); err != nil {
			log.Err(err).Msg("Failed to record what was relayed before the item failed")
		}
	}
}
