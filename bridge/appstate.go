package bridge

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
)

// resyncAfterKeyShare fetches every app-state collection again once the phone's shared keys
// are stored. whatsmeow does this itself only for collections never synced: a patch that
// arrived before its key (the address book, right after linking) failed to decode and would
// otherwise wait for the next change to that collection, leaving contacts unnamed.
func (u *User) resyncAfterKeyShare(ctx context.Context, cli *whatsmeow.Client, share *waE2E.AppStateSyncKeyShare) {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for _, key := range share.GetKeys() {
		// whatsmeow stores the keys on its own goroutine.
		for {
			stored, err := cli.Store.AppStateKeys.GetAppStateSyncKey(ctx, key.GetKeyID().GetKeyID())
			if err == nil && stored != nil {
				break
			}
			if time.Now().After(deadline) {
				u.log.Warn().Msg("Shared app-state keys were not stored in time; not resyncing")
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, name := range appstate.AllPatchNames {
		if err := cli.FetchAppState(ctx, name, false, false); err != nil {
			u.log.Warn().Err(err).Str("collection", string(name)).Msg("Failed to resync app state after a key share")
		}
	}
}
