package portal

import (
	"bytes"
	"sync"
)

// maxHandoff bounds the decoded items a portal keeps for its queue: a queue far behind
// decodes the rest from their payloads.
const maxHandoff = 256

// handoff passes items from Enqueue to the queue goroutine as their producer had them,
// keyed by dedup key (unique among a portal's queued items of one direction), so that the
// queue skips decoding the payload it just stored. Decoding the JSON of a WhatsApp message
// (its MessageInfo) cost about as much as the archive entry for it. Items queued before a
// restart, retried, or beyond maxHandoff are decoded from the database as before. An
// item is only handed off for the very payload it was encoded to, so a row queued by
// another delivery under the same key is always decoded from its own payload.
//
// A handed-off WhatsApp message can also carry what the queue would otherwise look up: that
// it was not bridged yet (unbridged). Enqueue knows it when the message's relay was neither
// under way nor waiting for its commit (Portal.relaying) and the insert itself checked the
// committed mappings (QueueItem.NotIfBridged). A relay of the same message ID that starts
// after that (relayed) withdraws it.
type handoff struct {
	mu    sync.Mutex
	items map[string]handedOff
	// unbridged counts the items marked unbridged per message ID, so that relayed, called for
	// every relayed message, looks through the items only when one of them is affected.
	unbridged map[string]int
}

type handedOff struct {
	payload   []byte
	v         any
	waID      string
	unbridged bool
}

func (h *handoff) put(key string, payload []byte, v any, waID string, unbridged bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.items == nil {
		h.items = make(map[string]handedOff)
		h.unbridged = make(map[string]int)
	}
	if _, ok := h.items[key]; ok {
		h.remove(key)
	}
	if len(h.items) < maxHandoff {
		h.items[key] = handedOff{payload, v, waID, unbridged}
		if unbridged {
			h.unbridged[waID]++
		}
	}
}

// remove forgets key, which must be present; h.mu is held.
func (h *handoff) remove(key string) {
	if it := h.items[key]; it.unbridged {
		h.unbridgedDone(it.waID)
	}
	delete(h.items, key)
}

func (h *handoff) unbridgedDone(waID string) {
	if h.unbridged[waID]--; h.unbridged[waID] <= 0 {
		delete(h.unbridged, waID)
	}
}

// relayed withdraws "not bridged yet" from the items of WhatsApp message waID.
func (h *handoff) relayed(waID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.unbridged[waID] == 0 {
		return
	}
	delete(h.unbridged, waID)
	for k, it := range h.items {
		if it.waID == waID && it.unbridged {
			it.unbridged = false
			h.items[k] = it
		}
	}
}

// drop forgets key if it still holds v.
func (h *handoff) drop(key string, v any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.items[key]; ok && cur.v == v {
		h.remove(key)
	}
}

// take returns and forgets what was put under key if it was encoded to payload, else nil,
// and whether the message is known not to be bridged yet.
func (h *handoff) take(key string, payload []byte) (v any, unbridged bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur, ok := h.items[key]
	if !ok {
		return nil, false
	}
	h.remove(key)
	if !bytes.Equal(cur.payload, payload) {
		return nil, false
	}
	return cur.v, cur.unbridged
}
