package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendVerifyReopen(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.CheckpointEvery = 5 })
	ctx := context.Background()
	var last Appended
	for _, en := range conversation(t0) {
		last = env.append(en)
	}
	// archive_started is entry 0.
	if want := uint64(len(conversation(t0))); last.Index != want {
		t.Fatalf("last index %d, want %d", last.Index, want)
	}
	rep := env.verify(VerifyOptions{})
	if !rep.OK() {
		t.Fatalf("fresh archive fails verify:%s", problemList(rep.Problems))
	}
	if rep.Size != last.Index+1 || rep.BodiesChecked != rep.Size {
		t.Fatalf("size %d, bodies checked %d, want %d", rep.Size, rep.BodiesChecked, last.Index+1)
	}
	if rep.Checkpoints < 3 {
		t.Fatalf("%d checkpoints for %d entries every 5, want at least 3", rep.Checkpoints, rep.Size)
	}
	vkey := env.a.VerifierKey()

	env.reopen(false)
	if env.a.VerifierKey() != vkey {
		t.Fatal("key changed across restart")
	}
	app := env.append(textMessage(alice, alice, "Alice", "X1", "after restart", t0.Add(time.Hour)))
	// Size before + archive_stopped + archive_started.
	if want := rep.Size + 2; app.Index != want {
		t.Fatalf("index after reopen %d, want %d", app.Index, want)
	}
	rep = env.verify(VerifyOptions{})
	if !rep.OK() {
		t.Fatalf("reopened archive fails verify:%s", problemList(rep.Problems))
	}
	// The restart left a trace a ledger can read, and every original body is still there.
	var started *Entry
	for _, i := range []uint64{app.Index - 1} {
		got, err := env.a.Entry(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		started = got
	}
	if started.Kind != KindArchiveStarted || started.Completeness == nil || started.Completeness.Reason != "restart" {
		t.Fatalf("entry before the new message is %+v, want archive_started after a clean restart", started)
	}
	revoked, err := env.a.Entry(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.Message == nil || revoked.Message.Text != "Let's not put the number in writing" {
		t.Fatalf("entry 8 is %+v, want the revoked message with its original text", revoked)
	}
	cp, err := env.a.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = ParseCheckpoint(cp.Note, vkey); err != nil {
		t.Fatalf("latest checkpoint does not verify with the exported key: %v", err)
	}
}

func TestTamperIsCaughtAndNamed(t *testing.T) {
	type tamperCase struct {
		name   string
		tamper func(env *testEnv)
		code   string
		index  int64
	}
	cases := []tamperCase{
		{"body changed", func(env *testEnv) {
			body := readBody(env, 4)
			body = bytes.Replace(body, []byte("Tender closes Friday"), []byte("Tender closes Monday"), 1)
			env.tamper(`UPDATE archive_entry SET body=$1 WHERE idx=4`, body)
		}, ProblemBodyAltered, 4},
		{"body deleted without disposal", func(env *testEnv) {
			env.tamper(`UPDATE archive_entry SET body=NULL, salt=NULL WHERE idx=8`)
		}, ProblemBodyMissing, 8},
		{"two entries swapped, first", swapRows(5, 11), ProblemEntryMisplaced, 5},
		{"two entries swapped, second", swapRows(5, 11), ProblemEntryMisplaced, 11},
		{"log truncated", func(env *testEnv) {
			env.tamper(`DELETE FROM archive_entry WHERE idx >= 15`)
		}, ProblemLogTruncated, 15},
		{"row removed from the middle", func(env *testEnv) {
			env.tamper(`DELETE FROM archive_entry WHERE idx = 9`)
		}, ProblemEntryMissing, 9},
		{"body re-committed with a fresh leaf", func(env *testEnv) {
			// The forger rewrites body and leaf consistently; the successor's back-link names the entry.
			body := bytes.Replace(readBody(env, 5), []byte("sending the figures now"), []byte("no figures exist"), 1)
			env.tamper(`UPDATE archive_entry SET body=$1, commitment=$2 WHERE idx=5`, body, commit(readSalt(env, 5), body))
		}, ProblemChainBroken, 5},
		{"query column changed", func(env *testEnv) {
			env.tamper(`UPDATE archive_entry SET chat='someone-else@s.whatsapp.net' WHERE idx=11`)
		}, ProblemIndexAltered, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, func(o *Options) { o.CheckpointEvery = 4 })
			for _, en := range conversation(t0) {
				env.append(en)
			}
			env.shutdown() // final checkpoint covers everything
			tc.tamper(env)
			env.open(true)
			rep := env.verify(VerifyOptions{})
			if rep.OK() {
				t.Fatal("verify passed a tampered archive")
			}
			if !hasProblem(rep, tc.code, tc.index) {
				t.Fatalf("want %s naming entry %d, got:%s", tc.code, tc.index, problemList(rep.Problems))
			}
			t.Logf("reported:%s", problemList(rep.Problems))
		})
	}
}

