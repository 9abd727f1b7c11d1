package bridge

import (
	"net/http"
	"sort"
	"time"

	"go.mau.fi/util/exhttp"
)

// StatusPath is the provisioning API's bridge status: each login's state, for monitoring that cannot
// read a management room. It takes the import endpoint's authentication (appservice.as_token).
const StatusPath = "/_causeway/provision/v1/status"

// StatusReport is the body of GET StatusPath.
type StatusReport struct {
	WhatsAppVersion string        `json:"whatsapp_version"`
	VersionSource   string        `json:"whatsapp_version_source"`
	CaptureGapOpen  bool          `json:"capture_gap_open"`
	Logins          []LoginStatus `json:"logins"`
}

// LoginStatus is one login: its state (connected, connecting, outdated, banned_until, logged_out,
// phone_offline, disconnected), since when, and the last event the bridge received for it.
type LoginStatus struct {
	User        string     `json:"user"`
	State       string     `json:"state"`
	Since       *time.Time `json:"since,omitempty"`
	Detail      string     `json:"detail,omitempty"`
	BannedUntil *time.Time `json:"banned_until,omitempty"`
	LastEvent   *time.Time `json:"last_event,omitempty"`
	PhoneSeen   *time.Time `json:"phone_last_seen,omitempty"`
	GapOpen     bool       `json:"capture_gap_open"`
}

func (b *Bridge) handleProvisionStatus(w http.ResponseWriter, r *http.Request) {
	if !b.checkProvisionToken(w, r) {
		return
	}
	exhttp.WriteJSONResponse(w, http.StatusOK, b.statusReport())
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// logins are the users with a login, or whose login WhatsApp ended while this bridge ran.
func (b *Bridge) logins() []*User {
	b.usersMu.Lock()
	defer b.usersMu.Unlock()
	var out []*User
	for _, u := range b.users {
		u.mu.Lock()
		has := u.row.WADevice != "" || u.health.state == stateLoggedOut
		u.mu.Unlock()
		if has {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MXID() < out[j].MXID() })
	return out
}

func (b *Bridge) statusReport() *StatusReport {
	version, source := b.WhatsAppVersion()
	rep := &StatusReport{WhatsAppVersion: version, VersionSource: source, Logins: []LoginStatus{}}
	for _, u := range b.logins() {
		s := u.healthSnapshot()
		ls := LoginStatus{User: string(u.MXID()), State: s.State, Since: timePtr(s.Since), Detail: s.Detail,
			LastEvent: timePtr(s.LastEvent), PhoneSeen: timePtr(s.PhoneSeen), GapOpen: s.GapOpen}
		if s.State == stateBanned {
			ls.BannedUntil = timePtr(s.Until)
		}
		rep.CaptureGapOpen = rep.CaptureGapOpen || s.GapOpen
		rep.Logins = append(rep.Logins, ls)
	}
	return rep
}

// loginStateCounts is what the metrics export: how many logins are in each state, no names.
func (b *Bridge) loginStateCounts() (map[string]int, bool) {
	counts := map[string]int{}
	gap := false
	for _, u := range b.logins() {
		s := u.healthSnapshot()
		counts[s.State]++
		gap = gap || s.GapOpen
	}
	return counts, gap
}
