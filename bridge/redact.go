package bridge

import "codeberg.org/causeway/causeway/internal/redact"

// logJID is a WhatsApp JID as log lines show it: with logging.redact_numbers, a person's
// number is a keyed hash (see package redact).
func (b *Bridge) logJID(jid string) string {
	return redact.ForConfig(b.cfg).JID(jid)
}
