package bridge_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/wasim"
)

// waUser is a Matrix user logged in to the bridge with a simulated WhatsApp phone.
type waUser struct {
	mx    *mautrix.Client
	mgmt  id.RoomID
	phone *wasim.Phone
	since string
}

// usedNumbers catches two tests giving the same number to their phones: the simulator is
// shared by the whole package, so the second phone would be a second device of the first
// test's account.
var usedNumbers sync.Map

func newPhone(t *testing.T, number, pushName string) *wasim.Phone {
	t.Helper()
	if other, dup := usedNumbers.LoadOrStore(number, t.Name()); dup {
		t.Fatalf("+%s is already the phone of %s: give this test its own numbers", number, other)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acct := sim.CreateAccount(number, pushName)
	phone, err := sim.NewPhone(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(phone.Close)
	return phone
}

// loginWithQR logs a fresh Matrix user in through the management room, scanning the QR
// code the bot shows with a simulated phone.
func loginWithQR(t *testing.T, cfg *config.Config, localpart, number, pushName string) *waUser {
	t.Helper()
	return loginPhoneWithQR(t, cfg, localpart, newPhone(t, number, pushName))
}

// loginPhoneWithQR is loginWithQR for a phone the test has already set up (with groups or
// history made before the bridge was linked).
func loginPhoneWithQR(t *testing.T, cfg *config.Config, localpart string, phone *wasim.Phone) *waUser {
	t.Helper()
	bot := cfg.BotUserID()
	number, pushName := phone.Account.Phone, phone.Account.PushName
	mx := registerUser(t, localpart)
	start := time.Now()
	mgmt := openDM(t, mx, bot)
	waitForReply(t, mx, mgmt, bot, start, "management room")

	body := waitForReply(t, mx, mgmt, bot, send(t, mx, mgmt, "login"), "QR code: ")
	code := strings.TrimPrefix(body[strings.Index(body, "QR code: "):], "QR code: ")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := phone.ScanQR(ctx, strings.TrimSpace(code)); err != nil {
		t.Fatal(err)
	}
	done := waitForReply(t, mx, mgmt, bot, start, "Successfully logged in")
	if !strings.Contains(done, "+"+number) || !strings.Contains(done, pushName) {
		t.Errorf("success message does not name the account: %q", done)
	}
	return &waUser{mx: mx, mgmt: mgmt, phone: phone}
}

// syncInvites syncs until done reports true or timeout passes, offering each new portal
// invite (the personal space aside; tests ask for it explicitly) to take with the user who
// sent it. The user joins the rooms take accepts.
func (u *waUser) syncInvites(t *testing.T, timeout time.Duration, done func() bool, take func(room id.RoomID, inviter id.UserID) bool) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(timeout); !done() && time.Now().Before(deadline); {
		resp, err := u.mx.SyncRequest(ctx, 5000, u.since, "", false, event.PresenceOnline)
		if err != nil {
			t.Fatal(err)
		}
		u.since = resp.NextBatch
		for roomID, room := range resp.Rooms.Invite {
			if isSpaceInvite(room.State.Events) {
				continue
			}
			for _, evt := range room.State.Events {
				if evt.Type != event.StateMember || evt.GetStateKey() != string(u.mx.UserID) || !take(roomID, evt.Sender) {
					continue
				}
				if _, err := u.mx.JoinRoomByID(ctx, roomID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// waitInvite syncs until the user is invited to a room by inviter, joins it and returns it.
func (u *waUser) waitInvite(t *testing.T, inviter id.UserID) id.RoomID {
	t.Helper()
	var got id.RoomID
	u.syncInvites(t, 90*time.Second, func() bool { return got != "" }, func(room id.RoomID, from id.UserID) bool {
		if got == "" && from == inviter {
			got = room
			return true
		}
		return false
	})
	if got == "" {
		t.Fatalf("no invite from %s", inviter)
	}
	return got
}

// waitMessage polls the room until sender sent an m.room.message matching match.
func waitMessage(t *testing.T, cli *mautrix.Client, roomID id.RoomID, sender id.UserID, match func(*event.Event) bool) *event.Event {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := cli.Messages(context.Background(), roomID, "", "", mautrix.DirectionBackward, nil, 100)
		if err == nil {
			for _, evt := range resp.Chunk {
				if evt.Sender != sender {
					continue
				}
				_ = evt.Content.ParseRaw(evt.Type)
				if match(evt) {
					return evt
				}
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("no matching event from %s in %s", sender, roomID)
	return nil
}

func bodyIs(want string) func(*event.Event) bool {
	return func(evt *event.Event) bool {
		return evt.Type == event.EventMessage && evt.Content.AsMessage().Body == want
	}
}

// waitWAText waits until the phone receives a text message.
func waitWAText(t *testing.T, phone *wasim.Phone, want string) *events.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	msg, err := wasim.WaitFor(ctx, phone.Events, func(m *events.Message) bool {
		return m.Message.GetConversation() == want || m.Message.GetExtendedTextMessage().GetText() == want
	})
	if err != nil {
		t.Fatalf("phone %s never got %q: %v", phone.JID(), want, err)
	}
	return msg
}

func startRelayBridge(t *testing.T, cfg *config.Config) *bridge.Bridge {
	t.Helper()
	return startBridgeWith(t, cfg, bridge.Options{ConfigureWhatsApp: sim.ConfigureClient, WhatsAppHTTP: sim.HTTPClient()})
}

func TestQRLoginAndDirectMessage(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "alice_qr")
	startRelayBridge(t, cfg)
	t0 := time.Now()
	alice := loginWithQR(t, cfg, "alice_qr", "4915550101", "Alice QR")
	t.Logf("logged in after %s", time.Since(t0))
	bob := newPhone(t, "4915550102", "Bob")
	ctx := context.Background()

	// WhatsApp -> Matrix: the contact's first message creates a DM from their ghost.
	if _, err := bob.SendText(ctx, alice.phone.JID(), "hello from whatsapp"); err != nil {
		t.Fatal(err)
	}
	bobGhost := cfg.PuppetUserID("4915550102")
	room := alice.waitInvite(t, bobGhost)
	t.Logf("invited after %s", time.Since(t0))
	got := waitMessage(t, alice.mx, room, bobGhost, bodyIs("hello from whatsapp"))
	t.Logf("message after %s", time.Since(t0))
	if got.Content.AsMessage().MsgType != event.MsgText {
		t.Errorf("msgtype %s", got.Content.AsMessage().MsgType)
	}

	// Matrix -> WhatsApp.
	send(t, alice.mx, room, "hello from matrix")
	in := waitWAText(t, bob, "hello from matrix")
	t.Logf("to whatsapp after %s", time.Since(t0))
	if in.Info.Sender.User != "4915550101" {
		t.Errorf("bob got it from %s", in.Info.Sender)
	}

	// Status shows the login.
	status := waitForReply(t, alice.mx, alice.mgmt, cfg.BotUserID(), send(t, alice.mx, alice.mgmt, "ping"), "Logged in to WhatsApp as +4915550101")
	if !strings.Contains(status, "connected") {
		t.Errorf("status: %q", status)
	}

	// Metrics count what was relayed; health says the bridge serves.
	metrics := httpGet(t, cfg.Appservice.Address+"/metrics")
	for _, want := range []string{
		`causeway_messages_relayed_total{direction="to_matrix",kind="wa_message"}`,
		`causeway_messages_relayed_total{direction="to_whatsapp",kind="matrix_event"}`,
		`causeway_whatsapp_logins_connected 1`,
		`causeway_relay_queue_depth{direction="to_matrix"}`,
		`causeway_relay_latency_seconds_bucket`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Without metrics.per_user_labels, who is logged in stays out of /metrics.
	if strings.Contains(metrics, "@alice_qr:localhost") {
		t.Errorf("/metrics names a user without per_user_labels")
	}
	if health := httpGet(t, cfg.Appservice.Address+"/health"); !strings.Contains(health, `"ok"`) {
		t.Errorf("/health = %q", health)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// isSpaceInvite reports whether an invite's stripped state describes a space.
func isSpaceInvite(state []*event.Event) bool {
	for _, evt := range state {
		if evt.Type.Type == event.StateCreate.Type {
			var content struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(evt.Content.VeryRaw, &content); err == nil && content.Type == "m.space" {
				return true
			}
		}
	}
	return false
}
