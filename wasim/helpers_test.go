package wasim_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"codeberg.org/causeway/causeway/wasim"
)

// testTimeout bounds every wait; scenarios normally finish in well under a second each.
const testTimeout = 30 * time.Second

// testLogWriter forwards log lines to t.Log until the test ends: whatsmeow goroutines may still log
// afterwards, and t.Log after completion panics.
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p))
	}
	return len(p), nil
}

func testLogger(t testing.TB) zerolog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := zerolog.WarnLevel
	if lvl, err := zerolog.ParseLevel(os.Getenv("WASIM_TEST_LOG")); err == nil && lvl != zerolog.NoLevel {
		level = lvl
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true, TimeFormat: "15:04:05.000"}).Level(level).With().Timestamp().Logger()
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func startSim(t testing.TB, dir string) *wasim.Server {
	t.Helper()
	sim, err := wasim.Start(context.Background(), wasim.Options{Dir: dir, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() {
		// Quiesce, then disconnect companions before the phones (Close): see README on whatsmeow's
		// disconnect race.
		idle, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = sim.WaitIdle(idle, 150*time.Millisecond)
		cancel()
		for _, cli := range clientsOf(sim) {
			cli.Disconnect()
		}
		if err := sim.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
		if nacks := sim.Nacks(); len(nacks) > 0 {
			t.Errorf("clients rejected stanzas: %+v", nacks)
		}
	})
	return sim
}

func newPhone(t testing.TB, ctx context.Context, sim *wasim.Server, number, name string) *wasim.Phone {
	t.Helper()
	phone, err := sim.NewPhone(ctx, sim.CreateAccount(number, name))
	if err != nil {
		t.Fatalf("create phone %s: %v", number, err)
	}
	return phone
}

var (
	clientsMu sync.Mutex
	clients   = map[*wasim.Server][]*whatsmeow.Client{}
)

// registerClient remembers a companion so the simulator's cleanup disconnects it at a quiet moment.
func registerClient(sim *wasim.Server, cli *whatsmeow.Client) {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	clients[sim] = append(clients[sim], cli)
}

func clientsOf(sim *wasim.Server) []*whatsmeow.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	list := clients[sim]
	delete(clients, sim)
	return list
}

// companion is a linked whatsmeow client, standing in for the bridge.
type companion struct {
	cli    *whatsmeow.Client
	events *wasim.Events
	store  *wasim.MemoryStore
}

func newUnpaired(t testing.TB, sim *wasim.Server, name string) *companion {
	t.Helper()
	dev := wasim.NewMemoryDevice()
	cli := sim.NewClient(dev, testLogger(t).With().Str("client", name).Logger())
	c := &companion{cli: cli, events: wasim.RecordEvents(cli), store: dev.Container.(*wasim.MemoryStore)}
	registerClient(sim, cli)
	return c
}

func linkCompanion(t testing.TB, ctx context.Context, sim *wasim.Server, phone *wasim.Phone, name string) *companion {
	t.Helper()
	c := newUnpaired(t, sim, name)
	if err := phone.Link(ctx, c.cli, c.events); err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return c
}

func waitMessage(t testing.TB, ctx context.Context, evts *wasim.Events, what string, match func(*events.Message) bool) *events.Message {
	t.Helper()
	msg, err := wasim.WaitFor(ctx, evts, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return msg
}

func textOf(msg *waE2E.Message) string {
	if msg.GetConversation() != "" {
		return msg.GetConversation()
	}
	return msg.GetExtendedTextMessage().GetText()
}

func withText(text string) func(*events.Message) bool {
	return func(m *events.Message) bool { return textOf(m.Message) == text }
}

func sendText(t testing.TB, ctx context.Context, cli *whatsmeow.Client, to types.JID, text string) whatsmeow.SendResponse {
	t.Helper()
	resp, err := cli.SendMessage(ctx, to, &waE2E.Message{Conversation: &text})
	if err != nil {
		t.Fatalf("send %q to %s: %v", text, to, err)
	}
	return resp
}
