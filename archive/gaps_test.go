package archive

import (
	"context"
	"testing"
	"time"
)

func TestGapsLedger(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	for _, en := range conversation(t0) {
		env.append(en)
	}
	// A clean restart an hour later, then a crash (no Close) and a start two hours after that.
	env.clock.Set(t0.Add(time.Hour))
	env.reopen(false)
	env.clock.Set(t0.Add(90 * time.Minute))
	lastBeforeCrash := env.append(&Entry{Kind: KindLoggedOut, Account: account, Time: t0.Add(90 * time.Minute)})
	env.crash()
	env.clock.Set(t0.Add(210 * time.Minute))
	env.open(false)
	env.append(&Entry{Kind: KindConnected, Account: account, Time: t0.Add(220 * time.Minute)})
	// A Matrix user deleted an event that never reached the bridge.
	env.append(&Entry{Kind: KindRedactionTargetMissing, Account: account, Chat: "4915550002@s.whatsapp.net", MessageID: "3EB0GONE",
		Time: t0.Add(230 * time.Minute), Outbound: &Outbound{MatrixEventID: "$gone"}, Completeness: &Completeness{Reason: "was deleted first"}})

	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type want struct {
		reason     GapReason
		start, end time.Time
	}
	cases := []struct {
		name     string
		from, to time.Time
		want     []want
	}{
		{"everything", t0.Add(-365 * 24 * time.Hour), at(300), []want{
			{GapHistoryBoundary, t0.Add(-90 * 24 * time.Hour), t0.Add(-90 * 24 * time.Hour)},
			{GapUndecryptable, at(13), at(13)},
			{GapDisconnected, at(14), at(20)},
			{GapArchiveDown, at(60), at(60)},  // stopped and started at the same test-clock instant
			{GapArchiveDown, at(90), at(210)}, // a crash opens with no entry, so it sorts first
			{GapLoggedOut, at(90), at(220)},
			{GapRedactionTargetMissing, at(230), at(230)},
		}},
		{"inside the disconnection, clipped", at(15), at(18), []want{{GapDisconnected, at(15), at(18)}}},
		{"a quiet window is certified complete", at(2), at(12), nil},
		{"open at the end of the query", at(100), at(150), []want{
			{GapArchiveDown, at(100), at(150)},
			{GapLoggedOut, at(100), at(150)},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gaps, err := env.a.Gaps(ctx, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if len(gaps) != len(tc.want) {
				t.Fatalf("got %d gaps %+v, want %d", len(gaps), gaps, len(tc.want))
			}
			for i, w := range tc.want {
				g := gaps[i]
				if g.Reason != w.reason || !g.Start.Equal(w.start) || !g.End.Equal(w.end) {
					t.Errorf("gap %d: %s %s..%s, want %s %s..%s", i, g.Reason, g.Start, g.End, w.reason, w.start, w.end)
				}
			}
		})
	}
	gaps, _ := env.a.Gaps(ctx, at(0), at(300))
	for _, g := range gaps {
		if g.Reason == GapArchiveDown && g.Start.Equal(at(90)) && (g.StartIndex != -1 || g.Detail == "") {
			t.Errorf("crash gap %+v: want no opening entry and the reason", g)
		}
		if g.Reason == GapRedactionTargetMissing && (g.MessageID != "3EB0GONE" || g.Detail != "Matrix event $gone was deleted first") {
			t.Errorf("missing-target gap %+v: want the message ID and the Matrix event named", g)
		}
		if g.Reason == GapLoggedOut && g.StartIndex != int64(lastBeforeCrash.Index) {
			t.Errorf("logged-out gap opened by %d, want %d", g.StartIndex, lastBeforeCrash.Index)
		}
	}
}

// TestGapsKeepEveryStop: stops while a gap is open stay one window, with every reason in its detail; a
// logout makes it a logged_out gap; it is open until a connected entry closes it.
func TestGapsKeepEveryStop(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	stop := func(kind Kind, m int, reason string) {
		env.append(&Entry{Kind: kind, Account: account, Time: at(m), Completeness: &Completeness{Reason: reason}})
	}
	stop(KindDisconnected, 1, "the bridge started")
	stop(KindDisconnected, 2, "client outdated")
	stop(KindDisconnected, 3, "client outdated")
	stop(KindLoggedOut, 4, "401: logged out")

	gaps, err := env.a.Gaps(ctx, at(0), at(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 {
		t.Fatalf("got %d gaps %+v, want one window", len(gaps), gaps)
	}
	g := gaps[0]
	if g.Reason != GapLoggedOut || !g.Start.Equal(at(1)) || g.EndIndex != -1 ||
		g.Detail != "the bridge started; then: client outdated; then: 401: logged out" {
		t.Errorf("open gap %+v", g)
	}

	env.append(&Entry{Kind: KindConnected, Account: account, Time: at(6)})
	gaps, err = env.a.Gaps(ctx, at(0), at(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].EndIndex < 0 || !gaps[0].End.Equal(at(6)) {
		t.Errorf("after connected: %+v, want the window closed at %s", gaps, at(6))
	}
}
