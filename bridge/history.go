package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/portal"
)

// historyState is a login's progress through WhatsApp's history sync, which comes in several chunks:
// the limits of bridge.history count across them. It also holds the login's pending on-demand requests.
type historyState struct {
	mu       sync.Mutex
	admitted map[string]bool // chats whose history is being backfilled
	queued   map[string]int  // history messages queued per chat
	onDemand map[string]*onDemandRequest
	// loadedFor is the device whose stored progress admitted and queued hold.
	loadedFor string
}

// historyMsg is a parsed history message with the phone's metadata about it (delivery state).
type historyMsg struct {
	evt *events.Message
	web *waWeb.WebMessageInfo
}

// loadHistory is the portals' LoadHistory: it downloads one history-sync chunk and queues
// its messages. An error leaves the chunk in the queue to be tried again.
func (b *Bridge) loadHistory(ctx context.Context, receiver id.UserID, payload []byte) error {
	notif := &waE2E.HistorySyncNotification{}
	if err := proto.Unmarshal(payload, notif); err != nil {
		return fmt.Errorf("queued history notification is corrupt: %w", err)
	}
	u, err := b.getUser(ctx, receiver, false)
	if err != nil || u == nil {
		return portal.ErrNotConnected
	}
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil || !cli.IsConnected() {
		return portal.ErrNotConnected
	}
	data, err := cli.DownloadHistorySync(ctx, notif, true)
	if errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404) || errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410) {
		// WhatsApp no longer has the chunk: say so in the ledger rather than retry forever.
		u.log.Warn().Err(err).Str("sync_type", notif.GetSyncType().String()).Msg("A history chunk expired before it was fetched")
		if !u.record(ctx, &archive.Entry{Kind: archive.KindHistorySync, Completeness: &archive.Completeness{
			Reason: fmt.Sprintf("history sync %s chunk %d expired on WhatsApp's servers before the bridge fetched it: not backfilled",
				notif.GetSyncType(), notif.GetChunkOrder()),
		}}) {
			return errors.New("failed to record the expired history chunk")
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("failed to download a history chunk: %w", err)
	}
	if !u.handleHistorySync(ctx, &events.HistorySync{Data: data}) {
		return errors.New("failed to queue the history chunk's messages")
	}
	return nil
}

// handleHistorySync queues the messages of WhatsApp's history sync into their portals, oldest first, so
// new rooms fill in order with the original timestamps and senders, within the limits of bridge.history.
// Each conversation's time span goes into the archive's completeness ledger, with what the limits left
// out. It returns false when something could not be stored; the chunk is then tried again.
func (u *User) handleHistorySync(ctx context.Context, evt *events.HistorySync) bool {
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil || evt.Data == nil {
		return true
	}
	if evt.Data.GetSyncType() == waHistorySync.HistorySync_ON_DEMAND {
		return u.handleOnDemandSync(ctx, cli, evt.Data)
	}
	if err := u.loadHistoryProgress(ctx, cli); err != nil {
		u.log.Err(err).Msg("Failed to load the history limits' progress")
		return false
	}
	syncType := evt.Data.GetSyncType().String()
	type conversation struct {
		chat   types.JID
		conv   *waHistorySync.Conversation
		recent uint64
	}
	var convs []conversation
	for _, conv := range evt.Data.GetConversations() {
		chat, err := types.ParseJID(conv.GetID())
		if err != nil || chat.Server == types.BroadcastServer || chat.Server == types.NewsletterServer {
			continue
		}
		recent := max(conv.GetConversationTimestamp(), conv.GetLastMsgTimestamp())
		for _, m := range conv.GetMessages() {
			recent = max(recent, m.GetMessage().GetMessageTimestamp())
		}
		convs = append(convs, conversation{chat, conv, recent})
	}
	// The chat limit keeps the most recently active chats.
	slices.SortStableFunc(convs, func(a, b conversation) int { return cmp.Compare(b.recent, a.recent) })
	for _, c := range convs {
		msgs := u.parseHistory(cli, c.chat, c.conv)
		key := u.portalKey(ctx, c.chat)
		if !u.admitChat(key.ChatJID) {
			if !u.recordSkippedChat(ctx, c.chat, msgs, syncType) {
				return false
			}
			continue
		}
		if !u.backfillConversation(ctx, c.chat, msgs, syncType) {
			return false
		}
	}
	if err := u.saveHistoryProgress(ctx, cli); err != nil {
		u.log.Err(err).Msg("Failed to save the history limits' progress")
		return false
	}
	return true
}

