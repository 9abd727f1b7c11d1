package bridge

import (
	"context"
	"time"
)

// expireWaitingRedactions looks, a few times per bridge.redaction_wait, for deletions still
// waiting for the message they delete (portal/redactionwait.go) past that bound. The wait is
// counted from when a deletion was parked, in the database, so it survives restarts.
func (b *Bridge) expireWaitingRedactions(ctx context.Context) {
	wait := b.cfg.Bridge.RedactionWaitDuration()
	every(ctx, min(max(wait/4, 100*time.Millisecond), 30*time.Second), func() {
		if err := b.portals.ExpireWaitingRedactions(ctx, time.Now().Add(-wait)); err != nil && ctx.Err() == nil {
			b.log.Err(err).Msg("Failed to look for deletions still waiting for their message")
		}
	})
}
