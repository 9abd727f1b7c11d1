package bridge

import (
	"context"
	"sync"

	"go.mau.fi/whatsmeow/types"
)

// avatarRefresher fetches contacts' profile pictures one at a time, off whatsmeow's event
// loop: an address-book sync names hundreds of contacts at once, and each picture is a
// round trip to WhatsApp that must not hold up messages.
type avatarRefresher struct {
	mu      sync.Mutex
	pending map[types.JID]struct{}
	order   []types.JID
	running bool
}

// refreshAvatar queues jid's picture for a refresh; a contact already queued is not
// queued twice.
func (u *User) refreshAvatar(ctx context.Context, jid types.JID) {
	r := &u.avatars
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[jid]; ok {
		return
	}
	if r.pending == nil {
		r.pending = map[types.JID]struct{}{}
	}
	r.pending[jid] = struct{}{}
	r.order = append(r.order, jid)
	if !r.running {
		r.running = u.b.jobs.Go(context.WithoutCancel(ctx), "avatar refresh", u.drainAvatars)
	}
}

func (u *User) drainAvatars(ctx context.Context) {
	r := &u.avatars
	for {
		r.mu.Lock()
		if len(r.order) == 0 || ctx.Err() != nil {
			// Stopping leaves the rest queued in memory only: the next address-book sync names them again.
			r.running = false
			r.mu.Unlock()
			return
		}
		jid := r.order[0]
		r.order = r.order[1:]
		delete(r.pending, jid)
		r.mu.Unlock()
		u.updatePuppetAvatar(ctx, jid)
	}
}
