package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/database/dbtest"
	"codeberg.org/causeway/causeway/msgconv"
	"codeberg.org/causeway/causeway/puppet"
)

// The fakes below stand in for the homeserver, the ghosts and the WhatsApp login, so the
// queue's state machine runs against a real (in-memory SQLite) database and nothing else.

const (
	testReceiver = id.UserID("@alice:test")
	testBot      = id.UserID("@bot:test")
)

var testKey = database.PortalKey{ChatJID: testContact.String(), Receiver: testReceiver}

var (
	testOwn     = types.NewJID("4915550001", types.DefaultUserServer)
	testContact = types.NewJID("4915550002", types.DefaultUserServer)
)

// sentEvent is one SendMessage the fake homeserver accepted.
type sentEvent struct {
	as      id.UserID
	room    id.RoomID
	typ     event.Type
	body    string
	txnID   string
	id      id.EventID
	content json.RawMessage
	// hidden events are in the room but not in its timeline, as Dendrite loses an event
	// its sync API never took.
	hidden bool
}

// fakeMatrix is the homeserver, with Dendrite's transaction IDs: a send that succeeded is
// remembered by transaction ID, until restartHomeserver; one that failed is not, whether or
// not it created the event.
type fakeMatrix struct {
	mu    sync.Mutex
	sends []sentEvent
	// failSend, when set, is asked before each send (n counts the attempts, from 1); an
	// error it returns is the send's.
	failSend func(n int, body string) error
	// cutOff, when set, is asked after a send created its event; an error it returns is the
	// send's, as when the request is cut off or answered 500 after the event was stored.
	cutOff func(n int, body string) error
	// hide, when set, says whether an event created is left out of the timeline.
	hide     func(n int, body string) bool
	txns     map[string]id.EventID
	attempts int
	// reads counts RecentEvents calls; failRead, when set, fails them.
	reads    int
	failRead error
	rooms    int
	states   []string
	// events are what GetEvent finds.
	events map[id.EventID]*event.Event
}

// restartHomeserver forgets the transaction IDs, as Dendrite does when it restarts.
func (f *fakeMatrix) restartHomeserver() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txns = nil
}

func (f *fakeMatrix) RecentEvents(_ context.Context, _ id.UserID, room id.RoomID, until id.EventID, limit int) ([]TimelineEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.failRead != nil {
		return nil, f.failRead
	}
	var out []TimelineEvent
	for i := len(f.sends) - 1; i >= 0 && len(out) < limit; i-- {
		s := f.sends[i]
		if s.id == until {
			break
		}
		if s.room == room && !s.hidden {
			out = append(out, TimelineEvent{ID: s.id, Sender: s.as, Content: s.content})
		}
	}
	return out, nil
}

// readCount is how many timeline reads there were.
func (f *fakeMatrix) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

var _ Matrix = (*fakeMatrix)(nil)

func bodyOf(content any) string {
	switch c := content.(type) {
	case *msgconv.MessageContent:
		return c.Body
	case *event.MessageEventContent:
		return c.Body
	}
	return fmt.Sprintf("%T", content)
}

func (f *fakeMatrix) BotMXID() id.UserID { return testBot }

func (f *fakeMatrix) SendMessage(_ context.Context, as id.UserID, room id.RoomID, typ event.Type, content any, opts SendOptions) (id.EventID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	body := bodyOf(content)
	if f.failSend != nil {
		if err := f.failSend(f.attempts, body); err != nil {
			return "", err
		}
	}
	if evt, ok := f.txns[opts.TransactionID]; ok && opts.TransactionID != "" {
		return evt, nil
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return "", err
	}
	evt := id.EventID(fmt.Sprintf("$%d", len(f.sends)+1))
	hidden := f.hide != nil && f.hide(f.attempts, body)
	f.sends = append(f.sends, sentEvent{as: as, room: room, typ: typ, body: body, txnID: opts.TransactionID, id: evt, content: raw, hidden: hidden})
	if f.cutOff != nil {
		if err := f.cutOff(f.attempts, body); err != nil {
			return "", err
		}
	}
	if opts.TransactionID != "" {
		if f.txns == nil {
			f.txns = map[string]id.EventID{}
		}
		f.txns[opts.TransactionID] = evt
	}
	return evt, nil
}

