// Package bridge is the Causeway appservice: it owns the process lifecycle, the HTTP
// listener the homeserver talks to, the bridge bot and its commands, and routes events.
//
// Only cmd/causeway and tests import this package; everything below it (portal, puppet,
// msgconv, archive, database) is reached through it.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/archivecmd"
	"codeberg.org/causeway/causeway/msgconv"
	"codeberg.org/causeway/causeway/portal"
	"codeberg.org/causeway/causeway/puppet"
)

// Options are the bridge's settings that do not come from the config file: they are for
// the programs that embed the bridge (tests and cmd/causeway-demo), never for operators.
type Options struct {
	// ConfigureWhatsApp is called on every new whatsmeow client; the simulator's wiring
	// goes here. Nothing in the config file can set it.
	ConfigureWhatsApp func(*whatsmeow.Client)
	// WhatsAppHTTP fetches profile pictures; nil means http.DefaultClient.
	WhatsAppHTTP *http.Client
	// VersionHTTP fetches the current WhatsApp Web version (web.whatsapp.com); nil means
	// WhatsAppHTTP.
	VersionHTTP *http.Client
	// Clock runs the connection-health checks (phone last seen, ban expiry, retries); nil means
	// the real one.
	Clock Clock
}

// Bridge is one running Causeway.
type Bridge struct {
	cfg  *config.Config
	log  zerolog.Logger
	opts Options

	db  *database.Database
	as  *appservice.AppService
	bot *appservice.IntentAPI

	commands *commandSet
	txns     *txnDedup
	// syncAhead is what the bot's sync has seen and not yet taken in (syncahead.go).
	syncAhead syncAhead
	metrics   *metrics
	archive   *archive.Archive
	puppets   *puppet.Manager
	portals   *portal.Manager
	imports   importRuns

	usersMu sync.Mutex
	users   map[id.UserID]*User

	// directory maps WhatsApp numbers to the organisation's Matrix accounts.
	directory  directory
	colleagues *colleagueFinder

	server   *http.Server
	listener net.Listener
	serveErr chan error

	stopOnce sync.Once
	stopping chan struct{}
	// jobs is the background work Stop cancels and waits for (jobs.go).
	jobs *jobs

	syncCancel context.CancelFunc
	syncDone   chan struct{}
	// crypto is the bot's encryption device (crypto.go).
	crypto *cryptoState

	clock     Clock
	waVersion waVersionInUse
	// adminRoomMu makes two notices at once share one new admin room.
	adminRoomMu     sync.Mutex
	adminRoomJoined bool
}

// New checks that the config can run a bridge. Nothing is opened until Start.
func New(cfg *config.Config, log zerolog.Logger, opts Options) (*Bridge, error) {
	if !cfg.TokensGenerated() {
		return nil, errors.New("appservice.as_token and appservice.hs_token are not set: " +
			"run `causeway -c CONFIG -g -r registration.yaml` and give registration.yaml to the homeserver")
	}
	b := &Bridge{
		cfg:      cfg,
		log:      log,
		opts:     opts,
		txns:     newTxnDedup(256),
		stopping: make(chan struct{}),
		jobs:     newJobs(log.With().Str("component", "jobs").Logger()),
		users:    map[id.UserID]*User{},
		metrics:  newMetrics(cfg.Metrics),
		clock:    opts.Clock,
	}
	if b.clock == nil {
		b.clock = realClock{}
	}
	b.metrics.loginStates = b.loginStateCounts
	b.crypto = newCryptoState(b.metrics.registry)
	dir, err := loadDirectory(cfg.Migration.DirectoryFile)
	if err != nil {
		return nil, err
	}
	b.directory = dir
	b.colleagues = &colleagueFinder{b: b}
	b.commands = newCommandSet(b)
	b.addLoginCommands(b.commands)
	b.addContactCommands(b.commands)
	b.addMigrationCommands(b.commands)
	b.addImportCommand(b.commands)
	b.addBackfillCommand(b.commands)
	b.addArchiveCommands(b.commands)
	return b, nil
}

