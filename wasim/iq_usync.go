package wasim

import (
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

func contentString(node waBinary.Node) string {
	switch v := node.Content.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	}
	return ""
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// handleUsync answers user-sync queries: device lists, PN<->LID, contact lookup, status and picture.
func (s *Server) handleUsync(c *conn, node *waBinary.Node) waBinary.Node {
	usync := node.GetChildByTag("usync")
	var wantDevices, wantLID, wantContact, wantStatus, wantPicture, wantBusiness bool
	query := usync.GetChildByTag("query")
	for _, q := range query.GetChildren() {
		switch q.Tag {
		case "devices":
			wantDevices = true
		case "lid":
			wantLID = true
		case "contact":
			wantContact = true
		case "status":
			wantStatus = true
		case "picture":
			wantPicture = true
		case "business":
			wantBusiness = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var users []waBinary.Node
	userList := usync.GetChildByTag("list")
	for _, u := range userList.GetChildren() {
		jid, hasJID := u.Attrs["jid"].(types.JID)
		var acct *account
		var contactQuery string
		if hasJID {
			jid = jid.ToNonAD()
			acct = s.st.accountFor(jid)
		} else if cn, ok := u.GetOptionalChildByTag("contact"); ok {
			contactQuery = contentString(cn)
			phone := digitsOnly(strings.TrimSuffix(contactQuery, "@"+types.LegacyUserServer))
			jid = types.NewJID(phone, types.DefaultUserServer)
			acct = s.st.Accounts[phone]
		} else {
			continue
		}
		// A note-to-self send asks for the same user twice; the client would double its device list.
		if seen[jid.String()] {
			continue
		}
		seen[jid.String()] = true
		var content []waBinary.Node
		if wantContact {
			typ := "out"
			if acct != nil {
				typ = "in"
			}
			content = append(content, waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": typ}, Content: []byte(contactQuery)})
		}
		if acct != nil {
			if wantDevices {
				devs := make([]waBinary.Node, 0, len(acct.Devices))
				for _, id := range acct.sortedDevices() {
					attrs := waBinary.Attrs{"id": id}
					if id != 0 {
						attrs["key-index"] = acct.device(id).KeyIndex
					}
					devs = append(devs, waBinary.Node{Tag: "device", Attrs: attrs})
				}
				content = append(content, waBinary.Node{Tag: "devices", Content: []waBinary.Node{{Tag: "device-list", Content: devs}}})
			}
			if wantLID {
				if jid.Server == types.DefaultUserServer {
					content = append(content, waBinary.Node{Tag: "lid", Attrs: waBinary.Attrs{"val": acct.lidJID()}})
				} else {
					content = append(content, waBinary.Node{Tag: "lid"})
				}
			}
			if wantStatus {
				content = append(content, waBinary.Node{Tag: "status", Attrs: waBinary.Attrs{"t": 1700000000}, Content: []byte(acct.About)})
			}
			if wantPicture {
				pic := waBinary.Node{Tag: "picture"}
				if acct.Picture != nil {
					pic.Attrs = waBinary.Attrs{"id": acct.Picture.ID}
				}
				content = append(content, pic)
			}
			if wantBusiness {
				content = append(content, waBinary.Node{Tag: "business"})
			}
		}
		users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content})
	}
	return iqResult(node, waBinary.Node{
		Tag: "usync",
		Attrs: waBinary.Attrs{"sid": usync.Attrs["sid"], "mode": usync.Attrs["mode"], "context": usync.Attrs["context"],
			"index": "0", "last": "true"},
		Content: []waBinary.Node{{Tag: "result"}, {Tag: "list", Content: users}},
	})
}
