package bridge

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// ArchiveCheckpointPath is where the signed checkpoints are served, read-only, for outside
// witnesses to fetch and keep.
const ArchiveCheckpointPath = "/_causeway/archive/"

// OpenArchive opens the records archive the config describes, on the bridge's database.
// readOnly is for inspection (verify, status, gaps): it writes nothing and tolerates
// damage, so it can report on it. Opening for writing first takes the writer lease
// (archivelease.go), waiting until ctx ends while another process holds it.
func OpenArchive(ctx context.Context, cfg *config.Config, db *database.Database, log zerolog.Logger, readOnly bool) (*archive.Archive, error) {
	if readOnly {
		return openArchive(ctx, cfg, db, log, true)
	}
	lease, err := acquireArchiveLease(ctx, db, readLogEnd(cfg, db), "the bridge", true, log)
	if err != nil {
		return nil, fmt.Errorf("failed to open the archive in %s: %w", cfg.Archive.Dir, err)
	}
	a, err := openArchive(ctx, cfg, db, log, false)
	if err != nil {
		_ = lease.Release(context.Background())
		return nil, err
	}
	// Nothing releases the lease: it ends when the log shows this archive closed.
	return a, nil
}

func openArchive(ctx context.Context, cfg *config.Config, db *database.Database, log zerolog.Logger, readOnly bool) (*archive.Archive, error) {
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
	a, err := archive.Open(ctx, db.Database, archive.Options{
		KeyDir:             filepath.Join(ac.Dir, "keys"),
		MediaDir:           filepath.Join(ac.Dir, "media"),
		Origin:             ac.Origin,
		CheckpointEvery:    uint64(ac.CheckpointEvery),
		CheckpointInterval: ac.CheckpointIntervalDuration(),
		Retention:          retention,
		ReadOnly:           readOnly,
		Log:                &log,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open the archive in %s: %w", ac.Dir, err)
	}
	return a, nil
}

// Archive is the bridge's records archive, or nil when archive.enabled is false.
func (b *Bridge) Archive() *archive.Archive { return b.archive }

func (b *Bridge) mountArchive(mux *http.ServeMux) {
	if b.archive != nil {
		mux.Handle(ArchiveCheckpointPath, http.StripPrefix(ArchiveCheckpointPath[:len(ArchiveCheckpointPath)-1], b.archive.CheckpointHandler()))
	}
}
