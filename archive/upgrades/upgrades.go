// Package upgrades holds the archive's own schema, applied through a dbutil upgrade table so the archive can
// live in the bridge's database (SQLite or PostgreSQL) without sharing a version counter with anyone.
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var files embed.FS

// Table is the archive's upgrade table, versioned in its own "archive_version" table by archive.Open.
var Table = dbutil.BuildUpgradeTable().WithFS(files).Finish()
