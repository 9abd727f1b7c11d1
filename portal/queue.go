package portal

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

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
		if err := p.reconcileIfDue(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Err(err).Msg("Failed to check the last sends after the homeserver's outage")
			backoff = p.m.nextBackoff(backoff)
			continue
		}
		items, err := p.m.deps.DB.Queue.Pending(ctx, p.row.PortalKey, 64)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Err(err).Msg("Failed to read the relay queue")
			backoff = p.m.nextBackoff(backoff)
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
			if p.inflight.settleDue() {
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

func (m *Manager) nextBackoff(prev time.Duration) time.Duration {
	switch {
	case prev <= 0:
		return m.retryUnit
	case prev >= maxBackoff:
		return maxBackoff
	default:
		return prev * 2
	}
}

const maxBackoff = 30 * time.Second

// itemTimeout bounds one attempt at one item.
const itemTimeout = 2 * time.Minute

// defaultRetryUnit is the wait after a first failure; waits double from there up to
// maxBackoff.
const defaultRetryUnit = 500 * time.Millisecond

// backoffFor is the wait before attempt n+1 of an item that failed n times.
func (m *Manager) backoffFor(attempts int) time.Duration {
	d := m.retryUnit
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
		case KindWACall:
			err = p.handleWACall(ctx, item)
		case KindMatrixUnrelayed:
			err = p.handleMatrixUnrelayed(ctx, item)
		case KindRedactionOverdue:
			err = p.handleRedactionOverdue(ctx, item)
		default:
			err = permanent(fmt.Errorf("unknown queue item kind %q", item.Kind))
		}
	}()
	if err != nil {
		p.inflight.abandon(ctx, log)
	}
	obs := p.m.deps.Observer
	if err == nil {
		if obs != nil {
			obs.Relayed(item.Direction, item.Kind, time.Since(item.QueuedAt))
		}
		p.inflight.finish(item.Seq)
		return true, 0
	}
	if errors.Is(err, ErrNotConnected) {
		// Not the item's fault: wait for the login to come back (it pokes the queue).
		log.Debug().Msg("Waiting for the WhatsApp login to reconnect")
		return false, maxBackoff
	}
	var awaiting errAwaitingKey
	if errors.As(err, &awaiting) {
		log.Debug().Msg("Waiting for the room key of an encrypted event")
		return false, awaiting.retryIn
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
		return false, p.m.backoffFor(item.Attempts)
	}
	log.Error().Err(err).Msg("Relaying failed for good")
	p.reportFailure(ctx, item, err)
	p.inflight.finish(item.Seq)
	return true, 0
}

// settle commits what the queue relayed and has not recorded yet (see inflight).
func (p *Portal) settle(ctx context.Context) error { return p.inflight.settle(ctx, p.log) }
