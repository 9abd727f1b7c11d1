package bridge

import (
	"net/http"

	"codeberg.org/causeway/causeway/archive"
)

// ArchiveCheckpointPath is where the signed checkpoints are served, read-only, for outside
// witnesses to fetch and keep.
const ArchiveCheckpointPath = "/_causeway/archive/"

// Archive is the bridge's records archive, or nil when archive.enabled is false.
func (b *Bridge) Archive() *archive.Archive { return b.archive }

func (b *Bridge) mountArchive(mux *http.ServeMux) {
	if b.archive != nil {
		mux.Handle(ArchiveCheckpointPath, http.StripPrefix(ArchiveCheckpointPath[:len(ArchiveCheckpointPath)-1], b.archive.CheckpointHandler()))
	}
}
