package redact

import (
	"strings"
	"testing"

	"codeberg.org/causeway/causeway/config"
)

func TestNumbers(t *testing.T) {
	on := ForConfig(&config.Config{Logging: config.Logging{RedactNumbers: true}, Appservice: config.Appservice{ASToken: "key-1"}})
	otherKey := ForConfig(&config.Config{Logging: config.Logging{RedactNumbers: true}, Appservice: config.Appservice{ASToken: "key-2"}})
	off := ForConfig(&config.Config{Appservice: config.Appservice{ASToken: "key-1"}})
	tests := []struct {
		name, in   string
		keep       string // what must survive
		redacted   bool
		sameHashAs string // another spelling of the same number
	}{
		{"phone JID", "4917612345678@s.whatsapp.net", "@s.whatsapp.net", true, "+4917612345678"},
		{"device JID", "4917612345678:12@s.whatsapp.net", ":12@s.whatsapp.net", true, "4917612345678@s.whatsapp.net"},
		{"agent and device", "4917612345678.1:3@s.whatsapp.net", ".1:3@s.whatsapp.net", true, ""},
		{"LID", "123456789012345@lid", "@lid", true, ""},
		{"bare number", "+4917612345678", "", true, "4917612345678@s.whatsapp.net"},
		{"group", "120363000000000001@g.us", "120363000000000001@g.us", false, ""},
		{"status broadcast", "status@broadcast", "status@broadcast", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := on.JID(tt.in)
			if !strings.Contains(got, tt.keep) {
				t.Errorf("JID(%q) = %q lost %q", tt.in, got, tt.keep)
			}
			number := strings.TrimPrefix(strings.Split(strings.Split(tt.in, "@")[0], ":")[0], "+")
			if leaked := strings.Contains(got, number); leaked == tt.redacted {
				t.Errorf("JID(%q) = %q, redacted %v, want %v", tt.in, got, !leaked, tt.redacted)
			}
			if tt.sameHashAs != "" {
				hash := func(s string) string {
					return strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '@' || r == '.' })[0]
				}
				if hash(got) != hash(on.JID(tt.sameHashAs)) {
					t.Errorf("%q and %q hash differently: %q, %q", tt.in, tt.sameHashAs, got, on.JID(tt.sameHashAs))
				}
			}
			if tt.redacted && otherKey.JID(tt.in) == got {
				t.Errorf("the hash of %q does not depend on the key", tt.in)
			}
			if off.JID(tt.in) != tt.in {
				t.Errorf("with redact_numbers off, JID(%q) = %q", tt.in, off.JID(tt.in))
			}
		})
	}
}
