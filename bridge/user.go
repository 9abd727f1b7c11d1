package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/portal"
)

// User is a Matrix user of the bridge and, once linked, their WhatsApp login.
type User struct {
	b   *Bridge
	log zerolog.Logger

	mu        sync.Mutex
	row       *database.User
	client    *whatsmeow.Client
	wa        *waClient
	connected bool
	lastSeen  time.Time // last event from WhatsApp, for status
	health    health    // connection health and capture episodes (health.go)
	login     *loginProcess
	pushName  pushNameWait
	hist      historyState
	// spaceMu makes two portals created at once share one new space.
	spaceMu sync.Mutex
	avatars avatarRefresher
}

// MXID is the user's Matrix ID.
func (u *User) MXID() id.UserID { return u.row.MXID }

// getUser returns the bridge's User for mxid, creating the row on first contact.
func (b *Bridge) getUser(ctx context.Context, mxid id.UserID, create bool) (*User, error) {
	b.usersMu.Lock()
	defer b.usersMu.Unlock()
	if u, ok := b.users[mxid]; ok {
		return u, nil
	}
	row, err := b.db.Users.Get(ctx, mxid)
	if err != nil {
		return nil, err
	}
	if row == nil {
		if !create {
			return nil, nil
		}
		row = &database.User{MXID: mxid}
		if err := b.db.Users.Put(ctx, row); err != nil {
			return nil, err
		}
	}
	u := &User{b: b, row: row, log: b.log.With().Stringer("user_id", mxid).Logger()}
	b.users[mxid] = u
	return u, nil
}

// WhatsApp gives portals the user's client while it is connected.
func (b *Bridge) WhatsApp(receiver id.UserID) (portal.WhatsApp, bool) {
	b.usersMu.Lock()
	u, ok := b.users[receiver]
	b.usersMu.Unlock()
	if !ok {
		return nil, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.wa == nil || !u.connected {
		return nil, false
	}
	return u.wa, true
}

// newClient builds a whatsmeow client for a device with the bridge's settings.
func (u *User) newClient(device *store.Device) *whatsmeow.Client {
	// whatsmeow logs every stanza at debug; info keeps the bridge log readable.
	cli := whatsmeow.NewClient(device, waLog.Zerolog(u.log.With().Str("component", "whatsmeow").Logger().Level(max(u.log.GetLevel(), zerolog.InfoLevel))))
	// The ack goes out only after our handler has written the message to the queue, so
	// WhatsApp redelivers anything we had not stored when we stopped.
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	cli.EnableAutoReconnect = true
	// Without it whatsmeow gives up after a failed first connect, and a bridge started while
	// WhatsApp was unreachable would stay down until someone sent `reconnect`.
	cli.InitialAutoReconnect = true
	cli.AutoTrustIdentity = true
	// Without this a first full app-state sync applies the address book silently, and a
	// contact's ghost could keep its number for a name.
	cli.EmitAppStateEventsOnFullSync = true
	// History chunks are fetched from the durable queue (loadHistory), not by whatsmeow
	// in the background where a restart would lose the rest of a sync.
	cli.ManualHistorySyncDownload = true
	if hook := u.b.opts.ConfigureWhatsApp; hook != nil {
		hook(cli)
	}
	cli.AddEventHandlerWithSuccessStatus(u.handleWAEvent)
	return cli
}

// connect starts the user's saved WhatsApp session, if there is one.
func (u *User) connect(ctx context.Context) error {
	u.mu.Lock()
	deviceJID := u.row.WADevice
	u.mu.Unlock()
	if deviceJID == "" {
		return nil
	}
	jid, err := types.ParseJID(deviceJID)
	if err != nil {
		return fmt.Errorf("stored device %q is not a JID: %w", deviceJID, err)
	}
	device, err := u.b.db.WhatsApp.GetDevice(ctx, jid)
	if err != nil {
		return err
	}
	if device == nil {
		u.log.Warn().Str("device", u.b.logJID(deviceJID)).Msg("The WhatsApp session is gone from the store; the user must log in again")
		return u.forgetDevice(ctx)
	}
	cli := u.newClient(device)
	u.mu.Lock()
	u.client = cli
	u.wa = &waClient{cli: cli, http: u.b.waHTTP()}
	u.mu.Unlock()
	if err := u.b.portals.Resume(ctx, u.row.MXID); err != nil {
		u.log.Err(err).Msg("Failed to resume queued relaying")
	}
	if err := cli.Connect(); err != nil {
		// Network errors never get here (InitialAutoReconnect retries them in the background).
		u.log.Warn().Err(err).Msg("Failed to connect to WhatsApp")
		u.retryLater(ctx, 0, false)
	}
	return nil
}

func (u *User) forgetDevice(ctx context.Context) error {
	u.mu.Lock()
	u.row.WADevice = ""
	u.connected = false
	row := *u.row
	u.mu.Unlock()
	return u.b.db.Users.Put(ctx, &row)
}

// disconnect closes the WhatsApp connection, keeping the session.
func (u *User) disconnect() {
	u.mu.Lock()
	cli := u.client
	u.connected = false
	u.mu.Unlock()
	if cli != nil {
		cli.Disconnect()
	}
}

func (u *User) setConnected(connected bool) {
	u.mu.Lock()
	u.connected = connected
	u.lastSeen = time.Now()
	u.mu.Unlock()
	u.b.metrics.setConnected(u.row.MXID, connected)
	if connected {
		u.b.portals.PokeAll(u.row.MXID)
	}
}

// status describes the login for ping/status.
func (u *User) status() string {
	version, source := u.b.WhatsAppVersion()
	versionLine := fmt.Sprintf(" WhatsApp Web version in use: %s (%s).", version, source)
	s := u.healthSnapshot()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.row.WADevice == "" {
		if s.State == stateLoggedOut {
			return "You are not logged in to WhatsApp: WhatsApp logged the bridge out (" + s.Detail + "). Send `login` to link your phone again."
		}
		return "You are not logged in to WhatsApp. Send `login` to link your phone."
	}
	state := s.State
	if !s.Since.IsZero() {
		state += " since " + s.Since.Format(time.DateTime)
	}
	if s.State == stateBanned && !s.Until.IsZero() {
		state += ", until " + s.Until.Format(time.DateTime)
	}
	if s.Detail != "" {
		state += " (" + s.Detail + ")"
	}
	seen := "never"
	if !u.lastSeen.IsZero() {
		seen = u.lastSeen.Format(time.DateTime)
	}
	return fmt.Sprintf("Logged in to WhatsApp as +%s (%s), %s. Device: %s. Last heard from WhatsApp: %s.%s",
		u.row.WAPhone, u.row.WAPushName, state, u.row.WADevice, seen, versionLine)
}

// notify sends a notice to the user's management room, if they have one.
func (u *User) notify(ctx context.Context, markdown string) {
	u.mu.Lock()
	room := u.row.ManagementRoom
	u.mu.Unlock()
	if room != "" {
		u.b.reply(ctx, room, markdown)
	}
}
