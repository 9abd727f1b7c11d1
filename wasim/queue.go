package wasim

import (
	"fmt"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
)

func timeAfter(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }

func attrStr(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// stanzaKey identifies a queued stanza the way the client's <ack> names it (receipt.go sendAck): tag,
// id, from, participant, and the type for everything but messages.
func stanzaKey(node *waBinary.Node) string {
	typ := ""
	if node.Tag != "message" {
		typ = attrStr(node.Attrs["type"])
	}
	return node.Tag + "|" + attrStr(node.Attrs["id"]) + "|" + attrStr(node.Attrs["from"]) + "|" +
		attrStr(node.Attrs["participant"]) + "|" + typ
}

func ackKey(ack *waBinary.Node) string {
	return attrStr(ack.Attrs["class"]) + "|" + attrStr(ack.Attrs["id"]) + "|" + attrStr(ack.Attrs["to"]) + "|" +
		attrStr(ack.Attrs["participant"]) + "|" + attrStr(ack.Attrs["type"])
}

// deliverLocked queues a stanza for one device and sends it if the device is online. The entry stays
// queued until the device acks it, so a connection that dies in between gets it again on reconnect.
func (s *Server) deliverLocked(ref devRef, node waBinary.Node) {
	acct := s.st.Accounts[ref.Phone]
	if acct == nil {
		return
	}
	dev := acct.device(ref.Device)
	if dev == nil {
		return
	}
	data, err := waBinary.Marshal(node)
	if err != nil {
		s.log.Error().Err(err).Str("tag", node.Tag).Msg("Failed to encode stanza for delivery")
		return
	}
	key := stanzaKey(&node)
	replaced := false
	for _, q := range dev.Queue {
		if q.Key == key {
			q.Node = data
			replaced = true
			break
		}
	}
	if !replaced {
		dev.Queue = append(dev.Queue, &queued{Key: key, Tag: node.Tag, Node: data})
	}
	s.transmitLocked(ref, data)
}

// sendEphemeralLocked sends a stanza that is never queued (presence, chat state): if the device is offline
// it is simply lost, as on WhatsApp.
func (s *Server) sendEphemeralLocked(ref devRef, node waBinary.Node) {
	data, err := waBinary.Marshal(node)
	if err != nil {
		s.log.Error().Err(err).Str("tag", node.Tag).Msg("Failed to encode stanza")
		return
	}
	s.transmitLocked(ref, data)
}

func (s *Server) transmitLocked(ref devRef, data []byte) {
	c := s.conns[ref]
	if c == nil {
		return
	}
	if f := s.faults[ref]; f != nil {
		if f.dropDelivery {
			s.log.Debug().Str("device", ref.String()).Msg("Dropping delivery (injected fault)")
			return
		}
		if f.delay > 0 {
			time.AfterFunc(f.delay, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.conns[ref] == c {
					c.sendRaw(data)
				}
			})
			return
		}
	}
	c.sendRaw(data)
}

// replayQueueLocked sends every unacknowledged stanza to a freshly logged-in device, announced by an
// offline_preview with per-class counts as WhatsApp does.
func (s *Server) replayQueueLocked(c *conn, dev *device) int {
	if f := s.faults[c.dev]; f != nil && f.dropDelivery {
		return 0
	}
	counts := map[string]int{}
	for _, q := range dev.Queue {
		counts[q.Tag]++
	}
	c.send(waBinary.Node{Tag: "ib", Content: []waBinary.Node{{Tag: "offline_preview", Attrs: waBinary.Attrs{
		"count": len(dev.Queue), "message": counts["message"], "notification": counts["notification"],
		"receipt": counts["receipt"], "appdata": 0, "call": counts["call"],
	}}}})
	for _, q := range dev.Queue {
		c.sendRaw(q.Node)
	}
	return len(dev.Queue)
}

// handleClientAck removes an acknowledged stanza from the device's queue. Negative acks (an error
// attribute) are recorded: they mean the client could not handle what the simulator sent.
func (s *Server) handleClientAck(c *conn, node *waBinary.Node) {
	key := ackKey(node)
	s.mu.Lock()
	defer s.mu.Unlock()
	// loggedIn is cleared under the lock when the server logs a device out.
	if !c.loggedIn {
		return
	}
	if errCode := attrStr(node.Attrs["error"]); errCode != "" {
		s.nacks = append(s.nacks, Nack{Device: c.dev.String(), Class: attrStr(node.Attrs["class"]),
			ID: attrStr(node.Attrs["id"]), Error: errCode})
		c.log.Warn().Str("class", attrStr(node.Attrs["class"])).Str("id", attrStr(node.Attrs["id"])).
			Str("error", errCode).Msg("Client rejected a stanza")
	}
	if !s.dequeueLocked(c.dev, key) {
		c.log.Debug().Str("key", key).Msg("Ack for a stanza that is not queued")
	}
}

func (s *Server) dequeueLocked(ref devRef, key string) bool {
	acct := s.st.Accounts[ref.Phone]
	if acct == nil {
		return false
	}
	dev := acct.device(ref.Device)
	if dev == nil {
		return false
	}
	for i, q := range dev.Queue {
		if q.Key == key {
			dev.Queue = append(dev.Queue[:i], dev.Queue[i+1:]...)
			return true
		}
	}
	return false
}

// receiptAcksLocked treats a receipt as the acknowledgement of the messages it names: whatsmeow sends
// no <ack> for a message it decrypted, its delivery receipt is the ack.
func (s *Server) receiptAcksLocked(ref devRef, node *waBinary.Node) {
	suffix := "|" + attrStr(node.Attrs["to"]) + "|" + attrStr(node.Attrs["participant"]) + "|"
	s.dequeueLocked(ref, "message|"+attrStr(node.Attrs["id"])+suffix)
	if list, ok := node.GetOptionalChildByTag("list"); ok {
		for _, item := range list.GetChildren() {
			s.dequeueLocked(ref, "message|"+attrStr(item.Attrs["id"])+suffix)
		}
	}
}

// Nack is a negative acknowledgement a client sent for a stanza it could not handle.
type Nack struct {
	Device string
	Class  string
	ID     string
	Error  string
}

// Nacks returns the negative acks clients have sent so far; tests assert it stays empty.
func (s *Server) Nacks() []Nack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Nack(nil), s.nacks...)
}

// QueueLength is the number of stanzas waiting for a device's ack.
func (s *Server) queueLength(ref devRef) int {
	acct := s.st.Accounts[ref.Phone]
	if acct == nil || acct.device(ref.Device) == nil {
		return 0
	}
	return len(acct.device(ref.Device).Queue)
}
