package bridge

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/archive"
)

// Connection health: what the bridge does when capture stops for a login, and how it tells people.
// A stop opens an episode: the ledger gets a gap (archive/doc.go has the rule), the user's management
// room and the admin room get one notice per kind of trouble, and the bridge retries where whatsmeow
// does not (outdated client, ban, unknown refusal). The episode ends when the login is connected and
// WhatsApp has delivered its offline queue; then the gap closes, and whoever was told hears that
// capture resumed.

// Login states, as the status endpoint and the metrics name them.
const (
	stateConnected    = "connected"
	stateConnecting   = "connecting"
	stateOutdated     = "outdated"
	stateBanned       = "banned_until"
	stateLoggedOut    = "logged_out"
	statePhoneOffline = "phone_offline"
	// stateDisconnected is a login nothing reconnects by itself: another client took the session over.
	stateDisconnected = "disconnected"
)

// loginStates lists every state, for gauges that must read 0 rather than vanish.
var loginStates = []string{stateConnected, stateConnecting, stateOutdated, stateBanned, stateLoggedOut, statePhoneOffline, stateDisconnected}

// noticeGrace is how long a dropped connection may take to come back before people are told: whatsmeow
// reconnects on its own within seconds, and a notice per network blip would teach users to ignore them.
const noticeGrace = 2 * time.Minute

// retryDelays space the bridge's own reconnects after a refusal whatsmeow does not retry.
var retryDelays = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}

// health is one login's connection state. User.mu guards it.
type health struct {
	state  string
	since  time.Time
	detail string // what happened, in words, for status
	until  time.Time

	capturing bool // connected and the offline queue drained
	connected bool // events.Connected since the connection (re)started
	drained   bool // events.OfflineSyncCompleted since then

	// An episode runs from capture stopping to capture resuming.
	inEpisode bool
	episode   int
	stopped   time.Time
	told      map[string]bool // kinds of trouble already noticed this episode
	recorded  map[string]bool // ledger reasons already written this episode
	noticed   bool            // someone was told, so they hear when it is over
	gapOpen   bool

	retries  int
	retryGen int // a scheduled retry runs only if this has not moved since

	phone phoneHealth
}

// captureStop describes one way capture stopped.
type captureStop struct {
	kind   string       // the kind of trouble: one notice per kind per episode
	state  string       // the login state it leaves
	ledger archive.Kind // KindDisconnected or KindLoggedOut
	reason string       // for the ledger and status
	user   string       // the notice to the user; empty for none
	admin  string       // the notice to the admins; empty for none
	// delayed notices wait noticeGrace and go out only if capture has not resumed by then.
	delayed bool
	// keepConn keeps the connection flags: a keep-alive timeout does not end the connection, and
	// KeepAliveRestored resumes capture on the same one.
	keepConn bool
}

