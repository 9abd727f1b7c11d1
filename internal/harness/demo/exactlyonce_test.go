package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
	"codeberg.org/causeway/causeway/wasim"
)

// The stream of the exactly-once tests: 5 contacts send 300 texts each, 15 a second together,
// while the Matrix user answers in every room; three disruptions hit it a quarter, half and
// three quarters of the way through.
const (
	streamContacts   = 5
	streamPerContact = 300
	streamRate       = 15 // WhatsApp messages a second, all contacts together
	streamFromMatrix = 20 // Matrix messages per room
	streamHits       = 3
)

// TestCrashExactlyOnce kills the bridge process with SIGKILL three times during the stream and
// starts it again: every message is in Matrix once, and every Matrix message reached the
// phone under one WhatsApp message ID, each chat in order. On both databases.
func TestCrashExactlyOnce(t *testing.T) {
	for i, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			s := startStream(t, db, fmt.Sprintf("49155560%d0", i), streamFromMatrix)
			s.run(t, "bridge killed", func(ctx context.Context, t *testing.T) error {
				return s.killBridge(ctx)
			})
		})
	}
}

// TestHomeserverStallExactlyOnce stops Dendrite with SIGSTOP for 30 s three times during the
// stream: the bridge's sends time out or come back 500, and Dendrite stores some of them anyway.
// The Matrix user keeps writing through the stalls: a send under way hangs until SIGCONT, and
// the ones after it follow. After a stall Dendrite 0.13.8 can stop pushing events to
// appservices for minutes (docs/dendrite-duplicate-events.md); the bridge's own sync brings
// them, and whichever route is first relays each once.
func TestHomeserverStallExactlyOnce(t *testing.T) {
	s := startStream(t, "sqlite", "4915556030", streamFromMatrix)
	var hanging int64
	s.run(t, "homeserver stalled for 30 s", func(ctx context.Context, t *testing.T) error {
		return s.homeserverDown(ctx, false, func() error {
			pid := s.r.e.hs.PID()
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				return err
			}
			time.Sleep(30 * time.Second)
			n := s.matrixUnderWay.Load()
			hanging += n
			t.Logf("%d of the Matrix user's sends under way at SIGCONT", n)
			return syscall.Kill(pid, syscall.SIGCONT)
		})
	})
	if hanging == 0 {
		t.Error("no Matrix send was under way during any stall: the test did not exercise them")
	}
}

// TestHomeserverRestartNothingMissing kills Dendrite with SIGKILL three times during the stream
// and starts it again: an event it accepted just before may be in its room graph and never in
// what clients see, and the bridge must notice and send it again.
func TestHomeserverRestartNothingMissing(t *testing.T) {
	s := startStream(t, "sqlite", "4915556040", streamFromMatrix)
	s.run(t, "homeserver killed and restarted", func(ctx context.Context, t *testing.T) error {
		return s.homeserverDown(ctx, true, func() error {
			if err := s.r.e.hs.Kill(); err != nil {
				return err
			}
			return s.r.e.hs.Start(ctx)
		})
	})
}

// stream is one exactly-once test's world: the benchmark's rig, the contacts with their rooms.
type stream struct {
	r        *rig
	opts     BenchOptions
	db       *database.Database
	contacts []*wasim.Phone
	rooms    []id.RoomID // rooms[c] is contacts[c]'s chat
	ghosts   []id.UserID
	// fromMatrix is how many messages the Matrix user sends into each room.
	fromMatrix int

	// matrixSends holds the Matrix user's sends: a homeserver restart waits for the ones
	// under way and keeps new ones out (see homeserverDown).
	matrixSends    sync.RWMutex
	sentMatrix     atomic.Int64 // Matrix messages sent so far
	matrixUnderWay atomic.Int64 // Matrix sends started and not finished
	sentWA         atomic.Int64 // WhatsApp messages sent so far

	// wedge counts the restarts of a Dendrite found stuck (healDendrite).
	wedge struct {
		mu       sync.Mutex
		seen     int64 // how much of Dendrite's log has been looked at
		restarts int
	}
}

