package archive

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

const (
	signingKeyFile  = "archive-signing.key"
	verifierKeyFile = "archive-signing.pub"
)

// signingKey is the Ed25519 note key checkpoints are signed with.
type signingKey struct {
	signer   note.Signer // nil when opened read-only without access to the private key
	verifier note.Verifier
	vkey     string // the verifier key in note format: name+hash+base64
}

// loadOrCreateKey reads the key pair from dir, creating it on first start. The private key file must be
// private to its owner: a checkpoint is only worth something if nobody else could have signed it.
func loadOrCreateKey(dir, name string, create bool) (*signingKey, error) {
	skeyPath := filepath.Join(dir, signingKeyFile)
	vkeyPath := filepath.Join(dir, verifierKeyFile)
	skey, err := os.ReadFile(skeyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		if err = createKey(dir, name); err != nil {
			return nil, err
		}
		if skey, err = os.ReadFile(skeyPath); err != nil {
			return nil, fmt.Errorf("read new signing key: %w", err)
		}
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission):
		if create {
			return nil, fmt.Errorf("read signing key: %w", err)
		}
		// Read-only use (verify, status) only needs the public half.
		skey = nil
	case err != nil:
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if skey != nil {
		info, err := os.Stat(skeyPath)
		if err != nil {
			return nil, fmt.Errorf("stat signing key: %w", err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("signing key %s has mode %v: it must be readable by its owner only (0600)", skeyPath, info.Mode().Perm())
		}
	}
	vkey, err := os.ReadFile(vkeyPath)
	if err != nil {
		return nil, fmt.Errorf("read verifier key: %w", err)
	}
	k := &signingKey{vkey: strings.TrimSpace(string(vkey))}
	if k.verifier, err = note.NewVerifier(k.vkey); err != nil {
		return nil, fmt.Errorf("parse verifier key %s: %w", vkeyPath, err)
	}
	if k.verifier.Name() != name {
		return nil, fmt.Errorf("verifier key %s is named %q, but the archive origin is %q", vkeyPath, k.verifier.Name(), name)
	}
	if skey == nil {
		return k, nil
	}
	if k.signer, err = note.NewSigner(strings.TrimSpace(string(skey))); err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", skeyPath, err)
	}
	// A mismatched pair would sign checkpoints nobody can verify; catch it at start rather than at audit.
	probe, err := note.Sign(&note.Note{Text: "key pair check\n"}, k.signer)
	if err != nil {
		return nil, fmt.Errorf("sign with signing key: %w", err)
	}
	if _, err = note.Open(probe, note.VerifierList(k.verifier)); err != nil {
		return nil, fmt.Errorf("signing key %s does not match verifier key %s: %w", skeyPath, vkeyPath, err)
	}
	return k, nil
}

// createKey writes a fresh key pair. Files are written under temporary names and hard-linked into place,
// so a crash leaves no half-written key and two processes starting at once cannot both win.
func createKey(dir, name string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	// Public key first: a private key without its public half would be unusable on the next start.
	if err = writeFileExclusive(dir, verifierKeyFile, []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	return writeFileExclusive(dir, signingKeyFile, []byte(skey+"\n"), 0o600)
}

func writeFileExclusive(dir, name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err = tmp.Chmod(mode); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err = os.Link(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("install %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
