package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

// The homeserver does not push read receipts and typing to appservices (Dendrite has no
// MSC2409), nor, in Dendrite 0.13, users' redactions; and after a stall Dendrite can stop
// pushing anything for minutes. So the bot, which sits in every portal room, syncs itself:
// for receipts and typing, and for the bridge users' events of the types the bridge relays,
// which it hands on like pushed ones (intake.go). The ghosts' own events, nearly everything in
// a busy room, stay out of the filter: the bot would only skip them.
//
// The filter names every Matrix user the bridge has a row for, logged in or not, rather than
// only the logged-in ones: a user gets a row at first contact with the bot, long before they
// can have a portal, so a new filter can wait for the next sync request. Cutting the request
// under way short instead crashed Dendrite 0.13.8 on SQLite in our tests
// (docs/dendrite-duplicate-events.md, point 6).

// syncTimelineLimit is how many events per room one sync returns. More came meanwhile only
// when the bot's sync was held up; syncGap fetches the rest.
const syncTimelineLimit = 100

// botSyncFilter is the bot's sync filter for the given bridge users.
func (b *Bridge) botSyncFilter(senders []id.UserID) *mautrix.Filter {
	if len(senders) == 0 {
		// An empty list is not portable ("no one" or "everyone"); the bot's own events are
		// skipped as echoes.
		senders = []id.UserID{b.bot.UserID}
	}
	timeline := b.syncTimelineFilter()
	timeline.Senders = senders
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	return &mautrix.Filter{
		Presence: none, AccountData: none,
		Room: &mautrix.RoomFilter{
			Timeline:    timeline,
			State:       none,
			AccountData: none,
			Ephemeral:   &mautrix.FilterPart{Types: []event.Type{event.EphemeralEventReceipt, event.EphemeralEventTyping}},
		},
	}
}

// syncTimelineFilter picks the types of events the sync route takes in; syncGap's /messages
// uses it as it is (a list of senders in a URL would grow with the users).
func (b *Bridge) syncTimelineFilter() *mautrix.FilterPart {
	var types []event.Type
	for _, t := range portal.RelayedMessageTypes() {
		types = append(types, event.Type{Type: t, Class: event.MessageEventType})
	}
	if b.cfg.Encryption.Allow {
		types = append(types, event.EventEncrypted)
	}
	return &mautrix.FilterPart{Types: types, Limit: syncTimelineLimit}
}

// kvSyncSince remembers how far the bot's sync got, so events and redactions made while the
// bridge was down are still taken in; kvSyncSinceAt is when that position was reached.
const (
	kvSyncSince   = "bot_sync_since"
	kvSyncSinceAt = "bot_sync_since_at"
)

// syncRetryMax bounds the wait between failed syncs: the sync is a relay route, and the
// homeserver coming back should be noticed within seconds.
const syncRetryMax = 10 * time.Second

func (b *Bridge) startMatrixSync() {
	ctx, cancel := context.WithCancel(b.log.With().Str("component", "matrix_sync").Logger().WithContext(context.Background()))
	b.syncCancel = cancel
	b.syncDone = make(chan struct{})
	go func() {
		defer close(b.syncDone)
		b.syncLoop(ctx)
	}()
}

func (b *Bridge) stopMatrixSync() {
	if b.syncCancel != nil {
		b.syncCancel()
		<-b.syncDone
	}
}

// syncState is what the sync loop carries from one sync to the next.
type syncState struct {
	since   string
	sinceAt time.Time // when since was reached; zero if unknown
	senders []id.UserID
	filter  string             // the ID of the uploaded filter for senders
	typing  map[id.RoomID]bool // was the receiver typing at the last sync
}

func (b *Bridge) syncLoop(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	cli := b.cryptoSyncClient()
	st := &syncState{typing: map[id.RoomID]bool{}}
	var err error
	if st.since, err = b.db.KV.Get(ctx, kvSyncSince); err != nil {
		log.Err(err).Msg("Failed to load the sync position")
	}
	if at, err := b.db.KV.Get(ctx, kvSyncSinceAt); err == nil && at != "" {
		if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
			st.sinceAt = time.UnixMilli(ms)
		}
	}
	backoff := time.Second
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, syncRetryMax)
		return true
	}
	for ctx.Err() == nil {
		if err := b.updateSyncFilter(ctx, cli, st); err != nil {
			log.Err(err).Msg("Failed to set the sync filter for the bridge's users")
			if !wait() {
				return
			}
			continue
		}
		resp, err := cli.SyncRequest(ctx, 30000, st.since, st.filter, false, event.PresenceOffline)
		if ctx.Err() != nil {
			return
		} else if err != nil {
			log.Warn().Err(err).Msg("The bot's sync failed")
			if !wait() {
				return
			}
			continue
		}
		backoff = time.Second
		received := time.Now()
		// To-device events and key counts are never stale: room keys among them.
		b.cryptoSync(ctx, resp, st.since)
		if st.since != "" { // a first sync only sets the position; older events are stale
			for roomID, room := range resp.Rooms.Join {
				for _, evt := range room.Ephemeral.Events {
					b.handleEphemeral(ctx, roomID, evt, st.typing)
				}
			}
			b.syncAhead.set(st.senders, resp.Rooms.Join)
			if !b.giveWayToPushes(ctx, resp) {
				return
			}
			for roomID, room := range resp.Rooms.Join {
				if !b.takeInSyncedRoom(ctx, cli, st, roomID, room) {
					return // stopping: the position is not saved, and the next start reads again
				}
			}
			b.syncAhead.clear()
		}
		st.since, st.sinceAt = resp.NextBatch, received
		if err := b.db.KV.Set(ctx, kvSyncSince, st.since); err != nil {
			log.Err(err).Msg("Failed to save the sync position")
		}
		if err := b.db.KV.Set(ctx, kvSyncSinceAt, strconv.FormatInt(received.UnixMilli(), 10)); err != nil {
			log.Err(err).Msg("Failed to save the time of the sync position")
		}
	}
}

