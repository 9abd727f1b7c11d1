package msgconv

import (
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/id"
)

// The file objects of encrypted rooms are made and opened with mautrix's attachment
// encryption (AES-CTR with a SHA-256 of the ciphertext); these two convert between its type
// and ours, whose JSON is the same. Encrypting and decrypting are pure, so they may be done
// here, but the bytes come and go through the portal.

// NewEncryptedFileFrom is the file object of ciphertext uploaded to url, encrypted with ef.
func NewEncryptedFileFrom(ef *attachment.EncryptedFile, url id.ContentURIString) *EncryptedFile {
	return &EncryptedFile{
		URL: url,
		Key: JSONWebKey{Kty: ef.Key.KeyType, KeyOps: ef.Key.KeyOps, Alg: ef.Key.Algorithm, K: ef.Key.Key, Ext: ef.Key.Extractable},
		IV:  ef.InitVector, Hashes: map[string]string{"sha256": ef.Hashes.SHA256}, V: ef.Version,
	}
}

// Attachment is the file object as mautrix's attachment encryption takes it, to check and
// decrypt the ciphertext with (DecryptInPlace checks the hash first).
func (f *EncryptedFile) Attachment() *attachment.EncryptedFile {
	return &attachment.EncryptedFile{
		Key:        attachment.JSONWebKey{Key: f.Key.K, Algorithm: f.Key.Alg, Extractable: f.Key.Ext, KeyType: f.Key.Kty, KeyOps: f.Key.KeyOps},
		InitVector: f.IV, Hashes: attachment.EncryptedFileHashes{SHA256: f.Hashes["sha256"]}, Version: f.V,
	}
}