func TestRollbackCaughtByOutsideCheckpoint(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	for _, en := range conversation(t0)[:8] {
		env.append(en)
	}
	env.shutdown()
	snapshot := copyDB(t, env.dbPath)

	env.open(false)
	for _, en := range conversation(t0)[8:] {
		env.append(en)
	}
	env.shutdown()
	env.open(true)
	later, err := env.a.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env.shutdown()

	restoreDB(t, env.dbPath, snapshot)
	env.open(true)
	if rep := env.verify(VerifyOptions{}); !rep.OK() {
		t.Fatalf("a rolled-back copy is self-consistent and should pass on its own:%s", problemList(rep.Problems))
	}
	rep := env.verify(VerifyOptions{Checkpoint: later.Note})
	if !hasProblem(rep, ProblemRolledBack, int64(rep.Size)) {
		t.Fatalf("want %s naming entry %d, got:%s", ProblemRolledBack, rep.Size, problemList(rep.Problems))
	}

	// The operator keeps running on the restored copy: the log grows past the outside checkpoint's size,
	// but its history differs.
	env.reopen(false)
	for _, en := range conversation(t0) {
		env.append(en)
	}
	env.reopen(true)
	rep = env.verify(VerifyOptions{Checkpoint: later.Note})
	if !hasProblem(rep, ProblemExternalMismatch, -1) {
		t.Fatalf("want %s, got:%s", ProblemExternalMismatch, problemList(rep.Problems))
	}
	// And an honest outside checkpoint passes.
	env.reopen(true)
	cur, err := env.a.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep = env.verify(VerifyOptions{Checkpoint: cur.Note}); !rep.OK() {
		t.Fatalf("current checkpoint as outside checkpoint fails:%s", problemList(rep.Problems))
	}
}

func TestMediaStoredOnceAndVerified(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	img := bytes.Repeat([]byte("\x89PNG fake image "), 100)
	sha1, n1, err := env.a.PutMedia(ctx, bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	sha2, _, err := env.a.PutMedia(ctx, bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if sha1 != sha2 || n1 != int64(len(img)) {
		t.Fatalf("same content stored as %s and %s (size %d)", sha1, sha2, n1)
	}
	files, _ := filepath.Glob(filepath.Join(env.opts.MediaDir, "*", "*"))
	if len(files) != 1 {
		t.Fatalf("media dir holds %v, want one file", files)
	}
	en := textMessage(group, alice, "Alice", "M1", "photo", t0)
	en.Message.Type = "image"
	en.Message.Media = []MediaRef{{SHA256: sha1, MimeType: "image/png", Size: n1}}
	app := env.append(en)
	if rep := env.verify(VerifyOptions{}); !rep.OK() || rep.MediaChecked != 1 {
		t.Fatalf("verify with media: checked %d:%s", rep.MediaChecked, problemList(rep.Problems))
	}
	if err = os.WriteFile(files[0], append(img, 'x'), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := env.verify(VerifyOptions{})
	if !hasProblem(rep, ProblemMediaAltered, int64(app.Index)) {
		t.Fatalf("want %s naming entry %d, got:%s", ProblemMediaAltered, app.Index, problemList(rep.Problems))
	}
	if err = os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	rep = env.verify(VerifyOptions{})
	if !hasProblem(rep, ProblemMediaMissing, int64(app.Index)) {
		t.Fatalf("want %s naming entry %d, got:%s", ProblemMediaMissing, app.Index, problemList(rep.Problems))
	}
}

func TestAuditKindsRefusedFromOutside(t *testing.T) {
	env := newEnv(t)
	for _, k := range []Kind{KindDisposal, KindHoldAdded, KindHoldRemoved, KindExport} {
		if _, err := env.a.Append(context.Background(), &Entry{Kind: k}); err == nil {
			t.Errorf("Append accepted a forged %s entry", k)
		}
	}
}

func TestWritesRefusedReadOnlyAndAfterClose(t *testing.T) {
	env := newEnv(t)
	env.reopen(true)
	if _, err := env.a.Append(context.Background(), textMessage(alice, alice, "", "1", "x", t0)); err == nil || !strings.Contains(err.Error(), ErrReadOnly.Error()) {
		t.Fatalf("read-only append: %v", err)
	}
	env.reopen(false)
	a := env.a
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(context.Background(), textMessage(alice, alice, "", "1", "x", t0)); err == nil || !strings.Contains(err.Error(), ErrClosed.Error()) {
		t.Fatalf("append after close: %v", err)
	}
}

func readBody(env *testEnv, idx int) []byte {
	env.t.Helper()
	return readColumn(env, "body", idx)
}

func readSalt(env *testEnv, idx int) []byte {
	env.t.Helper()
	return readColumn(env, "salt", idx)
}

func readColumn(env *testEnv, col string, idx int) []byte {
	env.t.Helper()
	raw, _ := env.connect(env.t)
	defer raw.Close()
	var b []byte
	if err := raw.QueryRow(`SELECT `+col+` FROM archive_entry WHERE idx=$1`, idx).Scan(&b); err != nil {
		env.t.Fatal(err)
	}
	return b
}

func commit(salt, body []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(body)
	return h.Sum(nil)
}

func swapRows(i, j int) func(env *testEnv) {
	return func(env *testEnv) {
		env.tamper(`UPDATE archive_entry SET idx = CASE idx WHEN $1 THEN -1 ELSE idx END WHERE idx=$1`, i)
		env.tamper(`UPDATE archive_entry SET idx=$1 WHERE idx=$2`, i, j)
		env.tamper(`UPDATE archive_entry SET idx=$1 WHERE idx=-1`, j)
	}
}

func copyDB(t *testing.T, path string) []byte {
	t.Helper()
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatalf("WAL still present after close; snapshot would be incomplete")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func restoreDB(t *testing.T, path string, data []byte) {
	t.Helper()
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTimedCheckpoint(t *testing.T) {
	env := newEnv(t, func(o *Options) {
		o.Now = time.Now
		o.CheckpointInterval = 10 * time.Millisecond
	})
	app := env.append(textMessage(alice, alice, "Alice", "T1", "hello", time.Now()))
	// Polled, not timed: the assertion is that a checkpoint covering the entry appears without Close.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp, err := env.a.LatestCheckpoint(context.Background())
		if err == nil && cp.Size > app.Index {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no timed checkpoint covering entry %d (latest: %+v, %v)", app.Index, cp, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
