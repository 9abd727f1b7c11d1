package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/exhttp"
	"go.mau.fi/util/exstrings"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/portal"
)

// maxTransactionSize bounds what one transaction may make us buffer. Homeservers send at
// most 50 PDUs and 100 EDUs per transaction; 64 MiB is far above any legitimate batch.
const maxTransactionSize = 64 << 20

func (b *Bridge) router() http.Handler {
	mux := http.NewServeMux()
	// The transaction endpoint is ours rather than mautrix's: mautrix answers before the
	// events are handled, and we must not tell the homeserver "done" for work that a
	// shutdown could still lose.
	mux.HandleFunc("PUT /_matrix/app/v1/transactions/{txnID}", b.handleTransaction)
	mux.HandleFunc("GET /health", b.handleHealth)
	mux.Handle("GET /metrics", b.metrics.handler())
	b.mountArchive(mux)
	b.mountProvisioning(mux)
	// User and alias queries, ping and liveness stay mautrix's.
	mux.Handle("/_matrix/", b.as.Router)
	return defaultBodyPace().guard(mux)
}

func (b *Bridge) handleTransaction(w http.ResponseWriter, r *http.Request) {
	if !b.fromHomeserver(r) {
		b.log.Warn().Str("remote", r.RemoteAddr).Msg("Rejected a transaction with a missing or wrong hs_token")
		mautrix.MForbidden.WithMessage("The transaction does not carry this bridge's hs_token").Write(w)
		return
	}
	select {
	case <-b.stopping:
		// The homeserver keeps the transaction and retries it once we are back.
		mautrix.RespError{ErrCode: "M_UNAVAILABLE", Err: "The bridge is shutting down", StatusCode: http.StatusServiceUnavailable}.Write(w)
		return
	default:
	}
	txnID := r.PathValue("txnID")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTransactionSize+1))
	if errors.Is(err, errSlowBody) {
		b.log.Warn().Err(err).Str("remote", r.RemoteAddr).Str("txn_id", txnID).Msg("Gave up on a transaction whose body arrived too slowly")
		writeSlowBody(w)
		return
	}
	if err != nil || len(body) > maxTransactionSize {
		mautrix.MNotJSON.WithMessage("Failed to read the transaction body").Write(w)
		return
	}
	txnKey := transactionKey(txnID, body)
	if b.txns.seen(txnKey) {
		exhttp.WriteEmptyJSONResponse(w, http.StatusOK)
		return
	}
	var txn struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &txn); err != nil {
		b.log.Warn().Err(err).Str("txn_id", txnID).Msg("Unparseable transaction")
		mautrix.MBadJSON.WithMessage("Failed to parse the transaction").Write(w)
		return
	}
	log := b.log.With().Str("txn_id", txnID).Logger()
	// Not the request context: a homeserver that gives up waiting must not cancel work
	// halfway through an event.
	ctx := log.WithContext(context.Background())
	log.Debug().Int("events", len(txn.Events)).Msg("Received a transaction")
	echoesOnly := len(txn.Events) > 0
	for _, raw := range txn.Events {
		echo, err := b.handleRawEvent(ctx, raw)
		echoesOnly = echoesOnly && echo
		if err != nil {
			// Not answering 200 makes the homeserver send the whole transaction again;
			// events already taken in are skipped by event ID (intake.go).
			log.Err(err).Msg("Failed to store an event durably; asking the homeserver to retry")
			mautrix.RespError{ErrCode: "M_UNKNOWN", Err: "Failed to store the event", StatusCode: http.StatusInternalServerError}.Write(w)
			return
		}
	}
	b.txns.done(txnKey)
	if echoesOnly {
		b.holdEchoAnswer(r.Context())
	}
	// The homeserver may not reuse the connection (Dendrite 0.13.8 never closes the
	// response body, so it dials anew for every transaction); keeping ours open would only
	// pile up idle connections.
	w.Header().Set("Connection", "close")
	exhttp.WriteEmptyJSONResponse(w, http.StatusOK)
}

// fromHomeserver says whether a request carries the homeserver's token. The spec lets the
// homeserver send it in the Authorization header or, as older homeservers do, in the
// access_token parameter; when both are there, both must be right, or a wrong token would
// ride in next to a right one. mautrix's CheckServerToken reads the header alone, and
// answers 401, where the spec asks for 403 M_FORBIDDEN.
func (b *Bridge) fromHomeserver(r *http.Request) bool {
	want := b.as.Registration.ServerToken
	header := r.Header.Get("Authorization")
	hasHeader := header != ""
	query, hasQuery := r.URL.Query()["access_token"]
	if !hasHeader && !hasQuery {
		return false
	}
	if hasHeader {
		token, ok := strings.CutPrefix(header, "Bearer ")
		if !ok || !exstrings.ConstantTimeEqual(token, want) {
			return false
		}
	}
	if hasQuery && (len(query) != 1 || !exstrings.ConstantTimeEqual(query[0], want)) {
		return false
	}
	return true
}

// echoAnswerDelay is how long the answer to a transaction of nothing but our own echoes
// waits. A homeserver sends the next transaction only after this one is answered, so during
// a burst from WhatsApp the echoes that pile up meanwhile arrive together instead of one
// transaction, and one connection, each: that cost both sides more CPU than the events.
// Nothing waits on it: the echoes need no work, and a Matrix user's own events are answered
// at once (they are at most this much later if they queue behind an echo).
const echoAnswerDelay = 50 * time.Millisecond

