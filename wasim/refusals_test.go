package wasim_test

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

// TestRefusals: a companion below the minimum version gets 405 while the phone still logs in, the
// version page announces what the test sets, and a ban reaches a connected companion with its reason
// and expiry and refuses its logins until lifted.
func TestRefusals(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550071", "Alice")
	laptop := linkCompanion(t, ctx, sim, alice, "alice-laptop")
	jid := laptop.cli.Store.GetJID()
	builtIn := wasim.BuiltInVersion()
	if got := sim.LoginVersion(jid); got != builtIn {
		t.Fatalf("login version %s, want the built-in %s", got, builtIn)
	}

	newer := builtIn
	newer[2] += 5
	if got, err := whatsmeow.GetLatestVersion(ctx, sim.HTTPClient()); err != nil || *got != builtIn {
		t.Fatalf("version page before any is set: %v, %v; want %s", got, err, builtIn)
	}
	sim.SetWebVersion(newer)
	if got, err := whatsmeow.GetLatestVersion(ctx, sim.HTTPClient()); err != nil || *got != newer {
		t.Fatalf("version page: %v, %v; want %s", got, err, newer)
	}

	sim.SetMinClientVersion(newer)
	laptop.cli.Disconnect()
	if err := laptop.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	if _, err := wasim.WaitFor[*events.ClientOutdated](ctx, laptop.events, nil); err != nil {
		t.Fatalf("an outdated companion was not refused: %v", err)
	}
	// The phone is a mobile app with a version of its own: never refused.
	alice.GoOffline()
	if err := alice.ComeOnline(ctx); err != nil {
		t.Fatalf("the phone was refused with the companions: %v", err)
	}
	sim.SetMinClientVersion(store.WAVersionContainer{})
	laptop.cli.Disconnect() // the refused socket, if WhatsApp has not closed it yet
	if err := laptop.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "companion back", func() bool { return sim.IsConnected(jid) })

	if err := sim.BanAccount("4915550071", events.TempBanBlockedByUsers, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ban, err := wasim.WaitFor[*events.TemporaryBan](ctx, laptop.events, nil)
	if err != nil {
		t.Fatalf("a connected companion was not banned: %v", err)
	}
	if ban.Code != events.TempBanBlockedByUsers || ban.Expire < 59*time.Minute || ban.Expire > time.Hour {
		t.Errorf("ban %+v, want reason 102 for about an hour", ban)
	}
	laptop.cli.Disconnect()
	if err := laptop.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	if _, err := wasim.WaitFor[*events.TemporaryBan](ctx, laptop.events, nil); err != nil {
		t.Fatalf("a banned account's companion logged in: %v", err)
	}
	sim.LiftBan("4915550071")
	laptop.cli.Disconnect()
	if err := laptop.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "companion back after the ban", func() bool { return sim.IsConnected(jid) })
}