// parseHistory parses a conversation's messages, oldest first, dropping what whatsmeow cannot parse.
func (u *User) parseHistory(cli *whatsmeow.Client, chat types.JID, conv *waHistorySync.Conversation) []historyMsg {
	out := make([]historyMsg, 0, len(conv.GetMessages()))
	for _, hm := range conv.GetMessages() {
		parsed, err := cli.ParseWebMessage(chat, hm.GetMessage())
		if err != nil {
			u.log.Warn().Err(err).Str("chat_jid", chat.String()).Msg("Skipping an unparseable history message")
			continue
		}
		out = append(out, historyMsg{parsed, hm.GetMessage()})
	}
	slices.SortStableFunc(out, func(a, b historyMsg) int { return a.evt.Info.Timestamp.Compare(b.evt.Info.Timestamp) })
	return out
}

// admitChat decides whether a chat's history is backfilled under bridge.history.max_chats. A chat once
// admitted stays admitted for later chunks.
func (u *User) admitChat(chat string) bool {
	limit := u.b.cfg.Bridge.History.MaxChats
	h := &u.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.admitted == nil {
		h.admitted = map[string]bool{}
	}
	if h.admitted[chat] {
		return true
	}
	if limit > 0 && len(h.admitted) >= limit {
		return false
	}
	h.admitted[chat] = true
	return true
}

// recordSkippedChat notes in the ledger that a chat's history was left out by the chat limit: the
// archive must say the history was cut, not be silently short.
func (u *User) recordSkippedChat(ctx context.Context, chat types.JID, msgs []historyMsg, syncType string) bool {
	limit := u.b.cfg.Bridge.History.MaxChats
	u.log.Info().Str("chat_jid", chat.String()).Int("messages", len(msgs)).Int("max_chats", limit).Msg("Not backfilling a chat beyond the chat limit")
	if len(msgs) == 0 {
		return true
	}
	first, last := msgs[0].evt.Info.Timestamp, msgs[len(msgs)-1].evt.Info.Timestamp
	return u.record(ctx, &archive.Entry{
		Kind: archive.KindHistorySync, Chat: chatKey(chat),
		Completeness: &archive.Completeness{From: last, To: last, Reason: fmt.Sprintf(
			"history sync %s: chat not backfilled, beyond bridge.history.max_chats (%d); %d messages from %s to %s left on the phone",
			syncType, limit, len(msgs), first.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339))},
	})
}

// limitHistory applies bridge.history.max_age_days and max_messages_per_chat to a chat's messages
// (oldest first), keeping the newest, and says what it cut.
func (u *User) limitHistory(chat string, msgs []historyMsg) (kept []historyMsg, cut []string) {
	lim := u.b.cfg.Bridge.History
	kept = msgs
	if lim.MaxAgeDays > 0 {
		cutoff := time.Now().AddDate(0, 0, -lim.MaxAgeDays)
		i := 0
		for i < len(kept) && kept[i].evt.Info.Timestamp.Before(cutoff) {
			i++
		}
		if i > 0 {
			cut = append(cut, fmt.Sprintf("%d messages older than bridge.history.max_age_days (%d)", i, lim.MaxAgeDays))
			kept = kept[i:]
		}
	}
	h := &u.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.queued == nil {
		h.queued = map[string]int{}
	}
	if lim.MaxMessagesPerChat > 0 {
		room := max(lim.MaxMessagesPerChat-h.queued[chat], 0)
		if over := len(kept) - room; over > 0 {
			cut = append(cut, fmt.Sprintf("%d messages beyond bridge.history.max_messages_per_chat (%d)", over, lim.MaxMessagesPerChat))
			kept = kept[over:]
		}
	}
	h.queued[chat] += len(kept)
	return kept, cut
}

