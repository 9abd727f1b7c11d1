package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/skip2/go-qrcode"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/config"
)

// loginProcess is a login in progress, from `login` until success, failure or timeout.
type loginProcess struct {
	cancel context.CancelFunc
	room   id.RoomID
	// succeeded is set before a successful login is ended, so that whoever watches the login's
	// context knows its end is not a failure.
	succeeded atomic.Bool
	// qrImage and qrText are the events showing the current QR code; rotations edit them.
	qrImage, qrText id.EventID
}

func (b *Bridge) addLoginCommands(cs *commandSet) {
	cs.add(&command{name: "login", args: "[phone +NUMBER]", minLevel: config.LevelUser, handler: b.cmdLogin,
		help: "Link your WhatsApp account: scan a QR code, or with `phone +4917...` enter a pairing code on your phone."})
	cs.add(&command{name: "logout", minLevel: config.LevelUser, handler: b.cmdLogout,
		help: "Unlink the bridge from your WhatsApp account. Your rooms and their history stay."})
	cs.add(&command{name: "reconnect", minLevel: config.LevelUser, handler: b.cmdReconnect,
		help: "Drop and re-open the connection to WhatsApp."})
	cs.add(&command{name: "presence", args: "available|away|busy|offline", minLevel: config.LevelUser, handler: b.cmdPresence,
		help: "Set what your WhatsApp contacts see (Matrix has no manual status)."})
}

var phoneNumber = regexp.MustCompile(`^\+?[0-9]{7,15}$`)

func (b *Bridge) cmdLogin(ctx context.Context, ce *commandEvent) string {
	u, err := b.getUser(ctx, ce.sender, true)
	if err != nil {
		return "Sorry, I could not load your account: " + err.Error()
	}
	u.mu.Lock()
	loggedIn, busy := u.row.WADevice != "", u.login != nil
	u.mu.Unlock()
	if loggedIn {
		return "You are already logged in. Send `logout` first to link another account."
	} else if busy {
		return "A login is already in progress. Finish it on your phone, or wait for it to time out."
	}
	var phone string
	if len(ce.args) > 0 {
		if strings.ToLower(ce.args[0]) != "phone" || len(ce.args) != 2 || !phoneNumber.MatchString(strings.ReplaceAll(ce.args[1], " ", "")) {
			return "Usage: `login` for a QR code, or `login phone +4917612345678` for a pairing code."
		}
		phone = strings.TrimPrefix(ce.args[1], "+")
	}
	// The login outlives the command, but not the bridge: Stop ends it, and with it whatsmeow's QR
	// emitter and our goroutines following it.
	untilStop, cancelOnStop := b.jobs.until(context.WithoutCancel(ctx))
	loginCtx, cancelTimeout := context.WithTimeout(untilStop, 5*time.Minute)
	lp := &loginProcess{cancel: func() { cancelTimeout(); cancelOnStop() }, room: ce.roomID}
	u.mu.Lock()
	u.login = lp
	u.mu.Unlock()
	cli := u.newClient(b.db.WhatsApp.NewDevice())
	u.mu.Lock()
	u.client = cli
	u.wa = &waClient{cli: cli, http: b.waHTTP()}
	u.pushName = pushNameWait{}
	u.mu.Unlock()
	if phone == "" {
		// whatsmeow's QR emitter disconnects the client when its context ends before it has seen
		// the pairing. The login's context ends on success too (the Connected after pairing can
		// come first), so the emitter gets a context of its own that followQR ends only for a
		// login that failed.
		qrCtx, stopQR := context.WithCancel(context.WithoutCancel(loginCtx))
		qrChan, err := cli.GetQRChannel(qrCtx)
		if err != nil {
			stopQR()
			u.endLogin(lp)
			return "Could not start the login: " + err.Error()
		}
		if err := cli.Connect(); err != nil {
			stopQR()
			u.endLogin(lp)
			return "Could not reach WhatsApp: " + err.Error()
		}
		if !b.jobs.Go(loginCtx, "login: QR codes", func(ctx context.Context) { u.followQR(ctx, lp, qrChan, stopQR) }) {
			stopQR()
			u.endLogin(lp)
			cli.Disconnect()
			return errStopping.Error()
		}
		return "Open WhatsApp on your phone, tap **Settings → Linked devices → Link a device**, and scan the QR code below."
	}
	if err := cli.Connect(); err != nil {
		u.endLogin(lp)
		return "Could not reach WhatsApp: " + err.Error()
	}
	code, err := cli.PairPhone(loginCtx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		u.endLogin(lp)
		cli.Disconnect()
		return "WhatsApp refused the pairing request: " + err.Error()
	}
	if !b.jobs.Go(loginCtx, "login: pairing code", func(ctx context.Context) { u.awaitPairing(ctx, lp) }) {
		u.endLogin(lp)
		cli.Disconnect()
		return errStopping.Error()
	}
	return fmt.Sprintf("On your phone, open WhatsApp's notification (or **Settings → Linked devices → Link with phone number**) and enter this code:\n\n**%s**", code)
}

