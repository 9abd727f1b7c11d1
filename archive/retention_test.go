package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

const year = 8766 * time.Hour

func TestRetentionRule(t *testing.T) {
	r := Retention{
		Default: DefaultRetention,
		Chats:   map[string]time.Duration{group: 365 * 24 * time.Hour},
		Users:   map[string]time.Duration{bob: 30 * 365 * 24 * time.Hour, alice: 24 * time.Hour},
	}
	cases := []struct {
		name                  string
		account, chat, sender string
		want                  time.Duration
		wantRule              string
	}{
		{"no override", account, carol, carol, DefaultRetention, "default 3653d"},
		{"chat override shortens", account, group, carol, 365 * 24 * time.Hour, "chat " + group + " 365d"},
		{"longest override wins", account, group, bob, 30 * 365 * 24 * time.Hour, "user " + bob + " 10950d"},
		{"user override as 1:1 chat", account, alice, account, 24 * time.Hour, "user " + alice + " 1d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, rule := r.rule(tc.account, tc.chat, tc.sender)
			if got != tc.want || rule != tc.wantRule {
				t.Fatalf("rule(%s, %s, %s) = %v %q, want %v %q", tc.account, tc.chat, tc.sender, got, rule, tc.want, tc.wantRule)
			}
		})
	}
}

