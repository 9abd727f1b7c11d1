package gcdefault

import (
	"runtime/debug"
	"testing"
)

func TestSet(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	tests := []struct {
		name string
		gogc string
		want int
	}{
		{"GOGC=50 in the environment wins", "50", 100},
		{"no GOGC", "", Percent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			Set(func(string) string { return tt.gogc })
			if got := debug.SetGCPercent(100); got != tt.want {
				t.Errorf("GC percent %d, want %d", got, tt.want)
			}
		})
	}
}
