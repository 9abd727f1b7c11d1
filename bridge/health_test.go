package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/wasim"
)

// versionAbove is a WhatsApp Web version newer than the built-in one by n.
func versionAbove(n uint32) store.WAVersionContainer {
	v := wasim.BuiltInVersion()
	v[2] += n
	return v
}

// refuseVersionsBelow makes wasim refuse companions older than v until the test ends.
func refuseVersionsBelow(t *testing.T, v store.WAVersionContainer) {
	sim.SetMinClientVersion(v)
	t.Cleanup(func() {
		sim.SetMinClientVersion(store.WAVersionContainer{})
		sim.SetWebVersion(store.WAVersionContainer{})
	})
}

// TestSilentClientOutdated: WhatsApp refuses the client as outdated (405) after a restart. The user
// and the admins are told, the ledger holds an open gap over the window, the status endpoint and the
// metrics say outdated; once WhatsApp's web page announces the version it accepts, the bridge
// reconnects with it, the gap closes and the message sent meanwhile arrives.
func TestSilentClientOutdated(t *testing.T) {
	f := newRecordsDM(t, "outdated_alice", "4915554001", "4915554002")
	cfg, br := lastBridge.cfg, lastBridge.br
	bot := cfg.BotUserID()
	alice := f.alice.mx.UserID
	admin := registerUser(t, "outdated_admin")
	ctx := context.Background()

	if err := br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	accepted := versionAbove(11)
	refuseVersionsBelow(t, accepted)
	restarted := time.Now()
	br = startRelayBridge(t, cfg)

	notice := waitForReply(t, f.alice.mx, f.alice.mgmt, bot, restarted, "refused this bridge's client as outdated")
	if !strings.Contains(notice, "whatsapp.version") || !strings.Contains(notice, wasim.BuiltInVersion().String()) {
		t.Errorf("the notice does not say which version was refused and what to do: %q", notice)
	}
	ls := waitLoginState(t, cfg, alice, "refused", func(ls *bridge.LoginStatus) bool { return ls.State == "outdated" })
	if !ls.GapOpen || ls.Since == nil {
		t.Errorf("status while refused: %+v", ls)
	}
	metrics := httpGet(t, cfg.Appservice.Address+"/metrics")
	for _, want := range []string{`causeway_login_state{state="outdated"} 1`, `causeway_capture_gap_open 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "4915554001") {
		t.Error("/metrics names a phone number")
	}

	sent := time.Now()
	if _, err := f.contact.SendText(ctx, f.alice.phone.JID(), "sent while refused"); err != nil {
		t.Fatal(err)
	}
	open := gapSaying(accountGaps(t, br, alice, restarted, time.Time{}), "outdated")
	if open == nil || open.EndIndex >= 0 || open.Start.After(sent) {
		t.Fatalf("no open gap covering the message sent while refused: %+v", accountGaps(t, br, alice, restarted, time.Time{}))
	}
	if answer := botGaps(t, f.alice, bot, restarted, time.Now(), "outdated"); !strings.Contains(answer, "still open") {
		t.Errorf("the bot's answer does not say the gap is open: %q", answer)
	}
	adminRoom := joinAdminRoom(t, br, admin)
	waitForReply(t, admin, adminRoom, bot, restarted, "refused the client as outdated")

	// WhatsApp's page now announces the version it accepts: the bridge's next attempt uses it.
	sim.SetWebVersion(accepted)
	waitMessage(t, f.alice.mx, f.room, f.ghost, bodyIs("sent while refused"))
	waitLoginState(t, cfg, alice, "reconnected", capturing)
	closed := gapSaying(accountGaps(t, br, alice, restarted, time.Time{}), "outdated")
	if closed == nil || closed.EndIndex < 0 || closed.End.Before(sent) {
		t.Errorf("the gap did not close after the message was delivered: %+v", closed)
	}
	if got := sim.LoginVersion(types.NewADJID("4915554001", 0, 1)); got != accepted {
		t.Errorf("the bridge logged in with %s, want %s", got, accepted)
	}
	waitForReply(t, f.alice.mx, f.alice.mgmt, bot, restarted, "capture resumed")
	waitForReply(t, admin, adminRoom, bot, restarted, "Capture resumed for "+string(alice))
}

// TestSilentUnreachableAtStart: the bridge starts while WhatsApp cannot be reached; WhatsApp is back
// 3 s later, and the login reconnects on its own within 30 s, the outage recorded as a gap.
func TestSilentUnreachableAtStart(t *testing.T) {
	f := newRecordsDM(t, "unreachable_alice", "4915554011", "4915554012")
	cfg, br := lastBridge.cfg, lastBridge.br
	alice := f.alice.mx.UserID
	ctx := context.Background()
	if err := br.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Start(context.Background()) }) // the rest of the suite needs it
	started := time.Now()
	br = startRelayBridge(t, cfg)
	time.Sleep(3 * time.Second) // the outage, not a wait for a result
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitLoginStateWithin(t, cfg, alice, "reconnect after WhatsApp came back", 30*time.Second, capturing)
	t.Logf("capturing %s after WhatsApp came back", time.Since(back))

	g := gapSaying(accountGaps(t, br, alice, started, time.Time{}), "could not be reached")
	if g == nil || g.EndIndex < 0 || g.End.Before(back) {
		t.Fatalf("no closed gap over the outage: %+v", accountGaps(t, br, alice, started, time.Time{}))
	}
	// And the bridge still relays, once the contact's phone is back too.
	for deadline := time.Now().Add(time.Minute); !sim.IsConnected(f.contact.JID()); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the contact's phone never reconnected")
		}
	}
	if _, err := f.contact.SendText(ctx, f.alice.phone.JID(), "after the outage"); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, f.alice.mx, f.room, f.ghost, bodyIs("after the outage"))
}

// TestSilentTemporaryBan: WhatsApp bans the account for a while. The user learns why and until when,
// the admins too, the status endpoint says banned_until with the expiry; when the ban ends the bridge
// reconnects by itself and the message sent meanwhile arrives.
func TestSilentTemporaryBan(t *testing.T) {
	f := newRecordsDM(t, "banned_alice", "4915554021", "4915554022")
	cfg, br := lastBridge.cfg, lastBridge.br
	bot := cfg.BotUserID()
	alice := f.alice.mx.UserID
	admin := registerUser(t, "banned_admin")
	ctx := context.Background()

	banned := time.Now()
	until := banned.Add(20 * time.Second)
	if err := sim.BanAccount("4915554021", events.TempBanSentToTooManyPeople, until); err != nil {
		t.Fatal(err)
	}
	notice := waitForReply(t, f.alice.mx, f.alice.mgmt, bot, banned, "temporarily banned your account")
	if !strings.Contains(notice, "101") || !strings.Contains(notice, "ends at") {
		t.Errorf("the ban notice lacks the reason or the expiry: %q", notice)
	}
	ls := waitLoginState(t, cfg, alice, "banned", func(ls *bridge.LoginStatus) bool { return ls.State == "banned_until" })
	if ls.BannedUntil == nil || ls.BannedUntil.Before(until.Add(-5*time.Second)) || ls.BannedUntil.After(until.Add(5*time.Second)) {
		t.Errorf("banned_until %v, want about %v", ls.BannedUntil, until)
	}
	if !ls.GapOpen {
		t.Error("no gap open while banned")
	}
	if _, err := f.contact.SendText(ctx, f.alice.phone.JID(), "sent during the ban"); err != nil {
		t.Fatal(err)
	}
	if g := gapSaying(accountGaps(t, br, alice, banned, time.Time{}), "temporarily banned"); g == nil || g.EndIndex >= 0 {
		t.Errorf("no open gap for the ban: %+v", accountGaps(t, br, alice, banned, time.Time{}))
	}
	adminRoom := joinAdminRoom(t, br, admin)
	waitForReply(t, admin, adminRoom, bot, banned, "temporarily banned the account")

	waitMessage(t, f.alice.mx, f.room, f.ghost, bodyIs("sent during the ban"))
	waitLoginState(t, cfg, alice, "after the ban", capturing)
	if g := gapSaying(accountGaps(t, br, alice, banned, time.Time{}), "temporarily banned"); g == nil || g.EndIndex < 0 || g.End.Before(until) {
		t.Errorf("the ban's gap did not close after it ended: %+v", g)
	}
}

// TestSilentPhoneOffline: the phone stays offline; twelve days later on the bridge's clock (a fake
// one, not a sleep) the user and the admins are warned and the status says phone_offline; once the
// phone is back, the user hears so and the status is connected again.
func TestSilentPhoneOffline(t *testing.T) {
	clock := newFakeClock(time.Now())
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "phoneoff_alice")
	permit(cfg, "admin", "phoneoff_admin")
	br := startBridgeWith(t, cfg, bridge.Options{ConfigureWhatsApp: sim.ConfigureClient, WhatsAppHTTP: sim.HTTPClient(), Clock: clock})
	bot := cfg.BotUserID()
	alice := loginWithQR(t, cfg, "phoneoff_alice", "4915554031", "Alice Phoneoff")
	bob := newPhone(t, "4915554032", "Bob Phoneoff")
	admin := registerUser(t, "phoneoff_admin")
	waitLoginState(t, cfg, alice.mx.UserID, "logged in", capturing)

	alice.phone.GoOffline()
	clock.waitTimer(t, time.Hour) // the bridge's hourly look at the phones
	warned := time.Now()
	clock.Advance(12*24*time.Hour + time.Hour)
	notice := waitForReply(t, alice.mx, alice.mgmt, bot, warned, "has not been online for 12 days")
	if !strings.Contains(notice, "14 days") || !strings.Contains(notice, "Open WhatsApp on your phone") {
		t.Errorf("the warning does not say what happens and what to do: %q", notice)
	}
	waitLoginState(t, cfg, alice.mx.UserID, "phone away", func(ls *bridge.LoginStatus) bool { return ls.State == "phone_offline" })
	adminRoom := joinAdminRoom(t, br, admin)
	waitForReply(t, admin, adminRoom, bot, warned, "has not been online for 12 days")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := alice.phone.ComeOnline(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.phone.SendText(ctx, bob.JID(), "the phone is back"); err != nil {
		t.Fatal(err)
	}
	waitForReply(t, alice.mx, alice.mgmt, bot, warned, "Your phone is online again")
	waitLoginState(t, cfg, alice.mx.UserID, "phone back", func(ls *bridge.LoginStatus) bool { return ls.State == "connected" })
}

// TestWhatsAppVersion: WhatsApp requires a newer client than the built-in one. The bridge reads the
// current version from the stand-in of web.whatsapp.com and logs in with it; with whatsapp.version in
// the config it uses that instead. Both are what wasim saw at login.
func TestWhatsAppVersion(t *testing.T) {
	current := versionAbove(23)
	refuseVersionsBelow(t, current)
	sim.SetWebVersion(current)
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "version_alice")
	br := startRelayBridge(t, cfg)
	bot := cfg.BotUserID()
	if v, src := br.WhatsAppVersion(); v != current.String() || !strings.Contains(src, "fetched") {
		t.Fatalf("version in use %s (%s), want %s fetched", v, src, current)
	}
	alice := loginWithQR(t, cfg, "version_alice", "4915554051", "Alice Version")
	companion := types.NewADJID("4915554051", 0, 1)
	if got := sim.LoginVersion(companion); got != current {
		t.Errorf("wasim saw version %s at login, want %s", got, current)
	}
	waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "ping"), "WhatsApp Web version in use: "+current.String())
	if rep := provisionStatus(t, cfg); rep.WhatsAppVersion != current.String() {
		t.Errorf("status endpoint version %q, want %s", rep.WhatsAppVersion, current)
	}

	// The operator sets a version: it wins over the fetched one.
	if err := br.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	configured := versionAbove(42)
	cfg.WhatsApp.Version = configured.String()
	restarted := time.Now()
	startRelayBridge(t, cfg)
	waitLoginState(t, cfg, alice.mx.UserID, "with the configured version", func(ls *bridge.LoginStatus) bool {
		return capturing(ls) && ls.Since != nil && ls.Since.After(restarted)
	})
	if got := sim.LoginVersion(companion); got != configured {
		t.Errorf("wasim saw version %s at login, want the configured %s", got, configured)
	}
	waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "ping"), configured.String()+" (whatsapp.version in the config)")
}

// newRecordsDM is newDM for a user who may also read the archive (the bot's archive commands), with
// an admin to receive the admin room's notices.
func newRecordsDM(t *testing.T, localpart, aliceNumber, contactNumber string) *dmFixture {
	t.Helper()
	cfg := configFor(t, "sqlite")
	permit(cfg, "records", localpart)
	permit(cfg, "admin", strings.Replace(localpart, "_alice", "_admin", 1))
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, localpart, aliceNumber, "Alice "+localpart)
	contact := newPhone(t, contactNumber, "Contact "+contactNumber)
	if _, err := contact.SendText(context.Background(), alice.phone.JID(), "hi"); err != nil {
		t.Fatal(err)
	}
	ghost := cfg.PuppetUserID(contactNumber)
	room := alice.waitInvite(t, ghost)
	waitMessage(t, alice.mx, room, ghost, bodyIs("hi"))
	waitLoginState(t, cfg, alice.mx.UserID, "logged in", capturing)
	return &dmFixture{alice: alice, contact: contact, ghost: ghost, room: room}
}
