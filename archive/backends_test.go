package archive

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"go.mau.fi/util/dbutil"

	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

// One PostgreSQL cluster serves the whole test binary; TestMain stops it.
var (
	pgOnce    sync.Once
	pgCluster *devserver.Postgres
	pgErr     error
	pgDBCount atomic.Int32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		_ = pgCluster.Stop()
	}
	os.Exit(code)
}

func newPostgresEnv(t *testing.T, mutate ...func(*Options)) *testEnv {
	t.Helper()
	ctx := context.Background()
	pgOnce.Do(func() { pgCluster, pgErr = devserver.StartPostgres(ctx) })
	if pgErr != nil {
		t.Fatalf("starting PostgreSQL: %v", pgErr)
	}
	uri, err := pgCluster.CreateDatabase(ctx, fmt.Sprintf("archive_%d", pgDBCount.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dir: t.TempDir(), clock: &testClock{t: t0}}
	e.connect = func(t testing.TB) (*sql.DB, *dbutil.Database) {
		raw, err := sql.Open("postgres", uri)
		if err != nil {
			t.Fatal(err)
		}
		db, err := dbutil.NewWithDB(raw, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		return raw, db
	}
	return e.start(mutate...)
}

// TestBackends runs the archive's life cycle on both databases: the SQL has to mean the same on each.
func TestBackends(t *testing.T) {
	backends := []struct {
		name string
		env  func(t *testing.T, mutate ...func(*Options)) *testEnv
	}{
		{"sqlite", func(t *testing.T, m ...func(*Options)) *testEnv { return newEnv(t, m...) }},
		{"postgres", newPostgresEnv},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			env := b.env(t, func(o *Options) { o.CheckpointEvery = 4 })
			img := putMedia(t, env, "an image")
			for _, en := range conversation(t0) {
				env.append(en)
			}
			pic := textMessage(group, carol, "Carol", "P1", "photo", t0.Add(time.Minute))
			pic.Message.Media = []MediaRef{{SHA256: img, MimeType: "image/png"}}
			env.append(pic)
			if rep := env.verify(VerifyOptions{}); !rep.OK() || rep.MediaChecked != 1 {
				t.Fatalf("verify (media %d):%s", rep.MediaChecked, problemList(rep.Problems))
			}
			if _, err := env.a.AddHold(ctx, HoldChat, bob, "audit", "records@gov.example"); err != nil {
				t.Fatal(err)
			}
			env.clock.Set(t0.Add(11 * year))
			disp, err := env.a.Dispose(ctx, t0.Add(time.Hour), "records@gov.example")
			if err != nil {
				t.Fatal(err)
			}
			if disp.Entries == 0 || disp.Held == 0 || len(disp.Media) != 1 {
				t.Fatalf("disposal %+v: want entries, held entries and the image", disp)
			}
			var buf bytes.Buffer
			if _, err = env.a.Export(ctx, ExportFilter{User: bob, From: t0}, "records@gov.example", &buf); err != nil {
				t.Fatal(err)
			}
			if rep := verifyBundleBytes(t, buf.Bytes(), BundleOptions{TrustedKey: env.a.VerifierKey()}); !rep.OK() {
				t.Fatalf("bundle:%s", problemList(rep.Problems))
			}
			gaps, err := env.a.Gaps(ctx, t0, t0.Add(time.Hour))
			if err != nil || len(gaps) != 2 {
				t.Fatalf("gaps %+v (%v), want the undecryptable message and the disconnection", gaps, err)
			}
			st, err := env.a.Status(ctx)
			if err != nil || st.Disposed != disp.Entries || st.ActiveHolds != 1 || st.Latest == nil {
				t.Fatalf("status %+v (%v)", st, err)
			}

			env.reopen(false)
			if rep := env.verify(VerifyOptions{}); !rep.OK() || len(rep.Disposals) != 1 {
				t.Fatalf("verify after reopen:%s", problemList(rep.Problems))
			}
			// Entry 11 is in the held 1:1 chat, so it still has its body.
			orig := readBody(env, 11)
			body := bytes.Replace(orig, []byte("private"), []byte("public"), 1)
			if bytes.Equal(body, orig) {
				t.Fatalf("entry 11 is not the held message: %s", orig)
			}
			env.tamper(`UPDATE archive_entry SET body=$1 WHERE idx=11`, body)
			env.open(true)
			if rep := env.verify(VerifyOptions{}); !hasProblem(rep, ProblemBodyAltered, 11) {
				t.Fatalf("want %s at 11:%s", ProblemBodyAltered, problemList(rep.Problems))
			}
		})
	}
}
