package database

import (
	"context"
	"testing"
	"time"
)

// The parked redactions on both backends: the first redaction of a target is kept, only
// waiting ones parked before the cutoff are overdue, and a state change takes them out.
func TestParkedRedactions(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, db *Database) {
		key := PortalKey{ChatJID: "491700000001@s.whatsapp.net", Receiver: "@alice:example.org"}
		if err := db.Users.Put(ctx, &User{MXID: key.Receiver}); err != nil {
			t.Fatal(err)
		}
		if err := db.Portals.Put(ctx, &Portal{PortalKey: key}); err != nil {
			t.Fatal(err)
		}
		base := time.UnixMilli(1_700_000_000_000)
		for i, r := range []*ParkedRedaction{
			{PortalKey: key, Target: "$old", Redaction: "$r1", TargetType: "m.reaction", TargetSentAt: base, RedactedAt: base, ParkedAt: base},
			{PortalKey: key, Target: "$old", Redaction: "$r2", RedactedAt: base, ParkedAt: base.Add(time.Hour)},
			{PortalKey: key, Target: "$new", Redaction: "$r3", RedactedAt: base, ParkedAt: base.Add(time.Hour)},
		} {
			if err := db.ParkedRedactions.Park(ctx, r); err != nil {
				t.Fatalf("park %d: %v", i, err)
			}
		}
		got, err := db.ParkedRedactions.ByTarget(ctx, key.Receiver, "$old")
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.Redaction != "$r1" || got.TargetType != "m.reaction" || !got.TargetSentAt.Equal(base) ||
			!got.ParkedAt.Equal(base) || got.State != ParkedWaiting || got.PortalKey != key {
			t.Fatalf("parked = %+v, want the first redaction, waiting", got)
		}
		if none, err := db.ParkedRedactions.ByTarget(ctx, "@bob:example.org", "$old"); err != nil || none != nil {
			t.Fatalf("another receiver's lookup = %+v, %v", none, err)
		}
		overdue := func() []string {
			rs, err := db.ParkedRedactions.Overdue(ctx, base.Add(30*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rs {
				out = append(out, string(r.Target))
			}
			return out
		}
		if o := overdue(); len(o) != 1 || o[0] != "$old" {
			t.Fatalf("overdue = %v, want $old alone", o)
		}
		if err := db.ParkedRedactions.SetState(ctx, key.Receiver, "$old", ParkedExpired); err != nil {
			t.Fatal(err)
		}
		if o := overdue(); len(o) != 0 {
			t.Fatalf("overdue after expiry = %v, want none", o)
		}
		if got, _ := db.ParkedRedactions.ByTarget(ctx, key.Receiver, "$old"); got == nil || got.State != ParkedExpired {
			t.Fatalf("after expiry = %+v", got)
		}
	})
}
