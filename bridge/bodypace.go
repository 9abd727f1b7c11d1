package bridge

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"maunium.net/go/mautrix"
)

// bodyPace is how slowly a request body may arrive. A client with a valid token that
// trickles its body in would otherwise hold a connection and a handler open for as long as
// it likes. A fixed total would cut off a legitimate import of a large export over a slow
// uplink, so the limit is a pace instead: no gap between reads longer than idle, and after
// grace at least minRate bytes a second on average since the body began.
type bodyPace struct {
	idle    time.Duration
	grace   time.Duration
	minRate int64 // bytes per second
}

// defaultBodyPace is the pace of the appservice listener. 16 KiB/s (128 kbit/s) is below
// any uplink an operator imports over; at that rate the largest transaction (64 MiB) takes
// an hour, so a client can hold a connection that long only by actually sending.
func defaultBodyPace() bodyPace {
	return bodyPace{idle: 30 * time.Second, grace: 30 * time.Second, minRate: 16 << 10}
}

// errSlowBody is a request body that did not keep to the pace.
var errSlowBody = errors.New("the request body arrived too slowly")

// guard makes every request body next reads keep to the pace.
func (p bodyPace) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := &pacedBody{body: r.Body, rc: http.NewResponseController(w), pace: p}
		defer body.release()
		r.Body = body
		next.ServeHTTP(w, r)
	})
}

// pacedBody moves the connection's read deadline ahead as the body arrives.
type pacedBody struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	pace     bodyPace
	start    time.Time
	n        int64
	released bool
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if b.released {
		return b.body.Read(p)
	}
	now := time.Now()
	if b.start.IsZero() {
		// From the first read, not from the headers: a client that sent "Expect:
		// 100-continue" starts sending only when the handler first reads.
		b.start = now
	}
	earned := time.Duration(float64(b.n) / float64(b.pace.minRate) * float64(time.Second))
	deadline := b.start.Add(b.pace.grace + earned)
	if idle := now.Add(b.pace.idle); idle.Before(deadline) {
		deadline = idle
	}
	if err := b.rc.SetReadDeadline(deadline); err != nil {
		// A connection without deadlines (HTTP/2 over some transports) reads unpaced
		// rather than not at all.
		b.released = true
		return b.body.Read(p)
	}
	n, err := b.body.Read(p)
	b.n += int64(n)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w (%d bytes in %s): %w", errSlowBody, b.n, time.Since(b.start).Round(time.Millisecond), err)
		}
		// At the end of the body the handler may work for long (an import): a deadline
		// left behind would end the connection's background read, and with it the
		// request's context.
		b.release()
	}
	return n, err
}

func (b *pacedBody) Close() error { return b.body.Close() }

func (b *pacedBody) release() {
	if !b.released {
		b.released = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

// writeSlowBody answers a request whose body did not keep to the pace. The connection
// cannot be reused (its read timed out), so it is closed after the answer.
func writeSlowBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	mautrix.RespError{ErrCode: "M_UNKNOWN", Err: "The request body arrived too slowly", StatusCode: http.StatusRequestTimeout}.Write(w)
}
