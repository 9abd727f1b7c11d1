package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/msgconv"
)

// Sources of messages that did not arrive live, as recorded in the archive.
const (
	// SourceHistorySync is WhatsApp's history sync after a login.
	SourceHistorySync = "history_sync"
	// SourceOnDemand is older history a user asked for with the backfill command. It is kept apart
	// from SourceHistorySync so the record shows which messages someone went back for.
	SourceOnDemand = "on_demand"
)

// isBackfill says whether a message came from history rather than live.
func isBackfill(source string) bool { return source == SourceHistorySync || source == SourceOnDemand }

// Queue item kinds of backfill.
const (
	// KindMediaFill fetches the media of a backfilled message that was shown with a placeholder
	// (bridge.history.media: lazy) and replaces the placeholder with an edit carrying it.
	KindMediaFill = "media_fill"
	// KindBotNotice is a notice from the bot to the room, sent after everything queued before it.
	KindBotNotice = "bot_notice"
)

// deferHistoryMedia applies bridge.history.media to a backfilled message: with skip or lazy, each part
// whose media would be downloaded becomes a placeholder notice and its transfers are dropped. It returns
// whether media was deferred for a lazy fill.
func (p *Portal) deferHistoryMedia(res *msgconv.ToMatrixResult, source string) bool {
	mode := p.m.deps.Config.Bridge.History.Media
	if !isBackfill(source) || mode == config.HistoryMediaEager || mode == "" {
		return false
	}
	parts := map[int]bool{}
	for _, t := range res.Media {
		if t.Source != nil {
			parts[t.Part] = true
		}
	}
	if len(parts) == 0 {
		return false
	}
	kept := res.Media[:0]
	for _, t := range res.Media {
		if !parts[t.Part] {
			kept = append(kept, t)
		}
	}
	res.Media = kept
	for i := range res.Events {
		c, ok := res.Events[i].Content.(*msgconv.MessageContent)
		if !ok || !parts[i] {
			continue
		}
		noun := mediaNoun(res.Events[i].Type, c)
		placeholder := "[" + noun + " not backfilled]"
		if mode == config.HistoryMediaLazy {
			placeholder = "[" + noun + ": fetching from WhatsApp…]"
		}
		if c.FileName != "" && c.Body != c.FileName {
			placeholder += "\n" + c.Body // the caption
		}
		*c = msgconv.MessageContent{MsgType: msgconv.MsgNotice, Body: placeholder, Mentions: c.Mentions, RelatesTo: c.RelatesTo}
		res.Events[i].Type = event.EventMessage
	}
	return mode == config.HistoryMediaLazy
}

func mediaNoun(typ event.Type, c *msgconv.MessageContent) string {
	if typ == event.EventSticker {
		return "sticker"
	}
	switch c.MsgType {
	case msgconv.MsgImage:
		return "photo"
	case msgconv.MsgVideo:
		return "video"
	case msgconv.MsgAudio:
		if c.Voice != nil {
			return "voice message"
		}
		return "audio"
	}
	return "file"
}

// newMediaFillItem queues the lazy fetch of a backfilled message's media, behind the rest of the
// backfill so the room fills with text first.
func newMediaFillItem(wm *WAMessage, item *database.QueueItem) *database.QueueItem {
	return &database.QueueItem{
		Direction: database.ToMatrix, PortalKey: item.PortalKey, Kind: KindMediaFill,
		DedupKey: "fill:" + item.DedupKey, Payload: item.Payload, QueuedAt: wm.Info.Timestamp,
	}
}

