//go:build goolm

package e2ee

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Users who lose their keys. A new device of a portal's owner has none of the keys of the
// portal's history. A client may ask the bridge for them (allowKeyShare answers with
// m.forwarded_room_key), but Element's crypto asks only the user's own devices and accepts a
// forwarded key only from them. What every client accepts from any device is m.room_key: the
// key a session's own device shares, signed by the session, which only the outbound session
// can produce, and only at its current index. So the bridge keeps a copy of each outbound
// session it makes in a portal before its first message (index 0), and when the owner's
// device list changes (a new device, or one newly cross-signed), it sends each device that
// share_with trusts the kept sessions it does not hold.

// historyKeys sends kept sessions to the owners' devices, in a goroutine of its own: a /sync
// only says whose devices changed.
type historyKeys struct {
	store    *historyStore
	mach     *crypto.OlmMachine
	crypto   *outboundStore
	bot      id.UserID
	minTrust id.TrustState
	count    func(outcome string, n int)
	log      zerolog.Logger

	mu      sync.Mutex
	pending map[id.UserID]*historyRetry
	wake    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

// historyRetry is an owner whose devices are to be checked, at or after at.
type historyRetry struct {
	attempts int
	at       time.Time
}

const (
	// historySendInterval spaces the keys sent: a user with many portals gets thousands.
	historySendInterval = 50 * time.Millisecond
	// historyPage is how many sessions are read at a time.
	historyPage = 100
	// historyAttempts and historyBackoff bound the retries of an owner whose device could
	// not be sent a key (no one-time key left, homeserver down).
	historyAttempts = 8
	historyBackoff  = 10 * time.Second
	historyMaxWait  = 10 * time.Minute
)

func newHistoryKeys(m *Machine) *historyKeys {
	return &historyKeys{
		store: &historyStore{db: m.db, perRoom: m.cfg.History.Sessions, maxAge: m.cfg.History.MaxAgeDuration(), now: time.Now},
		mach:  m.mach, crypto: m.store, bot: m.client.UserID, minTrust: m.minTrust(), count: m.countHistory,
		log:     m.log.With().Str("component", "history_keys").Logger(),
		pending: map[id.UserID]*historyRetry{}, wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// start runs the sender until close. It first looks at every owner's devices once: a device
// may have appeared or been verified while the bridge was down, or a send failed then.
func (h *historyKeys) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go h.run(h.log.WithContext(ctx))
}

func (h *historyKeys) close() {
	h.stop()
	<-h.done
}

// keep saves the room's outbound session just shared, before its first message, for the
// portal's owner's later devices.
func (h *historyKeys) keep(ctx context.Context, room id.RoomID, owner id.UserID) {
	if h.store.perRoom == 0 || owner == "" {
		return
	}
	log := zerolog.Ctx(ctx).With().Stringer("room_id", room).Logger()
	ogs, err := h.crypto.GetOutboundGroupSession(ctx, room)
	if err != nil || ogs == nil {
		log.Warn().Err(err).Msg("Could not read the Megolm session just shared, to keep it for the owner's new devices")
		return
	}
	if ogs.Internal.MessageIndex() != 0 {
		// A session that was shared again after encrypting (mautrix does not do that today):
		// its first key is gone.
		return
	}
	pickle, err := ogs.Internal.Pickle(pickleKey)
	if err == nil {
		err = h.store.add(ctx, room, owner, ogs.ID(), pickle)
	}
	if err != nil {
		log.Warn().Err(err).Stringer("session_id", ogs.ID()).Msg("Failed to keep a Megolm session for the owner's new devices")
	}
}

// changed hears from the bot's /sync whose devices changed.
func (h *historyKeys) changed(ctx context.Context, users []id.UserID) {
	for _, user := range users {
		if user == h.bot {
			continue
		}
		owner, err := h.store.isOwner(ctx, user)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("user_id", user).Msg("Failed to read whether the bridge keeps history keys for a user")
			continue
		}
		if owner {
			h.enqueue(user)
		}
	}
}

func (h *historyKeys) enqueue(users ...id.UserID) {
	h.mu.Lock()
	for _, u := range users {
		h.pending[u] = &historyRetry{}
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *historyKeys) run(ctx context.Context) {
	defer close(h.done)
	log := zerolog.Ctx(ctx)
	if err := h.store.prune(ctx); err != nil {
		log.Warn().Err(err).Msg("Failed to forget old history keys")
	}
	if owners, err := h.store.owners(ctx); err != nil {
		log.Warn().Err(err).Msg("Failed to list the owners of kept history keys")
	} else {
		h.enqueue(owners...)
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-retry.C:
		}
		for _, t := range h.due() {
			err := h.give(ctx, t.owner)
			if ctx.Err() != nil {
				return
			}
			h.finish(ctx, t, err)
		}
		if wait, ok := h.nextRetry(); ok {
			retry.Reset(wait)
		}
	}
}

// due takes the owners whose turn it is.
func (h *historyKeys) due() []historyTask {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	var out []historyTask
	for u, r := range h.pending {
		if !r.at.After(now) {
			out = append(out, historyTask{owner: u, attempts: r.attempts})
		}
	}
	for _, t := range out {
		// Out of pending while given: a change heard meanwhile queues the owner afresh.
		delete(h.pending, t.owner)
	}
	slices.SortFunc(out, func(a, b historyTask) int { return strings.Compare(string(a.owner), string(b.owner)) })
	return out
}

// historyTask is an owner whose devices are checked now, after attempts failed ones.
type historyTask struct {
	owner    id.UserID
	attempts int
}

// finish schedules a retry of an owner whose devices could not all be given their keys.
func (h *historyKeys) finish(ctx context.Context, t historyTask, err error) {
	if err == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, again := h.pending[t.owner]; again {
		return // queued afresh by a change heard meanwhile
	}
	attempts := t.attempts + 1
	log := zerolog.Ctx(ctx).With().Err(err).Stringer("owner", t.owner).Int("attempts", attempts).Logger()
	if attempts >= historyAttempts {
		log.Error().Msg("Gave up sending history keys to a portal owner's devices until their devices change again")
		return
	}
	wait := min(historyBackoff<<(attempts-1), historyMaxWait)
	h.pending[t.owner] = &historyRetry{attempts: attempts, at: time.Now().Add(wait)}
	log.Warn().Dur("retry_in", wait).Msg("Failed to send history keys to a portal owner's devices; will retry")
}

func (h *historyKeys) nextRetry() (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var next time.Time
	for _, r := range h.pending {
		if next.IsZero() || r.at.Before(next) {
			next = r.at
		}
	}
	return max(time.Until(next), 0), !next.IsZero()
}

// give sends each of owner's devices that share_with trusts the kept sessions it lacks.
func (h *historyKeys) give(ctx context.Context, owner id.UserID) error {
	log := zerolog.Ctx(ctx).With().Stringer("owner", owner).Logger()
	devices, err := h.crypto.GetDevices(ctx, owner)
	if err == nil && devices == nil {
		var fetched map[id.UserID]map[id.DeviceID]*id.Device
		fetched, err = h.mach.FetchKeys(ctx, []id.UserID{owner}, true)
		devices = fetched[owner]
	}
	if err != nil {
		return fmt.Errorf("failed to read the devices of %s: %w", owner, err)
	}
	ids := make([]id.DeviceID, 0, len(devices))
	for d := range devices {
		ids = append(ids, d)
	}
	slices.Sort(ids)
	for _, d := range ids {
		dev := devices[d]
		if dev.Trust == id.TrustStateBlacklisted {
			continue
		}
		if trust, _ := h.mach.ResolveTrustContext(ctx, dev); trust < h.minTrust {
			log.Info().Stringer("device_id", d).Str("trust", trust.String()).Msg("Not giving history keys to a device share_with does not allow (yet)")
			h.count(HistoryUntrusted, 1)
			continue
		}
		if err := h.giveDevice(ctx, owner, dev); err != nil {
			return err
		}
	}
	return nil
}

func (h *historyKeys) giveDevice(ctx context.Context, owner id.UserID, dev *id.Device) error {
	log := zerolog.Ctx(ctx).With().Stringer("owner", owner).Stringer("device_id", dev.DeviceID).Logger()
	given, held := 0, 0
	defer func() {
		h.count(HistoryGiven, given)
		h.count(HistoryHeld, held)
		if given > 0 {
			log.Info().Int("given", given).Int("already_held", held).Msg("Gave a portal owner's device the keys of their portals' history")
		}
	}()
	for {
		sessions, err := h.store.missing(ctx, owner, dev.IdentityKey, historyPage)
		if err != nil {
			return fmt.Errorf("failed to list the history keys %s/%s lacks: %w", owner, dev.DeviceID, err)
		}
		if len(sessions) == 0 {
			return nil
		}
		for _, s := range sessions {
			shared, err := h.crypto.IsOutboundGroupSessionShared(ctx, owner, dev.IdentityKey, s.id)
			if err != nil {
				return fmt.Errorf("failed to read whether %s/%s got session %s: %w", owner, dev.DeviceID, s.id, err)
			}
			if !shared {
				if err := h.send(ctx, dev, s); err != nil {
					h.count(HistoryFailed, 1)
					return err
				}
				given++
			} else {
				held++
			}
			if err := h.store.hold(ctx, s.id, dev, !shared); err != nil {
				return err
			}
		}
	}
}

// send gives one device one session's key, spaced from the last one sent.
func (h *historyKeys) send(ctx context.Context, dev *id.Device, s historySession) error {
	content, err := s.roomKey()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(historySendInterval):
	}
	if err := h.mach.SendEncryptedToDevice(ctx, dev, event.ToDeviceRoomKey, event.Content{Parsed: content}); err != nil {
		return fmt.Errorf("failed to send %s/%s the key of session %s in %s: %w", dev.UserID, dev.DeviceID, s.id, s.room, err)
	}
	return nil
}
