// Package archive is Causeway's records capture: an append-only, tamper-evident log of everything that
// crosses the bridge, with signed checkpoints, retention and legal hold, self-verifying export bundles and
// a completeness ledger.
//
// # Log
//
// Every event is an Entry, encoded canonically as JSON (sorted keys, UTC times, no insignificant
// whitespace) and wrapped in a versioned envelope that also commits to its own index and to the leaf hash
// of the entry before it. The envelope is the entry's body. The log is an RFC 6962/9162 Merkle tree whose
// leaf for entry i is
//
//	SHA-256(salt_i || body_i)     salt_i: 32 random bytes stored next to the body
//
// so a checkpoint or an inclusion proof reveals nothing about content, and a body can be disposed (salt
// and body removed) while its leaf, and so every checkpoint, stays valid.
//
// We use github.com/transparency-dev/merkle (rfc6962 hashing, compact ranges, proof), not tessera.
// Tessera is a log server: it owns its storage (tiles in POSIX files, GCP, AWS or MySQL), sequences
// entries itself and integrates them asynchronously. We need the leaf rows, bodies, holds and disposal
// marks in the bridge's own SQLite or PostgreSQL, committed in one transaction with the audit entry that
// explains them, and an Append that returns only once its entry is durable; tessera supports neither
// SQLite nor PostgreSQL. The merkle library gives exactly the pieces we compose: the commit loop keeps
// a compact range (at most 64 hashes) as the tree head, so appends never read old leaves; inclusion and
// consistency proofs are assembled from a streaming pass over the leaves when an export needs them.
//
// # Checkpoints
//
// C2SP tlog-checkpoint signed notes (golang.org/x/mod/sumdb/note, Ed25519), issued every
// Options.CheckpointEvery entries, every Options.CheckpointInterval while entries arrive, when a run
// starts (and, after a crash, for what the crashed run left unsigned) and at Close. Verify requires them
// to cover the log but for the tail of the last run (coverage.go), because they are the one thing
// someone who can write the database but lacks the signing key cannot make. They are stored in the
// database and served by CheckpointHandler so witnesses outside the host can keep them; Verify with an
// outside checkpoint catches a database rolled back to an earlier copy.
//
// # Durability
//
// Append returns once its entry is committed. One goroutine owns the tree head and commits whatever
// appends are queued in one transaction (group commit), so many relaying goroutines share one fsync.
//
// # Completeness ledger
//
// Gaps answers "was anything missed from T1 to T2?", and an empty answer certifies the window, so the
// ledger must never let a gap close early. The rule the bridge writes it by:
//
//   - A gap opens for an account the moment capture stops: the bridge starts and has not yet caught
//     up, the first connect fails (WhatsApp unreachable), the connection drops, WhatsApp refuses the
//     client (outdated, banned, an unknown failure) or logs it out. It is a disconnected or logged_out
//     entry; further stops while it is open add their reason to the same window instead of opening another.
//   - It closes only with a connected entry, which the bridge writes once the account is connected AND
//     WhatsApp has delivered its offline queue (whatsmeow's OfflineSyncCompleted): until then messages
//     sent while it was away may still be on WhatsApp's side, not in the archive.
//   - The archive's own downtime is a gap of its own (archive_stopped or a crash, to archive_started).
//
// A gap with no closing entry is reported as still open, up to the end of the query; no window that
// overlaps it is ever reported complete.
//
// # Storage
//
// The archive owns its tables (upgrades, versioned in "archive_version") in a database the caller
// passes in. Media blobs are files named by SHA-256 in Options.MediaDir (see media.go for why).
// Nothing deletes from the archive except Dispose, which records itself.
package archive
