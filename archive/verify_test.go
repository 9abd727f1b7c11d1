package archive

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// forgeTail does what an attacker with write access to the database but not to the signing key can do:
// cut the log at from and append entries of their own, with salts, commitments and back-links
// recomputed so that every body matches its leaf and its predecessor.
func forgeTail(env *testEnv, from uint64, entries []*Entry) {
	env.t.Helper()
	env.shutdown()
	raw, _ := env.connect(env.t)
	defer raw.Close()
	if _, err := raw.Exec(`DELETE FROM archive_entry WHERE idx >= $1`, int64(from)); err != nil {
		env.t.Fatal(err)
	}
	var prevCommitment []byte
	if err := raw.QueryRow(`SELECT commitment FROM archive_entry WHERE idx=$1`, int64(from)-1).Scan(&prevCommitment); err != nil {
		env.t.Fatal(err)
	}
	prev := hasher.HashLeaf(prevCommitment)
	captured := t0.Add(time.Hour)
	for i, en := range entries {
		idx := from + uint64(i)
		payload, err := encodeEntry(en)
		if err != nil {
			env.t.Fatal(err)
		}
		salt := make([]byte, 32)
		_, _ = rand.Read(salt)
		body := buildBody(payload, captured, idx, prev)
		c := commit(salt, body)
		_, err = raw.Exec(`INSERT INTO archive_entry (idx, commitment, kind, account, chat, sender, event_ts, captured_ts, salt, body)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, int64(idx), c, string(en.Kind), en.Account, en.Chat, en.Sender,
			eventTime(en, captured).UnixMilli(), captured.UnixMilli(), salt, body)
		if err != nil {
			env.t.Fatal(err)
		}
		prev = hasher.HashLeaf(c)
	}
}

// substituteKey replaces the key pair next to the archive and the key the database pinned, as someone
// who cannot read the operator's private key but can write the host's files would.
func substituteKey(env *testEnv) {
	env.t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, env.opts.Origin)
	if err != nil {
		env.t.Fatal(err)
	}
	for name, data := range map[string]string{signingKeyFile: skey, verifierKeyFile: vkey} {
		path := filepath.Join(env.opts.KeyDir, name)
		if err = os.WriteFile(path, []byte(data+"\n"), 0o600); err != nil {
			env.t.Fatal(err)
		}
	}
	env.tamper(`UPDATE archive_key SET verifier=$1`, vkey)
}

// TestVerifyCatchesDeletedCheckpoints: checkpoints are the only thing in the archive an attacker without
// the signing key cannot make, so deleting them must not make a rewritten log pass. Every run is
// checkpointed when it starts and when it ends (or, after a crash, when the next one starts), so only the
// tail of the run still going may lack a checkpoint.
func TestVerifyCatchesDeletedCheckpoints(t *testing.T) {
	forged := []*Entry{
		textMessage(group, carol, "Carol", "3EB0F1", "Nothing was agreed", t0.Add(30*time.Minute)),
		{Kind: KindArchiveStopped, Time: t0.Add(31 * time.Minute)},
	}
	cases := []struct {
		name     string
		runs     int  // clean runs before the tamper
		crash    bool // the last run crashed instead (no Close), and nobody restarted it
		tamper   func(env *testEnv)
		trustKey bool // verify with the operator's key, as --key does
		wantOK   bool
	}{
		{name: "honest, one run", runs: 1, wantOK: true},
		{name: "honest, three runs", runs: 3, trustKey: true, wantOK: true},
		{name: "honest, crashed and not restarted", runs: 2, crash: true, trustKey: true, wantOK: true},
		{name: "checkpoints deleted", runs: 1, tamper: func(env *testEnv) {
			env.tamper(`DELETE FROM archive_checkpoint`)
		}},
		{name: "checkpoints deleted and tail rewritten", runs: 1, tamper: func(env *testEnv) {
			env.tamper(`DELETE FROM archive_checkpoint`)
			forgeTail(env, 15, forged)
		}},
		{name: "checkpoints deleted and tail rewritten, key given", runs: 2, trustKey: true, tamper: func(env *testEnv) {
			env.tamper(`DELETE FROM archive_checkpoint`)
			forgeTail(env, 15, forged)
		}},
		{name: "tail rewritten to look like a crash", runs: 2, trustKey: true, tamper: func(env *testEnv) {
			var last int64
			env.shutdown()
			raw, _ := env.connect(env.t)
			_ = raw.QueryRow(`SELECT MAX(idx) FROM archive_entry WHERE kind='archive_started'`).Scan(&last)
			raw.Close()
			env.tamper(`DELETE FROM archive_checkpoint WHERE size > $1`, last)
			forgeTail(env, uint64(last)+1, forged[:1])
		}},
		{name: "key substituted, checkpoints deleted, tail rewritten", runs: 1, trustKey: true, tamper: func(env *testEnv) {
			substituteKey(env)
			env.tamper(`DELETE FROM archive_checkpoint`)
			forgeTail(env, 15, forged)
		}},
		{name: "key substituted and checkpoints re-signed by a restart", runs: 1, trustKey: true, tamper: func(env *testEnv) {
			substituteKey(env)
			env.tamper(`DELETE FROM archive_checkpoint`)
			forgeTail(env, 15, forged)
			env.open(false) // signs with the substituted key
			env.shutdown()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			operatorKey := env.a.VerifierKey()
			for run := 0; run < tc.runs; run++ {
				if run > 0 {
					env.clock.Set(t0.Add(time.Duration(run) * time.Hour))
					env.reopen(false)
				}
				for _, en := range conversation(t0.Add(time.Duration(run) * time.Hour)) {
					env.append(en)
				}
			}
			if tc.crash {
				env.clock.Set(t0.Add(time.Duration(tc.runs) * time.Hour))
				env.reopen(false)
				env.append(textMessage(alice, alice, "Alice", "3EB0E1", "just before the crash", env.clock.Now()))
				env.a = nil // abandoned, as a killed process would leave it
				env.raw.Close()
				env.raw = nil
			}
			env.shutdown()
			if tc.tamper != nil {
				tc.tamper(env)
			}
			env.open(true)
			var opts VerifyOptions
			if tc.trustKey {
				opts.TrustedKey = operatorKey
			}
			rep := env.verify(opts)
			if rep.OK() != tc.wantOK {
				t.Fatalf("verify OK=%v, want %v:%s", rep.OK(), tc.wantOK, problemList(rep.Problems))
			}
			if !tc.wantOK && !hasCode(rep.Problems, ProblemCheckpointMissing) && !hasCode(rep.Problems, ProblemCheckpointInvalid) {
				t.Fatalf("want %s or %s, got:%s", ProblemCheckpointMissing, ProblemCheckpointInvalid, problemList(rep.Problems))
			}
			t.Logf("reported:%s", problemList(rep.Problems))
		})
	}
}

// TestVerifyAfterCrashRecovery: a start after a crash signs a checkpoint for what the crashed run left
// unsigned and says so in its archive_started entry, so the archive verifies without a gap in coverage.
func TestVerifyAfterCrashRecovery(t *testing.T) {
	env := newEnv(t)
	for _, en := range conversation(t0) {
		env.append(en)
	}
	last := env.append(textMessage(alice, alice, "Alice", "3EB0E1", "just before the crash", t0.Add(time.Hour)))
	env.crash()
	env.clock.Set(t0.Add(2 * time.Hour))
	env.open(false)
	ctx := context.Background()
	started, err := env.a.Entry(ctx, last.Index+1)
	if err != nil {
		t.Fatal(err)
	}
	if started.Kind != KindArchiveStarted || started.Completeness == nil || started.Completeness.Checkpoint != last.Index+1 {
		t.Fatalf("entry after the crash is %+v, want archive_started recording a checkpoint at size %d", started, last.Index+1)
	}
	if _, err = env.a.CheckpointAt(ctx, last.Index+1); err != nil {
		t.Fatalf("no recovery checkpoint at size %d: %v", last.Index+1, err)
	}
	if rep := env.verify(VerifyOptions{TrustedKey: env.a.VerifierKey()}); !rep.OK() {
		t.Fatalf("verify after crash recovery:%s", problemList(rep.Problems))
	}
	// The recovery checkpoint is what the record promises: without it the record is a lie.
	env.tamper(`DELETE FROM archive_checkpoint WHERE size=$1`, int64(last.Index+1))
	env.open(true)
	if rep := env.verify(VerifyOptions{}); !hasProblem(rep, ProblemCheckpointMissing, int64(last.Index+1)) {
		t.Fatalf("want %s naming entry %d, got:%s", ProblemCheckpointMissing, last.Index+1, problemList(rep.Problems))
	}
}

func hasCode(ps []Problem, code string) bool {
	for _, p := range ps {
		if p.Code == code {
			return true
		}
	}
	return false
}

// TestVerifyCatchesDeletedMedia: verify checks every media blob an entry names, not only those the
// inventory table lists, so deleting a photo's row and file together does not hide its loss. Blobs a
// recorded disposal removed are the exception.
func TestVerifyCatchesDeletedMedia(t *testing.T) {
	cases := []struct {
		name    string
		dispose bool // the photo's entry is disposed of by retention first
		tamper  func(env *testEnv, sha string)
		wantOK  bool
		code    string // the problem naming the photo's entry; media_missing when empty
	}{
		{name: "intact", wantOK: true},
		{name: "disposed by a recorded disposal", dispose: true, wantOK: true},
		{name: "row and file gone", tamper: func(env *testEnv, sha string) {
			env.tamper(`DELETE FROM archive_media WHERE sha256=$1`, sha)
			removeMediaFile(env, sha)
		}},
		{name: "row, file and references gone", tamper: func(env *testEnv, sha string) {
			env.tamper(`DELETE FROM archive_media WHERE sha256=$1`, sha)
			env.tamper(`DELETE FROM archive_entry_media WHERE sha256=$1`, sha)
			removeMediaFile(env, sha)
		}},
		{name: "marked disposed, file gone", tamper: func(env *testEnv, sha string) {
			env.tamper(`UPDATE archive_media SET disposed_ts=1 WHERE sha256=$1`, sha)
			removeMediaFile(env, sha)
		}, code: ProblemMediaDisposedUnlogged},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			sha := putMedia(t, env, "\x89PNG\r\n\x1a\n the site photo")
			for _, en := range conversation(t0) {
				env.append(en)
			}
			pic := textMessage(group, alice, "Alice", "3EB0C1", "Site photo", t0.Add(30*time.Minute))
			pic.Message.Type = "image"
			pic.Message.Media = []MediaRef{{SHA256: sha, MimeType: "image/png", FileName: "site.png"}}
			photo := env.append(pic)
			if tc.dispose {
				env.clock.Set(t0.Add(11 * year))
				if _, err := env.a.Dispose(context.Background(), t0.Add(time.Hour), "records@gov.example"); err != nil {
					t.Fatal(err)
				}
			}
			env.shutdown()
			if tc.tamper != nil {
				tc.tamper(env, sha)
			}
			env.open(true)
			rep := env.verify(VerifyOptions{})
			if rep.OK() != tc.wantOK {
				t.Fatalf("verify OK=%v, want %v:%s", rep.OK(), tc.wantOK, problemList(rep.Problems))
			}
			code := tc.code
			if code == "" {
				code = ProblemMediaMissing
			}
			if !tc.wantOK && !hasProblem(rep, code, int64(photo.Index)) {
				t.Fatalf("want %s naming entry %d, got:%s", code, photo.Index, problemList(rep.Problems))
			}
			t.Logf("reported:%s", problemList(rep.Problems))
		})
	}
}

func removeMediaFile(env *testEnv, sha string) {
	env.t.Helper()
	if err := os.Remove(filepath.Join(env.opts.MediaDir, sha[:2], sha)); err != nil {
		env.t.Fatal(err)
	}
}
