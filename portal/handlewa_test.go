package portal

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
)

func TestEventTime(t *testing.T) {
	sent := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name     string
		received time.Time
		want     time.Time
	}{
		{"arrived within its second", sent.Add(734 * time.Millisecond), sent.Add(734 * time.Millisecond)},
		{"arrived at the start of its second", sent, sent},
		{"arrived a second later", sent.Add(1200 * time.Millisecond), sent},
		{"arrived after an outage", sent.Add(time.Hour), sent},
		{"our clock behind WhatsApp's", sent.Add(-30 * time.Millisecond), sent},
		{"not live (history, before this field)", time.Time{}, sent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wm := &WAMessage{Info: types.MessageInfo{Timestamp: sent}, ReceivedAt: tt.received}
			if got := eventTime(wm); !got.Equal(tt.want) {
				t.Errorf("eventTime = %s, want %s", got.Format(time.StampMilli), tt.want.Format(time.StampMilli))
			}
		})
	}
}
