package config

import (
	"strings"
	"testing"
	"time"
)

func TestEncryptionConfig(t *testing.T) {
	def := Default()
	if def.Encryption.Allow || def.Encryption.Default || def.Encryption.Require {
		t.Errorf("encryption is on by default: %+v", def.Encryption)
	}
	if got := def.Encryption.KeyWaitDuration(); got != time.Minute {
		t.Errorf("encryption.key_wait defaults to %v, want 1m", got)
	}
	if def.Encryption.ShareWith != ShareWithAll || def.Encryption.Rotation.Messages != 100 || def.Encryption.Rotation.AgeDuration() != 168*time.Hour {
		t.Errorf("encryption defaults: %+v", def.Encryption)
	}
	if def.Encryption.History.Sessions != 50 || def.Encryption.History.MaxAgeDuration() != 8760*time.Hour {
		t.Errorf("encryption.history defaults: %+v", def.Encryption.History)
	}

	on := []string{"    allow: false", "    allow: true", "    default: false", "    default: true", "    require: false", "    require: true"}
	if cfg, err := Parse([]byte(exampleWith(t, on...))); err != nil || !cfg.Encryption.Require {
		t.Fatalf("allow+default+require: %v (%+v)", err, cfg)
	}
	tests := []struct {
		name    string
		replace []string
		want    string
	}{
		{"default without allow", []string{"    default: false", "    default: true"}, "encryption.default: needs encryption.allow"},
		{"require without default", []string{"    allow: false", "    allow: true", "    require: false", "    require: true"}, "encryption.require: needs encryption.default"},
		{"share with", []string{"share_with: all", "share_with: friends"}, `encryption.share_with: "friends" is not one of all, cross_signed_only`},
		{"key wait", []string{"key_wait: 1m", "key_wait: never"}, `encryption.key_wait: "never" is not a positive duration`},
		{"key wait zero", []string{"key_wait: 1m", "key_wait: 0s"}, `encryption.key_wait: "0s" is not a positive duration`},
		{"rotation messages", []string{"        messages: 100", "        messages: 0"}, "encryption.rotation.messages: 0 must be at least 1"},
		{"rotation age", []string{"age: 168h", "age: -1h"}, `encryption.rotation.age: "-1h" is not a positive duration`},
		{"history sessions", []string{"sessions: 50", "sessions: -1"}, "encryption.history.sessions: -1 is not between 0 and 1000"},
		{"history sessions too many", []string{"sessions: 50", "sessions: 5000"}, "encryption.history.sessions: 5000 is not between 0 and 1000"},
		{"history max age", []string{"max_age: 8760h", "max_age: forever"}, `encryption.history.max_age: "forever" is not a positive duration`},
		{"unknown key", []string{"    key_wait: 1m", "    key_wait: 1m\n    appservice: true"}, "encryption.appservice: unknown key"},
		{"allow not a bool", []string{"    allow: false", "    allow: sometimes"}, "encryption.allow:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(exampleWith(t, tt.replace...)))
			if err == nil {
				t.Fatalf("accepted a bad config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
