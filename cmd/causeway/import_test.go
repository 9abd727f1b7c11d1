package main

import (
	"bytes"
	"codeberg.org/causeway/causeway/internal/harness/configtest"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportCommandLine covers what `causeway import` decides before the bridge answers; the
// import itself runs against a real bridge in the bridge package's TestImportChatExport.
func TestImportCommandLine(t *testing.T) {
	// A port nothing listens on: taken, then freed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	token := strings.Repeat("a", 64)
	configured := configtest.WriteExample(t,
		"as_token: generate", "as_token: "+token, "hs_token: generate", "hs_token: "+strings.Repeat("b", 64),
		"port: 29318", fmt.Sprintf("port: %d", port))
	placeholder := configtest.WriteExample(t)
	zipPath := filepath.Join(t.TempDir(), "export.zip")
	if err := os.WriteFile(zipPath, []byte("PK\x05\x06"+strings.Repeat("\x00", 18)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"help", []string{"--help"}, 0, "Usage: causeway import -c config.yaml --chat JID"},
		{"no file", []string{"-c", configured, "--chat", "4917612345678"}, exitUsage, "expected one FILE.zip besides the options, got 0"},
		{"two files", []string{"-c", configured, "--chat", "4917612345678", zipPath, zipPath}, exitUsage, "got 2"},
		{"no chat", []string{"-c", configured, zipPath}, exitUsage, "--chat is required"},
		{"bad time zone", []string{"-c", configured, "--chat", "4917612345678", "--tz", "CEST+2", zipPath}, exitUsage, `--tz: time zone "CEST+2" is not an IANA zone name`},
		{"no config", []string{"-c", filepath.Join(t.TempDir(), "missing.yaml"), "--chat", "4917612345678", zipPath}, exitUsage, "bad config"},
		{"tokens not generated", []string{"-c", placeholder, "--chat", "4917612345678", zipPath}, exitUsage, "has no appservice.as_token yet"},
		{"missing zip", []string{"-c", configured, "--chat", "4917612345678", zipPath + ".nope"}, exitFailure, "no such file"},
		{"bridge not running", []string{"-c", configured, "--chat", "4917612345678", zipPath}, exitFailure,
			fmt.Sprintf("is the bridge running at http://127.0.0.1:%d?", port)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"import"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}