func TestDisposeRespectsRetentionAndHolds(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	shared := putMedia(t, env, "shared image")
	carolsOnly := putMedia(t, env, "carol's image")

	idx := map[string]uint64{}
	for _, en := range conversation(t0) {
		app := env.append(en)
		if en.Kind == KindMessage {
			idx[en.MessageID] = app.Index
		}
	}
	withMedia := func(chat, sender, id string, shas ...string) uint64 {
		en := textMessage(chat, sender, "", id, "see attachment", t0)
		for _, s := range shas {
			en.Message.Media = append(en.Message.Media, MediaRef{SHA256: s, MimeType: "image/jpeg"})
		}
		return env.append(en).Index
	}
	aliceImg := withMedia(group, alice, "IMG1", shared)
	bobImg := withMedia(group, bob, "IMG2", shared)
	carolImg := withMedia(group, carol, "IMG3", carolsOnly)

	hold, err := env.a.AddHold(ctx, HoldUser, bob, "FOI request 2026-117", "records@gov.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = env.a.AddHold(ctx, "room", bob, "x", "y"); err == nil {
		t.Fatal("a hold with an unknown scope was accepted")
	}

	// Eleven years on, dispose everything older than the conversation's day.
	env.clock.Set(t0.Add(11 * year))
	rep, err := env.a.Dispose(ctx, t0.Add(24*time.Hour), "records@gov.example")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Held == 0 || rep.Entries == 0 {
		t.Fatalf("disposal report %+v: want both disposed and held entries", rep)
	}
	mustDisposed := []uint64{idx["3EB0A1"], idx["3EB0A5"], aliceImg, carolImg}
	mustKept := []uint64{idx["3EB0A2"], idx["3EB0B1"], bobImg, 0 /* archive_started */}
	for _, i := range mustDisposed {
		if _, err := env.a.Entry(ctx, i); !errors.Is(err, ErrDisposed) {
			t.Errorf("entry %d: %v, want disposed", i, err)
		}
	}
	for _, i := range mustKept {
		if _, err := env.a.Entry(ctx, i); err != nil {
			t.Errorf("entry %d should be kept (held or ledger): %v", i, err)
		}
	}
	if _, err := os.Stat(env.a.mediaPath(carolsOnly)); !os.IsNotExist(err) {
		t.Errorf("media only a disposed entry used is still on disk: %v", err)
	}
	if _, err := os.Stat(env.a.mediaPath(shared)); err != nil {
		t.Errorf("media a held entry still uses was removed: %v", err)
	}
	if len(rep.Media) != 1 || rep.Media[0] != carolsOnly {
		t.Errorf("disposed media %v, want [%s]", rep.Media, carolsOnly)
	}

	vr := env.verify(VerifyOptions{})
	if !vr.OK() {
		t.Fatalf("verify after a legitimate disposal:%s", problemList(vr.Problems))
	}
	if vr.Disposed != rep.Entries || len(vr.Disposals) != 1 || vr.Disposals[0].Actor != "records@gov.example" ||
		vr.Disposals[0].Index != rep.Index || vr.Disposals[0].Entries != rep.Entries {
		t.Fatalf("verify reports disposed=%d disposals=%+v, want %d by records@gov.example at %d", vr.Disposed, vr.Disposals, rep.Entries, rep.Index)
	}
	dispEntry, err := env.a.Entry(ctx, rep.Index)
	if err != nil || dispEntry.Kind != KindDisposal || len(dispEntry.Disposal.Rules) != 1 || dispEntry.Disposal.Rules[0].Rule != "default 3653d" {
		t.Fatalf("disposal entry %+v (%v): want the rule recorded", dispEntry, err)
	}

	// Lifting the hold lets the next disposal take the rest.
	if err = env.a.RemoveHold(ctx, hold.ID, "request closed", "records@gov.example"); err != nil {
		t.Fatal(err)
	}
	if err = env.a.RemoveHold(ctx, hold.ID, "again", "records@gov.example"); !errors.Is(err, ErrHoldNotFound) {
		t.Fatalf("removing a removed hold: %v", err)
	}
	holds, err := env.a.ListHolds(ctx, true)
	if err != nil || len(holds) != 1 || holds[0].RemovedBy != "records@gov.example" || holds[0].Removed.IsZero() {
		t.Fatalf("holds after removal %+v (%v)", holds, err)
	}
	if active, _ := env.a.ListHolds(ctx, false); len(active) != 0 {
		t.Fatalf("active holds after removal: %+v", active)
	}
	rep2, err := env.a.Dispose(ctx, t0.Add(24*time.Hour), "records@gov.example")
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Held != 0 || rep2.Entries == 0 {
		t.Fatalf("second disposal %+v: want the formerly held entries", rep2)
	}
	if _, err := env.a.Entry(ctx, bobImg); !errors.Is(err, ErrDisposed) {
		t.Errorf("formerly held entry: %v, want disposed", err)
	}
	if _, err := os.Stat(env.a.mediaPath(shared)); !os.IsNotExist(err) {
		t.Errorf("media no kept entry uses is still on disk: %v", err)
	}
	env.reopen(true)
	if vr = env.verify(VerifyOptions{}); !vr.OK() || len(vr.Disposals) != 2 {
		t.Fatalf("verify after two disposals (%d reported):%s", len(vr.Disposals), problemList(vr.Problems))
	}
	// A disposal may only ever have removed content, never the ledger or the audit trail.
	env.tamper(`UPDATE archive_entry SET kind=$1 WHERE idx=$2`, string(KindDisconnected), int64(aliceImg))
	env.open(true)
	if vr = env.verify(VerifyOptions{}); !hasProblem(vr, ProblemDisposalInvalid, int64(aliceImg)) {
		t.Fatalf("want %s at %d:%s", ProblemDisposalInvalid, aliceImg, problemList(vr.Problems))
	}
}

func TestDisposeKeepsEntriesInsideRetention(t *testing.T) {
	env := newEnv(t, func(o *Options) {
		o.Retention.Chats = map[string]time.Duration{group: 365 * 24 * time.Hour}
	})
	ctx := context.Background()
	for _, en := range conversation(t0) {
		env.append(en)
	}
	env.clock.Set(t0.Add(2 * year))
	rep, err := env.a.Dispose(ctx, env.clock.Now(), "records@gov.example")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries == 0 || rep.Retained == 0 {
		t.Fatalf("report %+v: want the group (1 year) disposed and the 1:1 chat (10 years) retained", rep)
	}
	if len(rep.Rules) != 1 || rep.Rules[0].Rule != "chat "+group+" 365d" {
		t.Fatalf("rules %+v, want only the group's override", rep.Rules)
	}
	if vr := env.verify(VerifyOptions{}); !vr.OK() {
		t.Fatalf("verify:%s", problemList(vr.Problems))
	}
}

func putMedia(t *testing.T, env *testEnv, content string) string {
	t.Helper()
	sha, _, err := env.a.PutMedia(context.Background(), bytes.NewReader([]byte(content)))
	if err != nil {
		t.Fatal(err)
	}
	return sha
}