// handleMediaFill downloads the media of a message bridged with placeholders, archives it and edits each
// placeholder into the media it stood for.
func (p *Portal) handleMediaFill(ctx context.Context, item *database.QueueItem) error {
	var wm WAMessage
	if err := json.Unmarshal(item.Payload, &wm); err != nil {
		return permanent(fmt.Errorf("queued media fill is corrupt: %w", err))
	}
	msg := &waE2E.Message{}
	if err := proto.Unmarshal(wm.Message, msg); err != nil {
		return permanent(fmt.Errorf("queued media fill body is corrupt: %w", err))
	}
	info, key := &wm.Info, p.row.PortalKey
	wa, ok := p.m.deps.Logins.WhatsApp(key.Receiver)
	if !ok {
		return ErrNotConnected
	}
	res, err := msgconv.ToMatrix(ctx, info, msg, p.resolver(wa), &p.m.deps.Convert)
	if err != nil {
		return permanent(fmt.Errorf("failed to convert message %s again: %w", info.ID, err))
	}
	media, err := p.fetchMedia(ctx, wa, res)
	if err != nil {
		return err
	}
	if err := p.archiveItem(ctx, item, func() ([]*archive.Entry, error) {
		entries, err := p.waEntry(ctx, info, wm.Message, res, media)
		for _, e := range entries {
			e.Kind, e.Source = archive.KindMediaBackfill, wm.Source
			e.Target = &archive.Target{MessageID: info.ID, Sender: senderKey(info)}
		}
		return entries, err
	}); err != nil {
		return err
	}
	sender, err := p.ghostFor(ctx, info)
	if err != nil {
		return err
	}
	if err := p.uploadMedia(ctx, sender, res, media); err != nil {
		return err
	}
	for i, part := range res.Events {
		c, ok := part.Content.(*msgconv.MessageContent)
		if !ok || (c.URL == "" && c.File == nil) {
			continue
		}
		target, err := p.m.deps.DB.Messages.GetPart(ctx, key, info.ID, string(part.PartID))
		if err != nil {
			return err
		} else if target == nil {
			continue // the placeholder was never sent (deleted meanwhile): nothing to replace
		}
		if _, err := p.m.matrix.SendMessage(ctx, sender, p.RoomID(), event.EventMessage, mediaEdit(c, target.MXID), SendOptions{
			Timestamp: info.Timestamp, TransactionID: txnID(key, "fill:"+info.ID, i),
		}); err != nil {
			return fmt.Errorf("failed to replace the placeholder of %s: %w", info.ID, err)
		}
	}
	return nil
}

// mediaEdit is the m.replace event that turns a placeholder into the media content c.
func mediaEdit(c *msgconv.MessageContent, placeholder id.EventID) *msgconv.MessageContent {
	newContent := *c
	newContent.RelatesTo = nil
	edit := newContent
	edit.Body = "* " + c.Body
	edit.FormattedBody = ""
	edit.Format = ""
	edit.NewContent = &newContent
	edit.RelatesTo = &msgconv.RelatesTo{RelType: string(event.RelReplace), EventID: placeholder}
	return &edit
}

// BotNotice is a notice the bot sends to the room once the items queued before it are relayed.
type BotNotice struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// NewBotNoticeItem queues a notice from the bot behind what is already in the portal's queue, so a report
// about a backfill arrives after the messages it reports on.
func NewBotNoticeItem(n *BotNotice) (*database.QueueItem, error) {
	payload, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("failed to encode a bot notice: %w", err)
	}
	return &database.QueueItem{Direction: database.ToMatrix, Kind: KindBotNotice, DedupKey: "notice:" + n.ID, Payload: payload}, nil
}

func (p *Portal) handleBotNotice(ctx context.Context, item *database.QueueItem) error {
	var n BotNotice
	if err := json.Unmarshal(item.Payload, &n); err != nil {
		return permanent(fmt.Errorf("queued notice is corrupt: %w", err))
	}
	room := p.RoomID()
	if room == "" {
		return nil
	}
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: strings.TrimSpace(n.Text)}
	if _, err := p.m.matrix.SendMessage(ctx, p.m.matrix.BotMXID(), room, event.EventMessage, content, SendOptions{
		TransactionID: txnID(p.row.PortalKey, "notice:"+n.ID, 0),
	}); err != nil {
		return fmt.Errorf("failed to send a bot notice: %w", err)
	}
	return nil
}
