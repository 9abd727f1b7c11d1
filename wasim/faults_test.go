package wasim_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

func TestLoggedOut(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, alice, "alice-bridge")
	bridgeJID := bridge.cli.Store.GetJID()

	if err := sim.SendFailure(bridgeJID, 401); err != nil {
		t.Fatal(err)
	}
	out, err := wasim.WaitFor[*events.LoggedOut](ctx, bridge.events, nil)
	if err != nil {
		t.Fatalf("bridge was not told it is logged out: %v", err)
	}
	if out.Reason != events.ConnectFailureLoggedOut || !out.OnConnect {
		t.Fatalf("logged out with reason %v (on connect %v), want 401 from <failure>", out.Reason, out.OnConnect)
	}
	waitFor(t, ctx, "store deleted", bridge.store.Deleted)
	if devices := sim.Devices("4915550001"); len(devices) != 1 {
		t.Fatalf("alice still has devices %v", devices)
	}
	if sim.IsConnected(bridgeJID) {
		t.Fatal("logged-out device is still connected")
	}
	// Messages to alice now fan out to her phone only, and that works without errors.
	sendText(t, ctx, bob.Client, alice.Account.JID, "after logout")
	waitMessage(t, ctx, alice.Events, "phone copy", withText("after logout"))

	// A failure injected at the next login: the client reports it instead of connecting.
	laptop := linkCompanion(t, ctx, sim, alice, "alice-laptop")
	if err = sim.FailNextLogin(laptop.cli.Store.GetJID(), 403); err != nil {
		t.Fatal(err)
	}
	laptop.cli.Disconnect()
	if err = laptop.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	banned, err := wasim.WaitFor[*events.LoggedOut](ctx, laptop.events, nil)
	if err != nil || banned.Reason != events.ConnectFailureMainDeviceGone {
		t.Fatalf("login failure 403: %+v, %v", banned, err)
	}
}

func TestStreamErrorsAndDelays(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, bob, "bob-bridge")
	bridgeJID := bridge.cli.Store.GetJID()

	for _, code := range []string{"515", "503"} {
		connected := countEvents[*events.Connected](bridge.events)
		if err := sim.SendStreamError(bridgeJID, code); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "reconnect after stream error "+code, func() bool {
			return countEvents[*events.Connected](bridge.events) > connected && sim.IsConnected(bridgeJID)
		})
		text := "after stream error " + code
		sendText(t, ctx, alice.Client, bob.Account.JID, text)
		waitMessage(t, ctx, bridge.events, text, withText(text))
	}

	// A delayed device gets its copy later than the others, but gets it.
	if err := sim.SetDeliveryDelay(bridgeJID, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sendText(t, ctx, alice.Client, bob.Account.JID, "slow lane")
	waitMessage(t, ctx, bob.Events, "phone copy", withText("slow lane"))
	waitMessage(t, ctx, bridge.events, "delayed copy", withText("slow lane"))
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Fatalf("delayed copy arrived after %s", elapsed)
	}
	if err := sim.SetDeliveryDelay(bridgeJID, 0); err != nil {
		t.Fatal(err)
	}
}

func countEvents[T any](e *wasim.Events) int {
	n := 0
	for _, evt := range e.All() {
		if _, ok := evt.(T); ok {
			n++
		}
	}
	return n
}

func TestServerRestart(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	sim := startSim(t, dir)
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")
	bridge := linkCompanion(t, ctx, sim, alice, "alice-bridge")
	group, err := bob.CreateGroup(ctx, "Before the restart", alice.Account.JID)
	if err != nil {
		t.Fatal(err)
	}
	sendText(t, ctx, bob.Client, group.JID, "before")
	waitMessage(t, ctx, bridge.events, "group message before restart", withText("before"))

	// A stanza queued for an offline device must survive the restart.
	bridge.cli.Disconnect()
	queued := sendText(t, ctx, bob.Client, alice.Account.JID, "queued across the restart")
	waitMessage(t, ctx, alice.Events, "phone copy", withText("queued across the restart"))
	addr := sim.Addr()
	if err = sim.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err = os.Stat(filepath.Join(dir, "wasim-state.json")); err != nil {
		t.Fatalf("state was not written to the data directory: %v", err)
	}
	if sim.Addr() != addr {
		t.Logf("restarted on %s instead of %s (port was taken)", sim.Addr(), addr)
	}
	// Phones reconnect on their own with their old credentials.
	waitFor(t, ctx, "phones reconnected", func() bool { return sim.IsConnected(alice.JID()) && sim.IsConnected(bob.JID()) })
	if err = bridge.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	msg := waitMessage(t, ctx, bridge.events, "queued message after restart", withText("queued across the restart"))
	if msg.Info.ID != queued.ID {
		t.Fatalf("got id %s, want %s", msg.Info.ID, queued.ID)
	}
	// Sessions, sender keys and the group all still work.
	sendText(t, ctx, bob.Client, group.JID, "after")
	waitMessage(t, ctx, bridge.events, "group message after restart", withText("after"))
	sendText(t, ctx, bridge.cli, bob.Account.JID, "bridge after restart")
	waitMessage(t, ctx, bob.Events, "bridge's message after restart", withText("bridge after restart"))
	info, err := bridge.cli.GetGroupInfo(ctx, group.JID)
	if err != nil || info.Name != "Before the restart" || len(info.Participants) != 2 {
		t.Fatalf("group after restart: %+v, %v", info, err)
	}

	// A new process on the same directory (the demo after a restart) finds the same network, and the
	// phones come back with their sessions: no retries, no decryption failures.
	bridge.cli.Disconnect()
	if err = sim.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := wasim.Start(ctx, wasim.Options{Dir: dir, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if acct := again.Account("4915550002"); acct == nil || acct.PushName != "Bob" || acct.LID != bob.Account.LID {
		t.Fatalf("reloaded account %+v", acct)
	}
	if n := len(again.Devices("4915550001")); n != 2 {
		t.Fatalf("reloaded alice with %d devices, want 2", n)
	}
	alice2, err := again.NewPhone(ctx, again.Account("4915550001"))
	if err != nil {
		t.Fatal(err)
	}
	bob2, err := again.NewPhone(ctx, again.Account("4915550002"))
	if err != nil {
		t.Fatal(err)
	}
	again.ConfigureClient(bridge.cli)
	if err = bridge.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	sendText(t, ctx, bob2.Client, alice.Account.JID, "from a new process")
	for name, evts := range map[string]*wasim.Events{"phone": alice2.Events, "bridge": bridge.events} {
		msg := waitMessage(t, ctx, evts, name+" after a new process", withText("from a new process"))
		if msg.RetryCount != 0 {
			t.Fatalf("%s needed %d retries: sessions were lost", name, msg.RetryCount)
		}
	}
	sendText(t, ctx, alice2.Client, group.JID, "group after a new process")
	waitMessage(t, ctx, bob2.Events, "group message after a new process", withText("group after a new process"))
	for name, evts := range map[string]*wasim.Events{"alice": alice2.Events, "bob": bob2.Events, "bridge": bridge.events} {
		if n := countEvents[*events.UndecryptableMessage](evts); n != 0 {
			t.Fatalf("%s failed to decrypt %d messages after the new process", name, n)
		}
	}
}
