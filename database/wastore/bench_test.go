package wastore

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// BenchmarkDecryptionTxn is the per-message store work of receiving a 1:1 message: load the
// session, store the advanced session and buffer the plaintext, in one transaction.
func BenchmarkDecryptionTxn(b *testing.B) {
	c := sqliteBackend(b).open(b)
	dev := savedDevice(b, c, "4915100000041:1@s.whatsapp.net")
	ctx := context.Background()
	session := make([]byte, 1500)
	var hash [32]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint64(hash[:], uint64(i))
		err := dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			if _, err := dev.Sessions.GetSession(ctx, "4915100000042:0"); err != nil {
				return err
			}
			if err := dev.Sessions.PutSession(ctx, "4915100000042:0", session); err != nil {
				return err
			}
			return dev.EventBuffer.PutBufferedEvent(ctx, hash, []byte("plaintext"), time.Now())
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
