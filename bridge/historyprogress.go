package bridge

import (
	"context"
	"encoding/json"
	"fmt"

	"go.mau.fi/whatsmeow"
)

// historyProgress is what the history limits have counted for one linked device, kept in
// the database so a restart in the middle of a sync goes on counting instead of starting
// the chat and message limits afresh.
type historyProgress struct {
	Admitted []string       `json:"admitted"`
	Queued   map[string]int `json:"queued"`
}

// historyProgressKey is per device: linking the phone again brings a new history sync.
func historyProgressKey(cli *whatsmeow.Client) string {
	if cli.Store.ID == nil {
		return ""
	}
	return "history_progress:" + cli.Store.ID.String()
}

// loadHistoryProgress fills the limits' counters from the database once per login.
func (u *User) loadHistoryProgress(ctx context.Context, cli *whatsmeow.Client) error {
	h := &u.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	key := historyProgressKey(cli)
	if h.loadedFor == key {
		return nil
	}
	h.admitted, h.queued = map[string]bool{}, map[string]int{}
	raw, err := u.b.db.KV.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("failed to read the history progress: %w", err)
	}
	if raw != "" {
		var p historyProgress
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return fmt.Errorf("stored history progress is corrupt: %w", err)
		}
		for _, chat := range p.Admitted {
			h.admitted[chat] = true
		}
		for chat, n := range p.Queued {
			h.queued[chat] = n
		}
	}
	h.loadedFor = key
	return nil
}

// saveHistoryProgress stores the counters after a chunk is queued.
func (u *User) saveHistoryProgress(ctx context.Context, cli *whatsmeow.Client) error {
	h := &u.hist
	h.mu.Lock()
	p := historyProgress{Queued: make(map[string]int, len(h.queued))}
	for chat := range h.admitted {
		p.Admitted = append(p.Admitted, chat)
	}
	for chat, n := range h.queued {
		p.Queued[chat] = n
	}
	h.mu.Unlock()
	raw, err := json.Marshal(&p)
	if err != nil {
		return err
	}
	if err := u.b.db.KV.Set(ctx, historyProgressKey(cli), string(raw)); err != nil {
		return fmt.Errorf("failed to save the history progress: %w", err)
	}
	return nil
}
