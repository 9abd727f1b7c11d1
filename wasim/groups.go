package wasim

import (
	"strconv"

	"go.mau.fi/util/random"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

type group struct {
	ID           string    `json:"id"`
	Subject      string    `json:"subject"`
	SubjectTime  int64     `json:"subject_time"`
	SubjectOwner string    `json:"subject_owner"`
	Creator      string    `json:"creator"`
	Created      int64     `json:"created"`
	Description  string    `json:"description"`
	DescID       string    `json:"desc_id"`
	DescTime     int64     `json:"desc_time"`
	DescOwner    string    `json:"desc_owner"`
	Members      []*member `json:"members"`
	Announce     bool      `json:"announce"`
	Locked       bool      `json:"locked"`
	Ephemeral    uint32    `json:"ephemeral"`
	InviteCode   string    `json:"invite_code"`
	Picture      *picture  `json:"picture,omitempty"`
}

type member struct {
	Phone string `json:"phone"`
	Role  string `json:"role"` // "", "admin" or "superadmin"
}

func (g *group) jid() types.JID { return types.NewJID(g.ID, types.GroupServer) }

func (g *group) member(phone string) *member {
	for _, m := range g.Members {
		if m.Phone == phone {
			return m
		}
	}
	return nil
}

func (g *group) isAdmin(phone string) bool {
	m := g.member(phone)
	return m != nil && m.Role != ""
}

// groupNodeLocked renders a group the way parseGroupNode reads it. Participants carry their LID so that
// clients learn the PN<->LID mappings sender keys depend on.
func (s *Server) groupNodeLocked(g *group) waBinary.Node {
	attrs := waBinary.Attrs{
		"id": g.ID, "subject": g.Subject, "s_t": g.SubjectTime, "creation": g.Created,
		"size": len(g.Members), "addressing_mode": "pn",
	}
	if creator := s.st.Accounts[g.Creator]; creator != nil {
		attrs["creator"] = creator.pnJID()
	}
	if owner := s.st.Accounts[g.SubjectOwner]; owner != nil {
		attrs["s_o"] = owner.pnJID()
	}
	var content []waBinary.Node
	for _, m := range g.Members {
		acct := s.st.Accounts[m.Phone]
		if acct == nil {
			continue
		}
		pa := waBinary.Attrs{"jid": acct.pnJID(), "lid": acct.lidJID()}
		if m.Role != "" {
			pa["type"] = m.Role
		}
		content = append(content, waBinary.Node{Tag: "participant", Attrs: pa})
	}
	if g.Description != "" {
		da := waBinary.Attrs{"id": g.DescID, "t": g.DescTime}
		if owner := s.st.Accounts[g.DescOwner]; owner != nil {
			da["participant"] = owner.pnJID()
		}
		content = append(content, waBinary.Node{Tag: "description", Attrs: da,
			Content: []waBinary.Node{{Tag: "body", Content: []byte(g.Description)}}})
	}
	if g.Announce {
		content = append(content, waBinary.Node{Tag: "announcement"})
	}
	if g.Locked {
		content = append(content, waBinary.Node{Tag: "locked"})
	}
	if g.Ephemeral > 0 {
		content = append(content, waBinary.Node{Tag: "ephemeral", Attrs: waBinary.Attrs{"expiration": g.Ephemeral}})
	}
	return waBinary.Node{Tag: "group", Attrs: attrs, Content: content}
}

// notifyGroupLocked sends a w:gp2 notification about an action by actor to every current member plus
// any extra accounts (removed members must learn that they were removed).
func (s *Server) notifyGroupLocked(g *group, actor *account, extra []*account, change waBinary.Node) {
	notif := s.notificationLocked("w:gp2", g.jid(), change)
	if actor != nil {
		notif.Attrs["participant"] = actor.pnJID()
		notif.Attrs["participant_lid"] = actor.lidJID()
		notif.Attrs["notify"] = actor.PushName
	}
	targets := map[string]*account{}
	for _, m := range g.Members {
		if acct := s.st.Accounts[m.Phone]; acct != nil {
			targets[acct.Phone] = acct
		}
	}
	for _, acct := range extra {
		targets[acct.Phone] = acct
	}
	for _, acct := range targets {
		s.sendToAccountLocked(acct, devRef{}, notif, true)
	}
}

func (s *Server) participantNodeLocked(acct *account, attrs waBinary.Attrs) waBinary.Node {
	a := waBinary.Attrs{"jid": acct.pnJID(), "lid": acct.lidJID()}
	for k, v := range attrs {
		a[k] = v
	}
	return waBinary.Node{Tag: "participant", Attrs: a}
}

// handleGroupIQ implements w:g2. Errors use the codes whatsmeow maps to its group errors.
func (s *Server) handleGroupIQ(c *conn, node *waBinary.Node) waBinary.Node {
	to, _ := node.Attrs["to"].(types.JID)
	children := node.GetChildren()
	if len(children) == 0 {
		return iqError(node, 400, "bad-request")
	}
	op := children[0]
	typ := attrStr(node.Attrs["type"])
	s.mu.Lock()
	defer s.mu.Unlock()
	actor := s.st.Accounts[c.dev.Phone]
	if actor == nil {
		return iqError(node, 401, "not-authorized")
	}
	if to == types.GroupServerJID {
		switch op.Tag {
		case "create":
			return s.groupCreateLocked(node, op, actor)
		case "participating":
			var groups []waBinary.Node
			for _, g := range s.st.Groups {
				if g.member(actor.Phone) != nil {
					groups = append(groups, s.groupNodeLocked(g))
				}
			}
			return iqResult(node, waBinary.Node{Tag: "groups", Content: groups})
		case "leave":
			for _, gn := range op.GetChildren() {
				gid, _ := gn.Attrs["id"].(types.JID)
				if g := s.st.Groups[gid.User]; g != nil && g.member(actor.Phone) != nil {
					s.removeMembersLocked(g, actor, []*account{actor}, "remove")
				}
			}
			return iqResult(node)
		case "invite":
			return s.groupInviteByCodeLocked(node, op, actor, typ)
		}
		return iqError(node, 501, "feature-not-implemented")
	}
	g := s.st.Groups[to.User]
	if g == nil {
		return iqError(node, 404, "item-not-found")
	}
	if g.member(actor.Phone) == nil {
		return iqError(node, 403, "forbidden")
	}
	switch op.Tag {
	case "query":
		return iqResult(node, s.groupNodeLocked(g))
	case "add", "remove", "promote", "demote":
		return s.groupParticipantsLocked(node, op, g, actor)
	case "subject":
		if g.Locked && !g.isAdmin(actor.Phone) {
			return iqError(node, 403, "forbidden")
		}
		name, _ := op.Content.([]byte)
		g.Subject, g.SubjectTime, g.SubjectOwner = string(name), s.now().Unix(), actor.Phone
		s.notifyGroupLocked(g, actor, nil, waBinary.Node{Tag: "subject", Attrs: waBinary.Attrs{
			"subject": g.Subject, "s_t": g.SubjectTime, "s_o": actor.pnJID()}})
		return iqResult(node)
	case "description":
		if g.Locked && !g.isAdmin(actor.Phone) {
			return iqError(node, 403, "forbidden")
		}
		body, hasBody := op.GetOptionalChildByTag("body")
		id := attrStr(op.Attrs["id"])
		if id == "" {
			id = strconv.FormatUint(s.st.nextID("desc"), 10)
		}
		g.DescID, g.DescTime, g.DescOwner = id, s.now().Unix(), actor.Phone
		change := waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{"id": id}}
		if text, _ := body.Content.([]byte); hasBody && len(text) > 0 {
			g.Description = string(text)
			change.Content = []waBinary.Node{{Tag: "body", Content: text}}
		} else {
			g.Description = ""
			change.Content = []waBinary.Node{{Tag: "delete"}}
		}
		s.notifyGroupLocked(g, actor, nil, change)
		return iqResult(node)
	case "announcement", "not_announcement", "locked", "unlocked":
		if !g.isAdmin(actor.Phone) {
			return iqError(node, 403, "forbidden")
		}
		switch op.Tag {
		case "announcement", "not_announcement":
			g.Announce = op.Tag == "announcement"
		default:
			g.Locked = op.Tag == "locked"
		}
		s.notifyGroupLocked(g, actor, nil, waBinary.Node{Tag: op.Tag, Attrs: waBinary.Attrs{"v_id": strconv.FormatUint(s.st.nextID("v"), 10)}})
		return iqResult(node)
	case "ephemeral", "not_ephemeral":
		g.Ephemeral = 0
		change := waBinary.Node{Tag: op.Tag}
		if op.Tag == "ephemeral" {
			exp, _ := strconv.ParseUint(attrStr(op.Attrs["expiration"]), 10, 32)
			g.Ephemeral = uint32(exp)
			change.Attrs = waBinary.Attrs{"expiration": g.Ephemeral}
		}
		s.notifyGroupLocked(g, actor, nil, change)
		return iqResult(node)
	case "invite":
		if !g.isAdmin(actor.Phone) {
			return iqError(node, 401, "not-authorized")
		}
		if g.InviteCode == "" || typ == "set" {
			if g.InviteCode != "" {
				delete(s.st.Invites, g.InviteCode)
			}
			g.InviteCode = string(random.StringBytes(22))
			s.st.Invites[g.InviteCode] = g.ID
		}
		return iqResult(node, waBinary.Node{Tag: "invite", Attrs: waBinary.Attrs{"code": g.InviteCode}})
	case "picture":
		return iqError(node, 501, "feature-not-implemented")
	}
	return iqError(node, 501, "feature-not-implemented")
}

