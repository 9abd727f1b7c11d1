package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/msgconv"
)

// Exactly once into Matrix, on the bridge's side.
//
// A transaction ID alone does not make a resend safe: Dendrite remembers a transaction only
// when the send succeeded, yet persists the event of a request that was cut off or answered
// 500 (docs/dendrite-duplicate-events.md), and forgets every transaction when it restarts. So
// every event the relay sends names its WhatsApp source in its content (msgconv.Source), and
// before sending anything that may have been sent already, the portal reads the room's recent
// timeline and takes the event it finds there instead. An item may have been sent already
// when an attempt at it failed with an unknown outcome (no answer, a 5xx), or when it was
// queued before this process started (a crash between the send and the commit that removes
// it from the queue). Items handed off by this process and never attempted skip all of it:
// the hot path reads nothing.
//
// One read serves a whole recovery: it is cached until the next send with an unknown outcome,
// since every attempt it could miss happened before it.
//
// Dendrite can also lose an event it accepted: killed before its sync API took the event from
// its (in-memory) stream, it keeps the event in its room graph and never shows it to clients.
// So after an outage every portal compares its last sends with the timeline and sends again,
// under the same transaction ID, what is missing (reconcile), before it sends anything else.

// recoveryWindow bounds a timeline read: the events sent since what the portal last saw land.
const recoveryWindow = 300

// recentSends is how many of its last sends a portal keeps for a reconcile.
const recentSends = 32

// defaultCutOffGrace is how long a lookup waits after a send with an unknown outcome: Dendrite
// finishes a request it answered 500 (or whose client went away) afterwards, and the event
// reaches /messages a little later still.
const defaultCutOffGrace = 3 * time.Second

// delivery is a portal's knowledge of what reached its room. The queue goroutine owns it.
type delivery struct {
	// found maps the sources seen by the last timeline read to their events; nil when no read
	// covers every attempt made so far.
	found map[msgconv.Source]foundEvent
	// readableAt is when a send cut off before it will have landed, if it ever does.
	readableAt time.Time
	// anchor is the newest event this process saw the homeserver accept: every attempt after
	// it lands after it in the timeline, so reads stop there.
	anchor id.EventID
	// recent are the last sends, for the reconcile after an outage.
	recent sendRing
	// reconciled is the manager's outage count this portal has reconciled.
	reconciled int64
}

type foundEvent struct {
	id     id.EventID
	sender id.UserID
}

// sentPart is one event the relay sent, with what it takes to send it again.
type sentPart struct {
	src     msgconv.Source
	evt     id.EventID
	as      id.UserID
	typ     event.Type
	content any
	opts    SendOptions
	// reaction says which mapping a new event for the part goes to.
	reaction bool
}

// sendRing keeps the last recentSends sends.
type sendRing struct {
	parts [recentSends]sentPart
	n     int // how many are kept
	next  int // where the next goes
}

func (r *sendRing) add(s sentPart) {
	r.parts[r.next] = s
	r.next = (r.next + 1) % recentSends
	r.n = min(r.n+1, recentSends)
}

// at returns the i-th kept send, oldest first.
func (r *sendRing) at(i int) *sentPart {
	return &r.parts[(r.next-r.n+i+recentSends)%recentSends]
}

// outages counts the homeserver's outages for the reconciles, manager-wide: a portal idle
// during an outage may have lost its last sends as well.
type outages struct {
	count atomic.Int64
	down  atomic.Bool
}

// uncertain says whether a failed send may have created the event anyway. Only an answer
// below 500 says it did not, or a connection that was never made.
func uncertain(err error) bool {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		return httpErr.Response.StatusCode >= 500
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}

// homeserverFailed notes a failure of any call that reached for the homeserver.
func (m *Manager) homeserverFailed(err error) {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil && httpErr.Response.StatusCode < 500 {
		return // it answered
	}
	if m.outages.down.CompareAndSwap(false, true) {
		m.outages.count.Add(1)
		m.deps.Log.Warn().Err(err).Msg("The homeserver is not answering; portals will check their last sends when it is back")
	}
}

// homeserverAnswered ends an outage: every portal is woken to reconcile.
func (m *Manager) homeserverAnswered() {
	if !m.outages.down.Load() || !m.outages.down.CompareAndSwap(true, false) {
		return
	}
	m.deps.Log.Info().Msg("The homeserver answers again; checking the last sends of every portal")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.portals {
		p.poke()
	}
}

// sendPart sends one part of a WhatsApp message, or finds it in the room when it may have been
// sent already (suspect), and returns its event.
func (p *Portal) sendPart(ctx context.Context, suspect bool, as id.UserID, part msgconv.MatrixPart, src msgconv.Source, opts SendOptions) (id.EventID, error) {
	// A lost event is sent again before anything after it, to keep the chat in order.
	if err := p.reconcileIfDue(ctx); err != nil {
		return "", err
	}
	room := p.RoomID()
	if suspect {
		if evt, ok := p.alreadySent(as, src); ok {
			return evt, nil
		}
		found, err := p.lookUp(ctx)
		if err != nil {
			return "", err
		}
		if f, ok := found[src]; ok && f.sender == as {
			p.log.Info().Str("message_id", src.ID).Int("part", src.Part).Stringer("event_id", f.id).
				Msg("Found the event of an earlier attempt in the room; not sending it again")
			return f.id, nil
		}
	}
	evt, err := p.m.matrix.SendMessage(ctx, as, room, part.Type, part.Content, opts)
	if err != nil {
		p.m.homeserverFailed(err)
		if uncertain(err) {
			p.delivery.found = nil
			p.delivery.readableAt = time.Now().Add(p.m.cutOffGrace)
		}
		return "", err
	}
	p.m.homeserverAnswered()
	p.delivery.anchor = evt
	return evt, nil
}

