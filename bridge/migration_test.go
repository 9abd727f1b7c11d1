package bridge_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/wasim"
	"github.com/rs/zerolog"
)

func TestMigrationToMatrix(t *testing.T) {
	cfg := configFor(t, "sqlite")
	permit(cfg, "user", "migrate_alice")
	dirFile := filepath.Join(t.TempDir(), "directory.csv")
	if err := os.WriteFile(dirFile, []byte("phone,matrix_id\n+49 155 51202,@dora_mx:localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Migration.DirectoryFile = dirFile
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "migrate_alice", "4915551201", "Alice M")
	dora := newPhone(t, "4915551202", "Dora")
	doraMX := registerUser(t, "dora_mx")
	ctx := context.Background()
	bot := cfg.BotUserID()
	if err := alice.phone.SetContacts(ctx,
		wasim.Contact{JID: dora.JID(), FullName: "Dora Vogel", FirstName: "Dora"},
		wasim.Contact{JID: types.NewJID("4915551203", types.DefaultUserServer), FullName: "Emil Brandt", FirstName: "Emil"},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := dora.SendText(ctx, alice.phone.JID(), "hi alice"); err != nil {
		t.Fatal(err)
	}
	room := alice.waitInvite(t, cfg.PuppetUserID("4915551202"))
	waitForReply(t, alice.mx, room, bot, time.Now().Add(-time.Minute), "also on Matrix as @dora_mx:localhost")

	waitForReply(t, alice.mx, room, bot, send(t, alice.mx, room, "!wa migrate"), "Invited you and @dora_mx:localhost")
	dmx := &waUser{mx: doraMX}
	native := dmx.waitInvite(t, bot)
	var aliceMember, doraMember event.MemberEventContent
	if err := doraMX.StateEvent(ctx, native, event.StateMember, string(alice.mx.UserID), &aliceMember); err != nil || aliceMember.Membership != event.MembershipInvite {
		t.Errorf("alice in the new chat: %+v %v", aliceMember, err)
	}
	if err := doraMX.StateEvent(ctx, native, event.StateMember, string(doraMX.UserID), &doraMember); err != nil || doraMember.Membership != event.MembershipJoin {
		t.Errorf("dora in the new chat: %+v %v", doraMember, err)
	}

	var report string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		report = waitForReply(t, alice.mx, alice.mgmt, bot, send(t, alice.mx, alice.mgmt, "migration-report"), "reachable on Matrix")
		if strings.Contains(report, "Emil") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, want := range []string{"1 of 2 reachable on Matrix", "Dora Vogel (WhatsApp) (+4915551202): on Matrix as @dora_mx:localhost", "Emil Brandt (WhatsApp) (+4915551203): WhatsApp only"} {
		if !strings.Contains(report, want) {
			t.Errorf("migration report lacks %q:\n%s", want, report)
		}
	}
}

func TestDirectoryFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, content, want string }{
		{"directory.csv", "phone,matrix_id\n4915550001,not-a-user\n", "line 2: \"not-a-user\" is not a Matrix user ID"},
		{"directory.csv", "4915550001 @x:example.org\n", "line 1: want phone,matrix_id"},
		{"directory.json", `["not", "an object"]`, "not a JSON object"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := configFor(t, "sqlite")
		cfg.Migration.DirectoryFile = path
		_, err := bridge.New(cfg, zerolog.Nop(), bridge.Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %q: error %v, want %q", tt.name, tt.content, err, tt.want)
		}
	}
}
