package wasim_test

import (
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

func TestQRPairing(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bob := newPhone(t, ctx, sim, "4915550002", "Bob")

	bridge := newUnpaired(t, sim, "bridge")
	qr, err := bridge.cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err = bridge.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qr
	if item.Event != whatsmeow.QRChannelEventCode || strings.Count(item.Code, ",") != 3 {
		t.Fatalf("expected a QR code with four parts, got %+v", item)
	}
	if err = bob.ScanQR(ctx, "bogus,AAAA,AAAA,AAAA"); err == nil {
		t.Fatal("scanning a QR code no companion shows must fail")
	}
	if err = alice.ScanQR(ctx, item.Code); err != nil {
		t.Fatalf("scan: %v", err)
	}
	paired, err := wasim.WaitFor[*events.PairSuccess](ctx, bridge.events, nil)
	if err != nil {
		t.Fatal(err)
	}
	if paired.ID.User != "4915550001" || paired.ID.Device == 0 || paired.LID.User != alice.Account.LID {
		t.Fatalf("paired as %s / %s, want a companion of 4915550001 with LID %s", paired.ID, paired.LID, alice.Account.LID)
	}
	if _, err = wasim.WaitFor[*events.Connected](ctx, bridge.events, nil); err != nil {
		t.Fatal(err)
	}
	if got := sim.Devices("4915550001"); len(got) != 2 {
		t.Fatalf("account has devices %v, want phone and companion", got)
	}
	// The freshly paired device receives end-to-end encrypted messages, fanned out next to the phone.
	sendText(t, ctx, bob.Client, alice.Account.JID, "hello new device")
	msg := waitMessage(t, ctx, bridge.events, "message on the new device", withText("hello new device"))
	if msg.Info.Sender.User != "4915550002" || msg.Info.IsFromMe {
		t.Fatalf("unexpected sender %s (from me %v)", msg.Info.Sender, msg.Info.IsFromMe)
	}
	waitMessage(t, ctx, alice.Events, "message on the phone", withText("hello new device"))
}

func TestPhoneCodePairing(t *testing.T) {
	ctx := testContext(t)
	sim := startSim(t, "")
	alice := newPhone(t, ctx, sim, "4915550001", "Alice")
	bridge := newUnpaired(t, sim, "bridge")
	qr, err := bridge.cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err = bridge.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	<-qr // the websocket is up once the first QR code arrives
	code, err := bridge.cli.PairPhone(ctx, "+49 1555 0001", true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatalf("PairPhone: %v", err)
	}
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("pairing code %q is not XXXX-XXXX", code)
	}
	if err = alice.LinkWithCode(ctx, code); err != nil {
		t.Fatalf("enter code: %v", err)
	}
	paired, err := wasim.WaitFor[*events.PairSuccess](ctx, bridge.events, nil)
	if err != nil {
		t.Fatal(err)
	}
	if paired.ID.User != "4915550001" {
		t.Fatalf("paired as %s", paired.ID)
	}
	if _, err = wasim.WaitFor[*events.Connected](ctx, bridge.events, nil); err != nil {
		t.Fatal(err)
	}
	// The phone's own message reaches the companion as sent by "me".
	carol := newPhone(t, ctx, sim, "4915550003", "Carol")
	sendText(t, ctx, alice.Client, carol.Account.JID, "sent from the phone")
	msg := waitMessage(t, ctx, bridge.events, "own message", withText("sent from the phone"))
	if !msg.Info.IsFromMe || msg.Info.Chat.User != "4915550003" {
		t.Fatalf("own message seen as from-me=%v chat=%s", msg.Info.IsFromMe, msg.Info.Chat)
	}
}
