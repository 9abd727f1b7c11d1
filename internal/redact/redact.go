// Package redact keeps WhatsApp phone numbers out of the bridge's logs (logging.redact_numbers).
//
// A number is replaced by a short keyed hash: the same number gives the same hash in every
// line, so an operator can still follow one chat through the log, and the key (the
// appservice as_token) keeps someone who has the log but not the config from hashing
// candidate numbers to find a person: phone numbers are few enough to try them all.
package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"codeberg.org/causeway/causeway/config"
)

// Numbers redacts phone numbers for logging. The zero value redacts nothing.
type Numbers struct {
	key []byte
	on  bool
}

// ForConfig redacts as logging.redact_numbers says, keyed with appservice.as_token.
func ForConfig(cfg *config.Config) Numbers {
	if cfg == nil {
		return Numbers{}
	}
	return Numbers{on: cfg.Logging.RedactNumbers, key: []byte(cfg.Appservice.ASToken)}
}

// personal reports whether the user part of a JID on server identifies a person: a phone
// number, or a LID, which WhatsApp maps to one.
func personal(server string) bool {
	switch server {
	case "s.whatsapp.net", "lid", "c.us", "hosted", "hosted.lid":
		return true
	}
	return false
}

// JID returns jid for a log line: with the user part hashed when it is a person's, kept
// whole for groups, broadcasts and newsletters. The device suffix (":12") stays: it tells
// a user's devices apart without saying who the user is.
func (n Numbers) JID(jid string) string {
	if !n.on {
		return jid
	}
	user, server, ok := strings.Cut(jid, "@")
	if !ok {
		return n.Number(jid)
	}
	if !personal(server) {
		return jid
	}
	number, device := user, ""
	if i := strings.IndexAny(user, ".:"); i >= 0 {
		number, device = user[:i], user[i:]
	}
	return n.hash(number) + device + "@" + server
}

// Number returns a bare phone number ("+4917612345678") for a log line.
func (n Numbers) Number(number string) string {
	if !n.on || number == "" {
		return number
	}
	return n.hash(strings.TrimPrefix(number, "+"))
}

func (n Numbers) hash(number string) string {
	mac := hmac.New(sha256.New, n.key)
	mac.Write([]byte(number))
	return "#" + hex.EncodeToString(mac.Sum(nil)[:5])
}
