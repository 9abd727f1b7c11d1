package wasim

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
)

// Contact is an address-book entry the phone publishes to its companions.
type Contact struct {
	JID       types.JID
	FullName  string
	FirstName string
}

// SetContacts publishes address-book entries through app state (critical_unblock_low), where companions
// receive them as events.Contact.
func (p *Phone) SetContacts(ctx context.Context, contacts ...Contact) error {
	patch := appstate.PatchInfo{Type: appstate.WAPatchCriticalUnblockLow}
	for _, c := range contacts {
		act := &waSyncAction.ContactAction{FullName: proto.String(c.FullName), FirstName: proto.String(c.FirstName)}
		if lid := p.sim.lidFor(c.JID); !lid.IsEmpty() {
			act.LidJID = proto.String(lid.String())
		}
		patch.Mutations = append(patch.Mutations, appstate.MutationInfo{
			Index: []string{appstate.IndexContact, c.JID.ToNonAD().String()}, Version: 2,
			Value: &waSyncAction.SyncActionValue{ContactAction: act},
		})
	}
	if err := p.Client.SendAppState(ctx, patch); err != nil {
		return fmt.Errorf("publish contacts: %w", err)
	}
	return nil
}

// SetPushName changes the account's own push name through app state (critical_block) and on the server,
// so later messages carry it.
func (p *Phone) SetPushName(ctx context.Context, name string) error {
	if err := p.Client.SendAppState(ctx, appstate.BuildSettingPushName(name)); err != nil {
		return fmt.Errorf("publish push name: %w", err)
	}
	p.Client.Store.PushName = name
	p.sim.mu.Lock()
	if a := p.sim.st.Accounts[p.Account.Phone]; a != nil {
		a.PushName = name
	}
	p.sim.mu.Unlock()
	return nil
}

func (s *Server) lidFor(jid types.JID) types.JID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.st.accountFor(jid); a != nil {
		return a.lidJID()
	}
	return types.EmptyJID
}

// HistoryConversation builds a history-sync conversation from messages, oldest first. Each message is
// attributed to sender (the phone's own JID for outgoing ones).
func (p *Phone) HistoryConversation(chat types.JID, msgs ...HistoryMessage) *waHistorySync.Conversation {
	conv := &waHistorySync.Conversation{ID: proto.String(chat.String())}
	for _, m := range msgs {
		conv.Messages = append(conv.Messages, p.historyMsg(chat, m))
	}
	if n := len(msgs); n > 0 {
		conv.ConversationTimestamp = proto.Uint64(uint64(msgs[n-1].Time.Unix()))
	}
	return conv
}

func (p *Phone) historyMsg(chat types.JID, m HistoryMessage) *waHistorySync.HistorySyncMsg {
	fromMe := m.Sender.User == p.Account.Phone
	key := p.Client.BuildMessageKey(chat, m.Sender, m.ID)
	key.FromMe = proto.Bool(fromMe)
	content := m.Message
	if content == nil {
		content = &waE2E.Message{Conversation: proto.String(m.Text)}
	}
	info := &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
		Key: key, Message: content, MessageTimestamp: proto.Uint64(uint64(m.Time.Unix())),
	}}
	if fromMe {
		// The phone app keeps the delivery state of its own messages and syncs it with them.
		status := waWeb.WebMessageInfo_DELIVERY_ACK
		if m.Read {
			status = waWeb.WebMessageInfo_READ
		}
		info.Message.Status = &status
	}
	if chat.Server == types.GroupServer && !fromMe {
		info.Message.Participant = proto.String(m.Sender.ToNonAD().String())
	}
	return info
}

// HistoryMessage is one message for HistoryConversation: a text, or any message built elsewhere (such as
// media from MediaMessage).
type HistoryMessage struct {
	ID     types.MessageID
	Sender types.JID
	Text   string
	Time   time.Time
	// Message, when set, is the content instead of Text.
	Message *waE2E.Message
	// Read marks one of the phone's own messages as read by the recipient.
	Read bool
}

// SendHistorySync uploads a history-sync blob (zlib-compressed, encrypted by whatsmeow's media upload)
// and tells the phone's companions about it end to end, as the phone app does after linking.
func (p *Phone) SendHistorySync(ctx context.Context, hs *waHistorySync.HistorySync) error {
	return p.sendHistorySync(ctx, hs, "")
}

// sendHistorySync sends a history-sync blob; sessionID names the peer request it answers, if any.
func (p *Phone) sendHistorySync(ctx context.Context, hs *waHistorySync.HistorySync, sessionID string) error {
	p.rememberHistory(hs.GetConversations())
	raw, err := proto.Marshal(hs)
	if err != nil {
		return fmt.Errorf("marshal history sync: %w", err)
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err = zw.Write(raw); err != nil {
		return fmt.Errorf("compress history sync: %w", err)
	}
	if err = zw.Close(); err != nil {
		return fmt.Errorf("compress history sync: %w", err)
	}
	up, err := p.Client.Upload(ctx, buf.Bytes(), whatsmeow.MediaHistory)
	if err != nil {
		return fmt.Errorf("upload history sync: %w", err)
	}
	syncType := waE2E.HistorySyncType(hs.GetSyncType())
	notif := &waE2E.HistorySyncNotification{
		FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), MediaKey: up.MediaKey,
		FileEncSHA256: up.FileEncSHA256, DirectPath: proto.String(up.DirectPath), SyncType: &syncType,
		ChunkOrder: proto.Uint32(hs.GetChunkOrder()), Progress: proto.Uint32(hs.GetProgress()),
	}
	if sessionID != "" {
		notif.PeerDataRequestSessionID = proto.String(sessionID)
	}
	_, err = p.Send(ctx, p.Account.JID, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(), HistorySyncNotification: notif,
	}})
	return err
}
