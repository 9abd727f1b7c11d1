// Package portal owns one WhatsApp chat <-> one Matrix room: the room's creation and
// membership, the per-chat ordered queue through which every event of the chat passes in
// both directions, and the message-ID mapping that lets replies, edits, reactions and
// redactions find their targets after restarts.
//
// A portal never parses WhatsApp markup or Matrix HTML itself: msgconv converts, the
// portal carries out what comes back.
package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/redact"
	"codeberg.org/causeway/causeway/msgconv"
	"codeberg.org/causeway/causeway/puppet"
)

// WhatsApp is what a portal needs from its login's WhatsApp client. The bridge adapts a
// whatsmeow client to it; keeping it here keeps whatsmeow's client out of this package.
type WhatsApp interface {
	// OwnJID is the logged-in account (no device part).
	OwnJID() types.JID
	NewMessageID() types.MessageID
	// SendMessage sends msg with the given ID and returns the server's timestamp.
	SendMessage(ctx context.Context, chat types.JID, msgID types.MessageID, msg *waE2E.Message) (time.Time, error)
	Download(ctx context.Context, src msgconv.Downloadable) ([]byte, error)
	Upload(ctx context.Context, data []byte, kind msgconv.MediaKind) (msgconv.UploadResult, error)
	DecryptPollVote(ctx context.Context, info *types.MessageInfo, update *waE2E.PollUpdateMessage) (*waE2E.PollVoteMessage, error)
	EncryptPollVote(ctx context.Context, target *msgconv.MessageRef, vote *waE2E.PollVoteMessage) (*waE2E.PollUpdateMessage, error)
	MarkRead(ctx context.Context, chat, sender types.JID, ids []types.MessageID, ts time.Time) error
	SetTyping(ctx context.Context, chat types.JID, typing bool) error
	GroupInfo(ctx context.Context, chat types.JID) (*types.GroupInfo, error)
	SetGroupName(ctx context.Context, chat types.JID, name string) error
	SetGroupTopic(ctx context.Context, chat types.JID, topic string) error
	// UpdateParticipants adds, removes, promotes or demotes ("add", "remove", "promote", "demote").
	UpdateParticipants(ctx context.Context, chat types.JID, users []types.JID, action string) error
	LeaveGroup(ctx context.Context, chat types.JID) error
	ContactNames(ctx context.Context, jid types.JID) config.ContactNames
	// ProfilePicture returns the current picture ID (empty for none) and a fetcher for its bytes.
	ProfilePicture(ctx context.Context, jid types.JID) (string, puppet.AvatarFetcher, error)
}

// Logins gives a portal the WhatsApp client of its receiver, if logged in right now.
type Logins interface {
	WhatsApp(receiver id.UserID) (WhatsApp, bool)
}

// Deps is everything portals share.
type Deps struct {
	Config *config.Config
	DB     *database.Database
	// Matrix is the homeserver; Ghosts the contacts' users on it.
	Matrix  Matrix
	Ghosts  Ghosts
	Logins  Logins
	Convert msgconv.Options
	Log     zerolog.Logger
	// Observer, when set, hears about every relayed event (metrics).
	Observer Observer
	// Archive, when set, records every event before it is relayed.
	Archive Archiver
	// RoomCreated, when set, hears about every new portal room (the bridge files it in the
	// receiver's personal space and points out contacts who are on Matrix).
	RoomCreated func(ctx context.Context, p *Portal)
	// LoadHistory fetches one of WhatsApp's history-sync chunks (the notification's
	// protobuf) and files its messages into their portals; the bridge implements it.
	LoadHistory func(ctx context.Context, receiver id.UserID, notification []byte) error
	// Decrypter, when set, decrypts Matrix users' encrypted events before they are relayed.
	Decrypter Decrypter
	// Command, when set, sees every decrypted event first and reports whether it took it as
	// a command for the bot, which is then not relayed. Plaintext commands never enter a
	// portal's queue; encrypted ones show what they are only once decrypted here.
	Command func(ctx context.Context, plain json.RawMessage) bool
}