// Start opens the database, starts listening for the homeserver, and makes sure the bot
// exists. When it returns nil the bridge is serving; the caller must call Stop.
func (b *Bridge) Start(ctx context.Context) error {
	db, err := database.Open(ctx, b.cfg.Database, b.log.With().Str("component", "database").Logger())
	if err != nil {
		return err
	}
	b.db = db
	b.metrics.depth = db.Queue.Depth
	if b.cfg.Archive.Enabled {
		// A live writer elsewhere (`causeway archive export`) is waited for; a dead one is not.
		if b.archive, err = archivecmd.OpenWriter(ctx, b.cfg, db, b.log, "the bridge", true); err != nil {
			b.db.Close()
			return err
		}
	}

	if err := b.setupAppservice(); err != nil {
		return errors.Join(err, b.closeStores())
	}
	// Listen before talking to the homeserver: anything we do can trigger a transaction,
	// and a homeserver that finds us down backs off for up to a minute.
	addr := net.JoinHostPort(b.cfg.Appservice.Hostname, strconv.Itoa(b.cfg.Appservice.Port))
	b.listener, err = net.Listen("tcp", addr)
	if err != nil {
		return errors.Join(fmt.Errorf("failed to listen on appservice.hostname/port %s: %w", addr, err), b.closeStores())
	}
	b.server = &http.Server{Handler: b.router(), ReadHeaderTimeout: 30 * time.Second}
	b.serveErr = make(chan error, 1)
	go func() { b.serveErr <- b.server.Serve(b.listener) }()
	b.log.Info().Str("address", addr).Msg("Listening for the homeserver")

	if err := b.setupBot(ctx); err != nil {
		_ = b.Stop(context.Background())
		return err
	}
	if err := b.openCrypto(ctx); err != nil {
		_ = b.Stop(context.Background())
		return err
	}
	// Before any login connects: the version is what WhatsApp checks first.
	b.resolveWAVersion(ctx)
	if err := b.connectUsers(ctx); err != nil {
		_ = b.Stop(context.Background())
		return err
	}
	b.startMatrixSync()
	b.jobs.Go(context.WithoutCancel(ctx), "health: phones", b.watchPhones)
	b.jobs.Go(context.Background(), "redaction_wait", b.expireWaitingRedactions)
	b.jobs.Go(context.Background(), "accepted_events_prune", b.pruneAccepted)
	b.log.Info().Stringer("bot", b.bot.UserID).Msg("Bridge started")
	return nil
}

// connectUsers reconnects every saved WhatsApp session and resumes relaying what was
// queued when the bridge stopped.
func (b *Bridge) connectUsers(ctx context.Context) error {
	rows, err := b.db.Users.ListLoggedIn(ctx)
	if err != nil {
		return err
	}
	for _, row := range rows {
		u, err := b.getUser(ctx, row.MXID, false)
		if err != nil {
			return err
		}
		u.loadPhoneSeen(ctx)
		u.startingCapture(ctx)
		if err := u.connect(ctx); err != nil {
			u.log.Err(err).Msg("Failed to start the WhatsApp session")
		}
	}
	return nil
}

func (b *Bridge) convertOptions() msgconv.Options {
	opts := msgconv.Options{}
	if b.cfg.Bridge.ViewOnce == "notice" {
		opts.ViewOnce = msgconv.ViewOnceNotice
	}
	return opts
}

func (b *Bridge) waHTTP() *http.Client {
	if b.opts.WhatsAppHTTP != nil {
		return b.opts.WhatsAppHTTP
	}
	return http.DefaultClient
}

func (b *Bridge) setupAppservice() error {
	reg := b.cfg.Registration()
	as, err := appservice.CreateFull(appservice.CreateOpts{
		Registration:     reg,
		HomeserverDomain: b.cfg.Homeserver.Domain,
		HomeserverURL:    b.cfg.Homeserver.Address,
		HostConfig:       appservice.HostConfig{Hostname: b.cfg.Appservice.Hostname, Port: uint16(b.cfg.Appservice.Port)},
		StateStore:       b.db.StateStore,
	})
	if err != nil {
		return fmt.Errorf("failed to set up the appservice: %w", err)
	}
	as.Log = b.log.With().Str("component", "appservice").Logger()
	as.QueryHandler = queryHandler{b}
	keepHomeserverConnections(as.HTTPClient)
	b.as = as
	b.bot = as.BotIntent()
	mx := asMatrix{as}
	b.puppets = puppet.NewManager(b.cfg, mx, b.db, b.log.With().Str("component", "puppets").Logger())
	deps := portal.Deps{
		Config: b.cfg, DB: b.db, Matrix: mx, Ghosts: ghostDirectory{b.puppets}, Logins: b,
		Log: b.log.With().Str("component", "portals").Logger(), Observer: b.metrics,
		Convert: b.convertOptions(), RoomCreated: b.portalRoomCreated, LoadHistory: b.loadHistory,
	}
	if b.cfg.Encryption.Allow {
		deps.Matrix, deps.Decrypter, deps.Command = encryptingMatrix{Matrix: mx, b: b}, cryptoDecrypter{b}, b.portalCommand
	}
	b.portals = portal.NewManager(deps)
	if b.archive != nil {
		b.portals.SetArchive(b.archive)
	}
	return nil
}

// homeserverIdleConns is how many idle connections to the homeserver are kept: one per
// portal queue sending at once, with room to spare.
const homeserverIdleConns = 64

