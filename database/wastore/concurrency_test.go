package wastore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// TestConcurrentUse runs what a busy client does at once: decryption transactions that read
// and then write Signal state, LID mapping updates, push name updates, prekey generation and
// message secrets, from many goroutines. On SQLite a transaction that upgrades from reading
// to writing while another connection writes fails with SQLITE_BUSY at once unless
// transactions take the write lock up front; no operation may fail.
func TestConcurrentUse(t *testing.T) { eachBackend(t, testConcurrentUse) }

func testConcurrentUse(t *testing.T, b backend) {
	ctx := context.Background()
	c := b.open(t)
	dev := savedDevice(t, c, "4915100000031:1@s.whatsapp.net")
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*4)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				addr := fmt.Sprintf("49151%04d:%d", w, r%3)
				err := dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
					prev, err := dev.Sessions.GetSession(ctx, addr)
					if err != nil {
						return err
					}
					if err := dev.Sessions.PutSession(ctx, addr, append(prev, byte(r))); err != nil {
						return err
					}
					if _, err := dev.PreKeys.GetPreKey(ctx, uint32(r+1)); err != nil {
						return err
					}
					return dev.EventBuffer.PutBufferedEvent(ctx, hashOf([]byte(fmt.Sprint(w, r))), []byte("pt"), time.Now())
				})
				if err != nil {
					errs <- fmt.Errorf("decryption txn %d/%d: %w", w, r, err)
				}
				user := fmt.Sprintf("4917%03d", (w*rounds+r)%40)
				if err := dev.LIDs.PutLIDMapping(ctx, types.NewJID(fmt.Sprint(900+(w*rounds+r)%40), types.HiddenUserServer),
					types.NewJID(user, types.DefaultUserServer)); err != nil {
					errs <- fmt.Errorf("LID mapping: %w", err)
				}
				if _, _, err := dev.Contacts.PutPushName(ctx, types.NewJID(user, types.DefaultUserServer), fmt.Sprint("name ", r)); err != nil {
					errs <- fmt.Errorf("push name: %w", err)
				}
				if r%5 == 0 {
					if _, err := dev.PreKeys.GetOrGenPreKeys(ctx, 10); err != nil {
						errs <- fmt.Errorf("prekeys: %w", err)
					}
				}
				if err := dev.MsgSecrets.PutMessageSecrets(ctx, []store.MessageSecretInsert{{
					Chat: types.NewJID(user, types.DefaultUserServer), Sender: types.NewJID(user, types.DefaultUserServer),
					ID: fmt.Sprint("M", w, r), Secret: []byte("s"),
				}}); err != nil {
					errs <- fmt.Errorf("message secrets: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every decryption transaction appended exactly one byte to its session.
	for w := range workers {
		total := 0
		for d := range 3 {
			s, err := dev.Sessions.GetSession(ctx, fmt.Sprintf("49151%04d:%d", w, d))
			must(t, err)
			total += len(s)
		}
		if total != rounds {
			t.Errorf("worker %d: sessions hold %d updates, want %d", w, total, rounds)
		}
	}
}
