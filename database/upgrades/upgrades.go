// Package upgrades holds the bridge's schema history as embedded SQL files.
//
// Each file starts with a dbutil header: "-- vN (compatible with vM+): what it does".
// 00-latest-schema.sql creates the newest schema in one step for fresh databases.
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var rawUpgrades embed.FS

// Table is the bridge schema's upgrade table.
var Table = dbutil.BuildUpgradeTable().WithFS(rawUpgrades).Finish()
