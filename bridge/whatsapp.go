package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/msgconv"
	"codeberg.org/causeway/causeway/portal"
	"codeberg.org/causeway/causeway/puppet"
)

// waClient adapts a whatsmeow client to what portals need. It is the one place the relay
// path touches whatsmeow's client API.
type waClient struct {
	cli  *whatsmeow.Client
	http *http.Client // fetches profile pictures, which are plain HTTPS URLs
}

var _ portal.WhatsApp = (*waClient)(nil)

func (w *waClient) OwnJID() types.JID {
	if id := w.cli.Store.ID; id != nil {
		return id.ToNonAD()
	}
	return types.EmptyJID
}

func (w *waClient) NewMessageID() types.MessageID { return w.cli.GenerateMessageID() }

func (w *waClient) SendMessage(ctx context.Context, chat types.JID, msgID types.MessageID, msg *waE2E.Message) (time.Time, error) {
	resp, err := w.cli.SendMessage(ctx, chat, msg, whatsmeow.SendRequestExtra{ID: msgID})
	if err != nil {
		return time.Time{}, err
	}
	return resp.Timestamp, nil
}

func (w *waClient) Download(ctx context.Context, src msgconv.Downloadable) ([]byte, error) {
	dl, ok := src.(whatsmeow.DownloadableMessage)
	if !ok {
		return nil, fmt.Errorf("%T is not downloadable media", src)
	}
	return w.cli.Download(ctx, dl)
}

func (w *waClient) Upload(ctx context.Context, data []byte, kind msgconv.MediaKind) (msgconv.UploadResult, error) {
	resp, err := w.cli.Upload(ctx, data, whatsmeow.MediaType(kind.AppInfo()))
	if err != nil {
		return msgconv.UploadResult{}, err
	}
	return msgconv.UploadResult(resp), nil
}

func (w *waClient) DecryptPollVote(ctx context.Context, info *types.MessageInfo, update *waE2E.PollUpdateMessage) (*waE2E.PollVoteMessage, error) {
	return w.cli.DecryptPollVote(ctx, &events.Message{Info: *info, Message: &waE2E.Message{PollUpdateMessage: update}})
}

func (w *waClient) EncryptPollVote(ctx context.Context, target *msgconv.MessageRef, vote *waE2E.PollVoteMessage) (*waE2E.PollUpdateMessage, error) {
	if target == nil {
		return nil, errors.New("the poll the vote is for is unknown")
	}
	info := &types.MessageInfo{
		MessageSource: types.MessageSource{Chat: target.Chat, Sender: target.Sender, IsFromMe: target.FromMe},
		ID:            target.ID,
		Timestamp:     target.Timestamp,
	}
	return w.cli.EncryptPollVote(ctx, info, vote)
}

func (w *waClient) MarkRead(ctx context.Context, chat, sender types.JID, ids []types.MessageID, ts time.Time) error {
	return w.cli.MarkRead(ctx, ids, ts, chat, sender)
}

func (w *waClient) SetTyping(ctx context.Context, chat types.JID, typing bool) error {
	state := types.ChatPresencePaused
	if typing {
		state = types.ChatPresenceComposing
	}
	return w.cli.SendChatPresence(ctx, chat, state, types.ChatPresenceMediaText)
}

func (w *waClient) GroupInfo(ctx context.Context, chat types.JID) (*types.GroupInfo, error) {
	return w.cli.GetGroupInfo(ctx, chat)
}

func (w *waClient) SetGroupName(ctx context.Context, chat types.JID, name string) error {
	return w.cli.SetGroupName(ctx, chat, name)
}

func (w *waClient) SetGroupTopic(ctx context.Context, chat types.JID, topic string) error {
	return w.cli.SetGroupTopic(ctx, chat, "", "", topic)
}

func (w *waClient) UpdateParticipants(ctx context.Context, chat types.JID, users []types.JID, action string) error {
	_, err := w.cli.UpdateGroupParticipants(ctx, chat, users, whatsmeow.ParticipantChange(action))
	return err
}

func (w *waClient) LeaveGroup(ctx context.Context, chat types.JID) error {
	return w.cli.LeaveGroup(ctx, chat)
}

func (w *waClient) ContactNames(ctx context.Context, jid types.JID) config.ContactNames {
	names := config.ContactNames{Phone: "+" + jid.User}
	if jid.Server != types.DefaultUserServer {
		names.Phone = jid.User
	}
	if w.cli.Store.Contacts == nil {
		return names
	}
	info, err := w.cli.Store.Contacts.GetContact(ctx, jid.ToNonAD())
	if err != nil || !info.Found {
		return names
	}
	names.FullName, names.FirstName, names.PushName, names.BusinessName = info.FullName, info.FirstName, info.PushName, info.BusinessName
	return names
}

func (w *waClient) ProfilePicture(ctx context.Context, jid types.JID) (string, puppet.AvatarFetcher, error) {
	info, err := w.cli.GetProfilePictureInfo(ctx, jid, &whatsmeow.GetProfilePictureParams{})
	if errors.Is(err, whatsmeow.ErrProfilePictureNotSet) || errors.Is(err, whatsmeow.ErrProfilePictureUnauthorized) {
		return "", nil, nil
	} else if err != nil {
		return "", nil, err
	} else if info == nil {
		return "", nil, nil
	}
	fetch := func(ctx context.Context) ([]byte, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, info.URL, nil)
		if err != nil {
			return nil, "", err
		}
		resp, err := w.http.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, "", fmt.Errorf("profile picture download: HTTP %d", resp.StatusCode)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return nil, "", err
		}
		return data, http.DetectContentType(data), nil
	}
	return info.ID, fetch, nil
}