func startStream(t *testing.T, dbType, number string, fromMatrix int) *stream {
	t.Helper()
	ctx := context.Background()
	dir, err := devserver.TempDir("causeway-once-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept the bridge's and Dendrite's state and logs for a look: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	s := &stream{fromMatrix: fromMatrix, opts: BenchOptions{Archive: true, Database: dbType, Executable: os.Args[0], Out: io.Discard}}
	if s.r, err = startRig(ctx, dir, s.opts, newPrinter(io.Discard), number); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.r.close(); err != nil {
			t.Errorf("stopping the bridge: %v", err)
		}
	})
	t.Cleanup(func() {
		s.wedge.mu.Lock()
		defer s.wedge.mu.Unlock()
		if s.wedge.restarts > 0 {
			t.Logf("Dendrite was found stuck in an open transaction and restarted %d times (docs/dendrite-duplicate-events.md, point 6)", s.wedge.restarts)
		}
	})
	if s.db, err = database.Open(ctx, s.r.e.cfg.Database, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.db.Close() })
	base := number[:len(number)-1]
	for c := range streamContacts {
		phone, err := s.r.e.sim.NewPhone(ctx, s.r.e.sim.CreateAccount(fmt.Sprintf("%s%d", base, c+1), fmt.Sprintf("Contact %d", c)))
		if err != nil {
			t.Fatal(err)
		}
		s.contacts = append(s.contacts, phone)
		s.ghosts = append(s.ghosts, s.r.e.cfg.PuppetUserID(phone.JID().User))
	}
	// One contact at a time, so each room is known to be that contact's.
	for c, phone := range s.contacts {
		if _, err := phone.SendText(ctx, s.r.me.JID(), "hello"); err != nil {
			t.Fatal(err)
		}
		room, err := s.r.mx.waitInvite(ctx, s.ghosts[c])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.r.mx.waitEvent(ctx, room, s.ghosts[c], "the first message", isText("hello")); err != nil {
			t.Fatal(err)
		}
		s.rooms = append(s.rooms, room)
	}
	return s
}

func waBody(c, n int) string { return fmt.Sprintf("c%d %04d", c, n) }
func mxBody(c, n int) string { return fmt.Sprintf("mx c%d %04d", c, n) }

