package archive

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckpointHandler(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.CheckpointEvery = 3 })
	for _, en := range conversation(t0) {
		env.append(en)
	}
	ctx := context.Background()
	latest, err := env.a.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/_causeway/archive", env.a.CheckpointHandler()))
	defer srv.Close()
	vkey := env.a.VerifierKey()

	cases := []struct {
		name     string
		method   string
		path     string
		status   int
		wantSize uint64 // checked when the body is a checkpoint
	}{
		{"latest", http.MethodGet, "/checkpoint", http.StatusOK, latest.Size},
		// Open signs its archive_started entry (size 1), then one every 3 entries.
		{"by size", http.MethodGet, "/checkpoint/4", http.StatusOK, 4},
		{"no checkpoint at that size", http.MethodGet, "/checkpoint/3", http.StatusNotFound, 0},
		{"not a number", http.MethodGet, "/checkpoint/latest", http.StatusBadRequest, 0},
		{"read-only", http.MethodPost, "/checkpoint", http.StatusMethodNotAllowed, 0},
		{"key", http.MethodGet, "/key", http.StatusOK, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/_causeway/archive"+tc.path, strings.NewReader(""))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			switch {
			case tc.wantSize > 0:
				cp, err := ParseCheckpoint(body, vkey)
				if err != nil {
					t.Fatalf("served checkpoint does not verify with the public key: %v\n%s", err, body)
				}
				if cp.Size != tc.wantSize || cp.Origin != env.opts.Origin {
					t.Fatalf("served checkpoint %s@%d, want %s@%d", cp.Origin, cp.Size, env.opts.Origin, tc.wantSize)
				}
			case tc.path == "/key":
				if strings.TrimSpace(string(body)) != vkey {
					t.Fatalf("served key %q, want %q", body, vkey)
				}
			}
		})
	}
	// A note signed by another key must not verify against ours.
	if _, err := ParseCheckpoint(latest.Note, otherKey(t, env.opts.Origin)); err == nil {
		t.Fatal("checkpoint verified under a foreign key")
	}
}
