package msgconv

import (
	"strings"
	"testing"
)

func TestIsEmoji(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"👍", true},
		{"👍\ufe0f", true},
		{"❤️", true},
		{"❤", true},
		{"👍🏽", true},      // skin tone
		{"👨‍👩‍👧‍👦", true}, // family: zero-width joiners
		{"🏳️‍🌈", true},    // rainbow flag
		{"🇪🇺", true},      // regional indicators
		{"🏴󠁧󠁢󠁳󠁣󠁴󠁿", true}, // Scotland: tag sequence
		{"1️⃣", true},     // keycap
		{"#⃣", true},      // keycap without selector
		{"‼️", true},      // filed as punctuation
		{"ℹ️", true},      // filed as a letter
		{"", false},       // a removal, not a reaction
		{"+1", false},     // Matrix clients allow text
		{"ok", false},
		{"1", false},      // a digit without its keycap
		{"👍 ", false},     // trailing space
		{"\ufe0f", false}, // a selector alone
		{"\u200d", false}, // a joiner alone
		{strings.Repeat("a", 300), false},
		{strings.Repeat("👍", 20), false}, // over maxReactionBytes
		{"\xff", false},
	}
	for _, tt := range tests {
		if got := isEmoji(tt.key); got != tt.want {
			t.Errorf("isEmoji(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}