// handleHealthEvent handles whatsmeow's connection events. It reports whether rawEvt was one, and
// whether it may be acknowledged.
func (u *User) handleHealthEvent(ctx context.Context, rawEvt any) (handled, ack bool) {
	switch evt := rawEvt.(type) {
	case *events.Connected:
		u.log.Info().Msg("Connected to WhatsApp")
		u.setConnected(true)
		u.afterConnect(ctx)
		u.reportLoginSuccess(ctx)
		u.mu.Lock()
		u.health.connected = true
		u.mu.Unlock()
		u.maybeResume(ctx, "connected")
		u.checkPhone(ctx)
	case *events.OfflineSyncCompleted:
		u.log.Info().Int("count", evt.Count).Msg("WhatsApp delivered its offline queue")
		u.mu.Lock()
		u.health.drained = true
		u.mu.Unlock()
		u.maybeResume(ctx, fmt.Sprintf("connected; WhatsApp delivered its offline queue (%d)", evt.Count))
	case *events.Disconnected:
		u.log.Info().Msg("Disconnected from WhatsApp")
		u.setConnected(false)
		u.mu.Lock()
		everConnected := u.health.connected || u.health.capturing
		u.mu.Unlock()
		reason := "the connection to WhatsApp was lost"
		if !everConnected {
			reason = "WhatsApp could not be reached"
		}
		u.stopCapture(ctx, captureStop{kind: "disconnected", state: stateConnecting, ledger: archive.KindDisconnected, reason: reason, delayed: true,
			user: "⚠️ The connection to WhatsApp is down (" + reason + ") and has not come back for a while. The bridge keeps " +
				"trying; messages sent meanwhile wait on WhatsApp's side and arrive once it reconnects. If this lasts, send `reconnect`.",
			admin: "⚠️ Capture stopped for %s: " + reason + ". The bridge keeps reconnecting; check the host's network if it lasts."})
	case *events.StreamError:
		reason := "WhatsApp closed the connection with stream error " + evt.Code
		u.stopCapture(ctx, captureStop{kind: "stream_error", state: stateConnecting, ledger: archive.KindDisconnected, reason: reason, delayed: true,
			user:  "⚠️ " + reason + ". The bridge reconnects by itself; messages sent meanwhile arrive once it has. If it keeps happening, send `reconnect`.",
			admin: "⚠️ Capture stopped for %s: " + reason + "."})
	case *events.KeepAliveTimeout:
		u.log.Warn().Int("errors", evt.ErrorCount).Time("last_success", evt.LastSuccess).Msg("WhatsApp is not answering keep-alive pings")
		u.stopCapture(ctx, captureStop{kind: "keepalive", state: stateConnecting, ledger: archive.KindDisconnected,
			reason: "WhatsApp stopped answering keep-alive pings", delayed: true, keepConn: true,
			user:  "⚠️ WhatsApp has stopped answering the bridge. It reconnects by itself within minutes; messages sent meanwhile arrive then.",
			admin: "⚠️ Capture stopped for %s: WhatsApp stopped answering keep-alive pings (network trouble on the host or at WhatsApp)."})
	case *events.KeepAliveRestored:
		u.log.Info().Msg("WhatsApp answers keep-alive pings again")
		u.maybeResume(ctx, "WhatsApp answers keep-alive pings again")
	case *events.ClientOutdated:
		u.handleClientOutdated(ctx)
	case *events.TemporaryBan:
		u.handleTemporaryBan(ctx, evt)
	case *events.ConnectFailure:
		u.handleConnectFailure(ctx, evt)
	case *events.StreamReplaced:
		u.setConnected(false)
		u.stopCapture(ctx, captureStop{kind: "replaced", state: stateDisconnected, ledger: archive.KindDisconnected,
			reason: "another connection took over the session",
			user:   "⚠️ Another connection to WhatsApp took over this session, so the bridge stopped capturing your messages. Send `reconnect` to take it back (and stop the other program using this session).",
			admin:  "⚠️ Capture stopped for %s: another connection took over the WhatsApp session (a second bridge running with the same database?)."})
	case *events.LoggedOut:
		u.handleLoggedOut(ctx, evt)
	default:
		return false, true
	}
	return true, true
}

// startingCapture opens the start-up gap of a saved login: from the start until it has caught up,
// capture has not resumed, whatever the archive's own start says.
func (u *User) startingCapture(ctx context.Context) {
	u.stopCapture(ctx, captureStop{kind: "starting", state: stateConnecting, ledger: archive.KindDisconnected,
		reason: "the bridge started; capture resumes once WhatsApp has delivered what it held"})
}

