-- v1: History keys: the first key of the Megolm sessions the bridge made in portals, and which devices hold them

-- A session the bridge made in a portal, pickled (with the crypto store's pickle key) before its first message:
-- only the outbound session can produce the signed m.room_key form of its key, and only at its current index.
CREATE TABLE e2ee_history_session (
	session_id TEXT   PRIMARY KEY,
	room_id    TEXT   NOT NULL,
	-- The portal's owner, whose new devices are given the session.
	owner      TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	pickle     TEXT   NOT NULL
);
CREATE INDEX e2ee_history_session_owner_idx ON e2ee_history_session (owner, created_at);
CREATE INDEX e2ee_history_session_room_idx ON e2ee_history_session (room_id, created_at);
CREATE INDEX e2ee_history_session_created_idx ON e2ee_history_session (created_at);

-- A device (by its Curve25519 identity key) known to hold a session's key: sent it as history (given), or sent it
-- when the session was shared; either way it is not sent the key again.
CREATE TABLE e2ee_history_holder (
	session_id   TEXT    NOT NULL REFERENCES e2ee_history_session (session_id) ON DELETE CASCADE,
	identity_key TEXT    NOT NULL,
	user_id      TEXT    NOT NULL,
	device_id    TEXT    NOT NULL,
	given        BOOLEAN NOT NULL,
	since        BIGINT  NOT NULL,
	PRIMARY KEY (session_id, identity_key)
);
