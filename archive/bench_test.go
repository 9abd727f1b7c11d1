package archive

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relayedMessage is what the relay path archives for a typical text message: ~100 characters of text
// and the decrypted protobuf (~200 bytes).
func relayedMessage(i int) *Entry {
	text := fmt.Sprintf("Message %d: the figures for the tender are attached, please confirm by Friday 🙂", i)
	return &Entry{
		Kind: KindMessage, Account: account, Chat: group, ChatName: "Procurement", Sender: alice, SenderName: "Alice",
		MessageID: fmt.Sprintf("3EB0%016X", i), Time: time.Now(),
		Message: &Message{Type: "text", Text: text, Proto: []byte(strings.Repeat("\x0a\x50", 4) + text + strings.Repeat("\x12\x08", 40))},
	}
}

// TestConcurrentAppendsAreContiguous appends from many goroutines and checks every entry got its own
// index, none is lost, and the result verifies.
func TestConcurrentAppendsAreContiguous(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.CheckpointEvery = 50; o.MaxBatch = 16 })
	const writers, each = 16, 25
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				app, err := env.a.Append(context.Background(), relayedMessage(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[app.Index] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(seen) != writers*each {
		t.Fatalf("%d distinct indexes for %d appends", len(seen), writers*each)
	}
	for i := uint64(1); i <= writers*each; i++ {
		if !seen[i] {
			t.Fatalf("index %d was never handed out", i)
		}
	}
	if rep := env.verify(VerifyOptions{}); !rep.OK() || rep.Size != writers*each+1 {
		t.Fatalf("size %d:%s", rep.Size, problemList(rep.Problems))
	}
}

// BenchmarkArchiveAppend measures durable appends (SQLite, WAL, synchronous=FULL, on disk) with several
// concurrent writers, as relaying goroutines would call it. entries/commit shows the group commit at work.
func BenchmarkArchiveAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			env := newEnv(b, func(o *Options) { o.Now = time.Now })
			entries := make([]*Entry, 256)
			for i := range entries {
				entries[i] = relayedMessage(i)
			}
			commitsBefore := env.a.commits.Load()
			cpuBefore := processCPU()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := env.a.Append(context.Background(), entries[i%256]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if cpu := processCPU() - cpuBefore; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			}
			if commits := env.a.commits.Load() - commitsBefore; commits > 0 {
				b.ReportMetric(float64(b.N)/float64(commits), "entries/commit")
			}
		})
	}
}
