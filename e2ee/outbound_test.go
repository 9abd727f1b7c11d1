//go:build goolm

package e2ee

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/database/dbtest"
)

// TestOutboundSessionsInMemory: the sessions the bot encrypts with are never read back from
// the database (a stored one may be behind what was sent), a session removed because a member
// left stays removed when an encryption that was using it finishes, and a new one replaces it.
func TestOutboundSessionsInMemory(t *testing.T) {
	ctx := context.Background()
	const left, kept = id.RoomID("!left:example.org"), id.RoomID("!kept:example.org")
	sql := crypto.NewSQLCryptoStore(dbtest.InMemory(t).Database, dbutil.ZeroLogger(zerolog.Nop()), "@bot:example.org", "BOT", pickleKey)
	if err := database.UpgradeChild(ctx, sql.DB, "crypto"); err != nil {
		t.Fatal(err)
	}
	newSession := func(room id.RoomID) *crypto.OutboundGroupSession {
		s, err := crypto.NewOutboundGroupSession(room, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// One stored by an earlier run, through mautrix's own SQL store.
	if err := sql.AddOutboundGroupSession(ctx, newSession(kept)); err != nil {
		t.Fatal(err)
	}
	store, err := newOutboundStore(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := sql.GetOutboundGroupSession(ctx, kept); err != nil || s != nil {
		t.Errorf("the last run's session is still in the database: %v, %v", s, err)
	}
	if s, _ := store.GetOutboundGroupSession(ctx, kept); s != nil {
		t.Errorf("the last run's session is continued: %s", s.ID())
	}

	first := newSession(left)
	if err := store.AddOutboundGroupSession(ctx, first); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func() error
		want   *crypto.OutboundGroupSession
	}{
		{"added", nil, first},
		{"encrypted with", func() error { first.MessageCount++; return store.UpdateOutboundGroupSession(ctx, first) }, first},
		{"removed (a member left)", func() error { return store.RemoveOutboundGroupSession(ctx, left) }, nil},
		{"an encryption that had it finishes", func() error { return store.UpdateOutboundGroupSession(ctx, first) }, nil},
	}
	for _, step := range steps {
		if step.change != nil {
			if err := step.change(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		if got, err := store.GetOutboundGroupSession(ctx, left); err != nil || got != step.want {
			t.Fatalf("%s: session %v, %v; want %v", step.name, got, err, step.want)
		}
	}
	second := newSession(left)
	if err := store.AddOutboundGroupSession(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.GetOutboundGroupSession(ctx, left); got != second || got.ID() == first.ID() {
		t.Errorf("after a new session the room has %v", got)
	}
}
