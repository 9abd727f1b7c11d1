package bridge

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/portal"
)

// On-demand backfill: the user asks in a chat's room for older messages; the bridge asks the phone
// (a peer data request, as WhatsApp Web does when scrolling up), and the phone answers with an
// ON_DEMAND history sync. Dendrite has no batch send (MSC2716), so the messages are appended to the
// timeline with their original timestamps.

const (
	defaultBackfillCount = 50 // what whatsmeow recommends per request
	maxBackfillCount     = 500
)

// onDemandRequest is a backfill request waiting for the phone's answer.
type onDemandRequest struct {
	room     id.RoomID
	asker    id.UserID
	before   time.Time
	count    int
	timer    *time.Timer
	timedOut bool
}

func (b *Bridge) addBackfillCommand(cs *commandSet) {
	cs.add(&command{name: "backfill", args: "[count]", minLevel: config.LevelUser, handler: b.cmdBackfill,
		help: fmt.Sprintf("In a WhatsApp chat's room: ask your phone for up to count (default %d, at most %d) messages older "+
			"than the oldest one here. This homeserver cannot insert messages into the past, so they are added at the end "+
			"of the timeline, each with its original time and sender.", defaultBackfillCount, maxBackfillCount)})
}

func (b *Bridge) cmdBackfill(ctx context.Context, ce *commandEvent) string {
	count := defaultBackfillCount
	if len(ce.args) > 0 {
		n, err := strconv.Atoi(ce.args[0])
		if err != nil || n < 1 || n > maxBackfillCount {
			return fmt.Sprintf("`%s` is not a number of messages from 1 to %d.", ce.args[0], maxBackfillCount)
		}
		count = n
	}
	p, err := b.portals.ByRoom(ctx, ce.roomID)
	if err != nil || p == nil || p.Key().Receiver != ce.sender {
		return fmt.Sprintf("Send `%s backfill` in one of your WhatsApp chats' rooms.", commandPrefix)
	}
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil {
		return "Sorry, I could not load your account: " + err.Error()
	} else if u == nil {
		return "You are not logged in to WhatsApp. Send `login` to link your phone."
	}
	oldest, err := b.db.Messages.Oldest(ctx, p.Key())
	if err != nil {
		return "Sorry, I could not read this room's messages: " + err.Error()
	} else if oldest == nil {
		return "Nothing from WhatsApp has been bridged into this room yet, so there is no message to go back from."
	}
	return u.requestOnDemand(ctx, p, oldest, count, ce.roomID)
}

// requestOnDemand asks the phone for count messages before oldest and remembers the request, so the
// answer can be reported in room, or the silence after bridge.history.on_demand_timeout.
func (u *User) requestOnDemand(ctx context.Context, p *portal.Portal, oldest *database.Message, count int, room id.RoomID) string {
	u.mu.Lock()
	cli, connected := u.client, u.connected
	u.mu.Unlock()
	if cli == nil || !connected {
		return "Your WhatsApp login is not connected right now; try again once `ping` says connected."
	}
	chat := p.Key().ChatJID
	h := &u.hist
	h.mu.Lock()
	if r := h.onDemand[chat]; r != nil && !r.timedOut {
		h.mu.Unlock()
		return "I am still waiting for your phone to answer the last backfill request for this chat."
	}
	h.mu.Unlock()
	info := &types.MessageInfo{
		MessageSource: types.MessageSource{Chat: p.Chat(), IsFromMe: oldest.FromMe},
		ID:            oldest.WAID, Timestamp: oldest.Timestamp,
	}
	if _, err := cli.SendMessage(ctx, u.ownJID(), cli.BuildHistorySyncRequest(info, count), whatsmeow.SendRequestExtra{Peer: true}); err != nil {
		u.log.Err(err).Str("chat_jid", chat).Msg("Failed to send an on-demand history request")
		return "Sorry, I could not ask your phone: " + err.Error()
	}
	timeout := u.b.cfg.Bridge.History.OnDemandTimeoutDuration()
	r := &onDemandRequest{room: room, asker: u.row.MXID, before: oldest.Timestamp, count: count}
	h.mu.Lock()
	if h.onDemand == nil {
		h.onDemand = map[string]*onDemandRequest{}
	}
	h.onDemand[chat] = r
	r.timer = time.AfterFunc(timeout, func() { u.onDemandTimedOut(chat, r, timeout) })
	h.mu.Unlock()
	u.log.Info().Str("chat_jid", chat).Int("count", count).Time("before", oldest.Timestamp).Msg("Asked the phone for older history")
	return fmt.Sprintf("Asked your phone for up to %d messages from before %s. I will say here how many arrived. "+
		"This homeserver cannot insert messages into the past, so they will appear at the end of the timeline, "+
		"each with its original time and sender.", count, oldest.Timestamp.Format(time.DateTime))
}