func (s *Server) groupCreateLocked(node *waBinary.Node, op waBinary.Node, actor *account) waBinary.Node {
	subject := attrStr(op.Attrs["subject"])
	if len([]rune(subject)) > 100 {
		return iqError(node, 406, "not-acceptable")
	}
	g := &group{
		ID: strconv.FormatUint(s.st.NextGroup, 10), Subject: subject, SubjectTime: s.now().Unix(),
		SubjectOwner: actor.Phone, Creator: actor.Phone, Created: s.now().Unix(),
		Members: []*member{{Phone: actor.Phone, Role: "superadmin"}},
	}
	s.st.NextGroup++
	for _, child := range op.GetChildren() {
		switch child.Tag {
		case "participant":
			jid, _ := child.Attrs["jid"].(types.JID)
			if acct := s.st.accountFor(jid); acct != nil && g.member(acct.Phone) == nil {
				g.Members = append(g.Members, &member{Phone: acct.Phone})
			}
		case "announcement":
			g.Announce = true
		case "locked":
			g.Locked = true
		case "ephemeral":
			exp, _ := strconv.ParseUint(attrStr(child.Attrs["expiration"]), 10, 32)
			g.Ephemeral = uint32(exp)
		}
	}
	s.st.Groups[g.ID] = g
	create := waBinary.Node{Tag: "create", Attrs: waBinary.Attrs{"type": "new"}, Content: []waBinary.Node{s.groupNodeLocked(g)}}
	if key := attrStr(op.Attrs["key"]); key != "" {
		create.Attrs["key"] = key
	}
	s.notifyGroupLocked(g, actor, nil, create)
	return iqResult(node, s.groupNodeLocked(g))
}