// bodies lists what was sent, in order.
func (f *fakeMatrix) bodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.sends))
	for i, s := range f.sends {
		out[i] = s.body
	}
	return out
}

func (f *fakeMatrix) sent() []sentEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentEvent(nil), f.sends...)
}

func (f *fakeMatrix) SendState(_ context.Context, _ id.UserID, _ id.RoomID, typ event.Type, key string, _ any, _ time.Time) (id.EventID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, typ.Type+"|"+key)
	return "$state", nil
}

// stateSent lists the state events set, as "type|state key", in order.
func (f *fakeMatrix) stateSent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.states...)
}
func (f *fakeMatrix) Redact(context.Context, id.UserID, id.RoomID, id.EventID, string) error {
	return nil
}
func (f *fakeMatrix) Upload(context.Context, id.UserID, id.RoomID, []byte, string, string) (Uploaded, error) {
	return Uploaded{URL: "mxc://test/media"}, nil
}
func (f *fakeMatrix) Download(context.Context, id.ContentURI) ([]byte, error) {
	return []byte("x"), nil
}
func (f *fakeMatrix) CreateRoom(context.Context, id.UserID, *mautrix.ReqCreateRoom) (id.RoomID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rooms++
	return id.RoomID(fmt.Sprintf("!room%d:test", f.rooms)), nil
}
func (f *fakeMatrix) EnsureJoined(context.Context, id.UserID, id.RoomID) error { return nil }
func (f *fakeMatrix) Leave(context.Context, id.UserID, id.RoomID) error        { return nil }
func (f *fakeMatrix) Kick(context.Context, id.UserID, id.RoomID, id.UserID, string) error {
	return nil
}
func (f *fakeMatrix) SetPowerLevel(context.Context, id.UserID, id.RoomID, id.UserID, int) error {
	return nil
}
func (f *fakeMatrix) MarkRead(context.Context, id.UserID, id.RoomID, id.EventID) error { return nil }

// GetEvent serves the events a test put in f.events.
func (f *fakeMatrix) GetEvent(_ context.Context, _ id.RoomID, evt id.EventID) (*event.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.events[evt]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("event %s: %w", evt, mautrix.MNotFound)
}

type fakeGhosts struct{}

var _ Ghosts = fakeGhosts{}

func ghostMXID(jid types.JID) id.UserID { return id.UserID("@wa_" + jid.User + ":test") }

func (fakeGhosts) Get(_ context.Context, jid types.JID) (Ghost, error) {
	jid = jid.ToNonAD()
	return Ghost{JID: jid, MXID: ghostMXID(jid), Name: "+" + jid.User}, nil
}

func (fakeGhosts) ByMXID(_ context.Context, mxid id.UserID) (Ghost, bool, error) {
	var user string
	if _, err := fmt.Sscanf(string(mxid), "@wa_%[0-9]:test", &user); err != nil {
		return Ghost{}, false, nil
	}
	jid := types.NewJID(user, types.DefaultUserServer)
	return Ghost{JID: jid, MXID: mxid}, true, nil
}

func (fakeGhosts) UpdateName(context.Context, types.JID, func(context.Context) config.ContactNames) error {
	return nil
}

// fakeWhatsApp is the receiver's login. Sends to WhatsApp are recorded by message ID.
type fakeWhatsApp struct {
	mu       sync.Mutex
	sent     []types.MessageID
	sendErr  error
	attempts int
}

var _ WhatsApp = (*fakeWhatsApp)(nil)

