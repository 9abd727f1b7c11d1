package devserver

import (
	"context"
	"database/sql"
	"os"
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
	d, err := StartDendrite(ctx, DendriteOptions{Dir: dir, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })

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
