package wastore

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

func TestLIDMap(t *testing.T) { eachBackend(t, testLIDMap) }

func testLIDMap(t *testing.T, b backend) {
	ctx := context.Background()
	c := b.open(t)
	dev := savedDevice(t, c, "4915100000000:1@s.whatsapp.net")
	lids := dev.LIDs
	pn := func(user string, device uint16) types.JID {
		return types.JID{User: user, Device: device, Server: types.DefaultUserServer}
	}
	lid := func(user string, device uint16) types.JID {
		return types.JID{User: user, Device: device, Server: types.HiddenUserServer}
	}

	// Ask first so "no mapping" is cached; a later put must override that.
	if got, err := lids.GetLIDForPN(ctx, pn("491", 0)); !got.IsEmpty() || err != nil {
		t.Fatalf("unknown PN = %s, %v", got, err)
	}
	must(t, lids.PutLIDMapping(ctx, lid("1001", 0), pn("491", 0)))
	must(t, lids.PutManyLIDMappings(ctx, []store.LIDMapping{
		{LID: lid("1002", 0), PN: pn("492", 0)},
		{LID: pn("bad", 0), PN: pn("493", 0)}, // invalid: skipped, not fatal
		{LID: lid("1003", 0), PN: pn("493", 0)},
	}))
	// The phone number 491 gets a new LID: the old LID must no longer resolve to it.
	must(t, lids.PutLIDMapping(ctx, lid("1009", 0), pn("491", 0)))
	// LID 1002 moves to another number: 492 must lose it.
	must(t, lids.PutLIDMapping(ctx, lid("1002", 0), pn("494", 0)))

	if _, err := lids.GetLIDForPN(ctx, lid("1001", 0)); err == nil {
		t.Error("GetLIDForPN accepted a LID")
	}
	if err := lids.PutLIDMapping(ctx, pn("491", 0), lid("1001", 0)); err == nil {
		t.Error("PutLIDMapping accepted swapped arguments")
	}

	check := func(t *testing.T, dev *store.Device) {
		t.Helper()
		lids := dev.LIDs
		tests := []struct {
			name string
			got  func() (types.JID, error)
			want types.JID
		}{
			{"PN keeps device", func() (types.JID, error) { return lids.GetLIDForPN(ctx, pn("491", 4)) }, lid("1009", 4)},
			{"LID keeps device", func() (types.JID, error) { return lids.GetPNForLID(ctx, lid("1009", 2)) }, pn("491", 2)},
			{"replaced LID is gone", func() (types.JID, error) { return lids.GetPNForLID(ctx, lid("1001", 0)) }, types.EmptyJID},
			{"moved LID left old PN", func() (types.JID, error) { return lids.GetLIDForPN(ctx, pn("492", 0)) }, types.EmptyJID},
			{"moved LID", func() (types.JID, error) { return lids.GetPNForLID(ctx, lid("1002", 0)) }, pn("494", 0)},
			{"batch entry after invalid one", func() (types.JID, error) { return lids.GetLIDForPN(ctx, pn("493", 0)) }, lid("1003", 0)},
			{"device JID via Device.GetAltJID", func() (types.JID, error) { return dev.GetAltJID(ctx, pn("494", 7)) }, lid("1002", 7)},
		}
		for _, tc := range tests {
			got, err := tc.got()
			if err != nil || got != tc.want {
				t.Errorf("%s: got %s, %v; want %s", tc.name, got, err, tc.want)
			}
		}
		many, err := lids.GetManyLIDsForPNs(ctx, []types.JID{pn("491", 0), pn("491", 5), pn("492", 0), pn("494", 9), lid("1009", 0)})
		must(t, err)
		want := map[types.JID]types.JID{pn("491", 0): lid("1009", 0), pn("491", 5): lid("1009", 5), pn("494", 9): lid("1002", 9)}
		if len(many) != len(want) {
			t.Errorf("GetManyLIDsForPNs = %v, want %v", many, want)
		}
		for k, v := range want {
			if many[k] != v {
				t.Errorf("GetManyLIDsForPNs[%s] = %s, want %s", k, many[k], v)
			}
		}
	}
	t.Run("through the cache", func(t *testing.T) { check(t, dev) })
	t.Run("from the database", func(t *testing.T) {
		c2 := b.open(t)
		reloaded, err := c2.GetDevice(ctx, *dev.ID)
		must(t, err)
		check(t, reloaded)
	})
}
