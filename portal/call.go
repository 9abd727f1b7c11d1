package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
)

// KindWACall is a WhatsApp call to the user: the bridge carries no calls, so each one is
// archived and the room is told, or the user would never learn that someone rang.
const KindWACall = "wa_call"

// Call is a WhatsApp call signal as queued.
type Call struct {
	ID        string    `json:"id"`
	Caller    types.JID `json:"caller"`
	Video     bool      `json:"video,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// Ended is WhatsApp's reason when the call ended ("timeout" when nobody answered); empty
	// for the offer, the only signal the room is told about.
	Ended string `json:"ended,omitempty"`
}

func (c *Call) media() string {
	if c.Video {
		return "video"
	}
	return "voice"
}

// NewCallItem packs a call signal for the queue.
func NewCallItem(c *Call) (*database.QueueItem, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("failed to encode call %s: %w", c.ID, err)
	}
	stage := "offer"
	if c.Ended != "" {
		stage = "end"
	}
	return &database.QueueItem{Direction: database.ToMatrix, Kind: KindWACall, DedupKey: "call:" + c.ID + ":" + stage,
		Payload: payload, QueuedAt: c.Timestamp}, nil
}

func (p *Portal) handleWACall(ctx context.Context, item *database.QueueItem) error {
	var c Call
	if err := json.Unmarshal(item.Payload, &c); err != nil {
		return permanent(fmt.Errorf("queued call is corrupt: %w", err))
	}
	name := "+" + c.Caller.User
	if g, err := p.m.ghosts.Get(ctx, c.Caller); err == nil && g.Name != "" {
		name = g.Name
	}
	outcome, media := "offered", c.media()
	if c.Ended != "" {
		outcome, media = c.Ended, "" // the end of a call does not say what kind it was
	}
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		return []*archive.Entry{{
			Kind: archive.KindCall, Account: string(p.row.Receiver), Chat: p.row.ChatJID, ChatName: p.row.Name,
			Sender: c.Caller.String(), SenderName: name, Time: c.Timestamp,
			Call: &archive.Call{ID: c.ID, Media: media, Outcome: outcome},
		}}, nil
	}); err != nil {
		return err
	}
	if c.Ended != "" || p.recordOnly() {
		return nil // the offer told the room already
	}
	if err := p.ensureRoom(ctx); err != nil {
		return err
	}
	text := fmt.Sprintf("📞 Missed %s call from %s. The bridge cannot carry WhatsApp calls: answer or call back on your phone.",
		c.media(), name)
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text, Mentions: &event.Mentions{UserIDs: []id.UserID{p.row.Receiver}}}
	if _, err := p.m.matrix.SendMessage(ctx, p.m.matrix.BotMXID(), p.RoomID(), event.EventMessage, content, SendOptions{
		Timestamp: c.Timestamp, TransactionID: txnID(p.row.PortalKey, "call:"+strings.ToLower(c.ID), 0),
	}); err != nil {
		return fmt.Errorf("failed to tell the room about a call: %w", err)
	}
	return nil
}