// followQR shows each QR code WhatsApp hands out, editing the previous one, until the
// login succeeds, fails or times out. stopQR ends whatsmeow's QR emitter, which disconnects
// the client unless it has already seen the pairing.
func (u *User) followQR(ctx context.Context, lp *loginProcess, qrChan <-chan whatsmeow.QRChannelItem, stopQR context.CancelFunc) {
	defer stopQR() // once the channel is closed the emitter has stopped: this only frees the context
	done := ctx.Done()
	for {
		select {
		case item, ok := <-qrChan:
			if !ok || !u.handleQRItem(ctx, lp, item) {
				return
			}
		case <-done:
			done = nil
			// A login that succeeded ends before whatsmeow's channel has taken the pairing in;
			// stopping the emitter then would disconnect the new session. It closes the channel
			// itself once it has.
			u.mu.Lock()
			paired := u.row.WADevice != ""
			u.mu.Unlock()
			if !paired && !lp.succeeded.Load() {
				stopQR() // timed out or stopping: the emitter closes the channel and the connection
			}
		}
	}
}

// handleQRItem acts on one item of the QR channel and reports whether more may follow.
func (u *User) handleQRItem(ctx context.Context, lp *loginProcess, item whatsmeow.QRChannelItem) bool {
	switch item.Event {
	case whatsmeow.QRChannelEventCode:
		if err := u.showQR(ctx, lp, item.Code); err != nil {
			u.log.Err(err).Msg("Failed to show a QR code")
		}
		return true
	case whatsmeow.QRChannelSuccess.Event:
		return false // PairSuccess and Connected report the rest
	case whatsmeow.QRChannelTimeout.Event:
		u.failLogin(ctx, lp, "Login timed out: no phone scanned the QR code. Send `login` to try again.")
	case whatsmeow.QRChannelEventError:
		u.failLogin(ctx, lp, "Login failed: "+item.Error.Error())
	default:
		u.failLogin(ctx, lp, "Login failed ("+item.Event+"). Send `login` to try again.")
	}
	return false
}

func (u *User) showQR(ctx context.Context, lp *loginProcess, code string) error {
	png, err := qrcode.Encode(code, qrcode.Medium, 512)
	if err != nil {
		return fmt.Errorf("failed to render the QR code: %w", err)
	}
	b := u.b
	upload, err := b.botUpload(ctx, lp.room, bytes.NewReader(png), int64(len(png)), "image/png", "whatsapp-login-qr.png")
	if err != nil {
		return fmt.Errorf("failed to upload the QR code: %w", err)
	}
	image := &event.MessageEventContent{
		MsgType: event.MsgImage, Body: "whatsapp-login-qr.png",
		Info: &event.FileInfo{MimeType: "image/png", Size: len(png), Width: 512, Height: 512},
	}
	upload.into(image)
	text := &event.MessageEventContent{MsgType: event.MsgNotice, Body: "QR code: " + code,
		Format: event.FormatHTML, FormattedBody: "QR code: <code>" + code + "</code>"}
	if lp.qrImage == "" {
		evt, err := b.botSend(ctx, lp.room, event.EventMessage, image)
		if err != nil {
			return err
		}
		lp.qrImage = evt
		evt, err = b.botSend(ctx, lp.room, event.EventMessage, text)
		if err != nil {
			return err
		}
		lp.qrText = evt
		return nil
	}
	// WhatsApp rotates the code every 20 s: replace the shown one rather than stack them.
	image.SetEdit(lp.qrImage)
	text.SetEdit(lp.qrText)
	if _, err := b.botSend(ctx, lp.room, event.EventMessage, image); err != nil {
		return err
	}
	_, err = b.botSend(ctx, lp.room, event.EventMessage, text)
	return err
}

