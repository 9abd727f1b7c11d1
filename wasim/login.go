package wasim

import (
	"bytes"
	"strconv"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// login authenticates a registered device by its Noise static key, which is its credential.
func (s *Server) login(c *conn, hs *handshakeResult) bool {
	ref := devRef{Phone: strconv.FormatUint(hs.payload.GetUsername(), 10), Device: int(hs.payload.GetDevice())}
	c.log = c.log.With().Str("device", ref.String()).Logger()
	s.mu.Lock()
	acct := s.st.Accounts[ref.Phone]
	var dev *device
	if acct != nil {
		dev = acct.device(ref.Device)
	}
	if dev == nil || !bytes.Equal(dev.NoiseKey, hs.clientStatic) {
		s.mu.Unlock()
		c.log.Info().Bool("known_device", dev != nil).Msg("Rejecting login of unknown device")
		c.sendAndClose(waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": 401, "location": "sim"}}, "unknown device")
		return false
	}
	if f := s.faults[ref]; f != nil && f.failNextLogin != 0 {
		reason := f.failNextLogin
		f.failNextLogin = 0
		s.mu.Unlock()
		c.log.Info().Int("reason", reason).Msg("Injected login failure")
		c.sendAndClose(failureNode(reason), "injected login failure")
		return false
	}
	if refusal, refused := s.refuseLoginLocked(ref, hs.payload); refused {
		s.mu.Unlock()
		c.log.Info().Str("tag", refusal.Tag).Any("attrs", refusal.Attrs).Msg("Refusing login")
		c.sendAndClose(refusal, "login refused")
		return false
	}
	if old := s.conns[ref]; old != nil {
		old.loggedIn = false
		delete(s.conns, ref)
		old.sendAndClose(waBinary.Node{Tag: "stream:error", Content: []waBinary.Node{{
			Tag: "conflict", Attrs: waBinary.Attrs{"type": "replaced"},
		}}}, "replaced by new login")
	}
	c.dev = ref
	c.loggedIn = true
	s.conns[ref] = c
	c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t":        s.now().Unix(),
		"lid":      acct.deviceJID(ref.Device, true),
		"props":    "1",
		"abprops":  "1",
		"location": "sim",
		"creation": "1700000000",
	}})
	count := s.replayQueueLocked(c, dev)
	c.send(waBinary.Node{Tag: "ib", Content: []waBinary.Node{{Tag: "offline", Attrs: waBinary.Attrs{"count": count}}}})
	s.mu.Unlock()
	c.log.Debug().Int("queued", count).Msg("Device logged in")
	return true
}

func failureNode(reason int) waBinary.Node {
	return waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": reason, "location": "sim"}}
}

// handleNode routes one stanza from a client.
func (s *Server) handleNode(c *conn, node *waBinary.Node) {
	if c.reg != nil && node.Tag != "iq" {
		return
	}
	switch node.Tag {
	case "iq":
		s.handleIQ(c, node)
	case "ack":
		s.handleClientAck(c, node)
	case "message":
		s.handleMessage(c, node)
	case "receipt":
		s.handleReceipt(c, node)
	case "presence":
		s.handlePresence(c, node)
	case "chatstate":
		s.handleChatState(c, node)
	case "call":
		s.handleCall(c, node)
	default:
		c.log.Debug().Str("tag", node.Tag).Msg("Ignoring unknown stanza")
	}
}

func (s *Server) handleCall(c *conn, node *waBinary.Node) {
	to, _ := node.Attrs["to"].(types.JID)
	c.send(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "call", "id": node.Attrs["id"], "from": to}})
}