// backfillConversation queues one chat's history within the limits and records its span.
func (u *User) backfillConversation(ctx context.Context, chat types.JID, msgs []historyMsg, syncType string) bool {
	if len(msgs) == 0 {
		return true
	}
	key := u.portalKey(ctx, chat)
	kept, cut := u.limitHistory(key.ChatJID, msgs)
	reason := "history sync " + syncType
	if len(cut) > 0 {
		reason += "; cut by config: " + strings.Join(cut, ", ") + " not backfilled"
	}
	span := &archive.Completeness{Reason: reason}
	if len(kept) == 0 {
		// Nothing left: the archive has this chat from its newest history message on, at best.
		span.From = msgs[len(msgs)-1].evt.Info.Timestamp
		span.To = span.From
		return u.record(ctx, &archive.Entry{Kind: archive.KindHistorySync, Chat: chatKey(chat), Completeness: span})
	}
	p, err := u.b.portals.Get(ctx, key, chat.Server == types.GroupServer)
	if err != nil {
		u.log.Err(err).Str("chat_jid", chat.String()).Msg("Failed to load a portal for history")
		return false
	}
	for _, hm := range kept {
		msg := hm.evt.RawMessage
		if msg == nil {
			msg = hm.evt.Message
		}
		if msg == nil {
			continue
		}
		item, err := portal.NewWAMessageItemFrom(&hm.evt.Info, msg, portal.SourceHistorySync)
		if err != nil {
			continue
		}
		if err := p.EnqueueMessage(ctx, item); err != nil {
			u.log.Err(err).Msg("Failed to queue a history message")
			return false
		}
	}
	if !u.queueHistoryReads(ctx, p, kept) {
		return false
	}
	span.From, span.To = kept[0].evt.Info.Timestamp, kept[len(kept)-1].evt.Info.Timestamp
	if !u.record(ctx, &archive.Entry{Kind: archive.KindHistorySync, Chat: chatKey(chat), Completeness: span}) {
		return false
	}
	u.log.Info().Str("chat_jid", chat.String()).Int("messages", len(kept)).Int("received", len(msgs)).
		Str("sync_type", syncType).Msg("Queued history")
	return true
}

// queueHistoryReads carries the read state the phone synced with its messages into the room: each
// contact's ghost marks the newest history message the contact has read. The user's own read state on
// the phone cannot be shown: Dendrite lets an appservice set receipts only for its own namespace, and
// without double puppeting the user's m.read and m.fully_read are out of the bridge's reach.
func (u *User) queueHistoryReads(ctx context.Context, p *portal.Portal, msgs []historyMsg) bool {
	type read struct {
		id types.MessageID
		ts time.Time
	}
	newest := map[types.JID]read{}
	mark := func(reader types.JID, id types.MessageID, ts time.Time) {
		if reader.IsEmpty() {
			return
		}
		if r, ok := newest[reader]; !ok || !ts.Before(r.ts) {
			newest[reader] = read{id, ts}
		}
	}
	for _, hm := range msgs {
		info := &hm.evt.Info
		if !info.IsFromMe {
			continue
		}
		// In a direct chat the message's own status is the contact's receipt.
		if !p.IsGroup() && hm.web.GetStatus() >= waWeb.WebMessageInfo_READ {
			mark(p.Chat(), info.ID, info.Timestamp)
		}
		for _, r := range hm.web.GetUserReceipt() {
			if r.GetReadTimestamp() > 0 {
				if jid, err := types.ParseJID(r.GetUserJID()); err == nil {
					mark(jid.ToNonAD(), info.ID, time.Unix(r.GetReadTimestamp(), 0))
				}
			}
		}
	}
	for reader, r := range newest {
		item, err := portal.NewReadReceiptItem(&portal.ReadReceipt{Reader: reader, MessageIDs: []types.MessageID{r.id}, Timestamp: r.ts})
		if err == nil {
			err = p.Enqueue(ctx, item)
		}
		if err != nil {
			u.log.Err(err).Msg("Failed to queue a read marker from history")
			return false
		}
	}
	return true
}
