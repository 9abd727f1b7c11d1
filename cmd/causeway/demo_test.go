package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"codeberg.org/causeway/causeway/internal/harness/demo"
	"codeberg.org/causeway/causeway/internal/harness/ziptest"
)

// TestDemoOnceThenArchiveVerify is the newcomer's path: `causeway-demo --once --data DIR`
// plays the whole scenario against real Dendrite and simulated phones, and the archive it
// leaves passes `causeway archive verify -c DIR/config.yaml` from another directory. The demo
// runs here through demo.Run, what causeway-demo calls: a test may link the harness, the
// binary may not (TestProductionBinaryDeps).
func TestDemoOnceThenArchiveVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	var sent []demo.SentFile
	err := demo.Run(t.Context(), demo.Options{DataDir: dir, Once: true, Out: &stdout,
		SentFiles: func(f demo.SentFile) { sent = append(sent, f) }})
	t.Logf("demo output:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("the demo with Once failed: %v", err)
	}
	for _, want := range []string{"Every step was verified", "@demo:localhost", "password    demo-", "homeserver  http://127.0.0.1:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(stdout.String(), "FAILED") {
		t.Errorf("demo output reports a failure")
	}
	for _, name := range []string{"config.yaml", "registration.yaml", "causeway.log", "causeway.db", "archive/keys/archive-signing.pub"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("the data directory lacks %s: %v", name, err)
		}
	}

	// The config's paths must not depend on the directory the demo ran in.
	t.Chdir(t.TempDir())
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"archive", "verify", "-c", filepath.Join(dir, "config.yaml")}, &stdout, &stderr); code != 0 {
		t.Fatalf("archive verify exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "OK") || !strings.Contains(stdout.String(), "media blob") {
		t.Errorf("archive verify output:\n%s", stdout.String())
	}

	// An export of everything the demo captured verifies offline, and one changed byte in
	// any entry breaks it.
	bundle := filepath.Join(t.TempDir(), "demo-bundle.zip")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"archive", "export", "-c", filepath.Join(dir, "config.yaml"), "--out", bundle, "--actor", "test"}, &stdout, &stderr); code != 0 {
		t.Fatalf("archive export exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"archive", "verify-bundle", bundle}, &stdout, &stderr); code != 0 {
		t.Fatalf("verify-bundle of the demo export exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	checkSentFilesInBundle(t, bundle, sent)
	lines := 0
	if zr, err := zip.OpenReader(bundle); err == nil {
		for _, zf := range zr.File {
			if zf.Name == "entries.jsonl" {
				rc, _ := zf.Open()
				data, _ := io.ReadAll(rc)
				rc.Close()
				lines = bytes.Count(data, []byte("\n"))
			}
		}
		zr.Close()
	}
	if lines < 10 {
		t.Fatalf("the demo export has %d entries", lines)
	}
	for _, line := range []int{0, lines / 2, lines - 1} {
		tampered := ziptest.Rewrite(t, bundle, "entries.jsonl", func(b []byte) []byte {
			rows := bytes.Split(b, []byte("\n"))
			row := rows[line]
			i := bytes.Index(row, []byte(`"kind"`)) + len(`"kind":"`) + 1
			row[i] ^= 0x01
			return b
		})
		stdout.Reset()
		if code := run([]string{"archive", "verify-bundle", tampered}, &stdout, &stderr); code != 1 {
			t.Errorf("verify-bundle accepted a bundle with entry line %d changed (exit %d):\n%s", line, code, stdout.String())
		}
	}
}

// checkSentFilesInBundle: the export holds the bytes of every image (and every other file) the
// Matrix user sent, under media/ by their SHA-256, so the record still shows what an official
// sent once WhatsApp's copy has expired.
func checkSentFilesInBundle(t *testing.T, bundle string, sent []demo.SentFile) {
	t.Helper()
	images := 0
	for _, f := range sent {
		if f.MsgType == event.MsgImage {
			images++
		}
	}
	if images == 0 || len(sent) < 2 {
		t.Fatalf("the demo reported %d files sent from Matrix, %d of them images: it sends a photo and a file", len(sent), images)
	}
	zr, err := zip.OpenReader(bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	media := map[string]*zip.File{}
	for _, zf := range zr.File {
		if strings.HasPrefix(zf.Name, "media/") {
			media[strings.TrimPrefix(zf.Name, "media/")] = zf
		}
	}
	for _, f := range sent {
		sum := sha256.Sum256(f.Data)
		want := hex.EncodeToString(sum[:])
		zf, ok := media[want]
		if !ok {
			t.Errorf("the export lacks the %s %s sent from Matrix (SHA-256 %s; it holds %d media files)", f.MsgType, f.Name, want, len(media))
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("media/%s in the export hashes to %s, not to the %s sent", want, got, f.Name)
		}
	}
}
