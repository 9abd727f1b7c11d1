package main

import (
	"bytes"
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
			[]string{"20 WhatsApp messages, 2 chats x 10", "messages/s", "bridge CPU", "Dendrite CPU"}},
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
