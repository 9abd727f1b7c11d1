package portal

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"
)

func TestInflightHandOff(t *testing.T) {
	payload := []byte(`{"info":{}}`)
	tests := []struct {
		name string
		run  func(f *inflight) any
		want bool // whether take returns the value handed off
	}{
		{"same payload", func(f *inflight) any {
			f.handOff("k", payload, "v", "")
			v, _ := f.take("k", payload)
			return v
		}, true},
		{"payload of another delivery", func(f *inflight) any {
			f.handOff("k", payload, "v", "")
			v, _ := f.take("k", []byte(`{"info":{"PushName":"x"}}`))
			return v
		}, false},
		{"taken once", func(f *inflight) any {
			f.handOff("k", payload, "v", "")
			f.take("k", payload)
			v, _ := f.take("k", payload)
			return v
		}, false},
		{"withdrawn", func(f *inflight) any {
			f.handOff("k", payload, "v", "")
			f.withdraw("k", "v")
			v, _ := f.take("k", payload)
			return v
		}, false},
		{"withdrawal of another value keeps it", func(f *inflight) any {
			f.handOff("k", payload, "v", "")
			f.withdraw("k", "other")
			v, _ := f.take("k", payload)
			return v
		}, true},
		{"full", func(f *inflight) any {
			for i := range maxHandoff {
				f.handOff(fmt.Sprint(i), payload, i, "")
			}
			f.handOff("k", payload, "v", "")
			v, _ := f.take("k", payload)
			return v
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run(newInflight(nil)); (got != nil) != tt.want {
				t.Errorf("take = %v, want handed off: %v", got, tt.want)
			}
		})
	}
}

// "Not bridged yet" holds from the hand-off until a relay of the same message ID begins or
// its mapping is recorded outside the queue, and is never given while a relay is under way.
func TestInflightNotBridgedYet(t *testing.T) {
	payload := []byte(`{"info":{}}`)
	tests := []struct {
		name string
		run  func(f *inflight)
		want bool
	}{
		{"handed off with no relay under way", func(f *inflight) { f.handOff("k", payload, "v", "ID1") }, true},
		{"no message ID", func(f *inflight) { f.handOff("k", payload, "v", "") }, false},
		{"handed off while a relay of it is under way", func(f *inflight) {
			f.begin("ID1")
			f.handOff("k", payload, "v", "ID1")
		}, false},
		{"handed off after that relay committed", func(f *inflight) {
			f.begin("ID1")
			f.finish(1)
			f.endRelays(f.batch)
			f.batch = nil
			f.handOff("k", payload, "v", "ID1")
		}, true},
		{"a relay of the same message began since", func(f *inflight) {
			f.handOff("k", payload, "v", "ID1")
			f.begin("ID1")
		}, false},
		{"its mapping was recorded outside the queue since", func(f *inflight) {
			f.handOff("k", payload, "v", "ID1")
			f.recordedDirectly("ID1")
		}, false},
		{"a relay of another message began since", func(f *inflight) {
			f.handOff("k", payload, "v", "ID1")
			f.begin("ID2")
		}, true},
		{"another item of the same message was taken, then its relay began", func(f *inflight) {
			f.handOff("other", payload, "w", "ID1")
			f.handOff("k", payload, "v", "ID1")
			f.take("other", payload)
			f.begin("ID1")
		}, false},
		{"another item of the same message was withdrawn, then a relay began", func(f *inflight) {
			f.handOff("other", payload, "w", "ID1")
			f.withdraw("other", "w")
			f.handOff("k", payload, "v", "ID1")
			f.begin("ID1")
		}, false},
		{"handed off again under the same key, then a relay began", func(f *inflight) {
			f.handOff("k", payload, "v", "ID1")
			f.handOff("k", payload, "v", "ID1")
			f.begin("ID1")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInflight(nil)
			tt.run(f)
			v, unbridged := f.take("k", payload)
			if v == nil || unbridged != tt.want {
				t.Errorf("take = %v, %v; want the value and not-bridged-yet=%v", v, unbridged, tt.want)
			}
		})
	}
}

// The per-message counts empty with the items and relays, or a long-running portal would
// grow them by one entry per message.
func TestInflightCountsEmpty(t *testing.T) {
	payload := []byte(`{"info":{}}`)
	h := newHarness(t)
	f := newInflight(h.db)
	for i := range 10 {
		key, id := fmt.Sprint("k", i), fmt.Sprint("ID", i%3)
		f.handOff(key, payload, i, id)
		f.handOff(key, payload, i, id)
	}
	f.begin("ID0")
	f.finish(1) // no such queue row: its removal deletes nothing
	f.begin("ID1")
	f.abandon(context.Background(), zerolog.Nop())
	for i := range 10 {
		key := fmt.Sprint("k", i)
		if i%2 == 0 {
			f.take(key, payload)
		} else {
			f.withdraw(key, i)
		}
	}
	if err := f.settle(context.Background(), zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if len(f.handedOff) != 0 || len(f.unbridged) != 0 || len(f.relaying) != 0 || len(f.batch) != 0 {
		t.Fatalf("left behind: %d hand-offs, not-bridged counts %v, relays %v, batch %d",
			len(f.handedOff), f.unbridged, f.relaying, len(f.batch))
	}
}
