package main

import (
	"bytes"
	"errors"
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
		{"help", []string{"--help"}, 0, "Usage: causeway-demo"},
		{"stray argument", []string{"now"}, exitUsage, `unexpected argument "now"`},
		{"unknown flag", []string{"--config", "x.yaml"}, exitUsage, "flag provided but not defined"},
		{"bad bench size", []string{"--bench", "--chats", "0"}, exitUsage, "--chats and --per-chat must be at least 1"},
		{"encrypted backfill", []string{"--bench-backfill", "--encrypted"}, exitUsage, "not --bench-backfill"},
		{"data dir of an earlier demo", []string{"--once", "--data", occupied}, exitFailure, "already holds a demo"},
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

// TestBenchmarksRun keeps both benchmarks working: small runs of `--bench` and
// `--bench-backfill` (the figures are for people; the test checks they come out and that the
// backfill's read-back found every room complete and in order). It runs the built binary, as
// people do, because the benchmark starts its bridge process from that same binary.
func TestBenchmarksRun(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "causeway-demo")
	build := exec.Command("go", "build", "-tags", "goolm", "-o", exe, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"relay", []string{"--bench", "--chats", "2", "--per-chat", "10"},
			[]string{"encryption off: 20 WhatsApp messages, 2 chats x 10", "messages/s", "bridge CPU", "Dendrite CPU"}},
		{"relay encrypted", []string{"--bench", "--encrypted", "--chats", "2", "--per-chat", "10"},
			[]string{"encryption on: 20 WhatsApp messages, 2 chats x 10", "of which 0.25 ms for encryption", "Dendrite CPU"}},
		{"backfill", []string{"--bench-backfill", "--chats", "3", "--per-chat", "40", "--archive=false"},
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

// TestDemoWithoutGoolmBuildsItselfWithIt: the README's `go run ./cmd/causeway-demo --once` has
// no build tags, so its demo has no Matrix encryption; asked for encryption, it builds itself
// again with -tags goolm and runs that build with the same arguments. Here the arguments name
// a directory an earlier demo holds, so the rebuilt demo stops right after it started: that it
// refused the directory, and did not say it lacks encryption, shows that it ran. With
// --encrypted=false nothing is rebuilt.
func TestDemoWithoutGoolmBuildsItselfWithIt(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "causeway-demo")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build without tags: %v\n%s", err, out)
	}
	occupied := t.TempDir()
	if err := os.WriteFile(filepath.Join(occupied, "config.yaml"), []byte("# an earlier demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	tests := []struct {
		name         string
		args         []string
		want, absent []string
	}{
		{"encrypted", []string{"--once", "--data", occupied},
			[]string{"building the demo with it", "already holds a demo"},
			[]string{"has no Matrix encryption", "could not build"}},
		{"--encrypted=false", []string{"--once", "--encrypted=false", "--data", occupied},
			[]string{"already holds a demo"},
			[]string{"building the demo", "has no Matrix encryption"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, tt.args...)
			cmd.Env = append(os.Environ(), "CAUSEWAY_CACHE_DIR="+cache, rebuiltEnv+"=")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
				t.Fatalf("%v: %v, want exit %d\n%s", tt.args, err, exitFailure, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(string(out), a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
		})
	}
}
