package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
	"codeberg.org/causeway/causeway/wasim"
)

// The suite shares one Dendrite and one PostgreSQL; each test starts its own bridges.
var (
	hs      *devserver.Dendrite
	pg      *devserver.Postgres
	sim     *wasim.Server
	baseCfg *config.Config
	dbCount atomic.Int32
)

func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bridge integration tests need Dendrite and PostgreSQL:", err)
		code = 1
	}
	if hs != nil {
		_ = hs.Stop()
		_ = os.RemoveAll(filepath.Dir(hs.ConfigPath()))
	}
	if pg != nil {
		_ = pg.Stop()
	}
	if sim != nil {
		_ = sim.Close()
	}
	if err := findLeaks(before); err != nil {
		fmt.Fprintln(os.Stderr, "goroutines outlived the bridges that started them:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// findLeaks reports goroutines still running once every bridge has stopped and the homeserver, the
// database and the simulator are gone: Stop owns everything a bridge starts (bridge/jobs.go). What
// remains legitimately is listed here, each with why.
func findLeaks(before goleak.Option) error {
	return goleak.Find(before,
		// whatsmeow's frame socket hands each frame to an unbuffered channel whose reader (the
		// noise socket, or a handshake that timed out) is gone once the client disconnected; a
		// frame that arrived in between leaves its read pump blocked for good. It is whatsmeow's
		// goroutine, nothing of ours can end it, and it holds no bridge state.
		goleak.IgnoreTopFunction("go.mau.fi/whatsmeow/socket.(*FrameSocket).frameComplete"),
	)
}

func setup(m *testing.M) (int, error) {
	ctx := context.Background()
	var err error
	if pg, err = devserver.StartPostgres(ctx); err != nil {
		return 1, err
	}
	if sim, err = wasim.Start(ctx, wasim.Options{}); err != nil {
		return 1, err
	}
	dir, err := devserver.TempDir("causeway-bridge-test-")
	if err != nil {
		return 1, err
	}
	asPort, err := devserver.FreePort()
	if err != nil {
		return 1, err
	}
	hsPort, err := devserver.FreePort()
	if err != nil {
		return 1, err
	}
	cfg := config.Default()
	cfg.Homeserver = config.Homeserver{Address: fmt.Sprintf("http://127.0.0.1:%d", hsPort), Domain: "localhost"}
	cfg.Appservice.Port = asPort
	cfg.Appservice.Address = fmt.Sprintf("http://127.0.0.1:%d", asPort)
	cfg.Permissions = config.Permissions{
		"@alice_sqlite:localhost":   "user",
		"@alice_postgres:localhost": "admin",
		"@relayonly:localhost":      "relay",
	}
	cfg.Logging.Level = "debug"
	if err := cfg.Validate(); err != nil {
		return 1, err
	}
	regPath := filepath.Join(dir, "registration.yaml")
	if err := config.SaveRegistration(cfg.Registration(), regPath); err != nil {
		return 1, err
	}
	baseCfg = cfg
	hs, err = devserver.StartDendrite(ctx, devserver.DendriteOptions{
		Dir: dir, Port: hsPort, RegistrationFile: regPath, Log: zerolog.New(os.Stderr),
		OnCrash: func(exit error, logTail string) {
			// Every later test would wait out its timeouts against a homeserver that is gone.
			fmt.Fprintf(os.Stderr, "the bridge tests' Dendrite died (%v) without a test stopping it; the end of its log:\n%s\n", exit, logTail)
			_ = pg.Stop()
			_ = sim.Close()
			os.Exit(1)
		},
	})
	if err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// configFor returns the shared config with a fresh database of the given type.
func configFor(t *testing.T, dbType string) *config.Config {
	t.Helper()
	cfg := *baseCfg
	cfg.Permissions = config.Permissions{}
	for k, v := range baseCfg.Permissions {
		cfg.Permissions[k] = v
	}
	cfg.Database.Type = dbType
	cfg.Archive.Dir = t.TempDir()
	switch dbType {
	case "sqlite":
		cfg.Database.URI = filepath.Join(t.TempDir(), "causeway.db")
	case "postgres":
		uri, err := pg.CreateDatabase(context.Background(), fmt.Sprintf("bridge_%d", dbCount.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Database.URI = uri
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// permit lets a test's users use the bridge.
func permit(cfg *config.Config, level string, localparts ...string) {
	for _, lp := range localparts {
		cfg.Permissions["@"+lp+":localhost"] = level
	}
}

func startBridge(t *testing.T, cfg *config.Config) *bridge.Bridge {
	t.Helper()
	// The version fetch at start goes to the simulator's stand-in of web.whatsapp.com: tests
	// never reach the internet.
	return startBridgeWith(t, cfg, bridge.Options{VersionHTTP: sim.HTTPClient()})
}

// lastBridge is the bridge the last startBridgeWith started, for tests that restart it.
var lastBridge struct {
	cfg *config.Config
	br  *bridge.Bridge
}

func startBridgeWith(t *testing.T, cfg *config.Config, opts bridge.Options) *bridge.Bridge {
	t.Helper()
	br, err := bridge.New(cfg, zerolog.New(newTestLogWriter(t)).Level(zerolog.TraceLevel), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := br.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Stop(context.Background()) })
	lastBridge.cfg, lastBridge.br = cfg, br
	return br
}

func registerUser(t *testing.T, localpart string) *mautrix.Client {
	t.Helper()
	cli, err := hs.RegisterUser(context.Background(), localpart, "password-"+localpart, false)
	if err != nil {
		t.Fatal(err)
	}
	// The tests' waits retry for a minute or more; a request the homeserver leaves hanging
	// must give up well inside that instead of holding a wait for three minutes (mautrix's
	// default) per attempt. The longest long-poll here is 5 s.
	cli.Client = &http.Client{Timeout: 20 * time.Second}
	return cli
}

// openDM creates a direct chat with the bot, the way a Matrix client does.
func openDM(t *testing.T, cli *mautrix.Client, bot id.UserID) id.RoomID {
	t.Helper()
	resp, err := cli.CreateRoom(context.Background(), &mautrix.ReqCreateRoom{
		Invite: []id.UserID{bot}, IsDirect: true, Preset: "trusted_private_chat",
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.RoomID
}

// waitForReply polls the room until the bot has sent a message newer than after that
// contains want, and returns its body.
func waitForReply(t *testing.T, cli *mautrix.Client, roomID id.RoomID, bot id.UserID, after time.Time, want string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		resp, err := cli.Messages(context.Background(), roomID, "", "", mautrix.DirectionBackward, nil, 50)
		if err == nil {
			seen = seen[:0]
			for _, evt := range resp.Chunk {
				if evt.Sender != bot || evt.Type != event.EventMessage || time.UnixMilli(evt.Timestamp).Before(after.Add(-time.Second)) {
					continue
				}
				_ = evt.Content.ParseRaw(evt.Type)
				body := evt.Content.AsMessage().Body
				seen = append(seen, body)
				if strings.Contains(body, want) {
					return body
				}
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("no bot reply containing %q in %s; bot said: %q", want, roomID, seen)
	return ""
}

func send(t *testing.T, cli *mautrix.Client, roomID id.RoomID, text string) time.Time {
	t.Helper()
	sent := time.Now()
	if _, err := cli.SendText(context.Background(), roomID, text); err != nil {
		t.Fatal(err)
	}
	return sent
}

func botMembership(t *testing.T, cli *mautrix.Client, roomID id.RoomID, bot id.UserID) event.Membership {
	t.Helper()
	var member event.MemberEventContent
	if err := cli.StateEvent(context.Background(), roomID, event.StateMember, string(bot), &member); err != nil {
		return ""
	}
	return member.Membership
}

// TestManagementRoomAndRestart is the bot's main path on both databases: a permitted user
// opens a DM, gets help, and after a bridge restart on the same database the same room
// still works without a new invite.
func TestManagementRoomAndRestart(t *testing.T) {
	for _, dbType := range []string{"sqlite", "postgres"} {
		t.Run(dbType, func(t *testing.T) {
			cfg := configFor(t, dbType)
			bot := cfg.BotUserID()
			br := startBridge(t, cfg)
			alice := registerUser(t, "alice_"+dbType)

			start := time.Now()
			room := openDM(t, alice, bot)
			waitForReply(t, alice, room, bot, start, "This is your management room")

			help := waitForReply(t, alice, room, bot, send(t, alice, room, "help"), "Commands")
			for _, cmd := range []string{"help", "version", "ping"} {
				if !strings.Contains(help, "`"+cmd) {
					t.Errorf("help does not list %s:\n%s", cmd, help)
				}
			}
			waitForReply(t, alice, room, bot, send(t, alice, room, "version"), "causeway ")
			waitForReply(t, alice, room, bot, send(t, alice, room, "ping"), "not logged in")
			unknown := waitForReply(t, alice, room, bot, send(t, alice, room, "pnig"), "Unknown command")
			if !strings.Contains(unknown, "Did you mean `ping`?") || !strings.Contains(unknown, "help") {
				t.Errorf("unknown-command answer is not helpful: %q", unknown)
			}

			if err := br.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			startBridge(t, cfg)
			// No new invite, no prefix: the management room was remembered.
			waitForReply(t, alice, room, bot, send(t, alice, room, "ping"), "not logged in")
		})
	}
}

func TestPermissions(t *testing.T) {
	cfg := configFor(t, "sqlite")
	bot := cfg.BotUserID()
	startBridge(t, cfg)

	t.Run("stranger is refused", func(t *testing.T) {
		eve := registerUser(t, "eve")
		start := time.Now()
		room := openDM(t, eve, bot)
		reply := waitForReply(t, eve, room, bot, start, "not allowed")
		if !strings.Contains(reply, "@eve:localhost") {
			t.Errorf("refusal does not say who: %q", reply)
		}
		deadline := time.Now().Add(30 * time.Second)
		for botMembership(t, eve, room, bot) != event.MembershipLeave {
			if time.Now().After(deadline) {
				t.Fatalf("bot stayed in the stranger's room (membership %q)", botMembership(t, eve, room, bot))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("relay user may not ping", func(t *testing.T) {
		relay := registerUser(t, "relayonly")
		start := time.Now()
		room := openDM(t, relay, bot)
		waitForReply(t, relay, room, bot, start, "management room")
		help := waitForReply(t, relay, room, bot, send(t, relay, room, "help"), "Commands")
		if strings.Contains(help, "`ping") {
			t.Errorf("help offers ping to a relay user:\n%s", help)
		}
		waitForReply(t, relay, room, bot, send(t, relay, room, "ping"), "needs the user permission level")
	})
}

// TestTransactionAuthForbidden: the homeserver proves itself with hs_token, in the
// Authorization header or the access_token query parameter (older homeservers). Anything
// else is refused with 403 M_FORBIDDEN, and when both are given they must agree: a right
// header must not carry a wrong query token in with it.
func TestTransactionAuthForbidden(t *testing.T) {
	cfg := configFor(t, "sqlite")
	startBridge(t, cfg)
	wrong := strings.Repeat("x", 64)
	tests := []struct {
		name       string
		header     string // the Authorization header, if any
		query      string // the access_token parameter, if any
		wantStatus int
		wantCode   string
	}{
		{"missing token", "", "", http.StatusForbidden, "M_FORBIDDEN"},
		{"wrong token", "Bearer " + wrong, "", http.StatusForbidden, "M_FORBIDDEN"},
		{"as_token instead of hs_token", "Bearer " + cfg.Appservice.ASToken, "", http.StatusForbidden, "M_FORBIDDEN"},
		{"not a bearer token", "Basic " + cfg.Appservice.HSToken, "", http.StatusForbidden, "M_FORBIDDEN"},
		{"wrong query token", "", wrong, http.StatusForbidden, "M_FORBIDDEN"},
		{"right header, wrong query token", "Bearer " + cfg.Appservice.HSToken, wrong, http.StatusForbidden, "M_FORBIDDEN"},
		{"wrong header, right query token", "Bearer " + wrong, cfg.Appservice.HSToken, http.StatusForbidden, "M_FORBIDDEN"},
		{"right token", "Bearer " + cfg.Appservice.HSToken, "", http.StatusOK, ""},
		{"right query token", "", cfg.Appservice.HSToken, http.StatusOK, ""},
		{"right header and query token", "Bearer " + cfg.Appservice.HSToken, cfg.Appservice.HSToken, http.StatusOK, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := fmt.Sprintf("%s/_matrix/app/v1/transactions/test-%d-%d", cfg.Appservice.Address, time.Now().UnixNano(), i)
			if tt.query != "" {
				u += "?access_token=" + url.QueryEscape(tt.query)
			}
			req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(`{"events":[]}`))
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				ErrCode string `json:"errcode"`
			}
			_ = jsonDecode(resp, &body)
			if resp.StatusCode != tt.wantStatus || body.ErrCode != tt.wantCode {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body.ErrCode, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestRefusesPlaceholderTokens(t *testing.T) {
	cfg := configFor(t, "sqlite")
	cfg.Appservice.ASToken = config.PlaceholderToken
	if _, err := bridge.New(cfg, zerolog.Nop(), bridge.Options{}); err == nil || !strings.Contains(err.Error(), "-g") {
		t.Fatalf("New with placeholder tokens = %v, want an error pointing at -g", err)
	}
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// testLogWriter sends log lines to the test log until the test's cleanups have run, then
// drops them: whatsmeow's goroutines can still log after the bridge has stopped, and
// testing panics on a log after the test ended.
type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func newTestLogWriter(t *testing.T) *testLogWriter {
	w := &testLogWriter{t: t}
	t.Cleanup(func() { // registered before the bridge's Stop, so it runs after it
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
