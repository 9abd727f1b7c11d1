package wastore_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/database/wastore"
	"codeberg.org/causeway/causeway/wasim"
)

// TestRealClientAgainstSimulator is the end-to-end proof: a real whatsmeow client whose
// whole device store is ours pairs with a phone on the WhatsApp simulator, exchanges
// end-to-end encrypted messages both ways, restarts from the database alone, keeps
// talking, and is finally unlinked from the phone, which must wipe the device.
func TestRealClientAgainstSimulator(t *testing.T) {
	wastore.EachBackendForTest(t, testRealClientAgainstSimulator)
}

func testRealClientAgainstSimulator(t *testing.T, open func(t testing.TB) *wastore.Container) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sim, err := wasim.Start(ctx, wasim.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	defer func() {
		if err := sim.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
	}()
	alice, err := sim.NewPhone(ctx, sim.CreateAccount("4915550101", "Alice"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := sim.NewPhone(ctx, sim.CreateAccount("4915550102", "Bob"))
	if err != nil {
		t.Fatal(err)
	}

	container := open(t)
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli, evts := newClient(sim, dev)
	if err := alice.Link(ctx, cli, evts); err != nil {
		t.Fatalf("linking our device to alice: %v", err)
	}
	if stored, err := container.GetAllDevices(ctx); err != nil || len(stored) != 1 || *stored[0].ID != *cli.Store.ID {
		t.Fatalf("after pairing the store holds %v, %v", stored, err)
	}
	if n, err := cli.Store.PreKeys.UploadedPreKeyCount(ctx); err != nil || n == 0 {
		t.Errorf("no prekeys marked uploaded after login (%d, %v)", n, err)
	}

	exchange := func(t *testing.T, cli *whatsmeow.Client, evts *wasim.Events, round string) {
		t.Helper()
		in := "from bob " + round
		if _, err := bob.Client.SendMessage(ctx, alice.JID(), &waE2E.Message{Conversation: &in}); err != nil {
			t.Fatalf("bob sends: %v", err)
		}
		if _, err := wasim.WaitFor(ctx, evts, func(m *events.Message) bool { return m.Message.GetConversation() == in }); err != nil {
			t.Fatalf("our client did not decrypt %q: %v", in, err)
		}
		out := "to bob " + round
		if _, err := cli.SendMessage(ctx, bob.JID(), &waE2E.Message{Conversation: &out}); err != nil {
			t.Fatalf("our client sends: %v", err)
		}
		if _, err := wasim.WaitFor(ctx, bob.Events, func(m *events.Message) bool { return m.Message.GetConversation() == out }); err != nil {
			t.Fatalf("bob did not receive %q: %v", out, err)
		}
		// whatsmeow recovers from lost Signal state with retry receipts and fresh prekey
		// messages, so delivery alone proves little: no side may have failed to decrypt.
		for who, recorded := range map[string]*wasim.Events{"our client": evts, "bob": bob.Events} {
			for _, evt := range recorded.All() {
				if u, ok := evt.(*events.UndecryptableMessage); ok {
					t.Errorf("%s could not decrypt message %s from %s", who, u.Info.ID, u.Info.Sender)
				}
			}
		}
		// And the session with Bob's phone is in our database, under his number or his LID.
		var stored bool
		for _, addr := range []types.JID{bob.DeviceJID(0), bob.Account.LIDJID} {
			has, err := cli.Store.Sessions.HasSession(ctx, addr.SignalAddress().String())
			must(t, err)
			stored = stored || has
		}
		if !stored {
			t.Error("no session with bob's phone in the store")
		}
	}
	exchange(t, cli, evts, "1")
	exchange(t, cli, evts, "2")

	// Restart: nothing survives but the database file.
	jid := *cli.Store.ID
	cli.Disconnect()
	must(t, container.Close())
	container = open(t)
	dev, err = container.GetDevice(ctx, jid)
	if err != nil || dev == nil {
		t.Fatalf("device %s after restart: %v, %v", jid, dev, err)
	}
	cli, evts = newClient(sim, dev)
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	if _, err := wasim.WaitFor[*events.Connected](ctx, evts, nil); err != nil {
		t.Fatalf("restarted client did not log in with its stored keys: %v", err)
	}
	exchange(t, cli, evts, "after restart")

	// Unlinked on the phone: whatsmeow deletes the device from the store. (Not cli.Logout:
	// there whatsmeow's own Delete races the server's device_removed handler.)
	must(t, sim.RemoveDevice(jid))
	if _, err := wasim.WaitFor[*events.LoggedOut](ctx, evts, nil); err != nil {
		t.Fatalf("no LoggedOut after the phone removed us: %v", err)
	}
	for {
		stored, err := container.GetAllDevices(ctx)
		must(t, err)
		if len(stored) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the removed device is still stored")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n, err := dev.PreKeys.UploadedPreKeyCount(ctx); err == nil {
		t.Errorf("stores of the removed device still answer (%d prekeys)", n)
	}
}

func newClient(sim *wasim.Server, dev *store.Device) (*whatsmeow.Client, *wasim.Events) {
	cli := sim.NewClient(dev, zerolog.Nop())
	cli.EnableDecryptedEventBuffer = true
	return cli, wasim.RecordEvents(cli)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
