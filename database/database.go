// Package database opens the bridge's one database and owns its schema.
//
// One database (an SQLite file or a PostgreSQL database) holds three independently
// versioned schemas: the bridge's own tables (version table causeway_version), whatsmeow's
// device and Signal session store (whatsmeow_version), and mautrix's Matrix state cache
// (mx_version). Other packages that need tables of their own (the archive) add a child
// schema with Child.
package database

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/lib/pq" // the "postgres" database/sql driver
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	waLog "go.mau.fi/whatsmeow/util/log"
	"maunium.net/go/mautrix/sqlstatestore"
	_ "modernc.org/sqlite" // the pure-Go "sqlite" database/sql driver

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database/upgrades"
	"codeberg.org/causeway/causeway/database/wastore"
)

// ErrSchemaTooNew means the database was written by a newer Causeway than this binary.
var ErrSchemaTooNew = errors.New("the database schema is newer than this causeway binary understands")

// Database is the opened, upgraded database with the stores built on it.
type Database struct {
	*dbutil.Database

	// WhatsApp is the whatsmeow device and Signal store (our own: whatsmeow's sqlstore
	// does not build against the dbutil that mautrix needs).
	WhatsApp *wastore.Container
	// StateStore caches Matrix room state and ghost registrations for the appservice.
	StateStore *StateStore

	Users     *UserQuery
	KV        *KVQuery
	Puppets   *PuppetQuery
	Portals   *PortalQuery
	Messages  *MessageQuery
	Reactions *ReactionQuery
	Queue     *QueueQuery
	// ParkedRedactions are Matrix deletions waiting for the message they delete.
	ParkedRedactions *ParkedRedactionQuery

	log zerolog.Logger
}

