package msgconv

import (
	"unicode"
	"unicode/utf8"
)

// maxReactionBytes bounds a reaction key. The longest emoji sequences (families with skin
// tones, subdivision flags) take about 35 bytes.
const maxReactionBytes = 64

// emojiPunctuation are the emoji that Unicode files as punctuation or letters.
var emojiPunctuation = map[rune]bool{
	'\u203c': true, // ‼
	'\u2049': true, // ⁉
	'\u2139': true, // ℹ
	'\u3030': true, // 〰
	'\u303d': true, // 〽
}

// isEmoji tells an emoji, the only reaction WhatsApp has, from text that Matrix clients let
// users put in a reaction key ("+1", a sentence). Go's unicode tables have no emoji
// property, so it goes by what emoji are made of: symbols (pictographs, flags' regional
// indicators, dingbats), joined and modified by zero-width joiners, variation selectors,
// skin tones, keycap marks and tag characters; letters, digits outside keycaps, ASCII
// punctuation and spaces make it text.
func isEmoji(s string) bool {
	if s == "" || len(s) > maxReactionBytes || !utf8.ValidString(s) {
		return false
	}
	rs := []rune(s)
	hasBase := false
	for i, r := range rs {
		switch {
		case r == '\u200d', r == '\ufe0e', r == '\ufe0f', r == '\u20e3',
			r >= 0x1f3fb && r <= 0x1f3ff, r >= 0xe0020 && r <= 0xe007f:
			// joiner, presentation selectors, keycap mark, skin tones, tags: parts of an emoji
		case r == '#' || r == '*' || (r >= '0' && r <= '9'):
			if !keycapFollows(rs[i+1:]) {
				return false
			}
			hasBase = true
		case r < 0x80:
			return false
		case unicode.In(r, unicode.So, unicode.Sm, unicode.Sk), emojiPunctuation[r]:
			hasBase = true
		default:
			return false
		}
	}
	return hasBase
}

// keycapFollows says whether rest starts with a keycap mark, after an optional selector.
func keycapFollows(rest []rune) bool {
	if len(rest) > 0 && rest[0] == '\ufe0f' {
		rest = rest[1:]
	}
	return len(rest) > 0 && rest[0] == '\u20e3'
}
