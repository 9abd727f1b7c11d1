package wasim

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handlePresence records availability and push names and manages presence subscriptions.
func (s *Server) handlePresence(c *conn, node *waBinary.Node) {
	typ := attrStr(node.Attrs["type"])
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.st.Accounts[c.dev.Phone]
	if acct == nil {
		return
	}
	switch typ {
	case "available", "unavailable", "":
		if name := attrStr(node.Attrs["name"]); name != "" {
			acct.PushName = name
		}
		if s.online == nil {
			s.online = map[devRef]bool{}
		}
		wasOnline := s.accountOnlineLocked(acct)
		if typ == "unavailable" {
			delete(s.online, c.dev)
		} else {
			s.online[c.dev] = true
		}
		if isOnline := s.accountOnlineLocked(acct); isOnline != wasOnline {
			if !isOnline {
				acct.LastSeen = s.now().Unix()
			}
			s.broadcastPresenceLocked(acct)
		}
	case "subscribe":
		to, _ := node.Attrs["to"].(types.JID)
		target := s.st.accountFor(to)
		if target == nil {
			return
		}
		target.Subscribers[c.dev.String()] = true
		s.sendEphemeralLocked(c.dev, s.presenceNodeLocked(target, to.Server == types.HiddenUserServer))
	case "unsubscribe":
		to, _ := node.Attrs["to"].(types.JID)
		if target := s.st.accountFor(to); target != nil {
			delete(target.Subscribers, c.dev.String())
		}
	}
}

func (s *Server) accountOnlineLocked(acct *account) bool {
	for ref := range s.online {
		if ref.Phone == acct.Phone && s.conns[ref] != nil {
			return true
		}
	}
	return false
}

func (s *Server) presenceNodeLocked(acct *account, lid bool) waBinary.Node {
	from := acct.pnJID()
	if lid {
		from = acct.lidJID()
	}
	attrs := waBinary.Attrs{"from": from}
	if !s.accountOnlineLocked(acct) {
		attrs["type"] = "unavailable"
		if acct.LastSeen > 0 {
			attrs["last"] = acct.LastSeen
		} else {
			attrs["last"] = "deny"
		}
	}
	return waBinary.Node{Tag: "presence", Attrs: attrs}
}

func (s *Server) broadcastPresenceLocked(acct *account) {
	node := s.presenceNodeLocked(acct, false)
	for sub := range acct.Subscribers {
		for ref := range s.conns {
			if ref.String() == sub {
				s.sendEphemeralLocked(ref, node)
			}
		}
	}
}

// deviceWentOfflineLocked runs when a logged-in connection ends.
func (s *Server) deviceWentOfflineLocked(ref devRef) {
	if !s.online[ref] {
		return
	}
	delete(s.online, ref)
	acct := s.st.Accounts[ref.Phone]
	if acct != nil && !s.accountOnlineLocked(acct) {
		acct.LastSeen = s.now().Unix()
		s.broadcastPresenceLocked(acct)
	}
}

// handleChatState relays typing notifications. They are never queued: a typing indicator for an offline
// device is worthless by the time it reconnects.
func (s *Server) handleChatState(c *conn, node *waBinary.Node) {
	to, _ := node.Attrs["to"].(types.JID)
	s.mu.Lock()
	defer s.mu.Unlock()
	sender := s.st.Accounts[c.dev.Phone]
	if sender == nil {
		return
	}
	if to.Server == types.GroupServer {
		g := s.st.Groups[to.User]
		if g == nil {
			return
		}
		out := waBinary.Node{Tag: "chatstate", Attrs: waBinary.Attrs{"from": to, "participant": sender.pnJID()}, Content: node.GetChildren()}
		for _, m := range g.Members {
			if acct := s.st.Accounts[m.Phone]; acct != nil {
				s.sendToAccountLocked(acct, c.dev, out, false)
			}
		}
		return
	}
	target := s.st.accountFor(to)
	if target == nil {
		return
	}
	from := sender.pnJID()
	if to.Server == types.HiddenUserServer {
		from = sender.lidJID()
	}
	s.sendToAccountLocked(target, c.dev, waBinary.Node{Tag: "chatstate", Attrs: waBinary.Attrs{"from": from}, Content: node.GetChildren()}, false)
}

// sendToAccountLocked sends a stanza to every device of an account except one, queued or not.
func (s *Server) sendToAccountLocked(acct *account, except devRef, node waBinary.Node, queue bool) {
	for _, id := range acct.sortedDevices() {
		ref := devRef{Phone: acct.Phone, Device: id}
		if ref == except {
			continue
		}
		if queue {
			s.deliverLocked(ref, node)
		} else {
			s.sendEphemeralLocked(ref, node)
		}
	}
}
