// Package upgrades holds the encryption device's own tables (next to mautrix's crypto store,
// which versions its own), applied through a dbutil upgrade table in the bridge's database
// (SQLite or PostgreSQL) under the version table "e2ee_version".
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var files embed.FS

// Table is the encryption device's upgrade table.
var Table = dbutil.BuildUpgradeTable().WithFS(files).Finish()
