package importcmd

import (
	"testing"

	"codeberg.org/causeway/causeway/config"
)

func TestBridgeURL(t *testing.T) {
	tests := []struct{ hostname, want string }{
		{"127.0.0.1", "http://127.0.0.1:29318"},
		{"0.0.0.0", "http://127.0.0.1:29318"},
		{"::", "http://127.0.0.1:29318"},
		{"", "http://127.0.0.1:29318"},
		{"::1", "http://[::1]:29318"},
		{"bridge.internal", "http://bridge.internal:29318"},
	}
	for _, tt := range tests {
		cfg := &config.Config{Appservice: config.Appservice{Hostname: tt.hostname, Port: 29318}}
		if got := BridgeURL(cfg); got != tt.want {
			t.Errorf("BridgeURL(hostname %q) = %q, want %q", tt.hostname, got, tt.want)
		}
	}
}
