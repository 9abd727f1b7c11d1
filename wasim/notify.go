package wasim

import (
	"crypto/sha256"
	"encoding/base64"
	"sort"
	"strconv"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// notificationLocked builds a server notification with a fresh id; the client acks it by that id.
func (s *Server) notificationLocked(typ string, from types.JID, content ...waBinary.Node) waBinary.Node {
	node := waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": from, "type": typ, "id": "wasim-" + strconv.FormatUint(s.st.nextID("notification"), 10),
		"t": s.now().Unix(),
	}}
	if len(content) > 0 {
		node.Content = content
	}
	return node
}

// notifyDevicesChangedLocked tells an account's own devices and everyone it shares a chat with that its
// device list changed, so their device caches do not keep encrypting for a removed device or miss a new one.
func (s *Server) notifyDevicesChangedLocked(acct *account, change string, devID int) {
	devNode := waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"jid": acct.deviceJID(devID, false), "lid": acct.deviceJID(devID, true)}}
	var pnDevs, lidDevs []types.JID
	for _, id := range acct.sortedDevices() {
		pnDevs = append(pnDevs, acct.deviceJID(id, false))
		lidDevs = append(lidDevs, acct.deviceJID(id, true))
	}
	n := waBinary.Node{Tag: change, Attrs: waBinary.Attrs{"device_hash": deviceListHash(pnDevs), "device_lid_hash": deviceListHash(lidDevs)},
		Content: []waBinary.Node{devNode}}
	for _, other := range s.st.Accounts {
		if other == acct || !s.sharesChatLocked(acct, other) {
			continue
		}
		notif := s.notificationLocked("devices", acct.pnJID(), n)
		notif.Attrs["lid"] = acct.lidJID()
		s.sendToAccountLocked(other, devRef{}, notif, true)
	}
	var devs []waBinary.Node
	for _, jid := range pnDevs {
		devs = append(devs, waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"jid": jid}})
	}
	sync := s.notificationLocked("account_sync", acct.pnJID(), waBinary.Node{Tag: "devices", Attrs: waBinary.Attrs{"dhash": deviceListHash(pnDevs)}, Content: devs})
	s.sendToAccountLocked(acct, devRef{Phone: acct.Phone, Device: devID}, sync, true)
}

// sharesChatLocked is a cheap stand-in for "is in the other's contacts or groups": every account on a
// small simulated network may have a session with every other, so all of them are told.
func (s *Server) sharesChatLocked(a, b *account) bool { return a != nil && b != nil }

// deviceListHash is whatsmeow's participant hash (send.go participantListHashV2) of a device list, so a
// devices notification lets clients update their cache in place instead of refetching.
func deviceListHash(devices []types.JID) string {
	strs := make([]string, len(devices))
	for i, d := range devices {
		strs[i] = d.ADString()
	}
	sort.Strings(strs)
	sum := sha256.Sum256([]byte(strings.Join(strs, "")))
	return "2:" + base64.RawStdEncoding.EncodeToString(sum[:6])
}
