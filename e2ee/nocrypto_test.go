//go:build !goolm

package e2ee

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestOpenWithoutGoolm: a build without crypto refuses encryption, saying how to get it or
// turn it off. cmd/causeway's TestBuildWithoutGoolm runs this test in such a build.
func TestOpenWithoutGoolm(t *testing.T) {
	m, err := Open(context.Background(), Deps{})
	if m != nil || !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Open = %v, %v; want ErrNotBuilt", m, err)
	}
	for _, want := range []string{"go build -tags goolm", "encryption.allow: false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if Driver() != "none" {
		t.Errorf("Driver() = %q in a build without crypto", Driver())
	}
}
