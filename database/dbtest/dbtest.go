// Package dbtest opens throwaway databases for the unit tests of the packages above
// database. Only tests import it.
package dbtest

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// InMemory opens an upgraded in-memory SQLite database, closed when the test ends. It runs
// on one connection: each connection to ":memory:" would be a database of its own.
func InMemory(t testing.TB) *database.Database {
	t.Helper()
	cfg := config.Default().Database
	cfg.Type, cfg.URI = "sqlite", ":memory:"
	cfg.MaxOpenConns, cfg.MaxIdleConns = 1, 1
	cfg.ConnMaxIdleTime, cfg.ConnMaxLifetime = "", ""
	db, err := database.Open(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
