package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// TestLedgerNeverCertifiesOpenGap: for each way capture can stop for an account, `archive gaps` over
// the window lists the gap, and so does the bot's answer; a gap still open is said to be open.
func TestLedgerNeverCertifiesOpenGap(t *testing.T) {
	f := newRecordsDM(t, "ledger_alice", "4915554061", "4915554062")
	cfg := lastBridge.cfg
	bot := cfg.BotUserID()
	alice := f.alice.mx.UserID
	companion := types.NewADJID("4915554061", 0, 1)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	resumed := func() {
		waitLoginState(t, cfg, alice, "capture resumed", capturing)
	}
	ways := []struct {
		name string
		want string // in the gap's detail and the bot's answer
		stop func()
		// resume brings capture back; nil leaves the gap open.
		resume func()
	}{
		{"connection lost", "connection to WhatsApp was lost",
			func() { must(sim.Stop()) },
			func() { must(sim.Start(ctx)); resumed() }},
		{"stream error", "stream error 500",
			func() { must(sim.SendStreamError(companion, "500")) }, resumed},
		{"client outdated", "refused the client as outdated",
			func() {
				must(sim.FailNextLogin(companion, 405))
				must(sim.DropConnection(companion))
			}, resumed},
		{"temporary ban", "temporarily banned",
			func() {
				must(sim.BanAccount("4915554061", events.TempBanBlockedByUsers, time.Now().Add(5*time.Second)))
			}, resumed},
		{"another connection took over", "another connection took over",
			func() { must(sim.ReplaceStream(companion)) },
			func() {
				waitForReply(t, f.alice.mx, f.alice.mgmt, bot, send(t, f.alice.mx, f.alice.mgmt, "reconnect"), "Reconnecting")
				resumed()
			}},
		{"bridge started while WhatsApp was unreachable", "could not be reached",
			func() {
				must(lastBridge.br.Stop(ctx))
				must(sim.Stop())
				startRelayBridge(t, cfg)
			},
			func() { must(sim.Start(ctx)); resumed() }},
		{"logged out", "401", // last: nothing brings this one back but a new login
			func() { must(sim.SendFailure(companion, 401)) }, nil},
	}
	t.Cleanup(func() { _ = sim.Start(context.Background()) })
	// One login through every way in turn, not subtests: a way may restart the bridge, which must
	// outlive it.
	for _, w := range ways {
		t.Logf("capture stops: %s", w.name)
		from := time.Now()
		w.stop()
		// The stop is in the ledger before anything resumes it.
		deadline := time.Now().Add(time.Minute)
		for gapSaying(accountGaps(t, lastBridge.br, alice, from, time.Time{}), w.want) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the ledger never recorded %q: %+v", w.name, w.want, accountGaps(t, lastBridge.br, alice, from, time.Time{}))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if w.resume != nil {
			w.resume()
		}
		to := time.Now()
		g := gapSaying(accountGaps(t, lastBridge.br, alice, from, to), w.want)
		if g == nil {
			t.Fatalf("%s: archive gaps from %s to %s lists no gap saying %q: %+v", w.name, from, to, w.want, accountGaps(t, lastBridge.br, alice, from, to))
		}
		answer := botGaps(t, f.alice, bot, from, to, w.want)
		if w.resume == nil && !strings.Contains(answer, "still open") {
			t.Errorf("%s: the bot's answer does not say the gap is still open: %q", w.name, answer)
		}
	}
}
