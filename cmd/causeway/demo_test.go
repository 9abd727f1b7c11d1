package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoArguments(t *testing.T) {
	occupied := t.TempDir()
	if err := os.WriteFile(filepath.Join(occupied, "config.yaml"), []byte("# an earlier demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"help", []string{"demo", "--help"}, 0, "Usage: causeway demo"},
		{"stray argument", []string{"demo", "now"}, exitUsage, `unexpected argument "now"`},
		{"unknown flag", []string{"demo", "--config", "x.yaml"}, exitUsage, "flag provided but not defined"},
		{"data dir of an earlier demo", []string{"demo", "--once", "--data", occupied}, exitFailure, "already holds a demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}

// TestDemoOnceThenArchiveVerify is the newcomer's path: `causeway demo --once --data DIR`
// plays the whole scenario against real Dendrite and simulated phones, and the archive it
// leaves passes `causeway archive verify -c DIR/config.yaml` from another directory.
func TestDemoOnceThenArchiveVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--once", "--data", dir}, &stdout, &stderr)
	t.Logf("demo output:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("demo --once exited %d: %s", code, stderr.String())
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
		tampered := rewriteZip(t, bundle, "entries.jsonl", func(b []byte) []byte {
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

// TestBenchmarksRun keeps both benchmarks working: small runs of `demo --bench` and
// `demo --bench-backfill` (the figures are for people; the test checks they come out and
// that the backfill's read-back found every room complete and in order).
func TestBenchmarksRun(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "causeway")
	build := exec.Command("go", "build", "-o", exe, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"relay", []string{"demo", "--bench", "--chats", "2", "--per-chat", "10"},
			[]string{"20 WhatsApp messages, 2 chats x 10", "messages/s", "bridge CPU", "Dendrite CPU"}},
		{"backfill", []string{"demo", "--bench-backfill", "--chats", "3", "--per-chat", "40", "--archive=false"},
			[]string{"120 history messages into 3 new rooms", "messages/s into Dendrite", "every room checked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(exe, tt.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", tt.args, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
