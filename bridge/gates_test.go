package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

// The bridge gets a Matrix user's events by two routes: the homeserver's appservice
// transactions and the bot's own /sync. txnGate stands in the first, syncGate in the second,
// so that a test can hold either back, or make it fail.

// txnGate stands where the homeserver sends appservice transactions and passes them on to
// the bridge, except those carrying an event the test picked, which it holds until released
// (the late transaction that let a deletion overtake what it deletes), and all of them while
// failing is set, which it answers 500 (a homeserver whose pushes do not arrive).
type txnGate struct {
	next *httputil.ReverseProxy

	mu      sync.Mutex
	hold    func(evt map[string]any) bool
	drop    func(evt map[string]any) bool // events left out of the transaction, as Dendrite skips some
	release chan struct{}
	heldN   int
	held    sync.WaitGroup
	failing bool
	// answered holds the events of the transactions the bridge answered 200.
	answered map[id.EventID]bool
}

// startTxnGate listens on the appservice address the homeserver was given and moves the
// bridge to a port of its own behind it.
func startTxnGate(t *testing.T, cfg *config.Config) *txnGate {
	t.Helper()
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	front := cfg.Appservice.Port
	cfg.Appservice.Port = port
	g := &txnGate{next: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: net.JoinHostPort(cfg.Appservice.Hostname, strconv.Itoa(port))}),
		answered: map[id.EventID]bool{}}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Appservice.Hostname, strconv.Itoa(front)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		g.releaseAll()
		_ = srv.Close()
	})
	return g
}

func (g *txnGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/transactions/") {
		g.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var txn struct {
		Events []map[string]any `json:"events"`
	}
	_ = json.Unmarshal(body, &txn)
	g.mu.Lock()
	if g.drop != nil {
		body, txn.Events = dropEvents(body, txn.Events, g.drop)
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if g.failing {
		g.mu.Unlock()
		http.Error(w, `{"errcode":"M_UNKNOWN","error":"the test's gate fails every transaction"}`, http.StatusInternalServerError)
		return
	}
	release, matched := g.release, false
	for _, evt := range txn.Events {
		matched = matched || (g.hold != nil && g.hold(evt))
	}
	if matched {
		g.heldN++
		g.held.Add(1)
		defer g.held.Done()
	}
	g.mu.Unlock()
	if matched {
		select {
		case <-release:
		case <-r.Context().Done():
			return // the homeserver gave up on this attempt and will retry
		}
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	g.next.ServeHTTP(rec, r)
	if rec.status == http.StatusOK {
		g.mu.Lock()
		for _, evt := range txn.Events {
			if evtID, _ := evt["event_id"].(string); evtID != "" {
				g.answered[id.EventID(evtID)] = true
			}
		}
		g.mu.Unlock()
	}
}

// dropEvents leaves the events drop matches out of a transaction body, the others as they were.
func dropEvents(body []byte, evts []map[string]any, drop func(evt map[string]any) bool) ([]byte, []map[string]any) {
	var raw struct {
		Events []json.RawMessage `json:"events"`
	}
	if json.Unmarshal(body, &raw) != nil || len(raw.Events) != len(evts) {
		return body, evts
	}
	keptRaw, kept := raw.Events[:0], evts[:0]
	for i, evt := range evts {
		if !drop(evt) {
			keptRaw, kept = append(keptRaw, raw.Events[i]), append(kept, evt)
		}
	}
	out, err := json.Marshal(map[string]any{"events": keptRaw})
	if err != nil {
		return body, evts
	}
	return out, kept
}

// dropFromPushes leaves the events drop matches out of every transaction from now on (nil: none).
func (g *txnGate) dropFromPushes(drop func(evt map[string]any) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.drop = drop
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// holdBack holds every transaction carrying an event that hold matches, until releaseAll.
func (g *txnGate) holdBack(hold func(evt map[string]any) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold, g.release, g.heldN = hold, make(chan struct{}), 0
}

// fail makes the gate answer every transaction 500, or stop doing so.
func (g *txnGate) fail(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failing = on
}

// waitHeld waits until the homeserver has tried to deliver a held transaction.
func (g *txnGate) waitHeld(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		g.mu.Lock()
		n := g.heldN
		g.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the homeserver never sent the transaction the test holds back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// releaseAll passes the held transactions on and returns once the bridge has answered them
// all, that is, once their events are in its queue.
func (g *txnGate) releaseAll() {
	g.mu.Lock()
	if g.release != nil {
		close(g.release)
	}
	g.hold, g.release = nil, nil
	g.mu.Unlock()
	g.held.Wait()
}

// waitAnswered waits until the bridge has answered a transaction carrying evt: the pushes
// before it are handled too, the homeserver sending them in order.
func (g *txnGate) waitAnswered(t *testing.T, evt id.EventID, within time.Duration) {
	t.Helper()
	eventuallyWithin(t, within, fmt.Sprintf("the homeserver to push %s to the bridge", evt), func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.answered[evt]
	})
}

// syncGate stands between the bridge and the homeserver's client API: it passes everything
// on, and can hold the bot's /sync (new requests and answers under way) until released, or
// leave chosen events out of what the sync returns.
type syncGate struct {
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	release  chan struct{} // non-nil while syncs are held
	hide     func(evt map[string]any) bool
	requests int                // /sync requests so far
	passed   map[id.EventID]int // event -> the /sync request whose answer carried it
	gapReads int                // /messages reads with a senders filter (the bridge's gap reads)
}

type syncSeqKey struct{}

// startSyncGate puts the gate at a port of its own and points the bridge's homeserver address
// at it.
func startSyncGate(t *testing.T, cfg *config.Config) *syncGate {
	t.Helper()
	target, err := url.Parse(cfg.Homeserver.Address)
	if err != nil {
		t.Fatal(err)
	}
	g := &syncGate{passed: map[id.EventID]int{}}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Accept-Encoding") // the answer is read and rewritten here
		},
		ModifyResponse: g.modifySync,
		FlushInterval:  -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Homeserver.Address = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		g.releaseSync()
		_ = srv.Close()
	})
	return g
}

