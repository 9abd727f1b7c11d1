// Package devserver runs the real servers Causeway is developed and tested against, on
// loopback: a Dendrite homeserver (built from the Go module proxy on first use and cached)
// and a throwaway PostgreSQL cluster. The integration tests and cmd/causeway-demo both use it,
// so the demo a newcomer runs is the setup the suite proves.
package devserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
)

// DendriteVersion is the Dendrite release the project is tested against.
const DendriteVersion = "v0.13.8"

const dendriteModule = "github.com/matrix-org/dendrite"

// CacheDir is where built servers are kept between runs: $CAUSEWAY_CACHE_DIR, else the
// user cache directory.
func CacheDir() (string, error) {
	if dir := os.Getenv("CAUSEWAY_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set CAUSEWAY_CACHE_DIR): %w", err)
	}
	return filepath.Join(base, "causeway"), nil
}

// EnsureDendrite returns a directory holding the dendrite and generate-keys binaries of
// DendriteVersion, building them with `go install` the first time. Concurrent callers (test
// packages run in parallel) wait on a file lock rather than building twice.
//
// Dendrite is built with cgo, so it uses mattn/go-sqlite3, whenever a C compiler is on PATH.
// Its pure-Go build (modernc.org/sqlite v1.29.5) lets a cancelled request's interrupt land on
// the next statement that connection runs: a client that goes away mid-request (kill -9 of
// the bridge, a /sync cut short) then leaves a COMMIT interrupted and the connection inside a
// transaction nothing ends ("cannot start a transaction within a transaction"), or panics the
// sync API's consumer ("WithTransaction.Begin: interrupted"), until Dendrite restarts
// (docs/dendrite-duplicate-events.md point 6). mattn's driver waits for the statement it
// interrupts, so the interrupt cannot reach another. Without a C compiler the pure-Go build
// is used, with a warning.
func EnsureDendrite(ctx context.Context, log zerolog.Logger) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	cgo := haveCCompiler()
	flavour := "cgo"
	if !cgo {
		flavour = "purego"
		log.Warn().Str("version", DendriteVersion).
			Msg("No C compiler (cc or gcc) on PATH: building Dendrite pure Go, whose SQLite can wedge after a client's request is cut off (docs/dendrite-duplicate-events.md point 6); install gcc to avoid it")
	}
	binDir := filepath.Join(cache, "dendrite-"+DendriteVersion+"-"+flavour)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", binDir, err)
	}
	if dendriteBuilt(binDir) {
		return binDir, nil
	}
	unlock, err := lockFile(filepath.Join(binDir, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if dendriteBuilt(binDir) { // another process built it while we waited
		return binDir, nil
	}
	goBin, err := goTool("to build Dendrite " + DendriteVersion)
	if err != nil {
		return "", err
	}
	log.Info().Str("version", DendriteVersion).Str("dir", binDir).Bool("cgo", cgo).
		Msg("Building Dendrite from the Go module proxy (first run only; 1-4 minutes)")
	cmd := exec.CommandContext(ctx, goBin, "install",
		dendriteModule+"/cmd/dendrite@"+DendriteVersion,
		dendriteModule+"/cmd/generate-keys@"+DendriteVersion)
	cmd.Dir = binDir // outside any module, so our go.mod cannot interfere
	cgoEnabled := "CGO_ENABLED=0"
	if cgo {
		cgoEnabled = "CGO_ENABLED=1"
	}
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, cgoEnabled, "GOFLAGS=-mod=mod", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("failed to build Dendrite %s: %w\n%s", DendriteVersion, err, out.String())
	}
	if !dendriteBuilt(binDir) {
		return "", fmt.Errorf("built Dendrite in %s but it does not report version %s", binDir, DendriteVersion)
	}
	return binDir, nil
}

func dendriteBuilt(binDir string) bool {
	if _, err := os.Stat(filepath.Join(binDir, "generate-keys")); err != nil {
		return false
	}
	out, err := exec.Command(filepath.Join(binDir, "dendrite"), "-version").Output()
	return err == nil && strings.TrimSpace(string(out)) == strings.TrimPrefix(DendriteVersion, "v")
}

// haveCCompiler says whether cgo can build: the C compiler go would use ($CC, else gcc or cc)
// is on PATH.
func haveCCompiler() bool {
	candidates := []string{"gcc", "cc"}
	if cc := strings.Fields(os.Getenv("CC")); len(cc) > 0 {
		candidates = []string{cc[0]}
	}
	for _, c := range candidates {
		if _, err := exec.LookPath(c); err == nil {
			return true
		}
	}
	return false
}

// goTool finds the go command, needed for what says why.
func goTool(what string) (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the go command is needed once %s, and it is not on PATH", what)
}

// lockFile takes an exclusive flock on path, waiting for other holders.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
