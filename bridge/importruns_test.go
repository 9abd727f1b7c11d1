package bridge

import (
	"context"
	"errors"
	"testing"

	"codeberg.org/causeway/causeway/database"
)

func TestImportCancel(t *testing.T) {
	var runs importRuns
	key := database.PortalKey{ChatJID: "4915550002@s.whatsapp.net", Receiver: "@alice:test"}
	other := database.PortalKey{ChatJID: "4915550003@s.whatsapp.net", Receiver: "@alice:test"}
	if runs.cancel(key) {
		t.Fatal("cancelled an import that was not running")
	}
	ctx, done := runs.start(context.Background(), key)
	if runs.cancel(other) {
		t.Fatal("cancelled the import of another chat")
	}
	if ctx.Err() != nil {
		t.Fatal("the import ended before anyone cancelled it")
	}
	if !runs.cancel(key) {
		t.Fatal("the running import was not found")
	}
	if !errors.Is(context.Cause(ctx), errImportCancelled) {
		t.Fatalf("cause %v, want the user's cancellation", context.Cause(ctx))
	}
	done()
	if runs.cancel(key) {
		t.Fatal("a finished import could still be cancelled")
	}
}
