-- v1: Records archive: log entries, checkpoints, media, legal holds

-- The signing identity the checkpoints were made with. A different key file on a later start is refused,
-- because checkpoints from two keys in one log would make "who vouched for this" ambiguous.
CREATE TABLE archive_key (
	name     TEXT   PRIMARY KEY,
	verifier TEXT   NOT NULL,
	created  BIGINT NOT NULL
);

-- One row per Merkle leaf, never deleted. commitment = SHA-256(salt || body) is the leaf input; disposal
-- sets salt and body to NULL and leaves the rest. The plain columns are a query index over the body
-- (verify checks them against it while the body exists); times are Unix milliseconds.
CREATE TABLE archive_entry (
	idx         BIGINT PRIMARY KEY,
	commitment  bytea  NOT NULL,
	kind        TEXT   NOT NULL,
	account     TEXT   NOT NULL,
	chat        TEXT   NOT NULL,
	sender      TEXT   NOT NULL,
	event_ts    BIGINT NOT NULL,
	captured_ts BIGINT NOT NULL,
	salt        bytea,
	body        bytea
);
CREATE INDEX archive_entry_chat_idx ON archive_entry (chat, event_ts);
CREATE INDEX archive_entry_event_idx ON archive_entry (event_ts);
CREATE INDEX archive_entry_kind_idx ON archive_entry (kind);

-- Which entries reference which media blob, so disposal knows when a blob is no longer needed.
CREATE TABLE archive_entry_media (
	sha256 TEXT   NOT NULL,
	idx    BIGINT NOT NULL,
	PRIMARY KEY (sha256, idx)
);

-- Media blobs live in the media directory named by their SHA-256; this table is the inventory verify
-- checks the directory against.
CREATE TABLE archive_media (
	sha256      TEXT   PRIMARY KEY,
	size        BIGINT NOT NULL,
	stored_ts   BIGINT NOT NULL,
	last_put_ts BIGINT NOT NULL,
	disposed_ts BIGINT
);

-- Signed checkpoints. range_hashes is the compact range at this size (concatenated 32-byte hashes), so a
-- restart resumes the tree without rehashing every leaf.
CREATE TABLE archive_checkpoint (
	size         BIGINT PRIMARY KEY,
	root         bytea  NOT NULL,
	range_hashes bytea  NOT NULL,
	note         TEXT   NOT NULL,
	created_ts   BIGINT NOT NULL
);

-- Legal holds. id is the log index of the hold_added entry; removal is recorded, never deleted.
CREATE TABLE archive_hold (
	id          BIGINT PRIMARY KEY,
	scope       TEXT   NOT NULL,
	jid         TEXT   NOT NULL,
	reason      TEXT   NOT NULL,
	actor       TEXT   NOT NULL,
	created_ts  BIGINT NOT NULL,
	removed_idx BIGINT,
	removed_by  TEXT,
	removed_ts  BIGINT
);
