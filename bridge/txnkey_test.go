package bridge

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/appservice"
)

// TestRetriedTransactionWithMoreEvents: Dendrite retries a transaction under the same ID with
// the events that arrived meanwhile appended. An identical retry is skipped; the longer one
// is handled.
func TestRetriedTransactionWithMoreEvents(t *testing.T) {
	const hsToken = "hs-secret"
	as := appservice.Create()
	as.Registration = &appservice.Registration{ServerToken: hsToken}
	b := &Bridge{as: as, log: zerolog.New(zerolog.NewTestWriter(t)), txns: newTxnDedup(16), stopping: make(chan struct{})}
	// An unparseable event is skipped, which keeps this test away from portals and the
	// database; only whether the transaction was handled matters.
	one := `{"events":[{"event_id":1}]}`
	two := `{"events":[{"event_id":1},{"event_id":2}]}`
	for _, tt := range []struct {
		name, body string
		handled    bool
	}{
		{"first attempt", one, true},
		{"identical retry", one, false},
		{"retry with an event appended", two, true},
		{"identical retry of that", two, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := transactionKey("1796593051379533557", []byte(tt.body))
			if got := !b.txns.seen(key); got != tt.handled {
				t.Fatalf("handled = %v, want %v", got, tt.handled)
			}
			req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/1796593051379533557", bytes.NewBufferString(tt.body))
			req.SetPathValue("txnID", "1796593051379533557")
			req.Header.Set("Authorization", "Bearer "+hsToken)
			rec := httptest.NewRecorder()
			b.handleTransaction(rec, req.WithContext(context.Background()))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if !b.txns.seen(key) {
				t.Fatal("the transaction is not remembered as done")
			}
		})
	}
}
