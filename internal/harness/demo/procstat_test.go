package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCPUTimeGrowsWithWork(t *testing.T) {
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until /proc shows the work; a wrong field or unit would never get there (or jump).
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, err := cpuTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if d := now - before; d >= 50*time.Millisecond {
			if d > 10*time.Second {
				t.Errorf("/proc reports %s of CPU for a short spin", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s of spinning, and /proc shows only %s of CPU", now-before)
		}
		for i := 0; i < 1_000_000; i++ {
			_ = i * i
		}
	}
	if _, err := cpuTime(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestFindProcess(t *testing.T) {
	pid, err := findProcess(os.Args[0])
	if err != nil || pid != os.Getpid() {
		t.Errorf("findProcess(own binary) = %d, %v; want %d", pid, err, os.Getpid())
	}
	if _, err := findProcess("/no/such/dendrite.yaml"); err == nil {
		t.Error("found a process for an argument nobody has")
	}
}

func TestReadSimEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" writes no file
		wantErr string
	}{
		{"missing", "", "no simulator"},
		{"corrupt", "{", "corrupt"},
		{"short root key", `{"addr":"127.0.0.1:1","ca_pem":"","noise_root":"AAEC"}`, "lacks"},
		{"no address", `{"noise_root":"` + strings.Repeat("A", 43) + `="}`, "lacks"},
		{"good", `{"addr":"127.0.0.1:1","ca_pem":"","noise_root":"` + strings.Repeat("A", 43) + `="}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.content != "" {
				if err := os.WriteFile(filepath.Join(dir, simulatorFile), []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ep, err := readSimEndpoint(dir)
			if tt.wantErr == "" {
				if err != nil || ep.Addr != "127.0.0.1:1" {
					t.Errorf("readSimEndpoint = %+v, %v", ep, err)
				}
				if _, err := ep.httpClient(); err == nil {
					t.Error("an HTTP client that trusts an empty CA")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
