package wasim

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// senderJID is the sending device's address in the namespace (PN or LID) the sender used for the target.
func senderJID(acct *account, dev int, lid bool) (from, alt types.JID) {
	return acct.deviceJID(dev, lid), acct.deviceJID(dev, !lid)
}

func isUserServer(server string) bool {
	return server == types.DefaultUserServer || server == types.HiddenUserServer
}

// handleMessage routes an end-to-end encrypted message. The server never looks inside <enc>; it copies
// each device's ciphertext to that device, plus the shared sender-key ciphertext for groups.
func (s *Server) handleMessage(c *conn, node *waBinary.Node) {
	id := attrStr(node.Attrs["id"])
	to, _ := node.Attrs["to"].(types.JID)
	ts := s.now().Unix()
	ack := waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "message", "id": id, "t": ts, "from": to}}
	s.mu.Lock()
	sender := s.st.Accounts[c.dev.Phone]
	if sender == nil {
		s.mu.Unlock()
		return
	}
	var errCode int
	switch {
	case to.Server == types.GroupServer:
		errCode = s.routeGroupMessageLocked(c, sender, node, to, ts)
	case isUserServer(to.Server):
		errCode = s.routeDirectMessageLocked(c, sender, node, to, ts)
	default:
		// status@broadcast, newsletters and bots are not modelled; the send still succeeds.
	}
	s.mu.Unlock()
	if errCode != 0 {
		ack.Attrs["error"] = errCode
	}
	c.send(ack)
}

// forwardedChildren are the message children that travel with every copy (device identity, meta, ...).
func forwardedChildren(node *waBinary.Node) []waBinary.Node {
	var out []waBinary.Node
	for _, child := range node.GetChildren() {
		switch child.Tag {
		case "participants", "enc", "reporting", "tctoken":
		default:
			out = append(out, child)
		}
	}
	return out
}

func copyAttrs(dst waBinary.Attrs, src waBinary.Attrs, names ...string) {
	for _, name := range names {
		if v, ok := src[name]; ok {
			dst[name] = v
		}
	}
}

func (s *Server) routeDirectMessageLocked(c *conn, sender *account, node *waBinary.Node, to types.JID, ts int64) int {
	forwarded := forwardedChildren(node)
	base := func(target types.JID) waBinary.Attrs {
		lid := target.Server == types.HiddenUserServer
		from, alt := senderJID(sender, c.dev.Device, lid)
		attrs := waBinary.Attrs{"id": node.Attrs["id"], "t": ts, "from": from, "notify": sender.PushName}
		if lid {
			attrs["sender_pn"] = alt
		} else {
			attrs["sender_lid"] = alt
		}
		copyAttrs(attrs, node.Attrs, "type", "edit", "category", "push_priority")
		s.broadcastAttrsLocked(attrs, attrStr(node.Attrs["id"]), sender, c.dev.Device, s.st.accountFor(target))
		return attrs
	}
	participants, ok := node.GetOptionalChildByTag("participants")
	if !ok {
		// A retry resend or a peer message: one <enc> for exactly one device.
		target := s.st.accountFor(to)
		if target == nil || target.device(int(to.Device)) == nil {
			return 404
		}
		attrs := base(to)
		copyAttrs(attrs, node.Attrs, "recipient", "participant")
		s.deliverLocked(devRef{Phone: target.Phone, Device: int(to.Device)}, waBinary.Node{
			Tag: "message", Attrs: attrs, Content: node.GetChildren(),
		})
		return 0
	}
	if s.st.accountFor(to) == nil {
		return 404
	}
	// whatsmeow lists a device twice when a message to oneself names the account as both recipient and
	// sender (sendDM's participants [to, own] with a warm device cache); a device gets one copy.
	delivered := map[devRef]bool{}
	for _, toNode := range participants.GetChildren() {
		jid, _ := toNode.Attrs["jid"].(types.JID)
		target := s.st.accountFor(jid)
		if target == nil || target.device(int(jid.Device)) == nil {
			continue
		}
		ref := devRef{Phone: target.Phone, Device: int(jid.Device)}
		if ref == c.dev || delivered[ref] {
			continue
		}
		delivered[ref] = true
		attrs := base(jid)
		if target == sender {
			// A copy for the sender's own other device: it learns the chat from "recipient".
			attrs["recipient"] = to.ToNonAD()
		}
		content := append(append([]waBinary.Node{}, toNode.GetChildren()...), forwarded...)
		s.deliverLocked(ref, waBinary.Node{Tag: "message", Attrs: attrs, Content: content})
	}
	return 0
}

// handleReceipt forwards delivery, read, played and retry receipts to the devices that need them.
func (s *Server) handleReceipt(c *conn, node *waBinary.Node) {
	to, _ := node.Attrs["to"].(types.JID)
	typ := attrStr(node.Attrs["type"])
	ack := waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "receipt", "id": node.Attrs["id"], "from": to}}
	if typ != "" {
		ack.Attrs["type"] = typ
	}
	c.send(ack)
	if typ == "server-error" {
		s.answerMediaRetry(c, node)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	reader := s.st.Accounts[c.dev.Phone]
	if reader == nil {
		return
	}
	s.receiptAcksLocked(c.dev, node)
	participant, hasParticipant := node.Attrs["participant"].(types.JID)
	// Receipts for status updates and broadcast lists go to the poster, as in groups.
	isGroup := to.Server == types.GroupServer || to.Server == types.BroadcastServer
	targetJID := to
	if isGroup {
		if !hasParticipant {
			return
		}
		targetJID = participant
	}
	target := s.st.accountFor(targetJID)
	if target == nil {
		return
	}
	lid := targetJID.Server == types.HiddenUserServer
	readerJID := reader.deviceJID(c.dev.Device, lid)
	attrs := waBinary.Attrs{"id": node.Attrs["id"], "t": s.now().Unix()}
	if t, ok := node.Attrs["t"]; ok {
		attrs["t"] = t
	}
	if typ != "" {
		attrs["type"] = typ
	}
	copyAttrs(attrs, node.Attrs, "recipient", "category")
	if isGroup {
		attrs["from"] = to
		attrs["participant"] = readerJID
	} else {
		attrs["from"] = readerJID
	}
	out := waBinary.Node{Tag: "receipt", Attrs: attrs}
	if len(node.GetChildren()) > 0 {
		out.Content = node.GetChildren()
	}
	if typ == "retry" {
		// Only the device that sent the undecryptable message can re-encrypt it.
		ref := devRef{Phone: target.Phone, Device: int(targetJID.Device)}
		if target.device(ref.Device) != nil {
			s.deliverLocked(ref, out)
		}
		return
	}
	for _, id := range target.sortedDevices() {
		ref := devRef{Phone: target.Phone, Device: id}
		if ref == c.dev {
			continue
		}
		s.deliverLocked(ref, out)
	}
}