// Observer is told what the portals relay; the bridge feeds metrics from it.
type Observer interface {
	Relayed(direction database.Direction, kind string, latency time.Duration)
	RelayFailed(direction database.Direction, kind string, err error)
}

// Manager holds the live portals.
type Manager struct {
	deps   Deps
	matrix Matrix
	ghosts Ghosts
	// retryUnit is the first wait after a failure (defaultRetryUnit; tests shorten it).
	retryUnit time.Duration
	// cutOffGrace is how long a timeline read waits after a send with an unknown outcome
	// (defaultCutOffGrace; tests shorten it), and started when this process began: a send
	// of the previous process may still land.
	cutOffGrace time.Duration
	started     time.Time
	outages     outages

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	portals map[database.PortalKey]*Portal
	byRoom  map[id.RoomID]*Portal
}

// NewManager starts no workers until portals are asked for.
func NewManager(deps Deps) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	ctx = deps.Log.WithContext(ctx)
	return &Manager{
		deps: deps, matrix: deps.Matrix, ghosts: deps.Ghosts, retryUnit: defaultRetryUnit,
		cutOffGrace: defaultCutOffGrace, started: time.Now(), ctx: ctx, cancel: cancel,
		portals: map[database.PortalKey]*Portal{}, byRoom: map[id.RoomID]*Portal{},
	}
}

// Get returns the portal of a chat, loading it (and starting its queue) on first use. The
// Matrix room is created when the first event needs it.
func (m *Manager) Get(ctx context.Context, key database.PortalKey, isGroup bool) (*Portal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.portals[key]; ok {
		return p, nil
	}
	row, err := m.deps.DB.Portals.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if row == nil {
		row = &database.Portal{PortalKey: key, IsGroup: isGroup}
	}
	return m.startLocked(row)
}

// ByRoom returns the portal of a Matrix room, or nil when the room is not a portal.
func (m *Manager) ByRoom(ctx context.Context, roomID id.RoomID) (*Portal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.byRoom[roomID]; ok {
		return p, nil
	}
	row, err := m.deps.DB.Portals.GetByMXID(ctx, roomID)
	if err != nil || row == nil {
		return nil, err
	}
	if p, ok := m.portals[row.PortalKey]; ok {
		return p, nil
	}
	return m.startLocked(row)
}

func (m *Manager) startLocked(row *database.Portal) (*Portal, error) {
	p, err := m.newPortal(row)
	if err != nil {
		return nil, err
	}
	m.portals[row.PortalKey] = p
	if row.MXID != "" {
		m.byRoom[row.MXID] = p
	}
	if m.ctx.Err() == nil { // stopping: items still queue durably, a restart relays them
		m.wg.Add(1)
		go p.run(m.ctx)
		p.poke()
	}
	return p, nil
}

// newPortal makes the portal of row without starting its queue.
func (m *Manager) newPortal(row *database.Portal) (*Portal, error) {
	jid, err := types.ParseJID(row.ChatJID)
	if err != nil {
		return nil, fmt.Errorf("portal has a bad chat JID %q: %w", row.ChatJID, err)
	}
	return &Portal{
		m: m, row: row, chat: jid,
		wake:     make(chan struct{}, 1),
		inflight: newInflight(m.deps.DB),
		delivery: delivery{readableAt: m.started.Add(m.cutOffGrace)},
		log:      m.deps.Log.With().Str("chat_jid", redact.ForConfig(m.deps.Config).JID(row.ChatJID)).Stringer("receiver", row.Receiver).Logger(),
	}, nil
}

// SetArchive turns on archiving. It is separate from Deps so that a nil *archive.Archive
// cannot become a non-nil Archiver interface by accident.
func (m *Manager) SetArchive(a Archiver) { m.deps.Archive = a }

func (m *Manager) roomCreated(p *Portal) {
	m.mu.Lock()
	m.byRoom[p.row.MXID] = p
	m.mu.Unlock()
}

