package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/database"
)

// KindWAReceipt is a WhatsApp read receipt. It goes through the queue so it is applied after
// the message it reads has been relayed: a contact can read a message before our own send
// of it has finished recording.
const KindWAReceipt = "wa_receipt"

// ReadReceipt is a contact having read messages, as queued.
type ReadReceipt struct {
	Reader     types.JID         `json:"reader"`
	MessageIDs []types.MessageID `json:"message_ids"`
	Timestamp  time.Time         `json:"timestamp"`
}

// NewReadReceiptItem wraps a read receipt for the queue.
func NewReadReceiptItem(r *ReadReceipt) (*database.QueueItem, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("failed to encode a read receipt: %w", err)
	}
	return &database.QueueItem{
		Direction: database.ToMatrix, Kind: KindWAReceipt, Payload: payload, QueuedAt: r.Timestamp,
		DedupKey: "read:" + r.Reader.String() + ":" + strings.Join(r.MessageIDs, ","),
	}, nil
}

// handleWAReceipt moves the reader's read marker to the newest message they read. Receipts
// for messages that were never bridged have nothing to mark.
func (p *Portal) handleWAReceipt(ctx context.Context, item *database.QueueItem) error {
	var r ReadReceipt
	if err := json.Unmarshal(item.Payload, &r); err != nil {
		return permanent(fmt.Errorf("queued receipt is corrupt: %w", err))
	}
	room := p.RoomID()
	if room == "" {
		return nil
	}
	var latest id.EventID
	var latestTS time.Time
	for _, msgID := range r.MessageIDs {
		m, err := p.m.deps.DB.Messages.GetPart(ctx, p.row.PortalKey, msgID, "")
		if err != nil {
			return err
		}
		if m != nil && (latest == "" || m.Timestamp.After(latestTS)) {
			latest, latestTS = m.MXID, m.Timestamp
		}
	}
	if latest == "" {
		return nil
	}
	reader, err := p.joinedGhost(ctx, r.Reader)
	if err != nil {
		return err
	}
	if err := p.m.matrix.MarkRead(ctx, reader, room, latest); err != nil {
		return fmt.Errorf("failed to relay a read receipt: %w", err)
	}
	return nil
}
