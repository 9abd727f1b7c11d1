package bridge

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/appservice"
)

// TestSlowRequestBody sends transactions with the right hs_token over a raw connection, at
// different paces, to the real transaction handler behind the listener's body pace.
func TestSlowRequestBody(t *testing.T) {
	const hsToken = "hs-secret"
	as := appservice.Create()
	as.Registration = &appservice.Registration{ServerToken: hsToken}
	b := &Bridge{as: as, log: zerolog.New(zerolog.NewTestWriter(t)), txns: newTxnDedup(16), stopping: make(chan struct{})}
	pace := bodyPace{idle: 300 * time.Millisecond, grace: 500 * time.Millisecond, minRate: 1000}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /_matrix/app/v1/transactions/{txnID}", b.handleTransaction)
	srv := httptest.NewServer(pace.guard(mux))
	t.Cleanup(srv.Close)

	body := `{"events":[]}` + strings.Repeat(" ", 2987) // 3000 bytes of valid JSON
	tests := []struct {
		name       string
		chunk      int           // bytes per write
		every      time.Duration // between writes
		stopAfter  int           // stop sending after this many bytes (0: send everything)
		wantStatus int
	}{
		{"steady upload slower than the grace period", 200, 100 * time.Millisecond, 0, http.StatusOK},
		{"trickle below the minimum rate", 1, 50 * time.Millisecond, 0, http.StatusRequestTimeout},
		{"stalls after a burst", 1000, 0, 1000, http.StatusRequestTimeout},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Far beyond what the pace allows: the server, not this, must end a slow body.
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(conn, "PUT /_matrix/app/v1/transactions/pace-%d HTTP/1.1\r\nHost: bridge\r\n"+
				"Authorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", i, hsToken, len(body))
			go func() {
				sent := 0
				for sent < len(body) && (tt.stopAfter == 0 || sent < tt.stopAfter) {
					n := min(tt.chunk, len(body)-sent)
					if _, err := conn.Write([]byte(body[sent : sent+n])); err != nil {
						return // the server gave up and closed
					}
					sent += n
					time.Sleep(tt.every)
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer before the client's own deadline: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}
}
