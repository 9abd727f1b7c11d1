-- v1: whatsmeow device store (keys, Signal state, app state, contacts, LID map)
-- Every per-device table hangs off wastore_device with ON DELETE CASCADE, so deleting a
-- device (logout, device_removed) removes all of its key material in one statement.

CREATE TABLE wastore_device (
	jid                 TEXT    PRIMARY KEY,
	lid                 TEXT,
	registration_id     BIGINT  NOT NULL CHECK ( registration_id BETWEEN 0 AND 4294967295 ),
	noise_priv          bytea   NOT NULL CHECK ( length(noise_priv) = 32 ),
	identity_priv       bytea   NOT NULL CHECK ( length(identity_priv) = 32 ),
	signed_pre_key_id   BIGINT  NOT NULL CHECK ( signed_pre_key_id BETWEEN 0 AND 16777215 ),
	signed_pre_key_priv bytea   NOT NULL CHECK ( length(signed_pre_key_priv) = 32 ),
	signed_pre_key_sig  bytea   NOT NULL CHECK ( length(signed_pre_key_sig) = 64 ),
	adv_secret_key      bytea   NOT NULL,
	-- The whole ADVSignedDeviceIdentity protobuf; NULL until pairing has produced one.
	account             bytea,
	platform            TEXT    NOT NULL DEFAULT '',
	business_name       TEXT    NOT NULL DEFAULT '',
	push_name           TEXT    NOT NULL DEFAULT '',
	facebook_uuid       TEXT,
	lid_migration_ts    BIGINT  NOT NULL DEFAULT 0,
	-- Monotonic one-time prekey counter: IDs are never reused after a key is consumed,
	-- because a peer holding an old bundle must not get a different key under the same ID.
	next_pre_key_id     BIGINT  NOT NULL DEFAULT 1
);

CREATE TABLE wastore_identity (
	device_jid   TEXT  NOT NULL,
	address      TEXT  NOT NULL,
	identity_key bytea NOT NULL CHECK ( length(identity_key) = 32 ),
	PRIMARY KEY (device_jid, address),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_session (
	device_jid TEXT  NOT NULL,
	address    TEXT  NOT NULL,
	record     bytea NOT NULL,
	PRIMARY KEY (device_jid, address),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_pre_key (
	device_jid TEXT    NOT NULL,
	key_id     BIGINT  NOT NULL CHECK ( key_id BETWEEN 1 AND 16777215 ),
	priv       bytea   NOT NULL CHECK ( length(priv) = 32 ),
	uploaded   BOOLEAN NOT NULL DEFAULT false,
	PRIMARY KEY (device_jid, key_id),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_sender_key (
	device_jid     TEXT  NOT NULL,
	group_id       TEXT  NOT NULL,
	sender_address TEXT  NOT NULL,
	record         bytea NOT NULL,
	PRIMARY KEY (device_jid, group_id, sender_address),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_app_state_sync_key (
	device_jid  TEXT   NOT NULL,
	key_id      bytea  NOT NULL,
	key_data    bytea  NOT NULL,
	fingerprint bytea  NOT NULL,
	created_ts  BIGINT NOT NULL,
	PRIMARY KEY (device_jid, key_id),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_app_state_version (
	device_jid TEXT   NOT NULL,
	name       TEXT   NOT NULL,
	version    BIGINT NOT NULL CHECK ( version >= 0 ),
	hash       bytea  NOT NULL CHECK ( length(hash) = 128 ),
	PRIMARY KEY (device_jid, name),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

-- MACs belong to a collection's version row: resetting a collection for a full sync
-- (DeleteAppStateVersion) must also forget its MACs, or stale ones would be matched.
CREATE TABLE wastore_app_state_mutation_mac (
	device_jid TEXT   NOT NULL,
	name       TEXT   NOT NULL,
	version    BIGINT NOT NULL,
	index_mac  bytea  NOT NULL,
	value_mac  bytea  NOT NULL,
	PRIMARY KEY (device_jid, name, index_mac, version),
	FOREIGN KEY (device_jid, name) REFERENCES wastore_app_state_version (device_jid, name)
		ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_contact (
	device_jid     TEXT NOT NULL,
	contact_jid    TEXT NOT NULL,
	first_name     TEXT NOT NULL DEFAULT '',
	full_name      TEXT NOT NULL DEFAULT '',
	push_name      TEXT NOT NULL DEFAULT '',
	business_name  TEXT NOT NULL DEFAULT '',
	redacted_phone TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (device_jid, contact_jid),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_chat_settings (
	device_jid  TEXT    NOT NULL,
	chat_jid    TEXT    NOT NULL,
	-- 0: not muted, -1: muted forever, otherwise a unix timestamp in seconds.
	muted_until BIGINT  NOT NULL DEFAULT 0,
	pinned      BOOLEAN NOT NULL DEFAULT false,
	archived    BOOLEAN NOT NULL DEFAULT false,
	PRIMARY KEY (device_jid, chat_jid),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_message_secret (
	device_jid TEXT  NOT NULL,
	chat_jid   TEXT  NOT NULL,
	sender_jid TEXT  NOT NULL,
	message_id TEXT  NOT NULL,
	secret     bytea NOT NULL,
	PRIMARY KEY (device_jid, chat_jid, sender_jid, message_id),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE wastore_privacy_token (
	device_jid TEXT   NOT NULL,
	user_jid   TEXT   NOT NULL,
	token      bytea  NOT NULL,
	issued_ts  BIGINT NOT NULL,
	PRIMARY KEY (device_jid, user_jid),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

-- Shared by every device in the container: a LID<->phone number pairing is a fact about
-- the WhatsApp network, not about one login. Users are stored without device or server.
CREATE TABLE wastore_lid_map (
	lid_user TEXT PRIMARY KEY,
	pn_user  TEXT NOT NULL UNIQUE
);

CREATE TABLE wastore_event_buffer (
	device_jid      TEXT   NOT NULL,
	ciphertext_hash bytea  NOT NULL CHECK ( length(ciphertext_hash) = 32 ),
	-- NULL once the event has been handled: the row then only marks the hash as seen.
	plaintext       bytea,
	server_ts_ms    BIGINT NOT NULL,
	insert_ts_ms    BIGINT NOT NULL,
	PRIMARY KEY (device_jid, ciphertext_hash),
	FOREIGN KEY (device_jid) REFERENCES wastore_device (jid) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE INDEX wastore_event_buffer_insert_idx ON wastore_event_buffer (device_jid, insert_ts_ms);
