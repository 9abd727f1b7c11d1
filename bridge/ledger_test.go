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
	resumed := func(t *testing.T) {
		waitLoginState(t, cfg, alice, "capture resumed", capturing)
	}
	ways := []struct {
		name string
		want string // in the gap's detail and the bot's answer
		stop func(t *testing.T)
		// resume brings capture back; nil leaves the gap open.
		resume func(t *testing.T)
	}{
		{"connection lost", "connection to WhatsApp was lost",
			func(t *testing.T) { must(sim.Stop()) },
			func(t *testing.T) { must(sim.Start(ctx)); resumed(t) }},
		{"stream error", "stream error 500",
			func(t *testing.T) { must(sim.SendStreamError(companion, "500")) }, resumed},
		{"client outdated", "refused the client as outdated",
			func(t *testing.T) {
				must(sim.FailNextLogin(companion, 405))
				must(sim.DropConnection(companion))
			}, resumed},
		{"temporary ban", "temporarily banned",
			func(t *testing.T) {
				must(sim.BanAccount("4915554061", events.TempBanBlockedByUsers, time.Now().Add(5*time.Second)))
			}, resumed},
		{"another connection took over", "another connection took over",
			func(t *testing.T) { must(sim.ReplaceStream(companion)) },
			func(t *testing.T) {
				waitForReply(t, f.alice.mx, f.alice.mgmt, bot, send(t, f.alice.mx, f.alice.mgmt, "reconnect"), "Reconnecting")
				resumed(t)
			}},
		{"bridge started while WhatsApp was unreachable", "could not be reached",
			func(t *testing.T) {
				must(lastBridge.br.Stop(ctx))
				must(sim.Stop())
				startRelayBridge(t, cfg)
			},
			func(t *testing.T) { must(sim.Start(ctx)); resumed(t) }},
		{"logged out", "401", // last: nothing brings this one back but a new login
			func(t *testing.T) { must(sim.SendFailure(companion, 401)) }, nil},
	}
	t.Cleanup(func() { _ = sim.Start(context.Background()) })
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			from := time.Now()
			w.stop(t)
			// The stop is in the ledger before anything resumes it.
			deadline := time.Now().Add(time.Minute)
			for gapSaying(accountGaps(t, lastBridge.br, alice, from, time.Time{}), w.want) == nil {
				if time.Now().After(deadline) {
					t.Fatalf("the ledger never recorded %q: %+v", w.want, accountGaps(t, lastBridge.br, alice, from, time.Time{}))
				}
				time.Sleep(100 * time.Millisecond)
			}
			if w.resume != nil {
				w.resume(t)
			}
			to := time.Now()
			g := gapSaying(accountGaps(t, lastBridge.br, alice, from, to), w.want)
			if g == nil {
				t.Fatalf("archive gaps from %s to %s lists no gap saying %q: %+v", from, to, w.want, accountGaps(t, lastBridge.br, alice, from, to))
			}
			answer := botGaps(t, f.alice, bot, from, to, w.want)
			if w.resume == nil && !strings.Contains(answer, "still open") {
				t.Errorf("the bot's answer does not say the gap is still open: %q", answer)
			}
		})
	}
}
