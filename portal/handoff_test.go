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
			h.put("k", payload, "v")
			return h.take("k", payload)
		}, true},
		{"payload of another delivery", func(h *handoff) any {
			h.put("k", payload, "v")
			return h.take("k", []byte(`{"info":{"PushName":"x"}}`))
		}, false},
		{"taken once", func(h *handoff) any {
			h.put("k", payload, "v")
			h.take("k", payload)
			return h.take("k", payload)
		}, false},
		{"dropped duplicate", func(h *handoff) any {
			h.put("k", payload, "v")
			h.drop("k", "v")
			return h.take("k", payload)
		}, false},
		{"drop of another value keeps it", func(h *handoff) any {
			h.put("k", payload, "v")
			h.drop("k", "other")
			return h.take("k", payload)
		}, true},
		{"full", func(h *handoff) any {
			for i := range maxHandoff {
				h.put(fmt.Sprint(i), payload, i)
			}
			h.put("k", payload, "v")
			return h.take("k", payload)
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
