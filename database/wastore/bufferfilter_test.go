package wastore

import (
	"context"
	"testing"
	"time"
)

// The in-memory filter must never hide a buffered event: not one another store of the same
// device buffered, not one a previous process buffered, and not one whose hash shares its
// first bytes with an absent one.
func TestBufferFilterNeverHidesABufferedEvent(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	c := b.open(t)
	dev := savedDevice(t, c, "4915100000061:1@s.whatsapp.net")
	jid := dev.ID.String()
	first, second := [32]byte{1, 2, 3}, [32]byte{4, 5, 6}
	sharesPrefix := first
	sharesPrefix[31] = 9

	cases := []struct {
		name   string
		put    func() error
		lookup func() (*[32]byte, *deviceStore)
		want   bool
	}{
		{"absent before anything is buffered", nil,
			func() (*[32]byte, *deviceStore) { return &first, newDeviceStore(c, jid) }, false},
		{"buffered by the device's own store", func() error {
			return dev.EventBuffer.PutBufferedEvent(ctx, first, []byte("one"), time.Now())
		}, func() (*[32]byte, *deviceStore) { return &first, dev.EventBuffer.(*deviceStore) }, true},
		{"buffered by another store of the same device", func() error {
			return newDeviceStore(c, jid).PutBufferedEvent(ctx, second, []byte("two"), time.Now())
		}, func() (*[32]byte, *deviceStore) { return &second, dev.EventBuffer.(*deviceStore) }, true},
		{"same first bytes, not buffered", nil,
			func() (*[32]byte, *deviceStore) { return &sharesPrefix, dev.EventBuffer.(*deviceStore) }, false},
	}
	for _, tc := range cases {
		if tc.put != nil {
			must(t, tc.put())
		}
		hash, s := tc.lookup()
		evt, err := s.GetBufferedEvent(ctx, *hash)
		must(t, err)
		if (evt != nil) != tc.want {
			t.Errorf("%s: buffered event = %+v, want found=%v", tc.name, evt, tc.want)
		}
	}

	// A new process (a new container on the same file) loads the hashes from the table.
	must(t, c.Close())
	reopened := b.open(t)
	fresh := newDeviceStore(reopened, jid)
	for _, h := range [][32]byte{first, second} {
		if evt, err := fresh.GetBufferedEvent(ctx, h); err != nil || evt == nil {
			t.Errorf("after reopening, buffered event %x = %+v, %v", h[:3], evt, err)
		}
	}
	// Deleting old hashes rebuilds the filter; the recent ones stay found.
	_, err := reopened.db.Exec(ctx, "UPDATE wastore_event_buffer SET insert_ts_ms=$2 WHERE device_jid=$1 AND ciphertext_hash=$3",
		jid, time.Now().Add(-15*24*time.Hour).UnixMilli(), first[:])
	must(t, err)
	must(t, fresh.DeleteOldBufferedHashes(ctx))
	if evt, _ := fresh.GetBufferedEvent(ctx, first); evt != nil {
		t.Errorf("deleted event still found: %+v", evt)
	}
	if evt, _ := fresh.GetBufferedEvent(ctx, second); evt == nil {
		t.Error("recent event lost by the filter rebuild")
	}
	if n := len(reopened.filterFor(jid).prefixes); n != 1 {
		t.Errorf("filter holds %d prefixes after the rebuild, want 1", n)
	}
}
