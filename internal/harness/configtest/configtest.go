// Package configtest writes configuration files for tests, the way a newcomer edits a copy of
// config.example.yaml.
package configtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/causeway/causeway"
)

// WriteExample writes config.example.yaml with each replacements pair (old, new) applied once,
// and fails the test when the example lacks an old text.
func WriteExample(t testing.TB, replacements ...string) string {
	t.Helper()
	s := string(causeway.ExampleConfig)
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(s, replacements[i]) {
			t.Fatalf("example has no %q", replacements[i])
		}
		s = strings.Replace(s, replacements[i], replacements[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
