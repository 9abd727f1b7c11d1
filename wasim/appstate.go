package wasim

import (
	"strconv"

	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waServerSync"
)

// handleAppStateIQ stores and serves opaque app-state patches. The server owns the version numbers:
// clients leave SyncdPatch.version empty and MAC the patch with the version the server will assign.
func (s *Server) handleAppStateIQ(c *conn, node *waBinary.Node) waBinary.Node {
	syncNode, ok := node.GetOptionalChildByTag("sync")
	if !ok {
		return iqError(node, 400, "bad-request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.st.Accounts[c.dev.Phone]
	if acct == nil {
		return iqError(node, 401, "not-authorized")
	}
	var out []waBinary.Node
	var changed []waBinary.Node
	for _, coll := range syncNode.GetChildren() {
		if coll.Tag != "collection" {
			continue
		}
		name := attrStr(coll.Attrs["name"])
		patches := acct.AppState[name]
		current := uint64(len(patches))
		incoming := coll.GetChildrenByTag("patch")
		if len(incoming) == 0 {
			from, _ := strconv.ParseUint(attrStr(coll.Attrs["version"]), 10, 64)
			out = append(out, collectionNode(name, current, patches, from, ""))
			continue
		}
		clientVersion, err := strconv.ParseUint(attrStr(coll.Attrs["version"]), 10, 64)
		if err != nil || clientVersion != current {
			c.log.Debug().Str("collection", name).Uint64("client_version", clientVersion).Uint64("server_version", current).
				Msg("App state patch conflicts with newer patches")
			conflict := collectionNode(name, current, patches, clientVersion, "error")
			conflict.Content = append([]waBinary.Node{errNode(409, "conflict")}, conflict.GetChildren()...)
			out = append(out, conflict)
			continue
		}
		for _, pn := range incoming {
			raw, _ := pn.Content.([]byte)
			var patch waServerSync.SyncdPatch
			if err = proto.Unmarshal(raw, &patch); err != nil {
				return iqError(node, 400, "bad-request")
			}
			current++
			patch.Version = &waServerSync.SyncdVersion{Version: proto.Uint64(current)}
			stored, err := proto.Marshal(&patch)
			if err != nil {
				return iqError(node, 500, "internal-server-error")
			}
			acct.AppState[name] = append(acct.AppState[name], stored)
		}
		out = append(out, waBinary.Node{Tag: "collection", Attrs: waBinary.Attrs{"name": name, "version": current}})
		changed = append(changed, waBinary.Node{Tag: "collection", Attrs: waBinary.Attrs{"name": name, "version": current}})
	}
	if len(changed) > 0 {
		s.sendToAccountLocked(acct, c.dev, s.notificationLocked("server_sync", acct.pnJID(), changed...), true)
	}
	return iqResult(node, waBinary.Node{Tag: "sync", Content: out})
}

// collectionNode lists the stored patches newer than from. There are no snapshots: serving the whole
// history from version 1 is valid, and histories in tests stay short.
func collectionNode(name string, current uint64, patches [][]byte, from uint64, typ string) waBinary.Node {
	attrs := waBinary.Attrs{"name": name, "version": current}
	if typ != "" {
		attrs["type"] = typ
	}
	var list []waBinary.Node
	for i := from; i < uint64(len(patches)); i++ {
		list = append(list, waBinary.Node{Tag: "patch", Content: patches[i]})
	}
	node := waBinary.Node{Tag: "collection", Attrs: attrs}
	if len(list) > 0 {
		node.Content = []waBinary.Node{{Tag: "patches", Content: list}}
	}
	return node
}