// stopCapture starts or continues an episode: the ledger entry (once per reason), the state, and the
// notices (once per kind).
func (u *User) stopCapture(ctx context.Context, s captureStop) {
	now := u.b.clock.Now()
	u.mu.Lock()
	h := &u.health
	if !h.inEpisode {
		h.inEpisode, h.episode, h.stopped = true, h.episode+1, now
		h.told, h.recorded, h.noticed = map[string]bool{}, map[string]bool{}, false
	}
	h.capturing = false
	if !s.keepConn {
		h.connected, h.drained = false, false
	}
	if h.state != s.state {
		h.since = now
	}
	h.state, h.detail = s.state, s.reason
	if s.state != stateBanned {
		h.until = time.Time{}
	}
	write := !h.recorded[s.reason]
	h.recorded[s.reason] = true
	tell := (s.user != "" || s.admin != "") && !h.told[s.kind]
	h.told[s.kind] = true
	episode := h.episode
	u.mu.Unlock()

	u.log.Warn().Str("trouble", s.kind).Str("reason", s.reason).Msg("Capture stopped")
	if write && u.record(ctx, &archive.Entry{Kind: s.ledger, Completeness: &archive.Completeness{Reason: s.reason}}) {
		u.mu.Lock()
		u.health.gapOpen = true
		u.mu.Unlock()
	}
	if tell {
		u.tellLater(ctx, episode, s)
	}
}

// tellLater sends an episode's notices from a job, after noticeGrace for delayed ones, and only if the
// episode is still going on: the event handler must not wait for the homeserver.
func (u *User) tellLater(ctx context.Context, episode int, s captureStop) {
	u.b.jobs.Go(context.WithoutCancel(ctx), "health: notice", func(ctx context.Context) {
		if s.delayed {
			select {
			case <-u.b.clock.After(noticeGrace):
			case <-ctx.Done():
				return
			}
		}
		u.mu.Lock()
		current := u.health.inEpisode && u.health.episode == episode
		if current {
			u.health.noticed = true
		}
		u.mu.Unlock()
		if !current {
			return
		}
		if s.user != "" {
			u.notify(ctx, s.user)
		}
		if s.admin != "" {
			u.b.notifyAdmins(ctx, fmt.Sprintf(s.admin, u.MXID()))
		}
	})
}

// maybeResume ends the episode once the login is connected and the offline queue is drained.
func (u *User) maybeResume(ctx context.Context, reason string) {
	now := u.b.clock.Now()
	u.mu.Lock()
	h := &u.health
	if h.capturing || !h.connected || !h.drained {
		u.mu.Unlock()
		return
	}
	h.capturing = true
	noticed, stopped := h.inEpisode && h.noticed, h.stopped
	h.inEpisode, h.retries = false, 0
	h.retryGen++ // a retry still scheduled has nothing left to do
	if h.state != stateConnected {
		h.since = now
	}
	h.state, h.detail, h.until = stateConnected, "", time.Time{}
	u.mu.Unlock()

	// Every start of capture is in the ledger, not only the end of a gap: it is what an officer
	// reads a quiet window against.
	if u.record(ctx, &archive.Entry{Kind: archive.KindConnected, Completeness: &archive.Completeness{Reason: reason}}) {
		u.mu.Lock()
		u.health.gapOpen = false
		u.mu.Unlock()
	}
	u.log.Info().Msg("Capture resumed")
	if noticed {
		since := stopped.Format("15:04")
		u.b.jobs.Go(context.WithoutCancel(ctx), "health: notice", func(ctx context.Context) {
			u.notify(ctx, "✅ Connected to WhatsApp again: capture resumed, and what WhatsApp held since "+since+" has been delivered.")
			u.b.notifyAdmins(ctx, fmt.Sprintf("✅ Capture resumed for %s (stopped since %s).", u.MXID(), since))
		})
	}
}

