package config

import "time"

// Encryption configures end-to-end encrypted portals (Megolm, through the bridge bot's own
// device).
type Encryption struct {
	// Allow lets the bridge join and work in encrypted rooms. Off, encrypted events are
	// recorded as not relayed and their sender told why.
	Allow bool `yaml:"allow"`
	// Default creates new portals (and management rooms) encrypted. Needs Allow.
	Default bool `yaml:"default"`
	// Require never sends plaintext into a portal, and relays nothing a Matrix user sent in
	// plaintext but reactions and redactions (which Element never encrypts). Needs Default.
	Require bool `yaml:"require"`
	// ShareWith is which Matrix devices get the bridge's room keys: all, or
	// cross_signed_only (devices their owner signed).
	ShareWith string `yaml:"share_with"`
	// KeyWait bounds how long an event the bridge cannot decrypt yet waits for its key
	// before the room is told it was not relayed.
	KeyWait  string             `yaml:"key_wait"`
	Rotation EncryptionRotation `yaml:"rotation"`
	// History is how much of a portal's history the bridge can give its owner's new devices.
	History EncryptionHistory `yaml:"history"`
}

// EncryptionHistory bounds the first keys the bridge keeps of the Megolm sessions it made in
// portals: a new device of a portal's owner (share_with deciding which) is sent them, so an
// official who lost their keys reads the portal's WhatsApp history again.
type EncryptionHistory struct {
	// Sessions is how many of a portal's latest sessions are kept; 0 keeps none (new
	// devices then get history only by asking for it, which Element does not do).
	Sessions int `yaml:"sessions"`
	// MaxAge forgets sessions older than this.
	MaxAge string `yaml:"max_age"`
}

// MaxAgeDuration is MaxAge parsed (validated at load).
func (h EncryptionHistory) MaxAgeDuration() time.Duration {
	d, _ := time.ParseDuration(h.MaxAge)
	return d
}

// EncryptionRotation is when the bridge starts a new outbound Megolm session in a room. A
// member leaving or joining, or adding or removing a device, always starts one, and so does a
// restart (e2ee keeps the sessions it encrypts with in memory).
type EncryptionRotation struct {
	Messages int    `yaml:"messages"`
	Age      string `yaml:"age"`
}

// Who the bridge shares room keys with (Encryption.ShareWith).
const (
	ShareWithAll             = "all"
	ShareWithCrossSignedOnly = "cross_signed_only"
)

// KeyWaitDuration is KeyWait parsed (validated at load).
func (e Encryption) KeyWaitDuration() time.Duration {
	d, _ := time.ParseDuration(e.KeyWait)
	return d
}

// AgeDuration is Age parsed (validated at load).
func (r EncryptionRotation) AgeDuration() time.Duration {
	d, _ := time.ParseDuration(r.Age)
	return d
}

func (e Encryption) validate(bad func(path, format string, args ...any)) {
	if e.Default && !e.Allow {
		bad("encryption.default", "needs encryption.allow: the bridge cannot create rooms it could not read")
	}
	if e.Require && !e.Default {
		bad("encryption.require", "needs encryption.default: a required-encryption bridge must create its portals encrypted")
	}
	if e.ShareWith != ShareWithAll && e.ShareWith != ShareWithCrossSignedOnly {
		bad("encryption.share_with", "%q is not one of %s, %s", e.ShareWith, ShareWithAll, ShareWithCrossSignedOnly)
	}
	if d, err := time.ParseDuration(e.KeyWait); err != nil || d <= 0 {
		bad("encryption.key_wait", "%q is not a positive duration such as 1m", e.KeyWait)
	}
	if e.Rotation.Messages < 1 {
		bad("encryption.rotation.messages", "%d must be at least 1", e.Rotation.Messages)
	}
	if d, err := time.ParseDuration(e.Rotation.Age); err != nil || d <= 0 {
		bad("encryption.rotation.age", "%q is not a positive duration such as 168h", e.Rotation.Age)
	}
	if e.History.Sessions < 0 || e.History.Sessions > maxHistorySessions {
		bad("encryption.history.sessions", "%d is not between 0 and %d", e.History.Sessions, maxHistorySessions)
	}
	if d, err := time.ParseDuration(e.History.MaxAge); err != nil || d <= 0 {
		bad("encryption.history.max_age", "%q is not a positive duration such as 8760h", e.History.MaxAge)
	}
}

// maxHistorySessions bounds encryption.history.sessions: the keys of every portal of a
// user go to each new device of theirs.
const maxHistorySessions = 1000