func (w *fakeWhatsApp) OwnJID() types.JID             { return testOwn }
func (w *fakeWhatsApp) NewMessageID() types.MessageID { return "3EB0NEW" }
func (w *fakeWhatsApp) SendMessage(_ context.Context, _ types.JID, msgID types.MessageID, _ *waE2E.Message) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	if w.sendErr != nil {
		return time.Time{}, w.sendErr
	}
	w.sent = append(w.sent, msgID)
	return time.Now(), nil
}
func (w *fakeWhatsApp) Download(context.Context, msgconv.Downloadable) ([]byte, error) {
	return nil, errors.New("no media here")
}
func (w *fakeWhatsApp) Upload(context.Context, []byte, msgconv.MediaKind) (msgconv.UploadResult, error) {
	return msgconv.UploadResult{}, errors.New("no media here")
}
func (w *fakeWhatsApp) DecryptPollVote(context.Context, *types.MessageInfo, *waE2E.PollUpdateMessage) (*waE2E.PollVoteMessage, error) {
	return nil, errors.New("no polls here")
}
func (w *fakeWhatsApp) EncryptPollVote(context.Context, *msgconv.MessageRef, *waE2E.PollVoteMessage) (*waE2E.PollUpdateMessage, error) {
	return nil, errors.New("no polls here")
}
func (w *fakeWhatsApp) MarkRead(context.Context, types.JID, types.JID, []types.MessageID, time.Time) error {
	return nil
}
func (w *fakeWhatsApp) SetTyping(context.Context, types.JID, bool) error { return nil }
func (w *fakeWhatsApp) GroupInfo(context.Context, types.JID) (*types.GroupInfo, error) {
	return nil, errors.New("no groups here")
}
func (w *fakeWhatsApp) SetGroupName(context.Context, types.JID, string) error  { return nil }
func (w *fakeWhatsApp) SetGroupTopic(context.Context, types.JID, string) error { return nil }
func (w *fakeWhatsApp) UpdateParticipants(context.Context, types.JID, []types.JID, string) error {
	return nil
}
func (w *fakeWhatsApp) LeaveGroup(context.Context, types.JID) error { return nil }
func (w *fakeWhatsApp) ContactNames(context.Context, types.JID) config.ContactNames {
	return config.ContactNames{}
}
func (w *fakeWhatsApp) ProfilePicture(context.Context, types.JID) (string, puppet.AvatarFetcher, error) {
	return "", nil, nil
}

type fakeLogins struct{ wa *fakeWhatsApp }

func (l fakeLogins) WhatsApp(id.UserID) (WhatsApp, bool) { return l.wa, l.wa != nil }

// harness is one bridge's portals over one database.
type harness struct {
	t   *testing.T
	db  *database.Database
	mx  *fakeMatrix
	wa  *fakeWhatsApp
	mgr *Manager
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, db: dbtest.InMemory(t), mx: &fakeMatrix{}, wa: &fakeWhatsApp{}}
	if err := h.db.Users.Put(context.Background(), &database.User{MXID: testReceiver}); err != nil {
		t.Fatal(err)
	}
	h.restart()
	return h
}

// restart replaces the portals with new ones over the same database and fakes, as after a
// crash: whatever the old manager held in memory is gone. The old one must be stopped or
// never started.
func (h *harness) restart() {
	h.mgr = NewManager(Deps{
		Config: config.Default(), DB: h.db, Matrix: h.mx, Ghosts: fakeGhosts{}, Logins: fakeLogins{h.wa},
		Log: zerolog.New(zerolog.NewTestWriter(h.t)).Level(zerolog.WarnLevel),
	})
	h.mgr.retryUnit = time.Millisecond
	h.mgr.cutOffGrace = 0
	h.t.Cleanup(h.mgr.Stop)
}

// portal returns the DM portal with the test contact, without starting its queue. After a
// restart it has the room the first one created.
func (h *harness) portal() *Portal {
	h.t.Helper()
	row, err := h.db.Portals.Get(context.Background(), testKey)
	if err != nil {
		h.t.Fatal(err)
	}
	if row == nil {
		row = &database.Portal{PortalKey: testKey}
	}
	p, err := h.mgr.newPortal(row)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// waMessage packs a text message from the contact.
func waMessage(t *testing.T, msgID, text string) *PackedMessage {
	t.Helper()
	info := &types.MessageInfo{
		MessageSource: types.MessageSource{Chat: testContact, Sender: testContact},
		ID:            msgID, Timestamp: time.Unix(1_700_000_000, 0), PushName: "Bob",
	}
	m, err := NewWAMessageItem(info, &waE2E.Message{Conversation: proto.String(text)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pending reads the portal's queue.
func (h *harness) pending(p *Portal) []*database.QueueItem {
	h.t.Helper()
	items, err := h.db.Queue.Pending(context.Background(), p.Key(), 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return items
}

// mapped says whether WhatsApp message waID has a committed mapping.
func (h *harness) mapped(p *Portal, waID string) bool {
	h.t.Helper()
	parts, err := h.db.Messages.GetParts(context.Background(), p.Key(), waID)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(parts) > 0
}

// waitFor polls cond until it holds, failing the test after a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