// awaitPairing times out a phone-code login the phone never completed.
func (u *User) awaitPairing(ctx context.Context, lp *loginProcess) {
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		u.failLogin(context.Background(), lp, "Login timed out: the pairing code was not entered. Send `login phone +NUMBER` to try again.")
	}
}

func (u *User) failLogin(ctx context.Context, lp *loginProcess, msg string) {
	u.mu.Lock()
	if u.login != lp {
		u.mu.Unlock()
		return
	}
	cli := u.client
	paired := u.row.WADevice != ""
	u.mu.Unlock()
	if paired {
		return
	}
	u.endLogin(lp)
	if cli != nil {
		cli.Disconnect()
	}
	u.mu.Lock()
	u.client, u.wa = nil, nil
	u.mu.Unlock()
	u.b.reply(ctx, lp.room, msg)
}

func (u *User) endLogin(lp *loginProcess) {
	u.mu.Lock()
	if u.login == lp {
		u.login = nil
	}
	u.mu.Unlock()
	lp.cancel()
}

func (u *User) handlePairSuccess(ctx context.Context, evt *events.PairSuccess) {
	u.mu.Lock()
	u.row.WADevice = evt.ID.String()
	u.row.WAPhone = evt.ID.User
	row := *u.row
	u.mu.Unlock()
	if err := u.b.db.Users.Put(ctx, &row); err != nil {
		u.log.Err(err).Msg("Failed to save the new WhatsApp session")
	}
	u.log.Info().Str("device", u.b.logJID(evt.ID.String())).Str("platform", evt.Platform).Msg("Paired with WhatsApp")
}

// pushNameWait is the account's push name as the phone's app state set it (events.PushNameSetting):
// whatsmeow keeps it in cli.Store.PushName too, but writes that field from its own goroutine without a
// lock, so it is not ours to read.
type pushNameWait struct {
	name string
	set  chan struct{} // closed once name is set; nil until someone waits
}

// pushNameWaitLimit bounds the wait: the first app-state sync waits for the phone to share its keys,
// seconds normally, longer on a loaded machine.
const pushNameWaitLimit = 60 * time.Second

func (u *User) setPushName(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if name == "" || name == u.pushName.name {
		return
	}
	u.pushName.name = name
	if u.pushName.set != nil {
		close(u.pushName.set)
		u.pushName.set = nil
	}
}