// Open connects, applies the pool settings and brings every schema up to date. A schema
// newer than this binary is refused with ErrSchemaTooNew, before anything is written.
func Open(ctx context.Context, cfg config.Database, log zerolog.Logger) (*Database, error) {
	driver, dsn, err := driverAndDSN(cfg)
	if err != nil {
		return nil, err
	}
	file := ""
	if driver == "sqlite" {
		if file = sqliteFile(cfg.URI); file != "" {
			if err := prepareSQLiteFile(file, log); err != nil {
				return nil, err
			}
		}
	}
	raw, err := openDB(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s database: %w", cfg.Type, err)
	}
	pool := dbutil.PoolConfig{
		Type: driver, URI: dsn,
		MaxOpenConns: cfg.MaxOpenConns, MaxIdleConns: cfg.MaxIdleConns,
		ConnMaxIdleTime: cfg.ConnMaxIdleTime, ConnMaxLifetime: cfg.ConnMaxLifetime,
	}
	if driver == "sqlite" {
		// An idle SQLite connection holds no server resources, only memory, and closing
		// one throws away its prepared statements: with fewer idle than open connections,
		// a burst over 20 chats opened a fresh connection (pragmas, statement cache and
		// all) for a good share of its queries. conn_max_idle_time still retires them.
		pool.MaxIdleConns = pool.MaxOpenConns
	}
	if err := raw.Configure(dbutil.Config{PoolConfig: pool}); err != nil {
		raw.Close()
		return nil, fmt.Errorf("failed to configure database pool: %w", err)
	}
	raw.Owner = "causeway"
	raw.VersionTable = "causeway_version"
	raw.UpgradeTable = upgrades.Table
	raw.Log = dbutil.ZeroLogger(log.With().Str("db_section", "bridge").Logger())

	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := raw.RawDB.PingContext(pingCtx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("failed to connect to %s database: %w", cfg.Type, err)
	}
	if file != "" {
		// The ping opened a connection, and with it the WAL files.
		if err := restrictSidecars(file); err != nil {
			raw.Close()
			return nil, err
		}
	}

	db := &Database{Database: raw, log: log}
	db.WhatsApp = wastore.New(
		raw.Child(wastore.VersionTable, wastore.UpgradeTable, dbutil.ZeroLogger(log.With().Str("db_section", "whatsapp_store").Logger())),
		waLog.Zerolog(log.With().Str("component", "whatsapp_store").Logger()))
	db.StateStore = newStateStore(sqlstatestore.NewSQLStateStore(raw, dbutil.ZeroLogger(log.With().Str("db_section", "matrix_state").Logger()), true))
	db.Users = &UserQuery{db: raw}
	db.KV = &KVQuery{db: raw}
	db.Puppets = &PuppetQuery{db: raw}
	db.Portals = &PortalQuery{db: raw}
	db.Messages = &MessageQuery{db: raw}
	db.Reactions = &ReactionQuery{db: raw}
	db.Queue = &QueueQuery{db: raw}
	db.ParkedRedactions = &ParkedRedactionQuery{db: raw}

	if err := db.upgrade(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return db, nil
}

// openDB opens the pool: SQLite through the statement cache, PostgreSQL as dbutil does.
func openDB(driver, dsn string) (*dbutil.Database, error) {
	if driver != "sqlite" {
		return dbutil.NewWithDialect(dsn, driver)
	}
	rawDB, err := openSQLite(dsn)
	if err != nil {
		return nil, err
	}
	return dbutil.NewWithDB(rawDB, driver)
}

// Close writes what the WhatsApp store left pending, then closes the database.
func (db *Database) Close() error {
	return errors.Join(db.WhatsApp.Close(), db.Database.Close())
}

func (db *Database) upgrade(ctx context.Context) error {
	steps := []struct {
		name    string
		upgrade func(context.Context) error
	}{
		{"bridge", db.Database.Upgrade},
		{"whatsapp store", db.WhatsApp.Upgrade},
		{"matrix state store", db.StateStore.Upgrade},
	}
	for _, s := range steps {
		if err := s.upgrade(ctx); err != nil {
			return explainUpgradeError(s.name, err)
		}
	}
	return nil
}

// Child returns a view of the same database with its own version table and upgrades,
// for a package that owns tables of its own.
func (db *Database) Child(versionTable string, table dbutil.UpgradeTable, component string) *dbutil.Database {
	return db.Database.Child(versionTable, table, dbutil.ZeroLogger(db.log.With().Str("db_section", component).Logger()))
}

// UpgradeChild brings a child schema up to date with the same newer-schema check as Open.
func UpgradeChild(ctx context.Context, child *dbutil.Database, component string) error {
	if err := child.Upgrade(ctx); err != nil {
		return explainUpgradeError(component, err)
	}
	return nil
}

func explainUpgradeError(component string, err error) error {
	if errors.Is(err, dbutil.ErrUnsupportedDatabaseVersion) {
		return fmt.Errorf("%w (%s schema: %v); run the newer causeway, or restore the database backup taken before the upgrade",
			ErrSchemaTooNew, component, err)
	}
	if errors.Is(err, dbutil.ErrNotOwned) {
		return fmt.Errorf("the database belongs to another program: %w; give causeway a database of its own", err)
	}
	return fmt.Errorf("failed to upgrade the %s schema: %w", component, err)
}

// sqlitePragmas (and _txlock=immediate: a transaction that reads then writes, as Signal
// decryption does, must wait for the write lock rather than fail with SQLITE_BUSY) are what
// every SQLite connection needs: foreign keys (whatsmeow's store
// relies on cascades), a busy timeout instead of immediate SQLITE_BUSY under concurrent
// writers, WAL so readers never block the writer, and full sync so an acknowledged
// message survives power loss.
var sqlitePragmas = []string{"foreign_keys(1)", "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"}

func driverAndDSN(cfg config.Database) (driver, dsn string, err error) {
	switch cfg.Type {
	case "sqlite":
		return "sqlite", SQLiteDSN(cfg.URI), nil
	case "postgres":
		return "postgres", cfg.URI, nil
	default:
		return "", "", fmt.Errorf("database.type: %q is not one of sqlite, postgres", cfg.Type)
	}
}

// SQLiteDSN turns a file path (or a file: URI) into a modernc.org/sqlite DSN with the
// pragmas the bridge needs; pragmas already in a URI are kept.
func SQLiteDSN(pathOrURI string) string {
	base, query, _ := strings.Cut(strings.TrimPrefix(pathOrURI, "file:"), "?")
	values, _ := url.ParseQuery(query)
	have := map[string]bool{}
	for _, p := range values["_pragma"] {
		name, _, _ := strings.Cut(p, "(")
		have[strings.ToLower(name)] = true
	}
	for _, p := range sqlitePragmas {
		name, _, _ := strings.Cut(p, "(")
		if !have[name] {
			values.Add("_pragma", p)
		}
	}
	if values.Get("_txlock") == "" {
		values.Set("_txlock", "immediate")
	}
	return "file:" + base + "?" + values.Encode()
}
