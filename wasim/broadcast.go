package wasim

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// Status updates and broadcast lists.
//
// On WhatsApp a recipient gets both from a broadcast address with the poster as participant:
// a status update from status@broadcast, a broadcast-list message from <list>@broadcast. The
// pinned whatsmeow cannot send to a broadcast list at all (ErrBroadcastListUnsupported), and
// sends status updates only after a status-privacy query and a sender-key fan-out that the
// bridge never sees. So the phone sends one end-to-end encrypted copy per recipient, as a DM
// with one message ID, and the simulator delivers each copy from the broadcast address: what
// arrives is what a recipient's device gets from WhatsApp, and every byte of it is still
// encrypted by the phone's real whatsmeow client for the recipient's devices.

// PostStatus posts a status update seen by the audience, and returns its message ID.
func (p *Phone) PostStatus(ctx context.Context, msg *waE2E.Message, audience ...types.JID) (types.MessageID, error) {
	return p.sendViaBroadcast(ctx, types.StatusBroadcastJID, msg, audience)
}

// SendBroadcast sends msg to the broadcast list listID (the part before @broadcast) with the
// given recipients, and returns its message ID.
func (p *Phone) SendBroadcast(ctx context.Context, listID string, msg *waE2E.Message, recipients ...types.JID) (types.MessageID, error) {
	if listID == "" || listID == types.StatusBroadcastJID.User {
		return "", errors.New("wasim: a broadcast list needs an ID of its own (status updates go through PostStatus)")
	}
	return p.sendViaBroadcast(ctx, types.NewJID(listID, types.BroadcastServer), msg, recipients)
}

func (p *Phone) sendViaBroadcast(ctx context.Context, chat types.JID, msg *waE2E.Message, to []types.JID) (types.MessageID, error) {
	if len(to) == 0 {
		return "", fmt.Errorf("wasim: %s needs at least one recipient", chat)
	}
	id := p.Client.GenerateMessageID()
	p.sim.mu.Lock()
	if p.sim.broadcastSends == nil {
		p.sim.broadcastSends = map[string]types.JID{}
	}
	p.sim.broadcastSends[id] = chat
	p.sim.mu.Unlock()
	for _, rcpt := range to {
		if _, err := p.Client.SendMessage(ctx, rcpt.ToNonAD(), msg, whatsmeow.SendRequestExtra{ID: id}); err != nil {
			return id, fmt.Errorf("phone %s: send %s to %s: %w", p.Account.Phone, chat, rcpt, err)
		}
	}
	return id, nil
}

// broadcastAttrsLocked readdresses one recipient's copy of a status update or broadcast-list
// message: from the broadcast address, with the poster as participant, as group messages
// name their sender. The poster's own other devices keep the plain DM copy.
func (s *Server) broadcastAttrsLocked(attrs waBinary.Attrs, id string, sender *account, dev int, target *account) {
	chat, ok := s.broadcastSends[id]
	if !ok || target == sender {
		return
	}
	delete(attrs, "sender_lid")
	delete(attrs, "sender_pn")
	attrs["from"] = chat
	attrs["participant"] = sender.deviceJID(dev, false)
	attrs["participant_lid"] = sender.deviceJID(dev, true)
	attrs["addressing_mode"] = "pn"
}
