package bridge

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/portal"
	"codeberg.org/causeway/causeway/puppet"
)

// asMatrix adapts the appservice to the seams portals and puppets talk to the homeserver
// through (portal.Matrix, puppet.Matrix): each call acts as the user it names.
type asMatrix struct {
	as *appservice.AppService
}

var (
	_ portal.Matrix = asMatrix{}
	_ puppet.Matrix = asMatrix{}
)

func (m asMatrix) intent(user id.UserID) *appservice.IntentAPI {
	if user == m.as.BotMXID() {
		return m.as.BotIntent()
	}
	return m.as.Intent(user)
}

func (m asMatrix) BotMXID() id.UserID { return m.as.BotMXID() }

func (m asMatrix) SendMessage(ctx context.Context, as id.UserID, room id.RoomID, typ event.Type, content any, opts portal.SendOptions) (id.EventID, error) {
	// One attempt: the portal retries, looking for the event first when an attempt's outcome
	// is unknown. mautrix would resend at once with the same transaction ID, which Dendrite
	// does not recognise after a failed attempt that persisted the event anyway.
	ctx = mautrix.WithMaxRetries(ctx, 0)
	req := mautrix.ReqSendEvent{TransactionID: opts.TransactionID}
	if !opts.Timestamp.IsZero() {
		req.Timestamp = opts.Timestamp.UnixMilli()
	}
	resp, err := m.intent(as).SendMessageEvent(ctx, room, typ, content, req)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

func (m asMatrix) SendState(ctx context.Context, as id.UserID, room id.RoomID, typ event.Type, stateKey string, content any, ts time.Time) (id.EventID, error) {
	resp, err := m.intent(as).SendMassagedStateEvent(ctx, room, typ, stateKey, content, ts.UnixMilli())
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

func (m asMatrix) Redact(ctx context.Context, as id.UserID, room id.RoomID, target id.EventID, reason string) error {
	_, err := m.intent(as).RedactEvent(ctx, room, target, mautrix.ReqRedact{Reason: reason})
	return err
}

// Upload stores the bytes as they are: encryptingMatrix encrypts them first for an encrypted
// room.
func (m asMatrix) Upload(ctx context.Context, as id.UserID, _ id.RoomID, data []byte, mimeType, fileName string) (portal.Uploaded, error) {
	resp, err := m.intent(as).UploadMedia(ctx, mautrix.ReqUploadMedia{
		ContentBytes: data, ContentLength: int64(len(data)), ContentType: mimeType, FileName: fileName,
	})
	if err != nil {
		return portal.Uploaded{}, err
	}
	return portal.Uploaded{URL: resp.ContentURI.CUString()}, nil
}

func (m asMatrix) Download(ctx context.Context, uri id.ContentURI) ([]byte, error) {
	return m.as.BotIntent().DownloadBytes(ctx, uri)
}

func (m asMatrix) CreateRoom(ctx context.Context, as id.UserID, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	resp, err := m.intent(as).CreateRoom(ctx, req)
	if err != nil {
		return "", err
	}
	return resp.RoomID, nil
}

func (m asMatrix) EnsureJoined(ctx context.Context, as id.UserID, room id.RoomID) error {
	return m.intent(as).EnsureJoined(ctx, room)
}

func (m asMatrix) Leave(ctx context.Context, as id.UserID, room id.RoomID) error {
	_, err := m.intent(as).LeaveRoom(ctx, room)
	return err
}

func (m asMatrix) Kick(ctx context.Context, as id.UserID, room id.RoomID, user id.UserID, reason string) error {
	_, err := m.intent(as).KickUser(ctx, room, &mautrix.ReqKickUser{UserID: user, Reason: reason})
	return err
}

func (m asMatrix) SetPowerLevel(ctx context.Context, as id.UserID, room id.RoomID, user id.UserID, level int) error {
	_, err := m.intent(as).SetPowerLevel(ctx, room, user, level)
	return err
}

func (m asMatrix) MarkRead(ctx context.Context, as id.UserID, room id.RoomID, evt id.EventID) error {
	return m.intent(as).MarkRead(ctx, room, evt)
}

func (m asMatrix) GetEvent(ctx context.Context, room id.RoomID, evt id.EventID) (*event.Event, error) {
	return m.as.BotIntent().GetEvent(ctx, room, evt)
}

// recentPage is how many events one /messages request of RecentEvents asks for.
const recentPage = 100

func (m asMatrix) RecentEvents(ctx context.Context, as id.UserID, room id.RoomID, until id.EventID, limit int) ([]portal.TimelineEvent, error) {
	cli := m.intent(as)
	var out []portal.TimelineEvent
	from := ""
	for len(out) < limit {
		resp, err := cli.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, min(recentPage, limit-len(out)))
		if err != nil {
			return nil, fmt.Errorf("failed to read the timeline of %s: %w", room, err)
		}
		for _, evt := range resp.Chunk {
			if evt.ID == until {
				return out, nil
			}
			out = append(out, portal.TimelineEvent{ID: evt.ID, Sender: evt.Sender, Content: evt.Content.VeryRaw})
		}
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			break
		}
		from = resp.End
	}
	return out, nil
}

func (m asMatrix) EnsureRegistered(ctx context.Context, ghost id.UserID) error {
	return m.intent(ghost).EnsureRegistered(ctx)
}

func (m asMatrix) SetDisplayName(ctx context.Context, ghost id.UserID, name string) error {
	return m.intent(ghost).SetDisplayName(ctx, name)
}

func (m asMatrix) SetAvatarURL(ctx context.Context, ghost id.UserID, uri id.ContentURIString) error {
	return m.intent(ghost).SetAvatarURL(ctx, uri.ParseOrIgnore())
}

func (m asMatrix) UploadAvatar(ctx context.Context, ghost id.UserID, data []byte, mimeType string) (id.ContentURIString, error) {
	up, err := m.Upload(ctx, ghost, "", data, mimeType, "")
	return up.URL, err
}

// ghostDirectory adapts puppet.Manager to portal.Ghosts.
type ghostDirectory struct {
	puppets *puppet.Manager
}

var _ portal.Ghosts = ghostDirectory{}

func ghostOf(p *puppet.Puppet) portal.Ghost {
	return portal.Ghost{JID: p.JID, MXID: p.MXID(), Name: p.Name(), Avatar: p.AvatarMXC()}
}

func (g ghostDirectory) Get(ctx context.Context, jid types.JID) (portal.Ghost, error) {
	p, err := g.puppets.Get(ctx, jid)
	if err != nil {
		return portal.Ghost{}, err
	}
	return ghostOf(p), nil
}

func (g ghostDirectory) ByMXID(ctx context.Context, mxid id.UserID) (portal.Ghost, bool, error) {
	p, err := g.puppets.ByMXID(ctx, mxid)
	if err != nil || p == nil {
		return portal.Ghost{}, false, err
	}
	return ghostOf(p), true, nil
}

func (g ghostDirectory) UpdateName(ctx context.Context, jid types.JID, readNames func(context.Context) config.ContactNames) error {
	p, err := g.puppets.Get(ctx, jid)
	if err != nil {
		return err
	}
	return g.puppets.UpdateName(ctx, p, readNames)
}
