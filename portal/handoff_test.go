package portal

import (
	"fmt"
	"testing"
)

func TestHandoff(t *testing.T) {
	payload := []byte(`{"info":{}}`)
	tests := []struct {
		name string
		run  func(h *handoff) any
		want bool // whether take returns the value put
	}{
		{"same payload", func(h *handoff) any {
			h.put("k", payload, "v", "", false)
			v, _ := h.take("k", payload)
			return v
		}, true},
		{"payload of another delivery", func(h *handoff) any {
			h.put("k", payload, "v", "", false)
			v, _ := h.take("k", []byte(`{"info":{"PushName":"x"}}`))
			return v
		}, false},
		{"taken once", func(h *handoff) any {
			h.put("k", payload, "v", "", false)
			h.take("k", payload)
			v, _ := h.take("k", payload)
			return v
		}, false},
		{"dropped duplicate", func(h *handoff) any {
			h.put("k", payload, "v", "", false)
			h.drop("k", "v")
			v, _ := h.take("k", payload)
			return v
		}, false},
		{"drop of another value keeps it", func(h *handoff) any {
			h.put("k", payload, "v", "", false)
			h.drop("k", "other")
			v, _ := h.take("k", payload)
			return v
		}, true},
		{"full", func(h *handoff) any {
			for i := range maxHandoff {
				h.put(fmt.Sprint(i), payload, i, "", false)
			}
			h.put("k", payload, "v", "", false)
			v, _ := h.take("k", payload)
			return v
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.run(&handoff{})
			if (got != nil) != tt.want {
				t.Errorf("take = %v, want handed off: %v", got, tt.want)
			}
		})
	}
}

// "Not bridged yet" holds from the enqueue until a relay of the same message ID begins.
func TestHandoffUnbridged(t *testing.T) {
	payload := []byte(`{"info":{}}`)
	tests := []struct {
		name string
		run  func(h *handoff)
		want bool
	}{
		{"checked when queued", func(h *handoff) { h.put("k", payload, "v", "ID1", true) }, true},
		{"not checked when queued", func(h *handoff) { h.put("k", payload, "v", "ID1", false) }, false},
		{"a relay of the same message began since", func(h *handoff) {
			h.put("k", payload, "v", "ID1", true)
			h.relayed("ID1")
		}, false},
		{"a relay of another message began since", func(h *handoff) {
			h.put("k", payload, "v", "ID1", true)
			h.relayed("ID2")
		}, true},
		{"another item of the same message was taken, then its relay began", func(h *handoff) {
			h.put("other", payload, "w", "ID1", true)
			h.put("k", payload, "v", "ID1", true)
			h.take("other", payload)
			h.relayed("ID1")
		}, false},
		{"another item of the same message was dropped, then a relay began", func(h *handoff) {
			h.put("other", payload, "w", "ID1", true)
			h.drop("other", "w")
			h.put("k", payload, "v", "ID1", true)
			h.relayed("ID1")
		}, false},
		{"put again under the same key, then a relay began", func(h *handoff) {
			h.put("k", payload, "v", "ID1", true)
			h.put("k", payload, "v", "ID1", true)
			h.relayed("ID1")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &handoff{}
			tt.run(h)
			v, unbridged := h.take("k", payload)
			if v == nil || unbridged != tt.want {
				t.Errorf("take = %v, %v; want the value and unbridged=%v", v, unbridged, tt.want)
			}
		})
	}
}

// The per-message count of unbridged items empties with the items, or a long-running portal
// would grow it by one entry per message.
func TestHandoffUnbridgedCountEmpties(t *testing.T) {
	payload := []byte(`{"info":{}}`)
	h := &handoff{}
	for i := range 10 {
		key, id := fmt.Sprint("k", i), fmt.Sprint("ID", i%3)
		h.put(key, payload, i, id, true)
		h.put(key, payload, i, id, true)
	}
	h.relayed("ID0")
	for i := range 10 {
		key := fmt.Sprint("k", i)
		if i%2 == 0 {
			h.take(key, payload)
		} else {
			h.drop(key, i)
		}
	}
	if len(h.items) != 0 || len(h.unbridged) != 0 {
		t.Fatalf("left behind: %d items, unbridged counts %v", len(h.items), h.unbridged)
	}
}
