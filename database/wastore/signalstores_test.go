package wastore

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

func TestSignalStores(t *testing.T) { eachBackend(t, testSignalStores) }

func testSignalStores(t *testing.T, b backend) {
	ctx := context.Background()
	c := b.open(t)
	tests := []struct {
		name string
		run  func(t *testing.T, dev *store.Device)
	}{
		{"identity trust on first use, then exact key only", func(t *testing.T, dev *store.Device) {
			ids := dev.Identities
			if ok, err := ids.IsTrustedIdentity(ctx, "491:0", [32]byte{1}); err != nil || !ok {
				t.Fatalf("unknown identity trusted=%v err=%v, want true", ok, err)
			}
			must(t, ids.PutIdentity(ctx, "491:0", [32]byte{1}))
			if ok, _ := ids.IsTrustedIdentity(ctx, "491:0", [32]byte{2}); ok {
				t.Error("a different key is trusted")
			}
			must(t, ids.PutIdentity(ctx, "491:0", [32]byte{2}))
			if ok, _ := ids.IsTrustedIdentity(ctx, "491:0", [32]byte{2}); !ok {
				t.Error("replaced key is not trusted")
			}
			must(t, ids.DeleteIdentity(ctx, "491:0"))
			if ok, _ := ids.IsTrustedIdentity(ctx, "491:0", [32]byte{9}); !ok {
				t.Error("deleted identity still constrains trust")
			}
		}},
		{"delete all identities matches the address prefix literally", func(t *testing.T, dev *store.Device) {
			ids := dev.Identities
			for _, addr := range []string{"123_1:0", "123_1:5", "12341:0", "123_12:0"} {
				must(t, ids.PutIdentity(ctx, addr, [32]byte{7}))
			}
			must(t, ids.DeleteAllIdentities(ctx, "123_1"))
			for addr, wantKept := range map[string]bool{"123_1:0": false, "123_1:5": false, "12341:0": true, "123_12:0": true} {
				// A kept identity rejects a foreign key; a deleted one accepts anything.
				trusted, err := ids.IsTrustedIdentity(ctx, addr, [32]byte{8})
				must(t, err)
				if trusted == wantKept {
					t.Errorf("%s kept=%v, want %v", addr, !trusted, wantKept)
				}
			}
		}},
		{"sessions", func(t *testing.T, dev *store.Device) {
			ss := dev.Sessions
			if got, err := ss.GetSession(ctx, "492:1"); got != nil || err != nil {
				t.Fatalf("absent session = %q, %v", got, err)
			}
			if has, _ := ss.HasSession(ctx, "492:1"); has {
				t.Error("HasSession of absent session")
			}
			must(t, ss.PutSession(ctx, "492:1", []byte("one")))
			must(t, ss.PutSession(ctx, "492:1", []byte("two")))
			if got, _ := ss.GetSession(ctx, "492:1"); string(got) != "two" {
				t.Errorf("session = %q, want the latest", got)
			}
			if has, _ := ss.HasSession(ctx, "492:1"); !has {
				t.Error("HasSession false after put")
			}
			many := map[string][]byte{}
			for i := range 700 { // more than one IN list / insert chunk
				many["493:"+itoa(i)] = []byte{byte(i)}
			}
			must(t, ss.PutManySessions(ctx, many))
			addrs := []string{"492:1", "493:0", "493:699", "nobody:0"}
			got, err := ss.GetManySessions(ctx, addrs)
			must(t, err)
			if len(got) != len(addrs) || string(got["492:1"]) != "two" || !bytes.Equal(got["493:699"], []byte{byte(699 % 256)}) {
				t.Errorf("GetManySessions = %v", got)
			}
			if v, ok := got["nobody:0"]; !ok || v != nil {
				t.Errorf("missing address: present=%v value=%v, want present with nil", ok, v)
			}
			all := make([]string, 0, len(many))
			for addr := range many {
				all = append(all, addr)
			}
			if got, err := ss.GetManySessions(ctx, all); err != nil || len(got) != 700 || got["493:350"] == nil {
				t.Errorf("GetManySessions of 700: %d results, err %v", len(got), err)
			}
			must(t, ss.DeleteSession(ctx, "492:1"))
			must(t, ss.DeleteAllSessions(ctx, "493"))
			if got, _ := ss.GetManySessions(ctx, []string{"492:1", "493:5"}); got["492:1"] != nil || got["493:5"] != nil {
				t.Errorf("sessions survived deletion: %v", got)
			}
		}},
		{"PN to LID migration moves sessions, identities and sender keys", func(t *testing.T, dev *store.Device) {
			pn := types.NewJID("4915100000042", types.DefaultUserServer)
			lid := types.NewJID("777", types.HiddenUserServer)
			must(t, dev.Sessions.PutSession(ctx, "4915100000042:0", []byte("s0")))
			must(t, dev.Sessions.PutSession(ctx, "4915100000042:3", []byte("s3")))
			must(t, dev.Sessions.PutSession(ctx, "777_1:3", []byte("stale")))
			must(t, dev.Sessions.PutSession(ctx, "49151000000421:0", []byte("other")))
			must(t, dev.Identities.PutIdentity(ctx, "4915100000042:0", [32]byte{4}))
			must(t, dev.SenderKeys.PutSenderKey(ctx, "g@g.us", "4915100000042:3", []byte("sk")))

			must(t, dev.Sessions.MigratePNToLID(ctx, pn, lid))
			for addr, want := range map[string]string{"777_1:0": "s0", "777_1:3": "s3", "4915100000042:0": "", "49151000000421:0": "other"} {
				got, err := dev.Sessions.GetSession(ctx, addr)
				must(t, err)
				if string(got) != want {
					t.Errorf("session %s = %q, want %q", addr, got, want)
				}
			}
			if ok, _ := dev.Identities.IsTrustedIdentity(ctx, "777_1:0", [32]byte{5}); ok {
				t.Error("identity did not move to the LID address")
			}
			if sk, _ := dev.SenderKeys.GetSenderKey(ctx, "g@g.us", "777_1:3"); string(sk) != "sk" {
				t.Errorf("sender key under LID = %q", sk)
			}
			if sk, _ := dev.SenderKeys.GetSenderKey(ctx, "g@g.us", "4915100000042:3"); sk != nil {
				t.Errorf("sender key left under PN = %q", sk)
			}
		}},
		{"prekeys are handed out until uploaded and IDs are never reused", func(t *testing.T, dev *store.Device) {
			pk := dev.PreKeys
			first, err := pk.GetOrGenPreKeys(ctx, 5)
			must(t, err)
			if ids := preKeyIDs(first); !slices.Equal(ids, []uint32{1, 2, 3, 4, 5}) {
				t.Fatalf("first batch IDs %v", ids)
			}
			again, err := pk.GetOrGenPreKeys(ctx, 5)
			must(t, err)
			if !slices.Equal(preKeyIDs(again), preKeyIDs(first)) || *again[0].Pub != *first[0].Pub {
				t.Error("unuploaded keys were not handed out again")
			}
			if n, _ := pk.UploadedPreKeyCount(ctx); n != 0 {
				t.Errorf("uploaded count %d before marking", n)
			}
			must(t, pk.MarkPreKeysAsUploaded(ctx, 5))
			if n, _ := pk.UploadedPreKeyCount(ctx); n != 5 {
				t.Errorf("uploaded count %d, want 5", n)
			}
			next, err := pk.GetOrGenPreKeys(ctx, 3)
			must(t, err)
			if ids := preKeyIDs(next); !slices.Equal(ids, []uint32{6, 7, 8}) {
				t.Errorf("second batch IDs %v", ids)
			}
			got, err := pk.GetPreKey(ctx, 7)
			must(t, err)
			if got == nil || *got.Pub != *next[1].Pub || *got.Priv != *next[1].Priv {
				t.Errorf("GetPreKey(7) = %+v", got)
			}
			must(t, pk.RemovePreKey(ctx, 8))
			if got, err := pk.GetPreKey(ctx, 8); got != nil || err != nil {
				t.Errorf("removed prekey = %+v, %v", got, err)
			}
			refill, err := pk.GetOrGenPreKeys(ctx, 3)
			must(t, err)
			if ids := preKeyIDs(refill); !slices.Equal(ids, []uint32{6, 7, 9}) {
				t.Errorf("refill IDs %v, want 6 7 9 (8 was consumed and must not come back)", ids)
			}
			one, err := pk.GenOnePreKey(ctx)
			must(t, err)
			if one.KeyID != 10 {
				t.Errorf("GenOnePreKey ID %d, want 10", one.KeyID)
			}
			if n, _ := pk.UploadedPreKeyCount(ctx); n != 6 {
				t.Errorf("uploaded count %d after GenOnePreKey, want 6", n)
			}
		}},
		{"prekey IDs wrap around within 24 bits", func(t *testing.T, dev *store.Device) {
			_, err := c.db.Exec(ctx, "UPDATE wastore_device SET next_pre_key_id=$2 WHERE jid=$1", dev.ID.String(), maxPreKeyID)
			must(t, err)
			keys, err := dev.PreKeys.GetOrGenPreKeys(ctx, 2)
			must(t, err)
			if ids := preKeyIDs(keys); !slices.Equal(ids, []uint32{maxPreKeyID, 1}) {
				t.Errorf("IDs across the wrap %v", ids)
			}
		}},
		{"sender keys", func(t *testing.T, dev *store.Device) {
			sk := dev.SenderKeys
			if got, err := sk.GetSenderKey(ctx, "g@g.us", "1:0"); got != nil || err != nil {
				t.Fatalf("absent sender key = %q, %v", got, err)
			}
			must(t, sk.PutSenderKey(ctx, "g@g.us", "1:0", []byte("a")))
			must(t, sk.PutSenderKey(ctx, "g@g.us", "1:0", []byte("b")))
			must(t, sk.PutSenderKey(ctx, "h@g.us", "1:0", []byte("c")))
			if got, _ := sk.GetSenderKey(ctx, "g@g.us", "1:0"); string(got) != "b" {
				t.Errorf("sender key = %q, want b", got)
			}
			if got, _ := sk.GetSenderKey(ctx, "h@g.us", "1:0"); string(got) != "c" {
				t.Errorf("other group's sender key = %q, want c", got)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, savedDevice(t, c, "49170000000"+itoa(i)+":1@s.whatsapp.net"))
		})
	}
}