func (s *Server) groupParticipantsLocked(node *waBinary.Node, op waBinary.Node, g *group, actor *account) waBinary.Node {
	if !g.isAdmin(actor.Phone) {
		return iqError(node, 403, "forbidden")
	}
	var results []waBinary.Node
	var changed []*account
	for _, child := range op.GetChildren() {
		jid, _ := child.Attrs["jid"].(types.JID)
		acct := s.st.accountFor(jid)
		if acct == nil {
			results = append(results, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid, "error": 404}})
			continue
		}
		m := g.member(acct.Phone)
		code := 0
		switch op.Tag {
		case "add":
			if m != nil {
				code = 409
			} else {
				g.Members = append(g.Members, &member{Phone: acct.Phone})
			}
		case "remove":
			if m == nil {
				code = 404
			}
		case "promote", "demote":
			if m == nil {
				code = 404
			} else if op.Tag == "promote" && m.Role == "" {
				m.Role = "admin"
			} else if op.Tag == "demote" && m.Role == "admin" {
				m.Role = ""
			}
		}
		attrs := waBinary.Attrs{}
		if code != 0 {
			attrs["error"] = code
		} else {
			changed = append(changed, acct)
		}
		results = append(results, s.participantNodeLocked(acct, attrs))
	}
	if len(changed) > 0 {
		switch op.Tag {
		case "add":
			s.addMembersNotifyLocked(g, actor, changed, "")
		case "remove":
			s.removeMembersLocked(g, actor, changed, "remove")
		default:
			var parts []waBinary.Node
			for _, acct := range changed {
				parts = append(parts, s.participantNodeLocked(acct, nil))
			}
			s.notifyGroupLocked(g, actor, nil, waBinary.Node{Tag: op.Tag, Content: parts})
		}
	}
	return iqResult(node, waBinary.Node{Tag: op.Tag, Content: results})
}

// addMembersNotifyLocked tells existing members about new ones and the new ones about the group.
func (s *Server) addMembersNotifyLocked(g *group, actor *account, added []*account, reason string) {
	var parts []waBinary.Node
	isNew := map[string]bool{}
	for _, acct := range added {
		parts = append(parts, s.participantNodeLocked(acct, nil))
		isNew[acct.Phone] = true
	}
	change := waBinary.Node{Tag: "add", Content: parts}
	if reason != "" {
		change.Attrs = waBinary.Attrs{"reason": reason}
	}
	notif := s.notificationLocked("w:gp2", g.jid(), change)
	notif.Attrs["participant"] = actor.pnJID()
	notif.Attrs["notify"] = actor.PushName
	for _, m := range g.Members {
		if acct := s.st.Accounts[m.Phone]; acct != nil && !isNew[m.Phone] {
			s.sendToAccountLocked(acct, devRef{}, notif, true)
		}
	}
	createReason := "add"
	if reason != "" {
		createReason = reason
	}
	joined := s.notificationLocked("w:gp2", g.jid(), waBinary.Node{Tag: "create",
		Attrs: waBinary.Attrs{"reason": createReason}, Content: []waBinary.Node{s.groupNodeLocked(g)}})
	joined.Attrs["participant"] = actor.pnJID()
	for _, acct := range added {
		s.sendToAccountLocked(acct, devRef{}, joined, true)
	}
}