// updateSyncFilter uploads a new filter when the bridge's users changed since the last one.
func (b *Bridge) updateSyncFilter(ctx context.Context, cli *mautrix.Client, st *syncState) error {
	senders, err := b.db.Users.ListMXIDs(ctx)
	if err != nil {
		return err
	}
	if st.filter != "" && slices.Equal(senders, st.senders) {
		return nil
	}
	resp, err := cli.CreateFilter(ctx, b.botSyncFilter(senders))
	if err != nil {
		return fmt.Errorf("failed to upload the sync filter: %w", err)
	}
	st.senders, st.filter = senders, resp.FilterID
	zerolog.Ctx(ctx).Debug().Int("senders", len(senders)).Str("filter_id", resp.FilterID).Msg("Sync filter set for the bridge's users")
	return nil
}

// pushGrace is how long the sync leaves a new event to the homeserver's push. The push carries
// every event of a room in order, its state (joins, leaves) and other people's messages too,
// which the sync does not; an event the push brings first is handled in that order. Healthy
// pushes take milliseconds; the sync takes over from stalled ones after this.
const pushGrace = 2 * time.Second

// giveWayToPushes waits until the newest event the sync returned is pushGrace old. It returns
// false when the bridge is stopping.
func (b *Bridge) giveWayToPushes(ctx context.Context, resp *mautrix.RespSync) bool {
	var newest int64
	for _, room := range resp.Rooms.Join {
		for _, evt := range room.Timeline.Events {
			newest = max(newest, evt.Timestamp)
		}
	}
	if newest == 0 {
		return true
	}
	wait := min(pushGrace-time.Since(time.UnixMilli(newest)), pushGrace)
	if wait <= 0 {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// takeInSyncedRoom hands a portal room's synced events on, after the ones a limited timeline
// left out. A failure (the database, or the homeserver during syncGap) is retried: the events
// must be taken in before the position moves past them, and those taken in already are
// skipped. It returns false only when the bridge is stopping.
func (b *Bridge) takeInSyncedRoom(ctx context.Context, cli *mautrix.Client, st *syncState, roomID id.RoomID, room *mautrix.SyncJoinedRoom) bool {
	if len(room.Timeline.Events) == 0 {
		return true
	}
	log := zerolog.Ctx(ctx).With().Stringer("room_id", roomID).Logger()
	backoff := time.Second
	for {
		err := b.takeInSyncedTimeline(log.WithContext(ctx), cli, st, roomID, room)
		if err == nil {
			return true
		}
		log.Err(err).Msg("Failed to take in the room's synced events; trying again")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, syncRetryMax)
	}
}

func (b *Bridge) takeInSyncedTimeline(ctx context.Context, cli *mautrix.Client, st *syncState, roomID id.RoomID, room *mautrix.SyncJoinedRoom) error {
	p, err := b.portals.ByRoom(ctx, roomID)
	if err != nil {
		return err
	} else if p == nil {
		return nil // not a portal: commands and the management room stay with the pushes
	}
	evts := room.Timeline.Events
	if room.Timeline.Limited && room.Timeline.PrevBatch != "" {
		gap, err := b.syncGap(ctx, cli, st, roomID, room.Timeline.PrevBatch)
		var httpErr mautrix.HTTPError
		if errors.As(err, &httpErr) && httpErr.Response != nil && httpErr.Response.StatusCode < 500 {
			// Refused, not failed: asking again would hold up the sync for good. What the
			// sync left out comes by the homeserver's pushes.
			zerolog.Ctx(ctx).Warn().Err(err).Msg("The homeserver refused to give the events a limited sync left out")
		} else if err != nil {
			return err
		}
		evts = append(gap, evts...)
	}
	for _, evt := range evts {
		if err := b.takeInSynced(ctx, roomID, evt); err != nil {
			return err
		}
	}
	return nil
}

// syncGapPages bounds how far back syncGap reads (pages of 100 events before the filter).
const syncGapPages = 50

// syncGapSlack is how much older than the sync position an event in the gap may look: an event
// is stamped when the homeserver builds it and enters the sync stream when stored, which a
// stalled homeserver can hold up.
const syncGapSlack = 10 * time.Minute

// syncGap fetches, oldest first, the events of a limited timeline that the sync left out,
// reading back from its start to the first event already taken in, or one from before the
// previous sync position. Dendrite's /messages cannot stop at a sync position by itself: its
// "to" and "from" leave out the first event after one.
func (b *Bridge) syncGap(ctx context.Context, cli *mautrix.Client, st *syncState, roomID id.RoomID, from string) ([]*event.Event, error) {
	filter := b.syncTimelineFilter()
	floor := time.Time{}
	if !st.sinceAt.IsZero() {
		floor = st.sinceAt.Add(-syncGapSlack)
	}
	var gap []*event.Event // newest first
	complete := false
read:
	for page := 0; page < syncGapPages; page++ {
		resp, err := cli.Messages(ctx, roomID, from, "", mautrix.DirectionBackward, filter, 100)
		if err != nil {
			return nil, fmt.Errorf("failed to read the events a limited sync left out: %w", err)
		}
		for _, evt := range resp.Chunk {
			if time.UnixMilli(evt.Timestamp).Before(floor) {
				complete = true
				break read
			}
			if !slices.Contains(st.senders, evt.Sender) {
				continue // as the sync's filter would have
			}
			accepted, err := b.db.Queue.Accepted(ctx, evt.ID)
			if err != nil {
				return nil, err
			} else if accepted {
				complete = true
				break read
			}
			gap = append(gap, evt)
		}
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			complete = true // the start of the room
			break
		}
		from = resp.End
	}
	log := zerolog.Ctx(ctx).With().Int("events", len(gap)).Logger()
	if !complete {
		log.Warn().Msg("The sync left out more events than the bridge reads back; older ones come by the homeserver's pushes, possibly after these")
	} else {
		log.Debug().Msg("Read back the events a limited sync left out")
	}
	slices.Reverse(gap)
	return gap, nil
}

