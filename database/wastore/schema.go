package wastore

import (
	"embed"
	"fmt"
	"io/fs"

	"go.mau.fi/util/dbutil"
)

// VersionTable is the version table New uses when it has to derive the child database itself.
const VersionTable = "wastore_version"

//go:embed upgrades/*.sql
var upgradeFiles embed.FS

// UpgradeTable is the device store's schema history. It is versioned independently of every
// other schema in the database, under its own version table (VersionTable by convention).
var UpgradeTable = buildUpgradeTable()

// upgradeFS is what dbutil's WithFS needs; fs.Sub's result provides it but is typed fs.FS.
type upgradeFS interface {
	fs.ReadFileFS
	fs.ReadDirFS
}

func buildUpgradeTable() dbutil.UpgradeTable {
	// Rooted at upgrades/ because dbutil reads .postgres.sql/.sqlite.sql pairs by bare name.
	sub, err := fs.Sub(upgradeFiles, "upgrades")
	if err != nil {
		panic(fmt.Errorf("wastore: embedded upgrades: %w", err))
	}
	files, ok := sub.(upgradeFS)
	if !ok {
		panic("wastore: embedded upgrade directory cannot be listed")
	}
	return dbutil.BuildUpgradeTable().WithFS(files).Finish()
}
