package archivecmd

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// OpenReadOnly opens the records archive cfg describes, on the bridge's database, for inspection
// (verify, status, gaps): it writes nothing, needs no writer lease and tolerates damage, so it can
// report on it.
func OpenReadOnly(ctx context.Context, cfg *config.Config, db *database.Database, log zerolog.Logger) (*archive.Archive, error) {
	opts := options(cfg, log)
	opts.ReadOnly = true
	return open(ctx, cfg, db, opts)
}

// OpenWriter opens the archive for writing as writer ("the bridge", "causeway archive export"). While
// another live process has it open for writing it fails with archive.ErrWriterBusy, at once or, with
// wait, once ctx ends. Close releases the writer lease.
func OpenWriter(ctx context.Context, cfg *config.Config, db *database.Database, log zerolog.Logger, writer string, wait bool) (*archive.Archive, error) {
	opts := options(cfg, log)
	opts.Writer, opts.WaitForWriter = writer, wait
	return open(ctx, cfg, db, opts)
}

func open(ctx context.Context, cfg *config.Config, db *database.Database, opts archive.Options) (*archive.Archive, error) {
	a, err := archive.Open(ctx, db.Database, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to open the archive in %s: %w", cfg.Archive.Dir, err)
	}
	return a, nil
}

// options are the archive's settings from the config's archive section.
func options(cfg *config.Config, log zerolog.Logger) archive.Options {
	ac := cfg.Archive
	days := func(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
	retention := archive.Retention{
		Default: days(ac.RetentionDays),
		Chats:   map[string]time.Duration{},
		Users:   map[string]time.Duration{},
	}
	for jid, n := range ac.RetentionChats {
		retention.Chats[jid] = days(n)
	}
	for jid, n := range ac.RetentionUsers {
		retention.Users[jid] = days(n)
	}
	return archive.Options{
		KeyDir:             filepath.Join(ac.Dir, "keys"),
		MediaDir:           filepath.Join(ac.Dir, "media"),
		Origin:             ac.Origin,
		CheckpointEvery:    uint64(ac.CheckpointEvery),
		CheckpointInterval: ac.CheckpointIntervalDuration(),
		Retention:          retention,
		Log:                &log,
	}
}