func (b *Bridge) handleEphemeral(ctx context.Context, roomID id.RoomID, evt *event.Event, typing map[id.RoomID]bool) {
	switch evt.Type.Type {
	case event.EphemeralEventReceipt.Type:
		evt.Type = event.EphemeralEventReceipt
	case event.EphemeralEventTyping.Type:
		evt.Type = event.EphemeralEventTyping
	default:
		return
	}
	_ = evt.Content.ParseRaw(evt.Type)
	p, err := b.portals.ByRoom(ctx, roomID)
	if err != nil || p == nil {
		return
	}
	receiver := p.Key().Receiver
	wa, ok := b.WhatsApp(receiver)
	if !ok {
		return
	}
	switch evt.Type {
	case event.EphemeralEventReceipt:
		receipts := *evt.Content.AsReceipt()
		for eventID, byType := range receipts {
			for _, rt := range []event.ReceiptType{event.ReceiptTypeRead, event.ReceiptTypeReadPrivate} {
				if _, ok := byType[rt][receiver]; ok {
					b.markReadOnWhatsApp(ctx, p, wa, eventID)
				}
			}
		}
	case event.EphemeralEventTyping:
		now := false
		for _, u := range evt.Content.AsTyping().UserIDs {
			if u == receiver {
				now = true
			}
		}
		if now != typing[roomID] {
			typing[roomID] = now
			if err := wa.SetTyping(ctx, p.Chat(), now); err != nil {
				b.log.Debug().Err(err).Msg("Failed to relay typing to WhatsApp")
			}
		}
	}
}

// markReadOnWhatsApp sends a read receipt for the WhatsApp message behind a Matrix event.
func (b *Bridge) markReadOnWhatsApp(ctx context.Context, p *portal.Portal, wa portal.WhatsApp, eventID id.EventID) {
	msg, err := b.db.Messages.GetByMXID(ctx, eventID)
	if err != nil || msg == nil || msg.FromMe || msg.ChatJID != p.Key().ChatJID {
		return
	}
	sender, err := types.ParseJID(msg.SenderJID)
	if err != nil {
		return
	}
	if !p.Chat().IsEmpty() && p.Chat().Server != types.GroupServer {
		sender = types.EmptyJID // in a DM the chat says who sent it
	}
	if err := wa.MarkRead(ctx, p.Chat(), sender, []types.MessageID{msg.WAID}, time.Now()); err != nil {
		b.log.Warn().Err(err).Msg("Failed to send a read receipt to WhatsApp")
	}
}