func (s *Server) removeMembersLocked(g *group, actor *account, removed []*account, tag string) {
	var parts []waBinary.Node
	gone := map[string]bool{}
	for _, acct := range removed {
		parts = append(parts, s.participantNodeLocked(acct, nil))
		gone[acct.Phone] = true
	}
	kept := g.Members[:0]
	for _, m := range g.Members {
		if !gone[m.Phone] {
			kept = append(kept, m)
		}
	}
	g.Members = kept
	s.notifyGroupLocked(g, actor, removed, waBinary.Node{Tag: tag, Content: parts})
}

// groupInviteByCodeLocked resolves (get) or joins (set) an invite link.
func (s *Server) groupInviteByCodeLocked(node *waBinary.Node, op waBinary.Node, actor *account, typ string) waBinary.Node {
	gid, ok := s.st.Invites[attrStr(op.Attrs["code"])]
	g := s.st.Groups[gid]
	if !ok || g == nil {
		return iqError(node, 410, "gone")
	}
	if typ == "get" {
		return iqResult(node, s.groupNodeLocked(g))
	}
	if g.member(actor.Phone) == nil {
		g.Members = append(g.Members, &member{Phone: actor.Phone})
		s.addMembersNotifyLocked(g, actor, []*account{actor}, "invite")
	}
	return iqResult(node, waBinary.Node{Tag: "group", Attrs: waBinary.Attrs{"jid": g.jid()}})
}

// routeGroupMessageLocked fans a group message out: each member device gets its own pairwise <enc> (the
// sender key distribution) if the sender included one, plus the shared skmsg.
func (s *Server) routeGroupMessageLocked(c *conn, sender *account, node *waBinary.Node, to types.JID, ts int64) int {
	g := s.st.Groups[to.User]
	if g == nil {
		return 404
	}
	m := g.member(sender.Phone)
	if m == nil {
		return 403
	}
	if g.Announce && m.Role == "" {
		return 403
	}
	attrs := func() waBinary.Attrs {
		a := waBinary.Attrs{"id": node.Attrs["id"], "t": ts, "from": to, "notify": sender.PushName,
			"participant": sender.deviceJID(c.dev.Device, false), "participant_lid": sender.deviceJID(c.dev.Device, true),
			"addressing_mode": "pn"}
		copyAttrs(a, node.Attrs, "type", "edit", "category")
		return a
	}
	participants, hasParticipants := node.GetOptionalChildByTag("participants")
	if !hasParticipants {
		// A retry resend for one member device.
		target, _ := node.Attrs["participant"].(types.JID)
		acct := s.st.accountFor(target)
		if acct == nil || acct.device(int(target.Device)) == nil {
			return 404
		}
		a := attrs()
		s.deliverLocked(devRef{Phone: acct.Phone, Device: int(target.Device)}, waBinary.Node{Tag: "message", Attrs: a, Content: node.GetChildren()})
		return 0
	}
	perDevice := map[devRef][]waBinary.Node{}
	for _, toNode := range participants.GetChildren() {
		jid, _ := toNode.Attrs["jid"].(types.JID)
		if acct := s.st.accountFor(jid); acct != nil {
			perDevice[devRef{Phone: acct.Phone, Device: int(jid.Device)}] = toNode.GetChildren()
		}
	}
	var shared []waBinary.Node
	for _, child := range node.GetChildren() {
		if child.Tag == "enc" {
			shared = append(shared, child)
		}
	}
	forwarded := forwardedChildren(node)
	for _, mem := range g.Members {
		acct := s.st.Accounts[mem.Phone]
		if acct == nil {
			continue
		}
		for _, id := range acct.sortedDevices() {
			ref := devRef{Phone: acct.Phone, Device: id}
			if ref == c.dev {
				continue
			}
			content := append(append(append([]waBinary.Node{}, perDevice[ref]...), shared...), forwarded...)
			s.deliverLocked(ref, waBinary.Node{Tag: "message", Attrs: attrs(), Content: content})
		}
	}
	return 0
}
