package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"

	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

// Matrix encryption (mautrix's crypto with goolm) is linked only with `-tags goolm`: without
// the tag mautrix's crypto package imports cgo libolm, which this project never links, and
// Go has no way for a module to set its own build tags. So `go run ./cmd/causeway-demo` (the
// README's first command) builds a demo without encryption, and that demo, asked for
// encryption, builds itself again with the tag and runs that build in its place.

// rebuiltEnv marks a demo this one started so; it never rebuilds a second time.
const rebuiltEnv = "CAUSEWAY_DEMO_REBUILT_WITH_GOOLM"

// demoPackage is this program's import path, for a build from anywhere in the module.
const demoPackage = "codeberg.org/causeway/causeway/cmd/causeway-demo"

// execWithCrypto replaces this process with the demo built with -tags goolm, run with the same
// arguments. It returns only when it could not.
func execWithCrypto(ctx context.Context, args []string, stdout io.Writer) error {
	if os.Getenv(rebuiltEnv) != "" {
		return errors.New("the demo rebuilt with -tags goolm has no encryption either")
	}
	root, err := moduleDir()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Matrix encryption needs -tags goolm, which this build lacks: building the demo with it (quick after the first time)")
	bin, err := devserver.BuildCached(ctx, root, demoPackage, "causeway-demo-goolm", "goolm")
	if err != nil {
		return err
	}
	env := append(os.Environ(), rebuiltEnv+"=1")
	if err := syscall.Exec(bin, append([]string{bin}, args...), env); err != nil {
		return fmt.Errorf("failed to run %s: %w", bin, err)
	}
	return nil // not reached: Exec does not return on success
}

// moduleDir is the directory of the module this program was built from: where this file was
// compiled (go run and go build record it unless -trimpath), else the working directory.
func moduleDir() (string, error) {
	if info, ok := debug.ReadBuildInfo(); ok && info.Path != "" && info.Path != demoPackage {
		return "", fmt.Errorf("this program was built as %s, not as %s", info.Path, demoPackage)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the demo's source: %w", err)
	}
	return wd, nil
}
