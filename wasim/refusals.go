package wasim

import (
	"context"
	"fmt"
	"net/http"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// The ways WhatsApp refuses a companion: an outdated client version (405), a temporary ban (402 with
// its expiry), and the web version endpoint clients read the current version from. Phones (device 0)
// are never refused: on the real network they are mobile apps with versions of their own, and here
// they share the process-wide web version the bridge under test sets.

// builtInVersion is the web client version the pinned whatsmeow was built with, read before any
// client in the process can change it with store.SetWAVersion.
var builtInVersion = store.GetWAVersion()

// BuiltInVersion is the web client version the pinned whatsmeow sends unless told otherwise.
func BuiltInVersion() store.WAVersionContainer { return builtInVersion }

// refusals are the simulator's standing refusals.
type refusals struct {
	minVersion store.WAVersionContainer            // companions below it get 405
	webVersion store.WAVersionContainer            // what the version endpoint serves; zero: builtInVersion
	bans       map[string]ban                      // by phone number
	seen       map[devRef]store.WAVersionContainer // the version each device last logged in with
}

type ban struct {
	code  events.TempBanReason
	until time.Time
}

// SetMinClientVersion makes companion logins with an older web client version fail with 405 (client
// outdated), as WhatsApp does once it retires a version. The zero version turns the check off.
func (s *Server) SetMinClientVersion(v store.WAVersionContainer) {
	s.mu.Lock()
	s.refusals.minVersion = v
	s.mu.Unlock()
}

// SetWebVersion sets the version the simulated web.whatsapp.com page announces (what
// whatsmeow.GetLatestVersion reads). The zero version serves the built-in one.
func (s *Server) SetWebVersion(v store.WAVersionContainer) {
	s.mu.Lock()
	s.refusals.webVersion = v
	s.mu.Unlock()
}

// LoginVersion is the web client version the device last sent when logging in, refused or not; zero
// when it never tried.
func (s *Server) LoginVersion(jid types.JID) store.WAVersionContainer {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	if err != nil {
		return store.WAVersionContainer{}
	}
	return s.refusals.seen[ref]
}

// BanAccount temporarily bans the account until the given time: its companions' logins fail with 402
// carrying the reason code and the seconds left, and connected companions are cut off the same way.
func (s *Server) BanAccount(phone string, code events.TempBanReason, until time.Time) error {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.st.Accounts[phone]
	if acct == nil {
		return fmt.Errorf("wasim: no account %s", phone)
	}
	if s.refusals.bans == nil {
		s.refusals.bans = map[string]ban{}
	}
	b := ban{code: code, until: until}
	s.refusals.bans[phone] = b
	for ref, c := range s.conns {
		if ref.Phone == phone && ref.Device != 0 {
			delete(s.conns, ref)
			c.loggedIn = false
			c.sendAndClose(s.banNodeLocked(b), "account banned")
		}
	}
	return nil
}

// LiftBan ends an account's ban before its expiry.
func (s *Server) LiftBan(phone string) {
	s.mu.Lock()
	delete(s.refusals.bans, phone)
	s.mu.Unlock()
}

func (s *Server) banNodeLocked(b ban) waBinary.Node {
	left := max(int(time.Until(b.until).Seconds()), 1)
	return waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{
		"reason": int(events.ConnectFailureTempBanned), "code": int(b.code), "expire": left, "location": "sim",
	}}
}

// refuseLoginLocked returns the failure a login gets instead of <success>, if any, and remembers the
// version the device sent.
func (s *Server) refuseLoginLocked(ref devRef, payload *waWa6.ClientPayload) (waBinary.Node, bool) {
	app := payload.GetUserAgent().GetAppVersion()
	v := store.WAVersionContainer{app.GetPrimary(), app.GetSecondary(), app.GetTertiary()}
	if s.refusals.seen == nil {
		s.refusals.seen = map[devRef]store.WAVersionContainer{}
	}
	s.refusals.seen[ref] = v
	if ref.Device == 0 {
		return waBinary.Node{}, false
	}
	if b, ok := s.refusals.bans[ref.Phone]; ok {
		if s.now().Before(b.until) {
			return s.banNodeLocked(b), true
		}
		delete(s.refusals.bans, ref.Phone)
	}
	if min := s.refusals.minVersion; !min.IsZero() && v.LessThan(min) {
		return failureNode(int(events.ConnectFailureClientOutdated)), true
	}
	return waBinary.Node{}, false
}

// handleWebVersion is the simulated https://web.whatsapp.com/: only the part of the page
// whatsmeow.GetLatestVersion reads.
func (s *Server) handleWebVersion(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.refusals.webVersion
	s.mu.Unlock()
	if v.IsZero() {
		v = builtInVersion
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!DOCTYPE html><html><head><script>self.__swData={"dynamic_data":{"SiteData":{"server_revision":%d,"client_revision":%d,"push_phash":""}}};</script></head><body></body></html>`, v[2], v[2])
}

// ReplaceStream tells a connected device that another connection took its session over
// (<stream:error><conflict type="replaced"/>), as WhatsApp does when the same device logs in twice.
func (s *Server) ReplaceStream(jid types.JID) error {
	return s.withConn(jid, func(c *conn) {
		s.mu.Lock()
		if s.conns[c.dev] == c {
			delete(s.conns, c.dev)
		}
		c.loggedIn = false
		s.mu.Unlock()
		c.sendAndClose(waBinary.Node{Tag: "stream:error", Content: []waBinary.Node{{
			Tag: "conflict", Attrs: waBinary.Attrs{"type": "replaced"},
		}}}, "injected stream replacement")
	})
}

// GoOffline disconnects the phone and keeps it away, as a phone left switched off does: its companions
// keep working, and nothing comes from the phone until ComeOnline.
func (p *Phone) GoOffline() {
	p.sim.settle()
	p.Client.Disconnect()
}

// ComeOnline reconnects a phone GoOffline took away and waits until it is logged in again.
func (p *Phone) ComeOnline(ctx context.Context) error {
	if err := p.Client.Connect(); err != nil {
		return fmt.Errorf("reconnect phone %s: %w", p.Account.Phone, err)
	}
	// NewPhone consumed the first Connected, and nothing else waits for the phone's.
	if _, err := WaitFor[*events.Connected](ctx, p.Events, nil); err != nil {
		return fmt.Errorf("phone %s did not come back: %w", p.Account.Phone, err)
	}
	return nil
}
