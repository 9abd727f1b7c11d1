package devserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildCached builds the main package pkg of the module in moduleDir with the given build
// tags into the cache directory, as name, and returns the binary's path. Go's own build cache
// makes every build after the first one quick, and leaves an up-to-date binary as it is;
// concurrent callers wait on a file lock instead of writing the same file. A binary that is
// running while it is replaced keeps running: go build replaces the file, it does not write
// into it.
func BuildCached(ctx context.Context, moduleDir, pkg, name string, tags ...string) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", dir, err)
	}
	unlock, err := lockFile(filepath.Join(dir, "."+name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	goBin, err := goTool("to build " + pkg)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", strings.Join(tags, ","), "-o", bin, pkg)
	cmd.Dir = moduleDir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %w\n%s", pkg, moduleDir, err, out.String())
	}
	return bin, nil
}