// awaitPushName returns the push name once the phone's app state has set it, or "" after
// pushNameWaitLimit or when ctx ends.
func (u *User) awaitPushName(ctx context.Context) string {
	u.mu.Lock()
	name := u.pushName.name
	if name == "" && u.pushName.set == nil {
		u.pushName.set = make(chan struct{})
	}
	set := u.pushName.set
	u.mu.Unlock()
	if name != "" {
		return name
	}
	timer := time.NewTimer(pushNameWaitLimit)
	defer timer.Stop()
	select {
	case <-set:
	case <-timer.C:
	case <-ctx.Done():
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pushName.name
}

// reportLoginSuccess finishes a login once the new session has connected. The push name
// arrives with the phone's first app-state sync, moments after connecting, so it waits a
// little for it rather than report a login without a name.
func (u *User) reportLoginSuccess(ctx context.Context) {
	u.mu.Lock()
	lp, cli := u.login, u.client
	u.mu.Unlock()
	if lp == nil || cli == nil {
		return
	}
	lp.succeeded.Store(true)
	u.endLogin(lp)
	u.b.jobs.Go(context.WithoutCancel(ctx), "login: report", func(ctx context.Context) {
		push := u.awaitPushName(ctx)
		if ctx.Err() != nil {
			return // the bridge is stopping: the database is about to close, the room can wait
		}
		u.mu.Lock()
		u.row.WAPushName = push
		phone := u.row.WAPhone
		row := *u.row
		u.mu.Unlock()
		if err := u.b.db.Users.Put(ctx, &row); err != nil {
			u.log.Err(err).Msg("Failed to save the push name")
		}
		name := ""
		if push != "" {
			name = " (" + push + ")"
		}
		u.b.reply(ctx, lp.room, fmt.Sprintf("✅ Successfully logged in as +%s%s. Your chats appear as rooms when messages arrive.", phone, name))
	})
}

func (b *Bridge) cmdLogout(ctx context.Context, ce *commandEvent) string {
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil {
		return "You are not logged in."
	}
	u.mu.Lock()
	cli := u.client
	loggedIn := u.row.WADevice != ""
	u.mu.Unlock()
	if !loggedIn {
		return "You are not logged in."
	}
	if cli != nil {
		if err := cli.Logout(ctx); err != nil {
			u.log.Warn().Err(err).Msg("WhatsApp did not confirm the logout; forgetting the session anyway")
			cli.Disconnect()
		}
	}
	u.mu.Lock()
	u.client, u.wa = nil, nil
	u.mu.Unlock()
	u.setConnected(false)
	u.cancelRetries()
	if err := u.forgetDevice(ctx); err != nil {
		return "Logged out of WhatsApp, but saving that failed: " + err.Error()
	}
	// Asked for, so the user needs no notice; the ledger and the admins still need to know.
	u.stopCapture(ctx, captureStop{kind: "logged_out", state: stateLoggedOut, ledger: archive.KindLoggedOut,
		reason: "the user logged out with the bot's logout command",
		admin:  "ℹ️ Capture stopped for %s: they logged out of WhatsApp with the bot's `logout` command."})
	return "Logged out. Your rooms and their history stay; send `login` to link again."
}

func (b *Bridge) cmdReconnect(ctx context.Context, ce *commandEvent) string {
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil || u.row.WADevice == "" {
		return "You are not logged in."
	}
	u.disconnect()
	u.cancelRetries()
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil {
		if err := u.connect(ctx); err != nil {
			return "Reconnecting failed: " + err.Error()
		}
		return "Reconnecting…"
	}
	if err := cli.Connect(); err != nil {
		return "Reconnecting failed: " + err.Error()
	}
	return "Reconnecting…"
}

func (b *Bridge) cmdPresence(ctx context.Context, ce *commandEvent) string {
	if len(ce.args) != 1 {
		return "Usage: `presence available|away|busy|offline`"
	}
	state := strings.ToLower(ce.args[0])
	switch state {
	case "available", "away", "busy", "offline":
	default:
		return fmt.Sprintf("`%s` is not one of available, away, busy, offline.", state)
	}
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil || u.row.WADevice == "" {
		return "You are not logged in."
	}
	u.mu.Lock()
	u.row.Presence = state
	row := *u.row
	u.mu.Unlock()
	if err := b.db.Users.Put(ctx, &row); err != nil {
		return "Could not save your presence: " + err.Error()
	}
	if err := u.sendPresence(ctx, state); err != nil {
		return "Saved; WhatsApp will see it when you are connected again (" + err.Error() + ")."
	}
	if state == "available" {
		return "WhatsApp contacts now see you as online."
	}
	return "WhatsApp contacts now see you as offline (WhatsApp has no away or busy status; they see your last seen time)."
}

func (u *User) sendPresence(ctx context.Context, state string) error {
	u.mu.Lock()
	cli := u.client
	connected := u.connected
	u.mu.Unlock()
	if cli == nil || !connected {
		return errors.New("not connected")
	}
	presence := types.PresenceUnavailable
	if state == "available" {
		presence = types.PresenceAvailable
	}
	return cli.SendPresence(ctx, presence)
}
