package bridge_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/devserver"
)

// TestUnixSocketAppservice runs a bridge whose appservice.address is a unix:// URL against
// a Dendrite of its own (the registration is read at its start): the bridge listens on the
// socket instead of a port, and the bot answers commands, which only transactions pushed
// over the socket deliver. A second bridge start reuses the socket path its predecessor
// left behind.
func TestUnixSocketAppservice(t *testing.T) {
	dir, err := devserver.TempDir("causeway-unix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	hsPort, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := configFor(t, "sqlite")
	cfg.Homeserver.Address = fmt.Sprintf("http://127.0.0.1:%d", hsPort)
	sock := filepath.Join(dir, "appservice.sock")
	cfg.Appservice.Address = "unix://" + sock
	cfg.Appservice.Port = 0 // not used with a socket, and validation must not ask for it
	permit(cfg, "user", "unixuser")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	regPath := filepath.Join(dir, "registration.yaml")
	if err := config.SaveRegistration(cfg.Registration(), regPath); err != nil {
		t.Fatal(err)
	}
	own, err := devserver.StartDendrite(context.Background(), devserver.DendriteOptions{
		Dir: filepath.Join(dir, "dendrite"), Port: hsPort, RegistrationFile: regPath, Log: zerolog.New(newTestLogWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Stop() })

	br := startBridge(t, cfg)
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the bridge does not listen on %s: %v", sock, err)
	}
	user, err := own.RegisterUser(context.Background(), "unixuser", "password-unixuser", false)
	if err != nil {
		t.Fatal(err)
	}
	bot := cfg.BotUserID()
	start := time.Now()
	room := openDM(t, user, bot)
	waitForReply(t, user, room, bot, start, "This is your management room")
	waitForReply(t, user, room, bot, send(t, user, room, "ping"), "not logged in")

	if err := br.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A crashed bridge leaves its socket file; the next start must not fail on it.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()
	startBridge(t, cfg)
	waitForReply(t, user, room, bot, send(t, user, room, "ping"), "not logged in")
}
