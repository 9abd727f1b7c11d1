// Package ziptest edits zip files for tests, as someone tampering with an export would.
package ziptest

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Rewrite copies the zip at path with the content of file name changed by change, and fails
// the test when that changes nothing.
func Rewrite(t testing.TB, path, name string, change func([]byte) []byte) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zr.Close() }()
	out := filepath.Join(t.TempDir(), "tampered.zip")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	changed := false
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if zf.Name == name {
			before := data
			data = change(bytes.Clone(data))
			changed = !bytes.Equal(before, data)
		}
		w, err := zw.Create(zf.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err = zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err = f.Close(); err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatalf("%s in %s was not changed", name, path)
	}
	return out
}