// run plays the stream, hits it streamHits times with disrupt, waits until everything arrived
// and the bridge is idle, and checks that every message is there once, in order.
func (s *stream) run(t *testing.T, what string, disrupt func(context.Context, *testing.T) error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	total := streamContacts * streamPerContact
	start := time.Now()
	played := make(chan error, 1)
	go func() { played <- s.play(ctx) }()
	for hit := 1; hit <= streamHits; hit++ {
		err := poll(ctx, "the stream to reach the next disruption", func() (bool, error) {
			select {
			case err := <-played:
				played <- err
				return false, fmt.Errorf("the stream ended before disruption %d: %v", hit, err)
			default:
			}
			return s.sentWA.Load() >= int64(total*hit/(streamHits+1)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s after %d of %d WhatsApp messages (%s into the stream)", what, s.sentWA.Load(), total, time.Since(start).Round(time.Second))
		if err := disrupt(ctx, t); err != nil {
			t.Fatalf("disruption %d: %v", hit, err)
		}
	}
	if err := <-played; err != nil {
		t.Fatal(err)
	}
	t.Logf("stream sent in %s; waiting for both sides", time.Since(start).Round(time.Second))
	s.waitDelivered(ctx, t)
	s.check(ctx, t, what)
}

// play sends the stream: each contact at its share of streamRate, and after every
// streamPerContact/fromMatrix of a contact's messages the Matrix user answers in its room,
// from a goroutine of its own so that held-back Matrix sends do not hold WhatsApp's.
func (s *stream) play(ctx context.Context) error {
	interval := time.Second * streamContacts * 1000 / (streamRate * 1000)
	every := streamPerContact + 1 // never
	if s.fromMatrix > 0 {
		every = streamPerContact / s.fromMatrix
	}
	answers := make([]chan int, streamContacts)
	for c := range answers {
		answers[c] = make(chan int, s.fromMatrix)
	}
	return parallel(2*streamContacts, func(i int) error {
		if i >= streamContacts {
			c := i - streamContacts
			for n := range answers[c] {
				if err := s.sendMatrix(ctx, c, n); err != nil {
					return err
				}
			}
			return nil
		}
		c := i
		defer close(answers[c])
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := range streamPerContact {
			<-tick.C
			if _, err := s.contacts[c].SendText(ctx, s.r.me.JID(), waBody(c, n)); err != nil {
				return fmt.Errorf("contact %d, message %d: %w", c, n, err)
			}
			s.sentWA.Add(1)
			if n%every == every-1 {
				answers[c] <- n / every
			}
		}
		return nil
	})
}

// sendMatrix sends the Matrix user's message n into room c. A send Dendrite fails (it answers
// 500 now and then under this load, and after a stall) may have stored the event anyway, so
// before trying again the user looks for it, as the bridge does: a second event would be the
// user's duplicate, not the bridge's.
func (s *stream) sendMatrix(ctx context.Context, c, n int) error {
	s.matrixSends.RLock()
	defer s.matrixSends.RUnlock()
	s.matrixUnderWay.Add(1)
	defer s.matrixUnderWay.Add(-1)
	body := mxBody(c, n)
	var err error
	// Dendrite answers the user's own sends 500 for a while when loaded (seen for 15 s in a row);
	// the test's client is not the bridge under test, so it keeps trying for a minute.
	for attempt := 0; attempt < 20; attempt++ {
		if attempt > 0 {
			if err := s.healDendrite(ctx); err != nil {
				return err
			}
			if s.landed(ctx, c, body) {
				err = nil
				break
			}
		}
		if _, err = s.r.mx.cli.SendText(ctx, s.rooms[c], body); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("the Matrix user's message %d in room %d: %w", n, c, err)
	}
	s.sentMatrix.Add(1)
	return nil
}

// landed looks for a failed send's event for a while: Dendrite stores it some time after it
// answered 500 (portal/recovery.go waits the same way), longer after a stall.
func (s *stream) landed(ctx context.Context, c int, body string) bool {
	for range 5 {
		time.Sleep(2 * time.Second)
		if evt, _ := s.r.mx.findEvent(ctx, s.rooms[c], s.r.mx.cli.UserID, isText(body)); evt != nil {
			return true
		}
	}
	return false
}

// bridgeDied reports a bridge process that ended without the test ending it: nothing would
// relay what the test waits for.
func (s *stream) bridgeDied() error {
	select {
	case err := <-s.r.child.exited:
		s.r.child.exited <- err
		return fmt.Errorf("the bridge process (pid %d) died on its own (%v); see %s",
			s.r.child.cmd.Process.Pid, err, filepath.Join(s.r.e.dir, "bench-bridge.out"))
	default:
		return nil
	}
}

// healDendrite answers Dendrite's roomserver database stuck in a transaction that nothing
// ends (docs/dendrite-duplicate-events.md, point 6: a request the bridge's kill -9 cut off
// mid-query can leave it so, and from then on every send fails for every client) the way the
// operator advice there says: restart Dendrite. The bridge must then still deliver every
// message exactly once, as in TestHomeserverRestartNothingMissing. While it is stuck nothing is
// stored, so the test's own sends under way may safely be tried again. More than three
// restarts in one test fail it, naming the cause.
func (s *stream) healDendrite(ctx context.Context) error {
	s.wedge.mu.Lock()
	defer s.wedge.mu.Unlock()
	data, err := os.ReadFile(s.r.e.hs.LogPath())
	if err != nil || int64(len(data)) <= s.wedge.seen ||
		!bytes.Contains(data[s.wedge.seen:], []byte("cannot start a transaction within a transaction")) {
		return nil
	}
	if s.wedge.restarts >= 3 { // seen stays, so every later look fails too
		return fmt.Errorf("dendrite's roomserver database is stuck in an open transaction again after %d restarts "+
			"(%s says \"cannot start a transaction within a transaction\"; docs/dendrite-duplicate-events.md, point 6)",
			s.wedge.restarts, s.r.e.hs.LogPath())
	}
	s.wedge.seen = int64(len(data))
	s.wedge.restarts++
	if err := s.r.e.hs.Kill(); err != nil {
		return fmt.Errorf("restarting Dendrite stuck in an open transaction: %w", err)
	}
	if err := s.r.e.hs.Start(ctx); err != nil {
		return fmt.Errorf("restarting Dendrite stuck in an open transaction: %w", err)
	}
	return nil
}

// killBridge is kill -9 of the bridge process and a new one at once.
func (s *stream) killBridge(ctx context.Context) error {
	old := s.r.child
	if err := old.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-old.exited
	old.exited <- nil // for a later stop: it has already ended
	// A Dendrite the kill left stuck (healDendrite) keeps the new bridge from starting: look
	// for it while the bridge starts, not only when the Matrix user's sends fail.
	healing, stopHealing := context.WithCancel(ctx)
	healed := make(chan struct{})
	go func() {
		defer close(healed)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-healing.Done():
				return
			case <-tick.C:
				_ = s.healDendrite(ctx) // past its limit, the next look in sendMatrix or waitDelivered fails the test
			}
		}
	}()
	child, err := startBridgeChild(ctx, s.r.e, s.opts)
	stopHealing()
	<-healed
	if err != nil {
		return err
	}
	s.r.child = child
	return nil
}

// homeserverDown runs outage right after a contact's message, once the phones have every
// Matrix message sent so far. With holdSends, the Matrix user's sends wait while it lasts:
// a killed Dendrite drops what it held in memory before pushing it or showing it to any
// client, and that is not the bridge's to lose. A stalled one loses nothing, so the user
// keeps writing.
func (s *stream) homeserverDown(ctx context.Context, holdSends bool, outage func() error) error {
	if holdSends {
		s.matrixSends.Lock()
		defer s.matrixSends.Unlock()
	}
	want := s.sentMatrix.Load()
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err := poll(waitCtx, "the Matrix messages so far on the phones", func() (bool, error) {
		return int64(s.phoneTotal()) >= want, nil
	})
	if err != nil {
		return err
	}
	// Right after a contact's message, while the bridge relays it: a disruption between two
	// sends tests nothing.
	for before := s.sentWA.Load(); s.sentWA.Load() == before; {
		if err := waitCtx.Err(); err != nil {
			return fmt.Errorf("no WhatsApp message to disrupt the relay of: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
	return outage()
}

// phoneTotal counts the distinct Matrix messages the phones have.
func (s *stream) phoneTotal() int {
	n := 0
	for c := range s.contacts {
		n += len(s.onPhone(c).ids)
	}
	return n
}

// phoneView is what one contact's phone received from the Matrix user.
type phoneView struct {
	ids   map[string]map[string]bool // body -> WhatsApp message IDs it came under
	order []string                   // bodies in the order they first arrived
}

func (s *stream) onPhone(c int) phoneView {
	v := phoneView{ids: map[string]map[string]bool{}}
	for _, evt := range s.contacts[c].Events.All() {
		msg, ok := evt.(*events.Message)
		if !ok {
			continue
		}
		body := msg.Message.GetConversation() + msg.Message.GetExtendedTextMessage().GetText()
		if body == "" {
			continue
		}
		if v.ids[body] == nil {
			v.ids[body] = map[string]bool{}
			v.order = append(v.order, body)
		}
		v.ids[body][msg.Info.ID] = true
	}
	return v
}

// roomView is what the Matrix user sees in one room: the contact's messages in timeline order.
type roomView struct {
	fromContact []string
	fromUser    []string
}

func (s *stream) readRoom(ctx context.Context, c int) (roomView, error) {
	var v roomView
	var chunks [][]*event.Event
	from := ""
	for {
		resp, err := s.r.mx.cli.Messages(ctx, s.rooms[c], from, "", mautrix.DirectionBackward, nil, 500)
		if err != nil {
			return v, err
		}
		chunks = append(chunks, resp.Chunk)
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			break
		}
		from = resp.End
	}
	for i := len(chunks) - 1; i >= 0; i-- {
		for j := len(chunks[i]) - 1; j >= 0; j-- {
			evt := chunks[i][j]
			if evt.Type != event.EventMessage {
				continue
			}
			_ = evt.Content.ParseRaw(evt.Type)
			body := evt.Content.AsMessage().Body
			switch evt.Sender {
			case s.ghosts[c]:
				v.fromContact = append(v.fromContact, body)
			case s.r.mx.cli.UserID:
				v.fromUser = append(v.fromUser, body)
			}
		}
	}
	return v, nil
}

// waitDelivered waits until every message has arrived on the other side and the bridge has
// nothing left to relay, so that a late duplicate would be in what check reads.
func (s *stream) waitDelivered(ctx context.Context, t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	complete := make([]bool, streamContacts)
	lastLook := time.Now()
	err := poll(ctx, "every message on the other side", func() (bool, error) {
		if err := s.bridgeDied(); err != nil {
			return false, err
		}
		if time.Since(lastLook) > 10*time.Second {
			lastLook = time.Now()
			if err := s.healDendrite(ctx); err != nil {
				return false, err
			}
		}
		for c := range s.contacts {
			if complete[c] {
				continue
			}
			v, err := s.readRoom(ctx, c)
			if err != nil {
				return false, nil // Dendrite may be busy; poll again
			}
			if distinct(v.fromContact, "c") < streamPerContact || len(s.onPhone(c).ids) < s.fromMatrix {
				return false, nil
			}
			complete[c] = true
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = poll(ctx, "the bridge's relay queue to empty", func() (bool, error) {
		var n int
		err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM relay_queue`).Scan(&n)
		return err == nil && n == 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.r.e.sim.WaitIdle(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

// distinct counts the distinct bodies with the prefix.
func distinct(bodies []string, prefix string) int {
	seen := map[string]bool{}
	for _, b := range bodies {
		if len(b) > len(prefix) && b[:len(prefix)] == prefix {
			seen[b] = true
		}
	}
	return len(seen)
}

// check counts, over every chat, what is missing, duplicated or out of order on each side.
func (s *stream) check(ctx context.Context, t *testing.T, what string) {
	t.Helper()
	var lost, dup, disorder, phoneLost, phoneDup, phoneDisorder, userDup int
	for c := range s.contacts {
		v, err := s.readRoom(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		var order []string
		for _, b := range v.fromContact {
			if b == "hello" {
				continue
			}
			if count[b]++; count[b] == 1 {
				order = append(order, b)
			}
		}
		for n := range streamPerContact {
			switch k := count[waBody(c, n)]; {
			case k == 0:
				lost++
				t.Errorf("chat %d: %q is not in Matrix", c, waBody(c, n))
			case k > 1:
				dup += k - 1
				t.Errorf("chat %d: %q is in Matrix %d times", c, waBody(c, n), k)
			}
		}
		if !slices.IsSorted(order) {
			disorder++
			t.Errorf("chat %d: Matrix shows the messages out of order: %s", c, firstDisorder(order))
		}
		for _, b := range v.fromUser {
			if count[b]++; count[b] > 1 {
				userDup++
				t.Errorf("chat %d: the Matrix user's %q is in the room %d times", c, b, count[b])
			}
		}

		p := s.onPhone(c)
		for n := range s.fromMatrix {
			switch ids := p.ids[mxBody(c, n)]; {
			case len(ids) == 0:
				phoneLost++
				t.Errorf("chat %d: %q never reached the phone", c, mxBody(c, n))
			case len(ids) > 1:
				phoneDup += len(ids) - 1
				t.Errorf("chat %d: %q reached the phone under %d WhatsApp message IDs", c, mxBody(c, n), len(ids))
			}
		}
		if !slices.IsSorted(p.order) {
			phoneDisorder++
			t.Errorf("chat %d: the phone got the Matrix messages out of order: %s", c, firstDisorder(p.order))
		}
	}
	t.Logf("%s %d times: into Matrix %d messages, %d lost, %d duplicated, %d chats out of order; to the phones %d messages, %d lost, %d duplicated, %d chats out of order",
		what, streamHits, streamContacts*streamPerContact, lost, dup, disorder, streamContacts*s.fromMatrix, phoneLost, phoneDup, phoneDisorder)
	// What the bridge did about it, from its log: the counts above are the verdict, these
	// say whether the disruptions exercised the recovery at all.
	logText, err := os.ReadFile(filepath.Join(s.r.e.dir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the bridge found %d events of earlier attempts in the room instead of sending them again, sent %d lost events again, and saw %d homeserver outages",
		bytes.Count(logText, []byte("Found the event of an earlier attempt")),
		bytes.Count(logText, []byte("is not in the room; sent it again")),
		bytes.Count(logText, []byte("The homeserver is not answering")))
	// Which route brought the Matrix user's events, since the bridge process last started.
	var routes []string
	for _, route := range []string{"appservice", "sync"} {
		for _, outcome := range []string{"first", "repeat"} {
			n, err := s.r.metric(ctx, fmt.Sprintf(`causeway_matrix_events_delivered_total{outcome=%q,route=%q}`, outcome, route))
			if err != nil {
				t.Fatal(err)
			}
			routes = append(routes, fmt.Sprintf("%s %s %d", route, outcome, n))
		}
	}
	t.Logf("Matrix events delivered by route, since the bridge process started: %s", strings.Join(routes, ", "))
	if userDup > 0 {
		t.Errorf("%d of the Matrix user's messages came back into their rooms", userDup)
	}
}

func firstDisorder(order []string) string {
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			return fmt.Sprintf("%q after %q", order[i], order[i-1])
		}
	}
	return "?"
}
