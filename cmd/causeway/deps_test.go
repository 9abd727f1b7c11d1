package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// harnessElements name the packages that make whatsmeow trust a simulated network, build
// Dendrite or start PostgreSQL. Tests and cmd/causeway-demo use them; an operator's binary
// must not carry them, whatever a config file says.
var harnessElements = []string{"wasim", "devserver", "demo", "harness"}

// TestProductionBinaryDeps keeps the simulator, the dev servers and the demo out of the
// binary operators run, and keeps the README's first command pointing at where the demo went.
func TestProductionBinaryDeps(t *testing.T) {
	root := moduleRoot(t)
	tests := []struct {
		name string
		env  []string
		tags []string
		// crypto says whether Matrix encryption is linked: goolm with the tag, nothing without.
		crypto bool
	}{
		{"default", nil, []string{"-tags", "goolm"}, true},
		// How the README and the Dockerfile build it; build tags could pull in other files.
		{"CGO_ENABLED=0", []string{"CGO_ENABLED=0"}, []string{"-tags", "goolm"}, true},
		{"without goolm", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("go", append(append([]string{"list"}, tt.tags...), "-deps", "./cmd/causeway")...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps ./cmd/causeway: %v\n%s", err, stderr.String())
			}
			pkgs := strings.Fields(string(out))
			if !slices.Contains(pkgs, "codeberg.org/causeway/causeway/bridge") {
				t.Fatalf("go list -deps ./cmd/causeway does not list the bridge; is this the right command?\n%s", out)
			}
			// Matrix encryption is pure Go: goolm in, cgo libolm out; without the tag, no crypto.
			if linked := slices.Contains(pkgs, "maunium.net/go/mautrix/crypto"); linked != tt.crypto {
				t.Errorf("mautrix/crypto linked: %v, want %v", linked, tt.crypto)
			}
			if tt.crypto && !slices.Contains(pkgs, "maunium.net/go/mautrix/crypto/goolm") {
				t.Errorf("the production binary does not link goolm")
			}
			if slices.Contains(pkgs, "maunium.net/go/mautrix/crypto/libolm") {
				t.Errorf("the production binary links cgo libolm")
			}
			for _, pkg := range pkgs {
				for _, elem := range strings.Split(pkg, "/") {
					if slices.Contains(harnessElements, elem) {
						t.Errorf("the production binary links %s", pkg)
					}
				}
			}
		})
	}
	t.Run("README", func(t *testing.T) {
		const want = "go run ./cmd/causeway-demo --once"
		if got := firstREADMECommand(t, filepath.Join(root, "README.md")); got != want {
			t.Errorf("the README's first command is %q, want %q", got, want)
		}
	})
}

// TestBuildWithoutGoolm: without -tags goolm the encryption package builds without crypto
// (so the README's first command runs as written), and a bridge started with encryption on
// is told why it cannot have it.
func TestBuildWithoutGoolm(t *testing.T) {
	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", "^TestOpenWithoutGoolm$", "./e2ee")
	cmd.Dir = moduleRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestOpenWithoutGoolm") {
		t.Fatalf("go test ./e2ee without -tags goolm: %v\n%s", err, out)
	}
}

// TestDemoPointsElsewhere: someone who learnt `causeway demo` is told where it went.
func TestDemoPointsElsewhere(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"demo", "--once"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "go run ./cmd/causeway-demo") {
		t.Errorf("exit %d, stderr %q; want %d and a pointer to cmd/causeway-demo", code, stderr.String(), exitUsage)
	}
}

// moduleRoot is the directory of the go.mod this test is built from.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD = %q: not in a module", gomod)
	}
	return filepath.Dir(gomod)
}

// firstREADMECommand is the first line of the README's first shell block.
func firstREADMECommand(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inBlock := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case !inBlock && line == "```sh":
			inBlock = true
		case inBlock && line != "":
			return line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("%s has no ```sh block", path)
	return ""
}