// alreadySent finds a part among this process's recent sends: an item whose commit failed is
// relayed again.
func (p *Portal) alreadySent(as id.UserID, src msgconv.Source) (id.EventID, bool) {
	r := &p.delivery.recent
	for i := r.n - 1; i >= 0; i-- {
		if s := r.at(i); s.src == src && s.as == as {
			return s.evt, true
		}
	}
	return "", false
}

// lookUp returns the sources in the room's recent timeline, reading it when no read covers
// the attempts made so far.
func (p *Portal) lookUp(ctx context.Context) (map[msgconv.Source]foundEvent, error) {
	if p.delivery.found != nil {
		return p.delivery.found, nil
	}
	if err := p.waitReadable(ctx); err != nil {
		return nil, err
	}
	found, _, err := p.readTimeline(ctx, p.delivery.anchor)
	if err != nil {
		return nil, err
	}
	p.delivery.found = found
	return found, nil
}

func (p *Portal) waitReadable(ctx context.Context) error {
	wait := time.Until(p.delivery.readableAt)
	if wait <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// readTimeline reads the room back to until (or recoveryWindow events) and returns the
// sources it names, and whether it reached the room's beginning or until.
func (p *Portal) readTimeline(ctx context.Context, until id.EventID) (map[msgconv.Source]foundEvent, bool, error) {
	events, err := p.m.matrix.RecentEvents(ctx, p.m.matrix.BotMXID(), p.RoomID(), until, recoveryWindow)
	if err != nil {
		p.m.homeserverFailed(err)
		return nil, false, fmt.Errorf("failed to look for earlier attempts in the room: %w", err)
	}
	p.m.homeserverAnswered()
	found := make(map[msgconv.Source]foundEvent, len(events))
	for _, evt := range events {
		var c struct {
			Source *msgconv.Source `json:"com.causeway.source"`
		}
		if json.Unmarshal(evt.Content, &c) != nil || c.Source == nil || c.Source.Chat != p.row.ChatJID {
			continue
		}
		// Newest first: of two events with one source (a duplicate from before this check
		// existed), the older one is the one replies point at.
		found[*c.Source] = foundEvent{id: evt.ID, sender: evt.Sender}
	}
	p.log.Debug().Int("events", len(events)).Int("sources", len(found)).Msg("Read the room's recent timeline")
	return found, len(events) < recoveryWindow, nil
}

// reconcileIfDue checks, once the homeserver failed, that the portal's last sends are in the
// room, and sends again what is missing. While the homeserver is still out the read fails,
// and so does the caller.
func (p *Portal) reconcileIfDue(ctx context.Context) error {
	outages := p.m.outages.count.Load()
	if p.delivery.reconciled == outages {
		return nil
	}
	recent := &p.delivery.recent
	if recent.n == 0 || p.RoomID() == "" {
		p.delivery.reconciled = outages
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, itemTimeout)
	defer cancel()
	if err := p.settle(ctx); err != nil {
		return err
	}
	if err := p.waitReadable(ctx); err != nil {
		return err
	}
	found, complete, err := p.readTimeline(ctx, "")
	if err != nil {
		return err
	}
	// What a read cannot reach is not known to be missing: only the sends after the oldest
	// one seen count (all of them when the read reached the room's beginning).
	from := 0
	if !complete {
		from = recent.n
		for i := range recent.n {
			if _, ok := found[recent.at(i).src]; ok {
				from = i
				break
			}
		}
	}
	resent := 0
	for i := from; i < recent.n; i++ {
		s := recent.at(i)
		if _, ok := found[s.src]; ok {
			continue
		}
		// The same transaction ID: a homeserver that still knows it (it did not restart, the
		// event is only late) answers with the event it has instead of making another.
		evt, err := p.m.matrix.SendMessage(ctx, s.as, p.RoomID(), s.typ, s.content, s.opts)
		if err != nil {
			p.m.homeserverFailed(err)
			if uncertain(err) {
				p.delivery.found = nil
				p.delivery.readableAt = time.Now().Add(p.m.cutOffGrace)
			}
			return fmt.Errorf("failed to send a missing event again: %w", err)
		}
		p.log.Warn().Str("message_id", s.src.ID).Int("part", s.src.Part).Stringer("lost_event_id", s.evt).
			Stringer("event_id", evt).Msg("An event the homeserver accepted before its outage is not in the room; sent it again")
		if evt != s.evt {
			if err := p.repointPart(ctx, s.reaction, s.evt, evt); err != nil {
				return err
			}
			s.evt = evt
		}
		p.delivery.anchor = evt
		resent++
	}
	p.delivery.found = found
	p.delivery.reconciled = outages
	p.log.Info().Int("checked", recent.n-from).Int("resent", resent).Msg("Checked the last sends after the homeserver's outage")
	return nil
}