// retryLater reconnects after delay (or the next backoff step when delay is 0), unless something else
// reconnected or logged the user out first.
func (u *User) retryLater(ctx context.Context, delay time.Duration, refreshVersion bool) {
	u.mu.Lock()
	if delay == 0 {
		delay = retryDelays[min(u.health.retries, len(retryDelays)-1)]
	}
	u.health.retries++
	u.health.retryGen++
	gen := u.health.retryGen
	u.mu.Unlock()
	u.log.Info().Dur("delay", delay).Msg("Reconnecting to WhatsApp later")
	u.b.jobs.Go(context.WithoutCancel(ctx), "health: reconnect", func(ctx context.Context) {
		select {
		case <-u.b.clock.After(delay):
		case <-ctx.Done():
			return
		}
		u.mu.Lock()
		cli, current := u.client, u.health.retryGen == gen
		u.mu.Unlock()
		if !current || cli == nil {
			return
		}
		if refreshVersion {
			u.b.refreshWAVersion(ctx)
		}
		// The refused socket may linger until WhatsApp closes it; whatsmeow's IsConnected cannot be
		// asked (it reads the socket without its lock), and Disconnect is a no-op on a closed one.
		cli.Disconnect()
		if err := cli.Connect(); err != nil {
			u.log.Warn().Err(err).Msg("Reconnecting to WhatsApp failed")
			u.retryLater(ctx, 0, refreshVersion)
		}
	})
}

// cancelRetries drops scheduled reconnects: the user logged out, or reconnected by hand.
func (u *User) cancelRetries() {
	u.mu.Lock()
	u.health.retryGen++
	u.health.retries = 0
	u.mu.Unlock()
}

func (u *User) handleClientOutdated(ctx context.Context) {
	u.setConnected(false)
	used, _ := u.b.waVersion.get()
	reason := "WhatsApp refused the client as outdated (405, WhatsApp Web version " + used.String() + ")"
	u.stopCapture(ctx, captureStop{kind: "outdated", state: stateOutdated, ledger: archive.KindDisconnected, reason: reason})
	u.mu.Lock()
	episode, tell := u.health.episode, !u.health.told["outdated_notice"]
	u.health.told["outdated_notice"] = true
	u.mu.Unlock()
	// The notice names the version the next attempt uses, so fetch it first, off the event handler.
	u.b.jobs.Go(context.WithoutCancel(ctx), "health: client outdated", func(ctx context.Context) {
		next, changed := u.b.refreshWAVersion(ctx)
		delay := time.Duration(0)
		if changed {
			delay = time.Second
		}
		if tell {
			what := fmt.Sprintf("WhatsApp refused this bridge's client as outdated (WhatsApp Web version %s), so your messages are not being captured. "+
				"The bridge will retry with version %s; if this persists, the bridge's administrator sets `whatsapp.version` in its config or upgrades Causeway.",
				used, next)
			u.tellLater(ctx, episode, captureStop{kind: "outdated", user: "⚠️ " + what,
				admin: "⚠️ Capture stopped for %s: WhatsApp refused the client as outdated (version " + used.String() +
					"). The bridge retries with version " + next.String() + ". If it persists, set `whatsapp.version` to the current WhatsApp Web version or upgrade Causeway."})
		}
		u.retryLater(ctx, delay, true)
	})
}

func (u *User) handleTemporaryBan(ctx context.Context, evt *events.TemporaryBan) {
	u.setConnected(false)
	until := u.b.clock.Now().Add(evt.Expire)
	reason := fmt.Sprintf("WhatsApp temporarily banned the account (%s) until %s", evt.Code, until.UTC().Format(time.RFC3339))
	u.stopCapture(ctx, captureStop{kind: "banned", state: stateBanned, ledger: archive.KindDisconnected, reason: reason,
		user: fmt.Sprintf("⛔ WhatsApp has temporarily banned your account: %s. The ban ends at %s (in %s); "+
			"the bridge reconnects then, and nothing is captured until it does. Open WhatsApp on your phone for details; "+
			"if you believe the ban is a mistake, you can ask WhatsApp to review it there.",
			evt.Code, until.Format("2006-01-02 15:04 MST"), evt.Expire.Round(time.Second)),
		admin: "⛔ Capture stopped for %s: WhatsApp temporarily banned the account (" + evt.Code.String() + ") until " +
			until.Format("2006-01-02 15:04 MST") + ". The bridge reconnects when the ban ends."})
	u.mu.Lock()
	u.health.until = until
	u.mu.Unlock()
	u.retryLater(ctx, max(evt.Expire, 0)+time.Second, false)
}