// Resume starts the queues of every portal of receiver that has relaying left to do, as
// after a restart.
func (m *Manager) Resume(ctx context.Context, receiver id.UserID) error {
	keys, err := m.deps.DB.Queue.PortalsWithPending(ctx, receiver)
	if err != nil {
		return err
	}
	for _, key := range keys {
		p, err := m.Get(ctx, key, false)
		if err != nil {
			return err
		}
		p.poke()
	}
	return nil
}

// PokeAll wakes every loaded portal of receiver, after its login reconnected.
func (m *Manager) PokeAll(receiver id.UserID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, p := range m.portals {
		if key.Receiver == receiver {
			p.poke()
		}
	}
}

// Stop stops every queue after the item it is working on.
func (m *Manager) Stop() {
	// Cancelling under the lock orders it against startLocked's check, so no worker is added
	// to the WaitGroup once Wait may have begun.
	m.mu.Lock()
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
}

// Portal is one chat.
type Portal struct {
	m    *Manager
	chat types.JID
	log  zerolog.Logger

	// row is only touched by the queue goroutine once the portal is running, except for
	// the immutable key and the room ID read through RoomID.
	row    *database.Portal
	roomMu sync.RWMutex
	// importMu runs one import of the chat at a time: two at once (the bot command and the
	// CLI) would both find a message missing and send it twice.
	importMu sync.Mutex

	wake chan struct{}

	// inflight is the queue's bookkeeping between storing an item and recording it relayed.
	inflight *inflight
	// meta is what the room was last made to say about the chat (syncRoomMeta).
	meta roomMeta
	// delivery is what the queue knows about what reached the room (recovery.go).
	delivery delivery
}

// Key names the portal.
func (p *Portal) Key() database.PortalKey { return p.row.PortalKey }

// Chat is the WhatsApp chat.
func (p *Portal) Chat() types.JID { return p.chat }

// IsGroup says whether the chat is a WhatsApp group.
func (p *Portal) IsGroup() bool { return p.row.IsGroup }

// RoomID is the Matrix room, or "" before the first event created it.
func (p *Portal) RoomID() id.RoomID {
	p.roomMu.RLock()
	defer p.roomMu.RUnlock()
	return p.row.MXID
}

// Enqueue stores an event durably in the portal's queue and wakes the queue. When it
// returns nil the event will be relayed, across restarts if need be. Use EnqueueMessage
// for WhatsApp messages.
func (p *Portal) Enqueue(ctx context.Context, item *database.QueueItem) error {
	item.PortalKey = p.row.PortalKey
	if _, err := p.m.deps.DB.Queue.Add(ctx, item, database.AddOptions{}); err != nil {
		return err
	}
	p.poke()
	return nil
}

// EnqueueMessage is Enqueue for a WhatsApp message. A redelivery of a message the portal has
// bridged is not queued, and the queue gets the message as decoded (see inflight).
func (p *Portal) EnqueueMessage(ctx context.Context, m *PackedMessage) error {
	item := m.Item
	item.PortalKey = p.row.PortalKey
	waID := m.msg.Info.ID
	p.inflight.handOff(item.DedupKey, item.Payload, m.msg, waID)
	added, err := p.m.deps.DB.Queue.Add(ctx, item, database.AddOptions{NotIfBridged: waID})
	if !added {
		p.inflight.withdraw(item.DedupKey, m.msg)
	}
	if err != nil {
		return err
	}
	p.poke()
	return nil
}

// recordedDirectly is for mappings committed outside the queue's batches (see inflight).
func (p *Portal) recordedDirectly(waID types.MessageID) { p.inflight.recordedDirectly(waID) }

func (p *Portal) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Portal) whatsApp() (WhatsApp, error) {
	wa, ok := p.m.deps.Logins.WhatsApp(p.row.Receiver)
	if !ok {
		return nil, ErrNotConnected
	}
	return wa, nil
}

// ErrNotConnected makes a queue wait, without counting a failure, until the login is back.
var ErrNotConnected = errors.New("the WhatsApp login is not connected")
