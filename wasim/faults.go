package wasim

import (
	"context"
	"errors"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// deviceFaults are the injected misbehaviours for one device.
type deviceFaults struct {
	dropDelivery  bool
	delay         time.Duration
	failNextLogin int
}

// ErrUnknownDevice is returned by fault injection for a JID that names no registered device.
var ErrUnknownDevice = errors.New("wasim: unknown device")

// refFor resolves a device JID (PN or LID, device part included) to the device it names.
func (s *Server) refForLocked(jid types.JID) (devRef, error) {
	acct := s.st.accountFor(jid)
	if acct == nil || acct.device(int(jid.Device)) == nil {
		return devRef{}, ErrUnknownDevice
	}
	return devRef{Phone: acct.Phone, Device: int(jid.Device)}, nil
}

func (s *Server) faultsLocked(ref devRef) *deviceFaults {
	f := s.faults[ref]
	if f == nil {
		f = &deviceFaults{}
		s.faults[ref] = f
	}
	return f
}

// settle lets in-flight stanzas be handled before an injected fault. whatsmeow's socket has a data race
// between a send and a close coming from the server (socket/framesocket.go:124 vs :82); cutting a client
// off while it is sending an ack trips it under -race. Waiting for a quiet network keeps test runs
// race-free without changing what the client sees.
func (s *Server) settle() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.WaitIdle(ctx, 100*time.Millisecond)
}

func (s *Server) withConn(jid types.JID, fn func(c *conn)) error {
	s.settle()
	s.mu.Lock()
	ref, err := s.refForLocked(jid)
	var c *conn
	if err == nil {
		c = s.conns[ref]
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if c == nil {
		return errors.New("wasim: device is not connected")
	}
	fn(c)
	return nil
}

// DropConnection cuts a device's websocket without any goodbye, like a network failure. Stanzas sent
// but not yet acknowledged stay queued and are redelivered when the client reconnects.
func (s *Server) DropConnection(jid types.JID) error {
	return s.withConn(jid, func(c *conn) { c.close("injected connection drop") })
}

// SendStreamError sends <stream:error code=...> and closes the socket. 515 asks the client to reconnect
// at once; 503 means the server is going away and the client's auto-reconnect takes over.
func (s *Server) SendStreamError(jid types.JID, code string) error {
	return s.withConn(jid, func(c *conn) {
		c.sendAndClose(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": code}}, "injected stream error")
	})
}

// SendFailure sends <failure reason=...> to a connected device and closes the socket. Reasons 401, 403
// and 406 are log-outs: the device is also removed from its account, as WhatsApp does, so the client
// (which deletes its store) could not come back even if it tried.
func (s *Server) SendFailure(jid types.JID, reason int) error {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	if err != nil {
		return err
	}
	c := s.conns[ref]
	switch reason {
	case 401, 403, 406:
		acct := s.st.Accounts[ref.Phone]
		if c == nil {
			s.removeDeviceLocked(acct, ref.Device, true)
			return nil
		}
		delete(s.conns, ref)
		c.loggedIn = false
		c.sendAndClose(failureNode(reason), "injected failure")
		delete(acct.Devices, devKey(ref.Device))
		s.notifyDevicesChangedLocked(acct, "remove", ref.Device)
		return nil
	}
	if c == nil {
		return errors.New("wasim: device is not connected")
	}
	c.sendAndClose(failureNode(reason), "injected failure")
	return nil
}

// FailNextLogin makes the device's next login attempt get <failure reason=...> instead of <success>.
func (s *Server) FailNextLogin(jid types.JID, reason int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	if err != nil {
		return err
	}
	s.faultsLocked(ref).failNextLogin = reason
	return nil
}

// SetDeliveryDelay holds every stanza for the device for d before sending it (0 turns it off).
func (s *Server) SetDeliveryDelay(jid types.JID, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	if err != nil {
		return err
	}
	s.faultsLocked(ref).delay = d
	return nil
}

// SetDeliveryDrop makes the server lose every stanza for the device in transit: they stay queued as
// unacknowledged (WhatsApp thinks they were sent) and are redelivered only on a later reconnect with the
// fault turned off.
func (s *Server) SetDeliveryDrop(jid types.JID, drop bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	if err != nil {
		return err
	}
	s.faultsLocked(ref).dropDelivery = drop
	return nil
}

// SetMediaOutage makes every media download fail with 503 until it is turned off again;
// uploads still work.
func (s *Server) SetMediaOutage(on bool) {
	s.mu.Lock()
	s.mediaOutage = on
	s.mu.Unlock()
}

// PendingStanzas is how many stanzas the device has not acknowledged yet.
func (s *Server) PendingStanzas(jid types.JID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	if err != nil {
		return 0
	}
	return s.queueLength(ref)
}

// IsConnected reports whether the device currently has a logged-in connection.
func (s *Server) IsConnected(jid types.JID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	return err == nil && s.conns[ref] != nil
}