func (b *Bridge) holdEchoAnswer(ctx context.Context) {
	t := time.NewTimer(echoAnswerDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-b.stopping:
	}
}

// handleRawEvent queues a portal event for WhatsApp (durably, before the transaction is
// answered) and hands everything else to the bot. It reports whether the event was an echo
// of a message our ghosts or bot sent.
func (b *Bridge) handleRawEvent(ctx context.Context, raw json.RawMessage) (echo bool, err error) {
	var env portal.MatrixEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		// Only the event's own fields can fail here (content fields that are not strings
		// decode, see portal.EnvelopeContent); name what can be named.
		var ids struct {
			ID   json.RawMessage `json:"event_id"`
			Room json.RawMessage `json:"room_id"`
		}
		_ = json.Unmarshal(raw, &ids)
		zerolog.Ctx(ctx).Warn().Err(err).RawJSON("event_id", orNull(ids.ID)).RawJSON("room_id", orNull(ids.Room)).
			Msg("Skipping an unparseable event")
		return false, nil
	}
	zerolog.Ctx(ctx).Trace().Str("type", env.Type).Stringer("event_id", env.ID).Stringer("sender", env.Sender).Msg("Transaction event")
	// What the sync saw before this event goes first, should the push have skipped it.
	if err := b.takeInSyncedBefore(ctx, &env); err != nil {
		return false, err
	}
	if err := b.takeInMatrixEvent(ctx, routeAppservice, &env, raw); err != nil {
		return false, err
	}
	if env.StateKey == nil && b.isBridgeUser(env.Sender) {
		// The homeserver echoes every message our ghosts send, one per relayed WhatsApp
		// message. handleEvent has nothing to do with them: the state store only takes
		// state events, and commands are never ours. Decoding them fully is wasted work.
		return true, nil
	}
	var evt event.Event
	if err := json.Unmarshal(raw, &evt); err != nil {
		return false, nil
	}
	b.handleEvent(ctx, &evt)
	return false, nil
}

func orNull(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return []byte("null")
	}
	return raw
}

func isCommand(env *portal.MatrixEnvelope) bool {
	_, ok := cutCommandPrefix(strings.TrimSpace(env.Content.Body))
	return ok && env.Type == event.EventMessage.Type
}

func (b *Bridge) handleHealth(w http.ResponseWriter, r *http.Request) {
	select {
	case <-b.stopping:
		exhttp.WriteJSONResponse(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping"})
	default:
		exhttp.WriteJSONResponse(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

func (b *Bridge) handleEvent(ctx context.Context, evt *event.Event) {
	log := zerolog.Ctx(ctx).With().Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).
		Str("event_type", evt.Type.Type).Stringer("sender", evt.Sender).Logger()
	ctx = log.WithContext(ctx)
	defer func() {
		// One bad event must not take the transaction, or the bridge, down with it.
		if p := recover(); p != nil {
			log.Error().Any("panic", p).Msg("Panic while handling a Matrix event")
		}
	}()
	evt.Type.Class = event.MessageEventType
	if evt.StateKey != nil {
		evt.Type.Class = event.StateEventType
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errorsIsUnsupported(err) {
		log.Debug().Err(err).Msg("Failed to parse event content")
		return
	}
	mautrix.UpdateStateStore(ctx, b.as.StateStore, evt)

	switch evt.Type {
	case event.StateMember:
		b.cryptoMember(ctx, evt)
		b.handleMember(ctx, evt)
	case event.EventMessage:
		b.handleMessage(ctx, evt)
	}
}

func errorsIsUnsupported(err error) bool {
	return errors.Is(err, event.ErrUnsupportedContentType) || errors.Is(err, event.ErrContentAlreadyParsed)
}

// transactionKey names a transaction by its ID and its content. The ID alone is not enough:
// Dendrite 0.13.8 names a transaction after the stream time of its first event, so when it
// retries one whose answer it did not get, the retry carries the same ID and, appended, every
// event that arrived meanwhile. Skipping it by ID would drop those.
func transactionKey(txnID string, body []byte) string {
	sum := sha256.Sum256(body)
	return txnID + "/" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// txnDedup remembers recently completed transaction IDs: a homeserver retries a
// transaction whose answer it did not get, and the retry must not replay the events.
type txnDedup struct {
	mu    sync.Mutex
	ids   map[string]struct{}
	order []string
	max   int
}

func newTxnDedup(max int) *txnDedup {
	return &txnDedup{ids: make(map[string]struct{}, max), max: max}
}

func (d *txnDedup) seen(txnID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.ids[txnID]
	return ok
}

func (d *txnDedup) done(txnID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.ids[txnID]; ok {
		return
	}
	d.ids[txnID] = struct{}{}
	d.order = append(d.order, txnID)
	if len(d.order) > d.max {
		delete(d.ids, d.order[0])
		d.order = d.order[1:]
	}
}

// queryHandler answers the homeserver's "does this user exist?" for our namespace.
type queryHandler struct{ b *Bridge }

func (q queryHandler) QueryAlias(alias id.RoomAlias) bool { return false }

func (q queryHandler) QueryUser(userID id.UserID) bool {
	// Ghosts are created when a contact first appears; until then they do not exist.
	return false
}
