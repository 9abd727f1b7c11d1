package wasim

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// The phone keeps the messages of its chats, as the phone app does: companions only ever see a slice of
// them (the initial history sync), and ask the phone for older ones on demand.

// SetHistory gives the phone messages of a chat it has without sending them anywhere (the phone's own
// database). A later on-demand request from a companion is answered from them. Messages already known by
// ID are replaced.
func (p *Phone) SetHistory(chat types.JID, msgs ...HistoryMessage) {
	p.rememberHistory([]*waHistorySync.Conversation{p.HistoryConversation(chat, msgs...)})
}

// History returns the messages the phone has of a chat, oldest first.
func (p *Phone) History(chat types.JID) []*waHistorySync.HistorySyncMsg {
	p.historyMu.Lock()
	defer p.historyMu.Unlock()
	return slices.Clone(p.history[chat.ToNonAD().String()])
}

// rememberHistory merges conversations into the phone's messages: whatever the phone sent in a history
// sync, it has.
func (p *Phone) rememberHistory(convs []*waHistorySync.Conversation) {
	p.historyMu.Lock()
	defer p.historyMu.Unlock()
	if p.history == nil {
		p.history = map[string][]*waHistorySync.HistorySyncMsg{}
	}
	for _, conv := range convs {
		chat := conv.GetID()
		if jid, err := types.ParseJID(chat); err == nil {
			chat = jid.ToNonAD().String()
		}
		have := p.history[chat]
		for _, m := range conv.GetMessages() {
			id := m.GetMessage().GetKey().GetID()
			if i := slices.IndexFunc(have, func(h *waHistorySync.HistorySyncMsg) bool { return h.GetMessage().GetKey().GetID() == id }); i >= 0 {
				have[i] = m
			} else {
				have = append(have, m)
			}
		}
		slices.SortStableFunc(have, func(a, b *waHistorySync.HistorySyncMsg) int {
			return cmp.Compare(a.GetMessage().GetMessageTimestamp(), b.GetMessage().GetMessageTimestamp())
		})
		p.history[chat] = have
	}
}

// MediaMessage uploads media through the simulator, encrypted by the phone's client exactly as for a live
// send, and returns the message that carries it (image, video, audio or document by MIME type), for
// HistoryMessage.Message or Send.
func (p *Phone) MediaMessage(ctx context.Context, data []byte, mimeType, fileName, caption string) (*waE2E.Message, error) {
	kind := whatsmeow.MediaDocument
	switch {
	case strings.HasPrefix(mimeType, "image/"):
		kind = whatsmeow.MediaImage
	case strings.HasPrefix(mimeType, "video/"):
		kind = whatsmeow.MediaVideo
	case strings.HasPrefix(mimeType, "audio/"):
		kind = whatsmeow.MediaAudio
	}
	up, err := p.Client.Upload(ctx, data, kind)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", mimeType, err)
	}
	url, path, length := proto.String(up.URL), proto.String(up.DirectPath), proto.Uint64(up.FileLength)
	mime := proto.String(mimeType)
	var optCaption *string
	if caption != "" {
		optCaption = proto.String(caption)
	}
	switch kind {
	case whatsmeow.MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mime, Caption: optCaption}}, nil
	case whatsmeow.MediaVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mime, Caption: optCaption}}, nil
	case whatsmeow.MediaAudio:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mime}}, nil
	}
	if fileName == "" {
		fileName = "file"
	}
	return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mime,
		FileName: proto.String(fileName), Title: proto.String(fileName), Caption: optCaption}}, nil
}

// answerPeerRequests is the phone app's side of the companions' peer data requests that wasim models:
// on-demand history. It runs in the phone client's event handler, so the answer (an upload and a send)
// goes out from a goroutine of its own.
func (p *Phone) answerPeerRequests(evt any) {
	msg, ok := evt.(*events.Message)
	if !ok || !msg.Info.IsFromMe {
		return
	}
	req := msg.Message.GetProtocolMessage().GetPeerDataOperationRequestMessage()
	if req.GetPeerDataOperationRequestType() != waE2E.PeerDataOperationRequestType_HISTORY_SYNC_ON_DEMAND || req.GetHistorySyncOnDemandRequest() == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.answerOnDemand(ctx, msg.Info.ID, req.GetHistorySyncOnDemandRequest()); err != nil {
			p.log.Warn().Err(err).Str("request_id", msg.Info.ID).Msg("Failed to answer an on-demand history request")
		}
	}()
}

// answerOnDemand sends, as the phone app does, an ON_DEMAND history sync with up to the requested number
// of the chat's messages immediately before the companion's oldest one. A chat with nothing older gets an
// empty conversation, so the companion learns that the phone has no more.
func (p *Phone) answerOnDemand(ctx context.Context, requestID types.MessageID, req *waE2E.PeerDataOperationRequestMessage_HistorySyncOnDemandRequest) error {
	chat, err := types.ParseJID(req.GetChatJID())
	if err != nil {
		return fmt.Errorf("on-demand request for a bad chat %q: %w", req.GetChatJID(), err)
	}
	oldest := time.UnixMilli(req.GetOldestMsgTimestampMS())
	var older []*waHistorySync.HistorySyncMsg
	for _, m := range p.History(chat) {
		ts := time.Unix(int64(m.GetMessage().GetMessageTimestamp()), 0)
		if m.GetMessage().GetKey().GetID() != req.GetOldestMsgID() && ts.Before(oldest) {
			older = append(older, m)
		}
	}
	if count := int(req.GetOnDemandMsgCount()); count > 0 && len(older) > count {
		older = older[len(older)-count:]
	}
	conv := &waHistorySync.Conversation{ID: proto.String(chat.ToNonAD().String()), Messages: older}
	if n := len(older); n > 0 {
		conv.ConversationTimestamp = proto.Uint64(older[n-1].GetMessage().GetMessageTimestamp())
	}
	p.log.Debug().Str("chat_jid", chat.String()).Int("messages", len(older)).Msg("Answering an on-demand history request")
	return p.sendHistorySync(ctx, &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_ON_DEMAND.Enum(), Conversations: []*waHistorySync.Conversation{conv},
		ChunkOrder: proto.Uint32(1), Progress: proto.Uint32(100),
	}, requestID)
}
