package wasim

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

func iqReply(req *waBinary.Node, typ string, content ...waBinary.Node) waBinary.Node {
	from := req.Attrs["to"]
	if from == nil {
		from = types.ServerJID
	}
	node := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": req.Attrs["id"], "type": typ, "from": from}}
	if len(content) > 0 {
		node.Content = content
	}
	return node
}

func iqResult(req *waBinary.Node, content ...waBinary.Node) waBinary.Node {
	return iqReply(req, "result", content...)
}

func iqError(req *waBinary.Node, code int, text string) waBinary.Node {
	return iqReply(req, "error", errNode(code, text))
}

// handleIQ answers every iq. An unanswered iq stalls the client for 75 seconds, so anything the simulator
// does not model gets an explicit error.
func (s *Server) handleIQ(c *conn, node *waBinary.Node) {
	typ := attrStr(node.Attrs["type"])
	if typ == "result" || typ == "error" {
		s.handleIQResponse(c, node)
		return
	}
	xmlns := attrStr(node.Attrs["xmlns"])
	if c.reg != nil && xmlns != "md" && xmlns != "w:p" {
		c.send(iqError(node, 401, "not-authorized"))
		return
	}
	var resp waBinary.Node
	switch xmlns {
	case "w:p", "passive", "urn:xmpp:whatsapp:push", "urn:xmpp:whatsapp:dirty", "disappearing_mode", "w:stats":
		resp = iqResult(node)
	case "encrypt":
		resp = s.handleEncryptIQ(c, node)
	case "usync":
		resp = s.handleUsync(c, node)
	case "md":
		resp = s.handleMDIQ(c, node)
	case "w:m":
		resp = s.handleMediaConn(node)
	case "w:g2":
		resp = s.handleGroupIQ(c, node)
	case "w:sync:app:state":
		resp = s.handleAppStateIQ(c, node)
	case "w:profile:picture":
		resp = s.handlePictureIQ(c, node)
	case "privacy":
		resp = s.handlePrivacyIQ(c, node)
	case "blocklist":
		resp = s.handleBlocklistIQ(c, node)
	case "status":
		resp = s.handleStatusIQ(c, node)
	default:
		c.log.Debug().Str("xmlns", xmlns).Str("type", typ).Msg("Unsupported iq namespace")
		resp = iqError(node, 501, "feature-not-implemented")
	}
	if resp.Tag != "" {
		c.send(resp)
	}
}

func (s *Server) handlePrivacyIQ(c *conn, node *waBinary.Node) waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.st.Accounts[c.dev.Phone]
	if acct == nil {
		return iqError(node, 404, "item-not-found")
	}
	if attrStr(node.Attrs["type"]) == "set" {
		privacy := node.GetChildByTag("privacy")
		for _, cat := range privacy.GetChildren() {
			acct.Privacy[attrStr(cat.Attrs["name"])] = attrStr(cat.Attrs["value"])
		}
		return iqResult(node, waBinary.Node{Tag: "privacy", Content: privacy.GetChildren()})
	}
	defaults := map[string]string{"last": "all", "online": "all", "profile": "all", "status": "contacts",
		"groupadd": "all", "readreceipts": "all", "calladd": "all", "messages": "all", "defense": "off",
		"stickers": "all"}
	var cats []waBinary.Node
	for _, name := range []string{"last", "online", "profile", "status", "groupadd", "readreceipts", "calladd", "messages", "defense", "stickers"} {
		val := defaults[name]
		if v, ok := acct.Privacy[name]; ok {
			val = v
		}
		cats = append(cats, waBinary.Node{Tag: "category", Attrs: waBinary.Attrs{"name": name, "value": val}})
	}
	return iqResult(node, waBinary.Node{Tag: "privacy", Content: cats})
}

func (s *Server) handleBlocklistIQ(c *conn, node *waBinary.Node) waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.st.Accounts[c.dev.Phone]
	if acct == nil {
		return iqError(node, 404, "item-not-found")
	}
	if attrStr(node.Attrs["type"]) == "set" {
		item := node.GetChildByTag("item")
		jid, _ := item.Attrs["jid"].(types.JID)
		action := attrStr(item.Attrs["action"])
		kept := acct.Blocklist[:0]
		for _, b := range acct.Blocklist {
			if b != jid.ToNonAD().String() {
				kept = append(kept, b)
			}
		}
		acct.Blocklist = kept
		if action == "block" {
			acct.Blocklist = append(acct.Blocklist, jid.ToNonAD().String())
		}
	}
	items := make([]waBinary.Node, 0, len(acct.Blocklist))
	for _, b := range acct.Blocklist {
		jid, err := types.ParseJID(b)
		if err == nil {
			items = append(items, waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"jid": jid}})
		}
	}
	return iqResult(node, waBinary.Node{Tag: "list", Attrs: waBinary.Attrs{"dhash": "sim"}, Content: items})
}

func (s *Server) handleStatusIQ(c *conn, node *waBinary.Node) waBinary.Node {
	if attrStr(node.Attrs["type"]) != "set" {
		return iqError(node, 404, "item-not-found")
	}
	status, _ := node.GetChildByTag("status").Content.([]byte)
	s.mu.Lock()
	defer s.mu.Unlock()
	if acct := s.st.Accounts[c.dev.Phone]; acct != nil {
		acct.About = string(status)
	}
	return iqResult(node)
}