// onDemandTimedOut tells the user the phone did not answer. The request stays known, so an answer that
// comes late is still bridged and reported, but a new request may be sent.
func (u *User) onDemandTimedOut(chat string, r *onDemandRequest, timeout time.Duration) {
	h := &u.hist
	h.mu.Lock()
	pending := h.onDemand[chat] == r
	if pending {
		r.timedOut = true
	}
	h.mu.Unlock()
	if !pending {
		return
	}
	u.log.Warn().Str("chat_jid", chat).Dur("timeout", timeout).Msg("The phone did not answer an on-demand history request")
	u.b.reply(context.Background(), r.room, fmt.Sprintf("Your phone did not answer the backfill request within %s. "+
		"WhatsApp must be open on the phone and online; send `%s backfill` again to retry.", timeout, commandPrefix))
}

// takeOnDemand returns and forgets the pending request for a chat, if any.
func (u *User) takeOnDemand(chat string) *onDemandRequest {
	h := &u.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.onDemand[chat]
	if r != nil {
		r.timer.Stop()
		delete(h.onDemand, chat)
	}
	return r
}

// handleOnDemandSync bridges the phone's answer to a backfill request: messages not bridged yet go
// through the portal's queue marked as on-demand, their span goes into the completeness ledger, and a
// report to the room follows them through the queue. The bridge.history limits do not apply: the user
// asked for these.
func (u *User) handleOnDemandSync(ctx context.Context, cli *whatsmeow.Client, data *waHistorySync.HistorySync) bool {
	for _, conv := range data.GetConversations() {
		chat, err := types.ParseJID(conv.GetID())
		if err != nil {
			continue
		}
		key := u.portalKey(ctx, chat)
		req := u.takeOnDemand(key.ChatJID)
		msgs := u.parseHistory(cli, chat, conv)
		p, err := u.b.portals.Get(ctx, key, chat.Server == types.GroupServer)
		if err != nil {
			u.log.Err(err).Str("chat_jid", chat.String()).Msg("Failed to load a portal for on-demand history")
			return false
		}
		var added, already int
		var from, to time.Time
		for _, hm := range msgs {
			if parts, err := u.b.db.Messages.GetParts(ctx, key, hm.evt.Info.ID); err != nil {
				u.log.Err(err).Msg("Failed to check for an already bridged message")
				return false
			} else if len(parts) > 0 {
				already++
				continue
			}
			msg := hm.evt.RawMessage
			if msg == nil {
				msg = hm.evt.Message
			}
			item, err := portal.NewWAMessageItemFrom(&hm.evt.Info, msg, portal.SourceOnDemand)
			if err != nil {
				continue
			}
			if err := p.EnqueueMessage(ctx, item); err != nil {
				u.log.Err(err).Msg("Failed to queue an on-demand history message")
				return false
			}
			added++
			if from.IsZero() {
				from = hm.evt.Info.Timestamp
			}
			to = hm.evt.Info.Timestamp
		}
		u.log.Info().Str("chat_jid", chat.String()).Int("added", added).Int("already_bridged", already).
			Bool("requested", req != nil).Msg("Received on-demand history")
		if added > 0 {
			reason := fmt.Sprintf("on-demand backfill: %d messages", added)
			if req != nil {
				reason += " requested by " + string(req.asker)
			}
			if !u.record(ctx, &archive.Entry{Kind: archive.KindHistorySync, Chat: chatKey(chat),
				Completeness: &archive.Completeness{From: from, To: to, Reason: reason}}) {
				return false
			}
		}
		if req != nil && !u.reportOnDemand(ctx, p, req, added, already, from, to) {
			return false
		}
	}
	return true
}

// reportOnDemand tells the room what a backfill request brought. When messages were added, the report
// goes through the portal's queue so that it arrives after them.
func (u *User) reportOnDemand(ctx context.Context, p *portal.Portal, req *onDemandRequest, added, already int, from, to time.Time) bool {
	switch {
	case added == 0 && already == 0:
		u.b.reply(ctx, req.room, fmt.Sprintf("Your phone has no messages of this chat from before %s.", req.before.Format(time.DateTime)))
		return true
	case added == 0:
		u.b.reply(ctx, req.room, fmt.Sprintf("Your phone sent %d older messages, but all of them were already here.", already))
		return true
	}
	text := fmt.Sprintf("Backfilled %d older messages, from %s to %s", added, from.Format(time.DateTime), to.Format(time.DateTime))
	if already > 0 {
		text += fmt.Sprintf(" (%d more were already here)", already)
	}
	text += ". They were added at the end of the timeline with their original times, since this homeserver cannot insert messages into the past."
	item, err := portal.NewBotNoticeItem(&portal.BotNotice{
		ID: fmt.Sprintf("backfill:%s:%d:%d", p.Key().ChatJID, from.UnixMilli(), to.UnixMilli()), Text: text,
	})
	if err == nil {
		err = p.Enqueue(ctx, item)
	}
	if err != nil {
		u.log.Err(err).Msg("Failed to queue the backfill report")
		return false
	}
	return true
}
