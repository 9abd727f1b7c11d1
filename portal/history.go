package portal

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"codeberg.org/causeway/causeway/database"
)

// KindHistoryChunk is a history-sync notification from the user's phone: a pointer to one
// chunk of their history on WhatsApp's media servers. It waits in the queue of the user's
// own chat until the chunk has been downloaded and every message in it queued into its
// portal, so history survives a restart halfway through a sync.
const KindHistoryChunk = "wa_history_chunk"

// NewHistoryChunkItem packs a history-sync notification for the queue.
func NewHistoryChunkItem(info *types.MessageInfo, notification *waE2E.HistorySyncNotification) (*database.QueueItem, error) {
	payload, err := proto.Marshal(notification)
	if err != nil {
		return nil, fmt.Errorf("failed to serialize history notification %s: %w", info.ID, err)
	}
	return &database.QueueItem{
		Direction: database.ToMatrix,
		DedupKey:  "history:" + info.ID,
		Kind:      KindHistoryChunk,
		Payload:   payload,
		QueuedAt:  info.Timestamp,
	}, nil
}

func (p *Portal) handleHistoryChunk(ctx context.Context, item *database.QueueItem) error {
	load := p.m.deps.LoadHistory
	if load == nil {
		return permanent(errors.New("this bridge does not load history"))
	}
	return load(ctx, p.row.Receiver, item.Payload)
}
