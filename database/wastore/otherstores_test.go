package wastore

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

func TestAppAndMetadataStores(t *testing.T) { eachBackend(t, testAppAndMetadataStores) }

func testAppAndMetadataStores(t *testing.T, b backend) {
	ctx := context.Background()
	c := b.open(t)
	pn := types.NewJID("4915155555555", types.DefaultUserServer)
	lid := types.NewJID("55555", types.HiddenUserServer)
	must(t, c.lids.PutLIDMapping(ctx, lid, pn))

	tests := []struct {
		name string
		run  func(t *testing.T, dev *store.Device)
	}{
		{"app state sync keys: newest timestamp wins", func(t *testing.T, dev *store.Device) {
			ks := dev.AppStateKeys
			if k, err := ks.GetAppStateSyncKey(ctx, []byte("k1")); k != nil || err != nil {
				t.Fatalf("absent key = %+v, %v", k, err)
			}
			if id, err := ks.GetLatestAppStateSyncKeyID(ctx); id != nil || err != nil {
				t.Fatalf("latest of none = %x, %v", id, err)
			}
			must(t, ks.PutAppStateSyncKey(ctx, []byte("k1"), store.AppStateSyncKey{Data: []byte("d1"), Fingerprint: []byte("f1"), Timestamp: 10}))
			must(t, ks.PutAppStateSyncKey(ctx, []byte("k2"), store.AppStateSyncKey{Data: []byte("d2"), Fingerprint: []byte("f2"), Timestamp: 20}))
			if id, _ := ks.GetLatestAppStateSyncKeyID(ctx); string(id) != "k2" {
				t.Errorf("latest = %q, want k2", id)
			}
			must(t, ks.PutAppStateSyncKey(ctx, []byte("k1"), store.AppStateSyncKey{Data: []byte("old"), Fingerprint: []byte("old"), Timestamp: 5}))
			if k, _ := ks.GetAppStateSyncKey(ctx, []byte("k1")); k == nil || string(k.Data) != "d1" || k.Timestamp != 10 {
				t.Errorf("older copy replaced key: %+v", k)
			}
			must(t, ks.PutAppStateSyncKey(ctx, []byte("k1"), store.AppStateSyncKey{Data: []byte("d3"), Fingerprint: []byte("f3"), Timestamp: 30}))
			if k, _ := ks.GetAppStateSyncKey(ctx, []byte("k1")); k == nil || string(k.Data) != "d3" || string(k.Fingerprint) != "f3" {
				t.Errorf("newer copy not stored: %+v", k)
			}
			if id, _ := ks.GetLatestAppStateSyncKeyID(ctx); string(id) != "k1" {
				t.Errorf("latest = %q, want k1", id)
			}
		}},
		{"app state versions and mutation MACs", func(t *testing.T, dev *store.Device) {
			as := dev.AppState
			if v, h, err := as.GetAppStateVersion(ctx, "regular"); v != 0 || h != ([128]byte{}) || err != nil {
				t.Fatalf("unsynced collection = %d, %x, %v", v, h[:4], err)
			}
			hash := [128]byte{1, 2, 3, 127: 9}
			must(t, as.PutAppStateVersion(ctx, "regular", 3, hash))
			if v, h, _ := as.GetAppStateVersion(ctx, "regular"); v != 3 || h != hash {
				t.Errorf("version = %d, hash ok=%v", v, h == hash)
			}
			must(t, as.PutAppStateMutationMACs(ctx, "regular", 3, []store.AppStateMutationMAC{
				{IndexMAC: []byte("i1"), ValueMAC: []byte("v1")},
				{IndexMAC: []byte("i2"), ValueMAC: []byte("v2-dup")},
				{IndexMAC: []byte("i2"), ValueMAC: []byte("v2")}, // same index twice: the later wins
			}))
			must(t, as.PutAppStateVersion(ctx, "regular", 4, hash))
			must(t, as.PutAppStateMutationMACs(ctx, "regular", 4, []store.AppStateMutationMAC{{IndexMAC: []byte("i1"), ValueMAC: []byte("v1b")}}))
			for index, want := range map[string]string{"i1": "v1b", "i2": "v2", "i3": ""} {
				got, err := as.GetAppStateMutationMAC(ctx, "regular", []byte(index))
				must(t, err)
				if string(got) != want {
					t.Errorf("MAC of %s = %q, want %q", index, got, want)
				}
			}
			must(t, as.DeleteAppStateMutationMACs(ctx, "regular", [][]byte{[]byte("i1")}))
			if got, _ := as.GetAppStateMutationMAC(ctx, "regular", []byte("i1")); got != nil {
				t.Errorf("deleted index still has MAC %q (at some version)", got)
			}
			many := make([]store.AppStateMutationMAC, 900)
			indexes := make([][]byte, len(many))
			for i := range many {
				indexes[i] = []byte("bulk" + itoa(i))
				many[i] = store.AppStateMutationMAC{IndexMAC: indexes[i], ValueMAC: []byte("v")}
			}
			must(t, as.PutAppStateMutationMACs(ctx, "regular", 4, many))
			if got, _ := as.GetAppStateMutationMAC(ctx, "regular", []byte("bulk899")); string(got) != "v" {
				t.Errorf("bulk MAC = %q", got)
			}
			must(t, as.DeleteAppStateMutationMACs(ctx, "regular", indexes))
			if got, _ := as.GetAppStateMutationMAC(ctx, "regular", []byte("bulk600")); got != nil {
				t.Errorf("bulk delete left %q", got)
			}
			must(t, as.DeleteAppStateVersion(ctx, "regular"))
			if v, _, _ := as.GetAppStateVersion(ctx, "regular"); v != 0 {
				t.Errorf("version after delete = %d", v)
			}
			if got, _ := as.GetAppStateMutationMAC(ctx, "regular", []byte("i2")); got != nil {
				t.Errorf("MAC survived deleting its collection: %q", got)
			}
		}},
		{"contacts: names, change reports and caching", func(t *testing.T, dev *store.Device) {
			cs := dev.Contacts
			alice := types.NewJID("4915100000010", types.DefaultUserServer)
			if info, err := cs.GetContact(ctx, alice); info.Found || err != nil {
				t.Fatalf("unknown contact = %+v, %v", info, err)
			}
			steps := []struct {
				name, push   string
				changed      bool
				previousName string
			}{
				{"first push name", "Alice", true, ""},
				{"same again", "Alice", false, ""},
				{"renamed", "Alice B.", true, "Alice"},
			}
			for _, st := range steps {
				changed, prev, err := cs.PutPushName(ctx, alice, st.push)
				must(t, err)
				if changed != st.changed || prev != st.previousName {
					t.Errorf("%s: PutPushName = %v, %q; want %v, %q", st.name, changed, prev, st.changed, st.previousName)
				}
			}
			// A device JID names the same person.
			aliceDevice := alice
			aliceDevice.Device = 3
			if changed, prev, _ := cs.PutBusinessName(ctx, aliceDevice, "Alice GmbH"); !changed || prev != "" {
				t.Errorf("PutBusinessName = %v, %q", changed, prev)
			}
			must(t, cs.PutContactName(ctx, alice, "Alice", "Alice Beispiel"))
			info, err := cs.GetContact(ctx, alice)
			must(t, err)
			want := types.ContactInfo{Found: true, FirstName: "Alice", FullName: "Alice Beispiel", PushName: "Alice B.", BusinessName: "Alice GmbH"}
			if info != want {
				t.Errorf("contact = %+v, want %+v", info, want)
			}
			bob := types.NewJID("4915100000011", types.DefaultUserServer)
			must(t, cs.PutAllContactNames(ctx, []store.ContactEntry{
				{JID: bob, FirstName: "B", FullName: "Bob Old"},
				{JID: alice, FirstName: "Ali", FullName: "Alice Neu"},
				{JID: bob, FirstName: "Bob", FullName: "Bob Beispiel"},
			}))
			must(t, cs.PutManyRedactedPhones(ctx, []store.RedactedPhoneEntry{{JID: bob, RedactedPhone: "+49 151 ••• 11"}}))
			if info, _ := cs.GetContact(ctx, alice); info.FullName != "Alice Neu" || info.PushName != "Alice B." {
				t.Errorf("alice after mass insert = %+v (cache not refreshed, or push name lost)", info)
			}
			all, err := cs.GetAllContacts(ctx)
			must(t, err)
			if len(all) != 2 || all[bob].FullName != "Bob Beispiel" || all[bob].RedactedPhone != "+49 151 ••• 11" || !all[bob].Found {
				t.Errorf("all contacts = %+v", all)
			}
			// What the cache says must be what a fresh reader gets from the database.
			fresh := newDeviceStore(c, dev.ID.String())
			if got, _ := fresh.GetContact(ctx, alice); got != all[alice] {
				t.Errorf("database has %+v, cache had %+v", got, all[alice])
			}
		}},
		{"chat settings", func(t *testing.T, dev *store.Device) {
			cs := dev.ChatSettings
			chat := types.NewJID("12036300000@g.us", types.GroupServer)
			if s, err := cs.GetChatSettings(ctx, chat); s.Found || err != nil {
				t.Fatalf("unknown chat = %+v, %v", s, err)
			}
			must(t, cs.PutPinned(ctx, chat, true))
			must(t, cs.PutMutedUntil(ctx, chat, store.MutedForever))
			s, err := cs.GetChatSettings(ctx, chat)
			must(t, err)
			if !s.Found || !s.Pinned || s.Archived || !s.MutedUntil.Equal(store.MutedForever) {
				t.Errorf("settings = %+v", s)
			}
			until := time.Unix(1900000000, 0)
			must(t, cs.PutMutedUntil(ctx, chat, until))
			must(t, cs.PutArchived(ctx, chat, true))
			if s, _ := cs.GetChatSettings(ctx, chat); !s.MutedUntil.Equal(until) || !s.Archived || !s.Pinned {
				t.Errorf("settings = %+v", s)
			}
			must(t, cs.PutMutedUntil(ctx, chat, time.Time{}))
			if s, _ := cs.GetChatSettings(ctx, chat); !s.MutedUntil.IsZero() {
				t.Errorf("unmuted chat mutedUntil = %v", s.MutedUntil)
			}
		}},
		{"message secrets: first stays, found by LID or phone number", func(t *testing.T, dev *store.Device) {
			ms := dev.MsgSecrets
			chat := types.NewJID("12036300001", types.GroupServer)
			pnDevice := pn
			pnDevice.Device = 5
			must(t, ms.PutMessageSecret(ctx, chat, pnDevice, "M1", []byte("first")))
			must(t, ms.PutMessageSecret(ctx, chat, pn, "M1", []byte("second")))
			for _, asker := range []types.JID{pn, lid} {
				secret, sender, err := ms.GetMessageSecret(ctx, chat, asker, "M1")
				must(t, err)
				if string(secret) != "first" || sender != pn {
					t.Errorf("asked as %s: secret %q sender %s; want first from %s", asker, secret, sender, pn)
				}
			}
			// A 1:1 chat stored by LID is found when asked by phone number.
			must(t, ms.PutMessageSecrets(ctx, []store.MessageSecretInsert{
				{Chat: lid, Sender: lid, ID: "M2", Secret: []byte("dm")},
				{Chat: lid, Sender: lid, ID: "M3", Secret: []byte("dm3")},
			}))
			if secret, sender, _ := ms.GetMessageSecret(ctx, pn, pn, "M2"); string(secret) != "dm" || sender != lid {
				t.Errorf("M2 by phone number = %q from %s", secret, sender)
			}
			if secret, sender, err := ms.GetMessageSecret(ctx, chat, pn, "nope"); secret != nil || !sender.IsEmpty() || err != nil {
				t.Errorf("unknown message = %q, %s, %v", secret, sender, err)
			}
		}},
		{"privacy tokens: newest wins, found by either identity", func(t *testing.T, dev *store.Device) {
			ps := dev.PrivacyTokens
			if tok, err := ps.GetPrivacyToken(ctx, pn); tok != nil || err != nil {
				t.Fatalf("absent token = %+v, %v", tok, err)
			}
			must(t, ps.PutPrivacyTokens(ctx, store.PrivacyToken{User: lid, Token: []byte("t100"), Timestamp: time.Unix(100, 0)}))
			must(t, ps.PutPrivacyTokens(ctx, store.PrivacyToken{User: lid, Token: []byte("t50"), Timestamp: time.Unix(50, 0)}))
			tok, err := ps.GetPrivacyToken(ctx, pn)
			must(t, err)
			if tok == nil || string(tok.Token) != "t100" || tok.User != pn || tok.Timestamp.Unix() != 100 {
				t.Errorf("token = %+v; want t100 labelled %s", tok, pn)
			}
			other := types.NewJID("4915100000099", types.DefaultUserServer)
			must(t, ps.PutPrivacyTokens(ctx,
				store.PrivacyToken{User: lid, Token: []byte("t200"), Timestamp: time.Unix(200, 0)},
				store.PrivacyToken{User: other, Token: []byte("o1"), Timestamp: time.Unix(1, 0)},
				store.PrivacyToken{User: other, Token: []byte("o2"), Timestamp: time.Unix(2, 0)},
			))
			if tok, _ := ps.GetPrivacyToken(ctx, lid); tok == nil || string(tok.Token) != "t200" {
				t.Errorf("token after newer put = %+v", tok)
			}
			if tok, _ := ps.GetPrivacyToken(ctx, other); tok == nil || string(tok.Token) != "o2" {
				t.Errorf("duplicate users in one batch: %+v", tok)
			}
		}},
		{"event buffer", func(t *testing.T, dev *store.Device) {
			eb := dev.EventBuffer
			hash := [32]byte{42}
			if evt, err := eb.GetBufferedEvent(ctx, hash); evt != nil || err != nil {
				t.Fatalf("absent event = %+v, %v", evt, err)
			}
			serverTime := time.UnixMilli(1700000000123)
			must(t, eb.PutBufferedEvent(ctx, hash, []byte("plain"), serverTime))
			evt, err := eb.GetBufferedEvent(ctx, hash)
			must(t, err)
			if evt == nil || string(evt.Plaintext) != "plain" || !evt.ServerTime.Equal(serverTime) || time.Since(evt.InsertTime) > time.Minute {
				t.Errorf("event = %+v", evt)
			}
			if err := eb.PutBufferedEvent(ctx, hash, []byte("again"), serverTime); err == nil {
				t.Error("buffering the same ciphertext twice succeeded")
			}
			must(t, eb.ClearBufferedEventPlaintext(ctx, hash))
			if evt, _ := eb.GetBufferedEvent(ctx, hash); evt == nil || evt.Plaintext != nil {
				t.Errorf("cleared event = %+v; want the hash kept without plaintext", evt)
			}
			empty := [32]byte{43}
			must(t, eb.PutBufferedEvent(ctx, empty, []byte{}, serverTime))
			if evt, _ := eb.GetBufferedEvent(ctx, empty); evt == nil || evt.Plaintext == nil {
				t.Errorf("empty plaintext read back as handled (nil): %+v", evt)
			}
			old := [32]byte{44}
			must(t, eb.PutBufferedEvent(ctx, old, []byte("old"), serverTime))
			_, err = c.db.Exec(ctx, "UPDATE wastore_event_buffer SET insert_ts_ms=$2 WHERE device_jid=$1 AND ciphertext_hash=$3",
				dev.ID.String(), time.Now().Add(-15*24*time.Hour).UnixMilli(), old[:])
			must(t, err)
			must(t, eb.DeleteOldBufferedHashes(ctx))
			if evt, _ := eb.GetBufferedEvent(ctx, old); evt != nil {
				t.Error("event older than 14 days survived")
			}
			if evt, _ := eb.GetBufferedEvent(ctx, hash); evt == nil {
				t.Error("recent event was deleted")
			}
		}},
		{"a handled event's plaintext is cleared in the table by the next decryption, or soon", func(t *testing.T, dev *store.Device) {
			eb := dev.EventBuffer
			stored := func(hash [32]byte) (plaintext []byte) {
				t.Helper()
				err := c.db.QueryRow(ctx, "SELECT plaintext FROM wastore_event_buffer WHERE device_jid=$1 AND ciphertext_hash=$2",
					dev.ID.String(), hash[:]).Scan(&plaintext)
				must(t, err)
				return plaintext
			}
			first, second, third := [32]byte{51}, [32]byte{52}, [32]byte{53}
			must(t, eb.PutBufferedEvent(ctx, first, []byte("one"), time.Now()))
			must(t, eb.ClearBufferedEventPlaintext(ctx, first))
			// A failed decryption rolls the clear back with everything else; it stays pending.
			if err := eb.DoDecryptionTxn(ctx, func(context.Context) error { return errTest }); err != errTest {
				t.Fatalf("DoDecryptionTxn = %v", err)
			}
			if evt, _ := eb.GetBufferedEvent(ctx, first); evt == nil || evt.Plaintext != nil {
				t.Errorf("pending clear: event = %+v; want it reported handled", evt)
			}
			must(t, eb.DoDecryptionTxn(ctx, func(ctx context.Context) error {
				return eb.PutBufferedEvent(ctx, second, []byte("two"), time.Now())
			}))
			if pt := stored(first); pt != nil {
				t.Errorf("after the next decryption the table still has plaintext %q", pt)
			}
			if pt := stored(second); string(pt) != "two" {
				t.Errorf("the decryption's own event has plaintext %q", pt)
			}
			must(t, eb.PutBufferedEvent(ctx, third, []byte("three"), time.Now()))
			must(t, eb.ClearBufferedEventPlaintext(ctx, third))
			deadline := time.Now().Add(10 * clearDelay)
			for stored(third) != nil {
				if time.Now().After(deadline) {
					t.Fatal("with no decryption to carry it, the clear never reached the table")
				}
				time.Sleep(clearDelay / 10)
			}
		}},
		{"decryption transaction rolls back Signal state with the buffer", func(t *testing.T, dev *store.Device) {
			err := dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
				must(t, dev.Sessions.PutSession(ctx, "rollback:0", []byte("advanced")))
				must(t, dev.EventBuffer.PutBufferedEvent(ctx, [32]byte{45}, []byte("pt"), time.Now()))
				return errTest
			})
			if err != errTest {
				t.Fatalf("DoDecryptionTxn = %v, want the callback's error", err)
			}
			if s, _ := dev.Sessions.GetSession(ctx, "rollback:0"); s != nil {
				t.Error("session written in a failed decryption transaction persisted")
			}
			if evt, _ := dev.EventBuffer.GetBufferedEvent(ctx, [32]byte{45}); evt != nil {
				t.Error("buffered event of a failed decryption transaction persisted")
			}
		}},
	}
	for i, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, ":", ""), func(t *testing.T) {
			tc.run(t, savedDevice(t, c, "49180000000"+itoa(i)+":1@s.whatsapp.net"))
		})
	}
}
