package devserver

import (
	"context"
	"database/sql"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestDendriteStartsRegistersAndRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := TempDir("causeway-dendrite-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	crashed := make(chan string, 1)
	d, err := StartDendrite(ctx, DendriteOptions{
		Dir: dir, Log: zerolog.New(zerolog.NewTestWriter(t)),
		OnCrash: func(exit error, logTail string) { crashed <- exit.Error() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	assertSQLiteDriver(t, d.binDir)

	alice, err := d.RegisterUser(ctx, "alice", "correct horse battery", false)
	if err != nil {
		t.Fatal(err)
	}
	who, err := alice.Whoami(ctx)
	if err != nil || who.UserID != "@alice:localhost" {
		t.Fatalf("whoami = %+v, %v", who, err)
	}
	// State survives a restart: the same token still works afterwards.
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Whoami(ctx); err == nil {
		t.Fatal("stopped server still answers")
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if who, err := alice.Whoami(ctx); err != nil || who.UserID != "@alice:localhost" {
		t.Fatalf("after restart whoami = %+v, %v", who, err)
	}
	// Stop and Start above were asked for; an exit nobody asked for is reported.
	select {
	case exit := <-crashed:
		t.Fatalf("OnCrash called for a requested stop: %s", exit)
	default:
	}
	if err := syscall.Kill(d.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case exit := <-crashed:
		if !strings.Contains(exit, "killed") {
			t.Errorf("OnCrash exit = %q, want the signal named", exit)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Dendrite killed behind the harness's back, and OnCrash was not called")
	}
}

// assertSQLiteDriver checks which SQLite the built Dendrite links: mattn/go-sqlite3 (cgo)
// whenever a C compiler is there, since the pure-Go one wedges (EnsureDendrite says why).
func assertSQLiteDriver(t *testing.T, binDir string) {
	t.Helper()
	info, err := buildinfo.ReadFile(filepath.Join(binDir, "dendrite"))
	if err != nil {
		t.Fatal(err)
	}
	var mattn bool
	for _, dep := range info.Deps {
		mattn = mattn || dep.Path == "github.com/mattn/go-sqlite3"
	}
	if haveCCompiler() && !mattn {
		t.Errorf("a C compiler is on PATH, yet %s was built without mattn/go-sqlite3 (pure-Go SQLite)", binDir)
	}
}

func TestPostgres(t *testing.T) {
	ctx := context.Background()
	pg, err := StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	uri, err := pg.CreateDatabase(ctx, "devserver_test")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version == "" {
		t.Fatal("empty server_version")
	}
	if _, err := pg.CreateDatabase(ctx, "bad name; drop"); err == nil {
		t.Fatal("accepted an unsafe database name")
	}
}
