package archive

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ErrNoCheckpoint is returned when no checkpoint has been issued yet (or none at the requested size).
var ErrNoCheckpoint = errors.New("no checkpoint")

// Checkpoint is a signed statement "the log with this origin had Size entries and this root hash", in
// the C2SP tlog-checkpoint format. Note is the complete signed note; it is what witnesses keep.
type Checkpoint struct {
	Origin  string
	Size    uint64
	Root    []byte
	Note    []byte
	Created time.Time
}

var hasher = rfc6962.DefaultHasher

var rangeFactory = compact.RangeFactory{Hash: hasher.HashChildren}

// checkpointText is the unsigned body: origin, size, base64 root, each on its own line.
func checkpointText(origin string, size uint64, root []byte) string {
	return origin + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root) + "\n"
}

// ParseCheckpoint opens a signed checkpoint note with the given verifier key (note format
// "name+hash+base64") and returns its contents. It fails unless the signature verifies.
func ParseCheckpoint(signed []byte, verifierKey string) (*Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return nil, fmt.Errorf("parse verifier key: %w", err)
	}
	return openCheckpoint(signed, v)
}

func openCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return nil, errors.New("checkpoint has fewer than three lines")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("checkpoint size %q: %w", lines[1], err)
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != hasher.Size() {
		return nil, fmt.Errorf("checkpoint root hash %q is not a base64 SHA-256", lines[2])
	}
	return &Checkpoint{Origin: lines[0], Size: size, Root: root, Note: signed}, nil
}

func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, fmt.Errorf("compute root: %w", err)
	}
	return root, nil
}

// signCheckpoint signs the tree state r and returns the checkpoint with the compact range serialised.
func (a *Archive) signCheckpoint(r *compact.Range, now time.Time) (*Checkpoint, []byte, error) {
	if a.key.signer == nil {
		return nil, nil, ErrReadOnly
	}
	root, err := rootOf(r)
	if err != nil {
		return nil, nil, err
	}
	signed, err := note.Sign(&note.Note{Text: checkpointText(a.origin, r.End(), root)}, a.key.signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return &Checkpoint{Origin: a.origin, Size: r.End(), Root: root, Note: signed, Created: now},
		bytes.Join(r.Hashes(), nil), nil
}

func (a *Archive) insertCheckpoint(ctx context.Context, cp *Checkpoint, rangeHashes []byte) error {
	_, err := a.db.Exec(ctx,
		`INSERT INTO archive_checkpoint (size, root, range_hashes, note, created_ts) VALUES ($1, $2, $3, $4, $5)`,
		int64(cp.Size), cp.Root, rangeHashes, string(cp.Note), cp.Created.UnixMilli())
	if err != nil {
		return fmt.Errorf("store checkpoint at size %d: %w", cp.Size, err)
	}
	return nil
}

// LatestCheckpoint returns the checkpoint with the largest size, or ErrNoCheckpoint.
func (a *Archive) LatestCheckpoint(ctx context.Context) (*Checkpoint, error) {
	cp, _, err := a.queryCheckpoint(ctx,
		`SELECT size, note, created_ts, range_hashes FROM archive_checkpoint ORDER BY size DESC LIMIT 1`)
	return cp, err
}

// CheckpointAt returns the checkpoint issued at exactly this size, or ErrNoCheckpoint.
func (a *Archive) CheckpointAt(ctx context.Context, size uint64) (*Checkpoint, error) {
	cp, _, err := a.queryCheckpoint(ctx,
		`SELECT size, note, created_ts, range_hashes FROM archive_checkpoint WHERE size=$1`, int64(size))
	return cp, err
}

// queryCheckpoint loads one stored checkpoint, checking its signature: a stored note that does not verify
// is reported as an error rather than served.
func (a *Archive) queryCheckpoint(ctx context.Context, query string, args ...any) (*Checkpoint, []byte, error) {
	var (
		size      int64
		signed    string
		createdMs int64
		rng       []byte
	)
	err := a.db.QueryRow(ctx, query, args...).Scan(&size, &signed, &createdMs, &rng)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNoCheckpoint
	} else if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	cp, err := openCheckpoint([]byte(signed), a.key.verifier)
	if err != nil {
		return nil, nil, fmt.Errorf("stored checkpoint at size %d: %w", size, err)
	}
	if cp.Size != uint64(size) {
		return nil, nil, fmt.Errorf("stored checkpoint row %d holds a note for size %d", size, cp.Size)
	}
	cp.Created = time.UnixMilli(createdMs).UTC()
	return cp, rng, nil
}

// VerifierKey returns the public key checkpoints verify with, in note format (name+hash+base64). Give it
// to witnesses and records officers; VerifyBundle and ParseCheckpoint take it.
func (a *Archive) VerifierKey() string {
	return a.key.vkey
}

// Origin returns the log's origin line, which is also the key name.
func (a *Archive) Origin() string {
	return a.origin
}

// CheckpointHandler serves checkpoints read-only so outside witnesses can fetch and keep them:
//
//	GET checkpoint          the latest signed checkpoint
//	GET checkpoint/{size}   the checkpoint issued at that size
//	GET key                 the verifier key
//
// Paths are relative; mount it with http.StripPrefix.
func (a *Archive) CheckpointHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp, err := a.LatestCheckpoint(r.Context())
		w.Header().Set("Cache-Control", "no-cache")
		a.writeCheckpoint(w, r, cp, err)
	})
	mux.HandleFunc("GET /checkpoint/{size}", func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.ParseUint(r.PathValue("size"), 10, 64)
		if err != nil {
			http.Error(w, "size must be a decimal number", http.StatusBadRequest)
			return
		}
		cp, err := a.CheckpointAt(r.Context(), size)
		// A checkpoint at a given size never changes.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		a.writeCheckpoint(w, r, cp, err)
	})
	mux.HandleFunc("GET /key", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(a.key.vkey + "\n"))
	})
	return mux
}

func (a *Archive) writeCheckpoint(w http.ResponseWriter, r *http.Request, cp *Checkpoint, err error) {
	switch {
	case errors.Is(err, ErrNoCheckpoint):
		w.Header().Del("Cache-Control")
		http.Error(w, "no such checkpoint", http.StatusNotFound)
	case err != nil:
		w.Header().Del("Cache-Control")
		a.log.Error().Err(err).Str("path", r.URL.Path).Msg("Failed to serve archive checkpoint")
		http.Error(w, "checkpoint unavailable", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(cp.Note)
	}
}
