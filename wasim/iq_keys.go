package wasim

import (
	"bytes"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// lowPreKeyThreshold is when the server nudges a device to upload more one-time prekeys.
const lowPreKeyThreshold = 5

func (s *Server) handleEncryptIQ(c *conn, node *waBinary.Node) waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.st.Accounts[c.dev.Phone]
	if acct == nil || acct.device(c.dev.Device) == nil {
		return iqError(node, 401, "not-authorized")
	}
	dev := acct.device(c.dev.Device)
	typ := attrStr(node.Attrs["type"])
	if _, ok := node.GetOptionalChildByTag("count"); ok && typ == "get" {
		return iqResult(node, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": len(dev.PreKeys)}})
	}
	if keyReq, ok := node.GetOptionalChildByTag("key"); ok && typ == "get" {
		return iqResult(node, waBinary.Node{Tag: "list", Content: s.preKeyBundlesLocked(keyReq.GetChildren())})
	}
	if _, ok := node.GetOptionalChildByTag("rotate"); ok && typ == "set" {
		if skey, ok := node.GetOptionalChildByTag("rotate", "skey"); ok {
			dev.SignedPreKey = parseSignedKey(skey)
		}
		return iqResult(node)
	}
	if typ == "set" {
		if reg, ok := node.GetChildByTag("registration").Content.([]byte); ok {
			dev.RegID = reg
		}
		if ident, ok := node.GetChildByTag("identity").Content.([]byte); ok {
			if dev.Identity != nil && !bytes.Equal(dev.Identity, ident) {
				c.log.Warn().Msg("Device uploaded a different identity key")
			}
			dev.Identity = ident
		}
		list := node.GetChildByTag("list")
		for _, k := range list.GetChildren() {
			id, _ := k.GetChildByTag("id").Content.([]byte)
			val, _ := k.GetChildByTag("value").Content.([]byte)
			if len(id) == 3 && len(val) == 32 {
				dev.PreKeys = append(dev.PreKeys, preKey{ID: id, Pub: val})
			}
		}
		if skey, ok := node.GetOptionalChildByTag("skey"); ok {
			dev.SignedPreKey = parseSignedKey(skey)
		}
		c.log.Debug().Int("prekeys", len(dev.PreKeys)).Msg("Device uploaded prekeys")
		return iqResult(node)
	}
	return iqError(node, 400, "bad-request")
}

func parseSignedKey(node waBinary.Node) *signedKey {
	id, _ := node.GetChildByTag("id").Content.([]byte)
	val, _ := node.GetChildByTag("value").Content.([]byte)
	sig, _ := node.GetChildByTag("signature").Content.([]byte)
	return &signedKey{ID: id, Pub: val, Signature: sig}
}

// preKeyBundlesLocked answers a prekey fetch. Each <user> echoes the exact JID that was asked for,
// because the client keys its result map by it.
func (s *Server) preKeyBundlesLocked(users []waBinary.Node) []waBinary.Node {
	out := make([]waBinary.Node, 0, len(users))
	for _, u := range users {
		jid, _ := u.Attrs["jid"].(types.JID)
		acct := s.st.accountFor(jid)
		var dev *device
		if acct != nil {
			dev = acct.device(int(jid.Device))
		}
		if dev == nil || dev.SignedPreKey == nil || len(dev.RegID) != 4 || len(dev.Identity) != 32 {
			out = append(out, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid},
				Content: []waBinary.Node{errNode(404, "item-not-found")}})
			continue
		}
		content := []waBinary.Node{
			{Tag: "registration", Content: dev.RegID},
			{Tag: "type", Content: []byte{5}},
			{Tag: "identity", Content: dev.Identity},
			{Tag: "skey", Content: []waBinary.Node{
				{Tag: "id", Content: dev.SignedPreKey.ID},
				{Tag: "value", Content: dev.SignedPreKey.Pub},
				{Tag: "signature", Content: dev.SignedPreKey.Signature},
			}},
		}
		if len(dev.PreKeys) > 0 {
			pk := dev.PreKeys[0]
			dev.PreKeys = dev.PreKeys[1:]
			content = append(content, waBinary.Node{Tag: "key", Content: []waBinary.Node{
				{Tag: "id", Content: pk.ID}, {Tag: "value", Content: pk.Pub},
			}})
			if len(dev.PreKeys) == lowPreKeyThreshold-1 {
				s.deliverLocked(devRef{Phone: acct.Phone, Device: dev.ID}, s.notificationLocked("encrypt", types.ServerJID,
					waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": len(dev.PreKeys)}}))
			}
		}
		out = append(out, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content})
	}
	return out
}