// connectFailureAdvice says what to do about each refusal whatsmeow leaves to us.
func connectFailureAdvice(reason events.ConnectFailureReason) string {
	switch reason {
	case events.ConnectFailureBadUserAgent:
		return "WhatsApp rejected the client's identification; set `whatsapp.version` to the current WhatsApp Web version or upgrade Causeway."
	case events.ConnectFailureNotFound, events.ConnectFailureClientUnknown:
		return "WhatsApp no longer knows this linked device; if it keeps failing, send `logout` and `login` to link your phone again."
	case events.ConnectFailureGeneric:
		return "WhatsApp gave no reason; if it keeps failing, send `reconnect`, or `logout` and `login` to link your phone again."
	}
	return "If it keeps failing, send `reconnect`, or `logout` and `login` to link your phone again."
}

func (u *User) handleConnectFailure(ctx context.Context, evt *events.ConnectFailure) {
	u.setConnected(false)
	reason := "WhatsApp refused the connection (" + evt.Reason.String() + ")"
	if evt.Message != "" {
		reason += ": " + evt.Message
	}
	advice := connectFailureAdvice(evt.Reason)
	u.stopCapture(ctx, captureStop{kind: fmt.Sprintf("failure_%d", int(evt.Reason)), state: stateConnecting, ledger: archive.KindDisconnected, reason: reason,
		user:  "⚠️ " + reason + ", so your messages are not being captured. The bridge retries by itself. " + advice,
		admin: "⚠️ Capture stopped for %s: " + reason + ". The bridge retries with a growing delay."})
	u.retryLater(ctx, 0, evt.Reason == events.ConnectFailureBadUserAgent)
}

func (u *User) handleLoggedOut(ctx context.Context, evt *events.LoggedOut) {
	u.log.Warn().Bool("on_connect", evt.OnConnect).Str("reason", evt.Reason.String()).Msg("Logged out by WhatsApp")
	u.setConnected(false)
	u.cancelRetries()
	u.mu.Lock()
	u.client, u.wa = nil, nil
	u.mu.Unlock()
	if err := u.forgetDevice(ctx); err != nil {
		u.log.Err(err).Msg("Failed to forget the device")
	}
	u.stopCapture(ctx, captureStop{kind: "logged_out", state: stateLoggedOut, ledger: archive.KindLoggedOut, reason: evt.Reason.String(),
		user: "⚠️ WhatsApp logged this bridge out (" + evt.Reason.String() + "). " +
			"Your rooms and their history stay. Send `login` to link your phone again; nothing is captured until you do.",
		admin: "⚠️ Capture stopped for %s: WhatsApp logged the bridge out (" + evt.Reason.String() + "). The user has been asked to log in again."})
}

// healthSnapshot is one login's state for status, the status endpoint and the metrics.
type healthSnapshot struct {
	State     string
	Since     time.Time
	Detail    string
	Until     time.Time
	LastEvent time.Time
	PhoneSeen time.Time
	GapOpen   bool
}

func (u *User) healthSnapshot() healthSnapshot {
	now := u.b.clock.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	h := &u.health
	s := healthSnapshot{State: h.state, Since: h.since, Detail: h.detail, Until: h.until, LastEvent: u.lastSeen,
		PhoneSeen: h.phone.seen, GapOpen: h.gapOpen}
	if s.State == "" {
		s.State = stateConnecting
		if u.connected {
			s.State = stateConnected
		}
	}
	if s.State == stateConnected && h.phone.stale(now) {
		s.State, s.Since = statePhoneOffline, h.phone.seen.Add(phoneWarnAfter)
		s.Detail = "the phone has not been seen since " + h.phone.seen.Format(time.DateTime)
	}
	return s
}