// keepHomeserverConnections lets every portal queue reuse its connection. Go's default
// keeps two idle connections per host, so with a few dozen chats relaying at once most
// sends closed their connection afterwards and the next one dialled again, which cost
// both the bridge and the homeserver a TCP handshake (and a TLS one on https) per event.
func keepHomeserverConnections(cli *http.Client) {
	if cli.Transport != nil {
		if t, ok := cli.Transport.(*http.Transport); ok {
			t.MaxIdleConnsPerHost = homeserverIdleConns // a unix socket transport mautrix made
		}
		return
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = homeserverIdleConns
	t.MaxIdleConnsPerHost = homeserverIdleConns
	cli.Transport = t
}

// setupBot checks the homeserver knows our token, registers the bot and keeps its profile
// in line with the config.
func (b *Bridge) setupBot(ctx context.Context) error {
	if err := b.waitForHomeserver(ctx); err != nil {
		return err
	}
	whoami, err := b.bot.Whoami(ctx)
	if errors.Is(err, mautrix.MUnknownToken) {
		return fmt.Errorf("the homeserver does not accept appservice.as_token: is the registration file generated from this config installed in the homeserver? (%w)", err)
	} else if err != nil {
		return fmt.Errorf("failed to check the bot's identity: %w", err)
	} else if whoami.UserID != b.bot.UserID {
		return fmt.Errorf("the homeserver says the as_token belongs to %s, not %s", whoami.UserID, b.bot.UserID)
	}
	if err := b.bot.EnsureRegistered(ctx); err != nil {
		return fmt.Errorf("failed to register the bot: %w", err)
	}
	return b.syncBotProfile(ctx)
}

func (b *Bridge) waitForHomeserver(ctx context.Context) error {
	var lastErr error
	for attempt := 0; attempt < 30; attempt++ {
		_, lastErr = b.bot.Versions(ctx)
		if lastErr == nil {
			return nil
		}
		b.log.Warn().Err(lastErr).Int("attempt", attempt+1).Msg("Homeserver not reachable yet")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("homeserver.address %s is not reachable: %w", b.cfg.Homeserver.Address, lastErr)
}

const kvBotProfile = "bot_profile"

func (b *Bridge) syncBotProfile(ctx context.Context) error {
	want := b.cfg.Appservice.Bot.Displayname + "\n" + b.cfg.Appservice.Bot.Avatar
	have, err := b.db.KV.Get(ctx, kvBotProfile)
	if err != nil || have == want {
		return err
	}
	if err := b.bot.SetDisplayName(ctx, b.cfg.Appservice.Bot.Displayname); err != nil {
		return fmt.Errorf("failed to set the bot's display name: %w", err)
	}
	if b.cfg.Appservice.Bot.Avatar != "" {
		if err := b.bot.SetAvatarURL(ctx, id.ContentURIString(b.cfg.Appservice.Bot.Avatar).ParseOrIgnore()); err != nil {
			return fmt.Errorf("failed to set the bot's avatar: %w", err)
		}
	}
	return b.db.KV.Set(ctx, kvBotProfile, want)
}

// Stop stops accepting transactions and cancels the background jobs, lets both finish, then
// closes the archive and the database. It is safe to call more than once.
func (b *Bridge) Stop(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		close(b.stopping)
		b.jobs.stop()
		b.stopMatrixSync()
		if b.server != nil {
			shutdownCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err = b.server.Shutdown(shutdownCtx); err != nil {
				err = fmt.Errorf("in-flight transactions did not finish: %w", err)
			}
			if serveErr := <-b.serveErr; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
				err = errors.Join(err, serveErr)
			}
		}
		// Let the queues finish the item in hand while WhatsApp is still connected, so a send
		// in flight gets its answer instead of being retried (and duplicated) after the
		// restart. Whatever WhatsApp delivers meanwhile is queued durably and waits. Then
		// disconnect: from then on nothing is acknowledged, and it comes again next time.
		if b.portals != nil {
			b.portals.Stop()
		}
		b.usersMu.Lock()
		for _, u := range b.users {
			u.disconnect()
		}
		b.usersMu.Unlock()
		// The jobs write to both.
		b.jobs.wait()
		b.closeCrypto()
		err = errors.Join(err, b.closeStores())
		b.log.Info().Msg("Bridge stopped")
	})
	return err
}

// closeStores closes the archive, which issues the shutdown checkpoint and gives up the writer lease,
// then the database.
func (b *Bridge) closeStores() error {
	var err error
	if b.archive != nil {
		err = b.archive.Close()
	}
	if b.db != nil {
		err = errors.Join(err, b.db.Close())
	}
	return err
}

// Run starts the bridge, serves until ctx is cancelled, then stops it.
func (b *Bridge) Run(ctx context.Context) error {
	if err := b.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-b.serveErr:
		b.serveErr <- err // Stop reads it again
		b.log.Error().Err(err).Msg("The appservice listener failed")
	}
	return b.Stop(context.Background())
}

// BotUserID is the bridge bot's Matrix ID.
func (b *Bridge) BotUserID() id.UserID { return b.cfg.BotUserID() }
