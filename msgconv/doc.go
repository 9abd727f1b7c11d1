// Package msgconv is the translation core between WhatsApp messages (whatsmeow's waE2E protobufs) and
// Matrix event content.
//
// It is pure on purpose: the relay path must be testable and benchmarkable without a bridge around it.
// Anything it needs to know comes in through the small interfaces in resolver.go; anything that must happen
// afterwards (download or upload media, redact an event, encrypt a poll vote, change a room's disappearing
// timer) comes back as data in the result for the portal to carry out. It never logs: it returns errors.
//
// The hot paths (plain text, replies, mentions, formatting, reactions, edits) scan their input once, skip
// markup handling when the text has no markup rune, build typed content structs that encoding/json
// marshals without reflection-heavy merging, and decode each Matrix event once.
package msgconv
