package portal

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// roomMeta is what the queue goroutine last made sure the room says, so that the check on
// every use of the room is a comparison in memory.
type roomMeta struct {
	synced bool
	name   string
	avatar id.ContentURIString
}

// MSC2346's bridge info, under its stable name and the unstable one clients still read.
var bridgeInfoTypes = []event.Type{
	{Type: "m.bridge", Class: event.StateEventType},
	{Type: "uk.half-shot.bridge", Class: event.StateEventType},
}

// whatsAppSection names the protocol. WhatsApp is one network, so it is the network too:
// clients show the network's name where they say where a room is bridged from.
var whatsAppSection = event.BridgeInfoSection{ID: "whatsapp", DisplayName: "WhatsApp", ExternalURL: "https://www.whatsapp.com/"}

// bridgeInfoStateKey is unique per bridge and chat, as MSC2346 asks.
func (p *Portal) bridgeInfoStateKey() string { return "causeway://whatsapp/" + p.row.ChatJID }

// bridgeInfo describes the portal to clients ("bridged from WhatsApp"), with the chat's
// current name and picture.
func (p *Portal) bridgeInfo() *event.BridgeEventContent {
	bot := p.m.matrix.BotMXID()
	network := whatsAppSection
	info := &event.BridgeEventContent{
		BridgeBot: bot, Creator: bot, Protocol: whatsAppSection, Network: &network,
		Channel: event.BridgeInfoSection{
			ID: p.row.ChatJID, DisplayName: p.row.Name, AvatarURL: p.row.AvatarMXC, Receiver: string(p.row.Receiver),
		},
	}
	if !p.row.IsGroup && !p.isStatus() {
		info.BeeperRoomType = "dm"
	}
	return info
}

// dmLooksLikeContact gives a new DM's creation request the contact's name and picture, so
// clients name the room after the contact rather than after its members (the ghost and
// the bot), and records them on the portal.
func (p *Portal) dmLooksLikeContact(req *mautrix.ReqCreateRoom, g Ghost) {
	p.row.Name, p.row.AvatarMXC = g.Name, g.Avatar
	req.Name = g.Name
	if g.Avatar != "" {
		req.InitialState = append(req.InitialState, &event.Event{
			Type: event.StateRoomAvatar, Content: event.Content{Parsed: &event.RoomAvatarEventContent{URL: g.Avatar}},
		})
	}
}

// withBridgeInfo adds the bridge info to a new room's initial state.
func (p *Portal) withBridgeInfo(req *mautrix.ReqCreateRoom) {
	info := p.bridgeInfo()
	key := p.bridgeInfoStateKey()
	for _, typ := range bridgeInfoTypes {
		req.InitialState = append(req.InitialState, &event.Event{Type: typ, StateKey: &key, Content: event.Content{Parsed: info}})
	}
}

// syncRoomMeta brings an existing room's name, picture and bridge info up to date: rooms
// created before the bridge set them, a contact who changed name or picture, a renamed
// group. It runs for every message relayed into the room, so when nothing changed it costs
// a comparison in memory: the digest of the bridge info last sent is read from the database
// only on a portal's first use in a process or after a change, and state is only sent when
// what it would say differs.
func (p *Portal) syncRoomMeta(ctx context.Context) error {
	room, bot := p.RoomID(), p.m.matrix.BotMXID()
	rowChanged := false
	if !p.row.IsGroup && !p.isStatus() {
		g, err := p.m.ghosts.Get(ctx, p.chat)
		if err != nil {
			return err
		}
		if g.Name != p.row.Name && g.Name != "" {
			if _, err := p.m.matrix.SendState(ctx, bot, room, event.StateRoomName, "", &event.RoomNameEventContent{Name: g.Name}, time.Now()); err != nil {
				return fmt.Errorf("failed to name the DM after the contact: %w", err)
			}
			p.row.Name, rowChanged = g.Name, true
		}
		if g.Avatar != p.row.AvatarMXC && g.Avatar != "" {
			if _, err := p.m.matrix.SendState(ctx, bot, room, event.StateRoomAvatar, "", &event.RoomAvatarEventContent{URL: g.Avatar}, time.Now()); err != nil {
				return fmt.Errorf("failed to give the DM the contact's picture: %w", err)
			}
			p.row.AvatarMXC, rowChanged = g.Avatar, true
		}
	}
	if rowChanged {
		if err := p.m.deps.DB.Portals.Put(ctx, p.row); err != nil {
			return err
		}
	}
	if p.meta.synced && p.meta.name == p.row.Name && p.meta.avatar == p.row.AvatarMXC {
		return nil
	}
	info := p.bridgeInfo()
	digest, err := digestOf(info)
	if err != nil {
		return err
	}
	// The digest of what the room was last given survives restarts, so a restart does not
	// send every portal's bridge info again.
	if last, err := p.m.deps.DB.KV.Get(ctx, p.bridgeInfoKVKey()); err != nil {
		return err
	} else if last != digest {
		for _, typ := range bridgeInfoTypes {
			if _, err := p.m.matrix.SendState(ctx, bot, room, typ, p.bridgeInfoStateKey(), info, time.Now()); err != nil {
				return fmt.Errorf("failed to set the room's bridge info: %w", err)
			}
		}
		if err := p.m.deps.DB.KV.Set(ctx, p.bridgeInfoKVKey(), digest); err != nil {
			return err
		}
	}
	p.meta = roomMeta{synced: true, name: p.row.Name, avatar: p.row.AvatarMXC}
	return nil
}

func (p *Portal) bridgeInfoKVKey() string {
	return "bridge_info|" + string(p.row.Receiver) + "|" + p.row.ChatJID
}

// recordBridgeInfo notes that a new room was created with the current bridge info.
func (p *Portal) recordBridgeInfo(ctx context.Context) error {
	digest, err := digestOf(p.bridgeInfo())
	if err != nil {
		return err
	}
	if err := p.m.deps.DB.KV.Set(ctx, p.bridgeInfoKVKey(), digest); err != nil {
		return err
	}
	p.meta = roomMeta{synced: true, name: p.row.Name, avatar: p.row.AvatarMXC}
	return nil
}

func digestOf(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("failed to encode the bridge info: %w", err)
	}
	sum := sha256.Sum256(data)
	return base64.RawURLEncoding.EncodeToString(sum[:12]), nil
}
