package wasim

import (
	"fmt"
	"strings"

	"go.mau.fi/util/random"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Calls. The pinned whatsmeow cannot place a call, and the simulator carries no media; what
// it models is the signalling a callee's devices get: an <offer> to every device of the
// callee, and the <terminate> when the caller gives up. whatsmeow turns these into
// events.CallOffer and events.CallTerminate and acks them (class "call"); until then they
// stay queued like any other stanza.

// OfferCall rings to from this phone and returns the call ID. Nobody can answer in the
// simulator: follow it with EndCall for a missed call.
func (p *Phone) OfferCall(to types.JID, video bool) (string, error) {
	callID := strings.ToUpper(random.String(32))
	media := []waBinary.Node{
		{Tag: "audio", Attrs: waBinary.Attrs{"enc": "opus", "rate": "16000"}},
		{Tag: "audio", Attrs: waBinary.Attrs{"enc": "opus", "rate": "8000"}},
	}
	if video {
		media = append(media, waBinary.Node{Tag: "video", Attrs: waBinary.Attrs{"enc": "vp8", "dec": "vp8"}})
	}
	return callID, p.signalCall(to, callID, "offer", nil, media)
}

// EndCall tells the callee's devices that the caller hung up (reason "timeout" is a missed call).
func (p *Phone) EndCall(to types.JID, callID, reason string) error {
	return p.signalCall(to, callID, "terminate", waBinary.Attrs{"reason": reason}, nil)
}

func (p *Phone) signalCall(to types.JID, callID, tag string, extra waBinary.Attrs, content []waBinary.Node) error {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	caller := s.st.Accounts[p.Account.Phone]
	callee := s.st.accountFor(to)
	if caller == nil || callee == nil {
		return fmt.Errorf("wasim: call from %s to %s: no such account", p.Account.Phone, to)
	}
	child := waBinary.Attrs{"call-id": callID, "call-creator": caller.deviceJID(0, false)}
	for k, v := range extra {
		child[k] = v
	}
	node := waBinary.Node{Tag: "call", Attrs: waBinary.Attrs{
		"from": caller.deviceJID(0, false), "id": strings.ToUpper(random.String(16)), "t": s.now().Unix(),
		"notify": caller.PushName, "platform": "android", "version": "2.25.1.1",
	}, Content: []waBinary.Node{{Tag: tag, Attrs: child, Content: content}}}
	for _, dev := range callee.sortedDevices() {
		s.deliverLocked(devRef{Phone: callee.Phone, Device: dev}, node)
	}
	return nil
}