func isSync(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/sync") }

func (g *syncGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/messages") && r.URL.Query().Get("filter") != "" {
		g.mu.Lock()
		g.gapReads++
		g.mu.Unlock()
	}
	if !isSync(r) {
		g.proxy.ServeHTTP(w, r)
		return
	}
	g.mu.Lock()
	g.requests++
	seq := g.requests
	g.mu.Unlock()
	if !g.waitReleased(r.Context()) {
		return
	}
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), syncSeqKey{}, seq)))
}

// waitReleased waits while syncs are held; false means the bridge gave up on the request.
func (g *syncGate) waitReleased(ctx context.Context) bool {
	g.mu.Lock()
	release := g.release
	g.mu.Unlock()
	if release == nil {
		return true
	}
	select {
	case <-release:
		return true
	case <-ctx.Done():
		return false
	}
}

// modifySync holds a /sync answer while syncs are held, leaves out the hidden events, and notes
// which request carried which event.
func (g *syncGate) modifySync(resp *http.Response) error {
	if !isSync(resp.Request) || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if !g.waitReleased(resp.Request.Context()) {
		return resp.Request.Context().Err()
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}
	seq, _ := resp.Request.Context().Value(syncSeqKey{}).(int)
	g.mu.Lock()
	rooms, _ := doc["rooms"].(map[string]any)
	joined, _ := rooms["join"].(map[string]any)
	for _, room := range joined {
		timeline, _ := room.(map[string]any)["timeline"].(map[string]any)
		evts, _ := timeline["events"].([]any)
		kept := evts[:0]
		for _, e := range evts {
			evt, _ := e.(map[string]any)
			if g.hide != nil && g.hide(evt) {
				continue
			}
			kept = append(kept, e)
			if evtID, _ := evt["event_id"].(string); evtID != "" {
				g.passed[id.EventID(evtID)] = seq
			}
		}
		if timeline != nil {
			timeline["events"] = kept
		}
	}
	g.mu.Unlock()
	if body, err = json.Marshal(doc); err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// holdSync holds the bot's /sync until releaseSync: requests, and answers under way.
func (g *syncGate) holdSync() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release == nil {
		g.release = make(chan struct{})
	}
}

func (g *syncGate) releaseSync() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release != nil {
		close(g.release)
		g.release = nil
	}
}

// hideFromSync leaves the events hide matches out of every /sync answer from now on (nil: none).
func (g *syncGate) hideFromSync(hide func(evt map[string]any) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hide = hide
}

// waitSynced waits until the bot's sync has returned evt and the bridge has handled that
// answer: it asks for the next one only then.
func (g *syncGate) waitSynced(t *testing.T, evt id.EventID, within time.Duration) {
	t.Helper()
	g.waitPassed(t, evt, within, true)
}

// waitSyncAnswered waits until an answer to the bot's /sync carrying evt has passed the gate,
// without waiting for the bridge to be done with it.
func (g *syncGate) waitSyncAnswered(t *testing.T, evt id.EventID, within time.Duration) {
	t.Helper()
	g.waitPassed(t, evt, within, false)
}

func (g *syncGate) waitPassed(t *testing.T, evt id.EventID, within time.Duration, handled bool) {
	t.Helper()
	eventuallyWithin(t, within, fmt.Sprintf("the bot's sync to bring %s (handled: %v)", evt, handled), func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		seq, ok := g.passed[evt]
		return ok && (!handled || g.requests > seq)
	})
}

func (g *syncGate) gapReadCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gapReads
}
